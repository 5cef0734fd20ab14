"""Benchmark suite on held-out data: classical filters, and agents given by the caller (spec §5, §8 in docs/design.md).

    python -m enkf.evaluate --config configs/L96_1.py --methods eakf,letkf --n-ens "" --paths 4 --cycles 300

The filter part of the suite; it never imports the training script (spec §2). Agents run through scripts/evaluate.py:

    python scripts/evaluate.py --config configs/L96_1.py --checkpoint pretrained/L96_1.pt      # = make eval
    python scripts/evaluate.py --config configs/L96_2.py --checkpoint pretrained/L96_1.pt      # zero-shot transfer

Every method runs on the same held-out data: path 0 of the config's data (never trained on) and a separate
held-out set of --paths truths from new start points (their own seed, each spun up from a random state; never
used for data generation or training). Methods: free_run, obs_only, nudging (best constant gain
xa = xb + g (y - H xb), g picked per set), pertobs, eakf, etkf, letkf (each at the config's setting and tuned on a
separate tuning set), and agents (--checkpoint, repeatable), all from the same first background ensemble. An agent
keeps its architecture and normalization; the system (N, F, observations, N_ens) comes from --config.
Outputs under --out (default logs/<config>/evaluate/): eval.md (tables), eval.json, rmse_over_time.png,
hovmoller.png, rmse_vs_nens.png. Last line printed: a JSON summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from configs.defaults import LOGS_ROOT, Config, ConfigError, load_config
from enkf import io
from enkf.cycle import (  # noqa: F401 (survived, REPEATS: re-exported)
    REPEATS,
    adaptive_methods,
    cycle,
    cycle_adaptive,
    make_forecaster,
    obs_setup,
    rmse,
    spread,
    survived,
)
from enkf.data import DataError, PathData, ensure_data, stored
from enkf.tuned import (  # noqa: F401 (EvalSet, heldout_set are re-exported for scripts/evaluate.py)
    METHODS,
    TUNE_CYCLES,
    TUNE_PATHS,
    EvalSet,
    Setting,
    heldout_set,
    lookup,
    run_settings,
    tune_method,
    tuning_seed,
)

CLASSICAL = ("free_run", "obs_only", "nudging", "pertobs", "eakf", "etkf", "letkf")
TUNABLE = METHODS
NUDGING_GAINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


# ---------------------------------------------------------------------------------------------------
# Data sets (the held-out and tuning sets themselves: enkf.tuned)
# ---------------------------------------------------------------------------------------------------
def path0_set(data: PathData) -> EvalSet:
    return EvalSet("path 0", data.truth[:1], data.obs[:1], data.xb[:1], data.xa[:1])


# ---------------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------------
def run_classical(cfg: Config, method: str, inflations, s: EvalSet, fc, gen, burn_in: int) -> list[dict]:
    """One method on set s, batched over paths x inflations (x nudging gains: the best gain on the set is
    kept). One result per inflation: rmse, spread (P, T), the analysis mean of path 0 (T, N), seconds/cycle."""
    obs, r = obs_setup(cfg)
    P, T = s.P, s.y.shape[1]
    t0 = time.time()
    if method == "nudging":
        G = len(NUDGING_GAINS)
        g = torch.tensor(NUDGING_GAINS).repeat_interleave(P).view(-1, 1, 1)  # (G*P, 1, 1)

        def an(E, y):  # xa = xb + g (y - H xb) on the observed points
            inc = torch.zeros_like(E)
            inc[..., obs.idx] = y.unsqueeze(-2) - E[..., obs.idx]
            return E + g * inc

        Eb0 = s.xb[:, 0].mean(1, keepdim=True).repeat(G, 1, 1)  # (G*P, 1, N): one state, the first background mean
        out = cycle(Eb0, s.y.repeat(G, 1, 1), s.truth.repeat(G, 1, 1), fc, an)
        rm = out["rmse"].reshape(G, P, T)
        score = [x[:, burn_in:].mean() if (survived(x) == T).all() else np.inf for x in rm]
        k = int(np.argmin(score))
        return [dict(method="nudging", param=NUDGING_GAINS[k], rmse=rm[k], spread=np.zeros_like(rm[k]), mean=None,
                     seconds=(time.time() - t0) / T)]  # fmt: skip
    return run_settings(cfg, [Setting(method, inflation=a) for a in inflations], s, fc, gen)


def tuned_settings(cM: Config, methods, tune_paths, tune_cycles, seed, fc, gen, progress) -> dict:
    """{method: tuned entry} at cM.N_ens. The standard tuning set (its size and seed): read from the tuned files
    (configs/tuned/, else the run's own file under logs/; tuned into the latter when missing). Any other tuning set:
    tuned here on it, nothing written."""
    ms = [m for m in methods if m in TUNABLE]
    if (tune_paths, tune_cycles, seed) == (TUNE_PATHS, TUNE_CYCLES, tuning_seed(cM)):
        return {m: lookup(cM, m, progress=progress) for m in ms}
    s = heldout_set(cM, "tuning set", tune_paths, tune_cycles, seed, fc, progress)
    return {m: tune_method(cM, m, s, fc, gen, min(cM.burn_in, tune_cycles // 2)) for m in ms}


# Agents: load_agent / run_agent live in scripts/evaluate.py (they need the training script's Agent); they are
# passed in here as `run_agent(ag, cfg, set, fc) -> result` and loaded agent dicts (label, path, cfg, step, ...).
# ---------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------
# Summaries, tables, figures
# ---------------------------------------------------------------------------------------------------
def summarize(res: dict, burn_in: int, ref: float | None) -> dict:
    if "error" in res:
        return {"method": res["method"], "param": res["param"], "error": res["error"]}
    rm, sp = np.asarray(res["rmse"]), np.asarray(res["spread"])
    T = rm.shape[1]
    surv = np.asarray(res.get("survived", survived(rm)))
    ok = surv == T
    per_path = np.full(len(ok), np.nan)  # (P,) time mean after the burn-in of the paths that kept the truth
    if T > burn_in:  # a lost path is NaN from some cycle on: left out here, not averaged (nor warned about)
        per_path[ok] = np.nanmean(rm[ok, burn_in:], 1)
    m = float(np.mean(per_path[ok])) if ok.any() else float("nan")
    spr = float(np.mean(np.nanmean(sp[ok][:, burn_in:], 1))) if ok.any() else float("nan")
    return {
        "method": res["method"], "param": res["param"], "rmse": m,
        "rmse_std": float(np.std(per_path[ok])) if ok.any() else float("nan"),
        "ratio": m / ref if ref else float("nan"), "spread": spr, "spread_over_rmse": spr / m if m else float("nan"),
        "cycles_survived_min": int(surv.min()), "paths_survived": int(ok.sum()), "paths": int(len(surv)),
        "cycles": T, "ms_per_cycle": 1e3 * res["seconds"],
    }  # fmt: skip


def label(r: dict, cfg: Config) -> str:
    m, p = r["method"], r["param"]
    if str(r.get("variant", "")).startswith("adaptive"):
        return f"{m} ({r['variant']}, untuned)"
    if m in TUNABLE:
        st = r.get("setting") or Setting(m, inflation=p, radius=r.get("radius"))
        st = Setting.from_dict(st) if isinstance(st, dict) else st
        how = "config" if r.get("config_inflation") else "tuned"
        if r.get("untracked"):
            how += "; no setting tracked every tuning path"
        if r.get("edge"):
            how += "; not bracketed by the search"
        return st.label()[:-1] + f", {how})"
    if m == "nudging":
        return f"nudging (g = {p:g})"
    return f"{m} ({p})" if m.startswith("agent") and p else m  # an agent's param: a choice made at this N_ens


def best_reference(rows: list[dict]) -> dict | None:
    """The best classical filter of a set: of the tunable filters' rows (tuned, and at the config's inflation: a
    tuning on 4 paths can pick a setting that a burst makes worse on held-out data than the config's) and the untuned
    adaptive-RTPS rows (run_adaptive), the one with the lowest RMSE that kept every path."""
    rows = [r for r in rows if (r.get("variant") in ("tuned", "config", "config = tuned")
            or str(r.get("variant", "")).startswith("adaptive")) and "error" not in r
            and r["paths_survived"] == r["paths"] and math.isfinite(r["rmse"])]  # fmt: skip
    return min(rows, key=lambda r: r["rmse"]) if rows else None


def table(rows: list[dict], cfg: Config, title: str) -> list[str]:
    f = lambda x, d=4: "–" if x is None or not math.isfinite(x) else f"{x:.{d}f}"  # noqa: E731
    best = best_reference(rows)
    tref = best["rmse"] if best else None
    out = [f"#### {title}", "", f"Best filter (lowest RMSE of the EAKF/ETKF/LETKF/PertObs rows, tuned, at the config's inflation or adaptive RTPS, every path kept): "
           f"{label(best, cfg) if best else 'none'}.", "",
           "| method | analysis RMSE (mean ± std over paths) | ratio to config EnKF | ratio to best filter | "
           "spread/RMSE | cycles survived (min) | paths survived | ms per cycle (all paths) |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        if "error" in r:
            out.append(f"| {label(r, cfg)} | n/a: {r['error']} | | | | | | |")
            continue
        rt = r["rmse"] / tref if tref else float("nan")
        r["ratio_to_best"] = rt
        name = f"**{label(r, cfg)}**" if r is best else label(r, cfg)
        out.append(f"| {name} | {f(r['rmse'])} ± {f(r['rmse_std'])} | {f(r['ratio'], 3)} | {f(rt, 3)} | "
                   f"{f(r['spread_over_rmse'], 2)} | {r['cycles_survived_min']}/{r['cycles']} | "
                   f"{r['paths_survived']}/{r['paths']} | {f(r['ms_per_cycle'], 2)} |")  # fmt: skip
    return out + [""]


def figures(cfg: Config, s: EvalSet, raws: list[dict], rows: list[dict], nens_rows: dict, out: Path) -> dict:
    from enkf import plots

    figs = {}
    series = {}
    for raw, r in zip(raws, rows, strict=True):
        if "rmse" in raw:
            series[label(r, cfg)] = np.asarray(raw["rmse"])[0]
    figs["rmse_over_time"] = plots.rmse_over_time(series, f"{cfg.name}, {s.name}: analysis RMSE vs truth",
                                                  out / "rmse_over_time.png")  # fmt: skip
    truth = s.truth[0].numpy()
    enkf = s.xa[0].mean(1).numpy()
    fields = {"truth": truth, f"EnKF ({cfg.data_filter})": enkf, f"error EnKF ({cfg.data_filter})": enkf - truth}
    agents = [
        (raw, r)
        for raw, r in zip(raws, rows, strict=True)
        if r["method"].startswith("agent") and raw.get("mean") is not None
    ]
    for raw, r in agents[:2]:
        m = np.full_like(truth, np.nan)
        m[: len(raw["mean"])] = raw["mean"]
        fields[r["method"]] = m
        fields[f"error {r['method']}"] = m - truth
    figs["hovmoller"] = plots.hovmoller(fields, f"{cfg.name}, {s.name}: first 200 cycles", out / "hovmoller.png")
    sizes = sorted({M for pts in nens_rows.values() for M, _ in pts})
    if len(sizes) > 1:
        title = f"{cfg.name}: held-out set, RMSE vs ensemble size (diverged runs omitted)"
        figs["rmse_vs_nens"] = plots.rmse_vs_nens(nens_rows, sizes, title, out / "rmse_vs_nens.png")
    return {k: str(v) for k, v in figs.items()}


def run_stochastic(cfg: Config, sts: list[Setting], s: EvalSet, fc, seed: int) -> list[dict]:
    """run_settings with a generator of the filter's own (seed, method), so a row never depends on which other methods
    ran; a setting with a random part (rotation, or PertObs) runs on REPEATS streams and its RMSE and spread are
    averaged per path and cycle (one unlucky stream can make a path lose the truth in a burst: measured on L96_1, the
    tuned EAKF with rotation gave 0.1158 and 0.1440 on two streams of the same 10 truths)."""
    m = sts[0].method
    out = []
    for st in sts:
        reps = REPEATS if (m == "pertobs" or st.rotate) else 1
        res = [run_settings(cfg, [st], s, fc, torch.Generator().manual_seed(seed * 100 + TUNABLE.index(m) * 10 + k))[0]
               for k in range(reps)]  # fmt: skip
        r = res[0]
        if reps > 1:
            r = r | {k: np.mean([x[k] for x in res], 0) for k in ("rmse", "spread")} | {"repeats": reps}
        out.append(r)
    return out


def run_adaptive(cfg: Config, m: str, s: EvalSet, fc, seed: int, rotate: bool) -> dict:
    """enkf.cycle.cycle_adaptive on set s (REPEATS streams with rotation, averaged path by path, as run_stochastic)."""
    seeds = [seed * 100 + 90 + k for k in range(REPEATS if rotate else 1)]
    return cycle_adaptive(cfg, m, s.xb[:, 0], s.y, s.truth, fc, seeds, rotate) | dict(method=m, param=1.0)


def run_methods(cfg: Config, methods, agents, s: EvalSet, tuned: dict, fc, gen, burn_in,
                run_agent=None, seed: int = 0) -> tuple[list, list]:  # fmt: skip
    """Every method on set s: each tunable filter at the config's inflation and at its tuned setting (tuned:
    {method: entry of enkf.tuned}; see run_stochastic), the other baselines, then the agents. Rows carry the setting
    and variant."""
    raws = []
    for m in methods:
        if m in TUNABLE:
            conf = Setting(m, inflation=cfg.inflation, radius=cfg.loc_radius if m == "letkf" else None)
            tset = Setting.from_dict(tuned[m]) if m in tuned else conf
            if m == "letkf" and tset.radius is None:
                tset = dataclasses.replace(tset, radius=cfg.loc_radius)
            todo = [conf] + ([tset] if tset != conf else [])
            if m == cfg.data_filter and s.enkf_seconds is not None:  # the set already holds this run: reuse it
                xa = s.xa  # (P, T, M, N)
                res = [dict(method=m, param=cfg.inflation, setting=conf, rmse=rmse(xa.mean(-2), s.truth).numpy(),
                            spread=spread(xa).numpy(), mean=xa[0].mean(-2).numpy(), seconds=s.enkf_seconds)]  # fmt: skip
                res += run_stochastic(cfg, todo[1:], s, fc, seed) if len(todo) > 1 else []
            else:
                res = run_stochastic(cfg, todo, s, fc, seed)
            res[0]["config_inflation"] = True
            res[0]["variant"] = "config" if len(res) > 1 else "config = tuned"
            if len(res) > 1:
                res[1]["variant"] = "tuned"
            if m in tuned:
                res[-1]["untracked"] = not tuned[m]["tracked"]
                res[-1]["edge"] = tuned[m]["edge"]
            raws += res
        else:
            raws += run_classical(cfg, m, [1.0], s, fc, gen, burn_in)
    for m in [m for m in adaptive_methods(cfg) if m in methods]:
        raws += [run_adaptive(cfg, m, s, fc, seed, rot) for rot in (False, True)]
    for ag in agents:
        raws.append(run_agent(ag, cfg, s, fc))
    ref = next(
        summarize(r, burn_in, None)["rmse"]
        for r in raws
        if r["method"] == cfg.data_filter and r.get("config_inflation")
    )
    rows = []
    for r in raws:
        row = summarize(r, burn_in, ref)
        row["config_inflation"], row["variant"] = r.get("config_inflation", False), r.get("variant")
        if r.get("setting") is not None and r["method"] in TUNABLE:
            row["setting"] = r["setting"].to_dict()
        for k in ("untracked", "edge"):
            if r.get(k):
                row[k] = r[k]
        rows.append(row)
    return raws, rows


def evaluate(cfg: Config, agents, methods, n_ens, paths, cycles, tune_paths, tune_cycles, seed, path0: bool,
             out: Path, progress=True, run_agent=None, nens_agents=None) -> dict:  # fmt: skip
    """The suite. `agents`: loaded agent dicts, run by `run_agent` (scripts/evaluate.py supplies both; the
    filter-only suite passes none); nens_agents: those of them run at the other ensemble sizes (None: all). Writes
    eval.md, eval.json and the figures under `out`; returns the report."""
    t_start = time.time()
    if agents and run_agent is None:
        raise ValueError("evaluate: agents given without run_agent (use scripts/evaluate.py)")
    if cfg.data_filter not in methods:
        methods = [*methods, cfg.data_filter]  # the reference of every ratio
    fc = make_forecaster(cfg, bucket=True)  # many batch sizes: a few compiles, not one per size
    gen = torch.Generator().manual_seed(seed)
    burn = min(cfg.burn_in, cycles // 2)
    sizes = sorted(set(n_ens) | {cfg.N_ens})
    md = [f"### {cfg.name}: benchmark on held-out data", "",
          f"System: {cfg.model}, N={cfg.N}, F={cfg.F:g}, obs every {cfg.obs_stride} point(s), R = {cfg.obs_noise_var:g} I, "
          f"{cfg.oda:g} time units per cycle; EnKF reference: {cfg.data_filter} at the config inflation "
          f"{cfg.inflation:g}. Time means over cycles {burn}..; the filters' spread controls (prior or posterior "
          f"inflation, RTPS, rotation, LETKF half-width) tuned on a separate tuning set ({tune_paths} paths x "
          f"{tune_cycles} cycles); a filter with a random part (rotation, PertObs) is the mean of {REPEATS} random "
          f"streams, path by path; every ratio to the best filter is to the lowest filter row of the same set.", ""]  # fmt: skip
    for ag in agents:
        prov = ag["provenance"] or {}
        md.append(f"- {ag['label']}: {ag['path']}, trained on {ag['cfg'].name} (N={ag['cfg'].N}, F={ag['cfg'].F:g}, "
                  f"N_ens={ag['cfg'].N_ens}), step {ag['step']}" + (f"; made by `{prov['command']}`" if prov.get("command") else ""))  # fmt: skip
    md.append("")
    report = dict(config=cfg.name, seed=seed, paths=paths, cycles=cycles, burn_in=burn, sets={}, tuned={},
                  tuned_settings={}, best={})  # fmt: skip
    nens_rows: dict[str, list] = {}
    figs = {}
    if path0 or (agents and sizes[0] < cfg.N_ens):  # path 0; training paths to choose a smaller size's gain radius on
        data0 = ensure_data(cfg, progress=progress) if path0 or not stored(cfg) else None  # generated if missing
    for M in sizes:
        cM = dataclasses.replace(cfg, N_ens=M)
        t0 = time.time()
        tuned = tuned_settings(cM, methods, tune_paths, tune_cycles, seed + 1, fc, gen, progress)
        report["tuned"][str(M)] = {m: Setting.from_dict(e).label() for m, e in tuned.items()}
        report["tuned_settings"][str(M)] = tuned
        sets = [heldout_set(cM, f"held-out set ({paths} paths)", paths, cycles, seed, fc, progress)]
        if M == cfg.N_ens and path0:
            sets.insert(0, path0_set(data0))
        for s in sets:
            agM = agents if M == cfg.N_ens or nens_agents is None else nens_agents
            raws, rows = run_methods(cM, methods, agM, s, tuned, fc, gen, burn, run_agent, seed)
            report["sets"][f"{s.name}, N_ens={M}"] = rows
            best = best_reference(rows)
            for r in rows:
                r["ratio_to_best"] = r["rmse"] / best["rmse"] if best and "rmse" in r else float("nan")
            if s.name.startswith("held-out") and best:
                report["best"][str(M)] = dict(label=label(best, cM), rmse=best["rmse"], setting=best.get("setting"))
            if M == cfg.N_ens:
                md += table(rows, cM, f"{s.name}, N_ens = {M}, {s.y.shape[1]} cycles")
            if s.name.startswith("held-out"):
                for r in rows:
                    if r["method"] not in TUNABLE:
                        nens_rows.setdefault(r["method"], []).append((M, r))
                        continue
                    # a config row whose inflation is also the tuned one continues both lines
                    for v in ("config", "tuned") if r["variant"] == "config = tuned" else (r["variant"],):
                        nens_rows.setdefault(f"{r['method']} ({v})", []).append((M, r))
            if M == cfg.N_ens and s is sets[0]:
                fig_set, fig_raws, fig_rows = s, raws, rows
        if progress:
            print(f"[evaluate] N_ens={M}: {time.time() - t0:.0f} s", file=sys.stderr)
    if len(sizes) > 1:
        f = lambda x: "–" if not math.isfinite(x) else f"{x:.3f}"  # noqa: E731
        md += ["#### Held-out set: analysis RMSE (ratio to the best filter at the same N_ens) vs ensemble size", "",
               "| method | " + " | ".join(f"N_ens={M}" for M in sizes) + " |", "|---|" + "---:|" * len(sizes)]  # fmt: skip
        for key, pts in nens_rows.items():
            d = dict(pts)
            cells = [("n/a" if "error" in d[M] else f"{f(d[M]['rmse'])} ({f(d[M]['ratio_to_best'])})") if M in d else "–"
                     for M in sizes]  # fmt: skip
            md.append(f"| {key} | " + " | ".join(cells) + " |")
        md.append("")
        md.append(
            "Best filter per N_ens (held-out): "
            + "; ".join(f"{M}: {report['best'][str(M)]['label']}" for M in sizes if str(M) in report["best"])
        )
        md.append("")
    figs = figures(cfg, fig_set, fig_raws, fig_rows, nens_rows, out)
    md.append("Figures: " + ", ".join(Path(p).name for p in figs.values()))
    report["seconds"] = round(time.time() - t_start, 1)
    md.append(f"\nMade {time.strftime('%Y-%m-%d')} in {report['seconds']:.0f} s.")
    io.write_text(out / "eval.md", "\n".join(md) + "\n")
    io.write_json(out / "eval.json", report)
    report["markdown"], report["figures"] = str(out / "eval.md"), figs
    return report


def _ints(s: str, flag: str) -> list[int]:
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"command line: {flag} '{s}' must be comma-separated integers") from None
    if any(x < 2 or x > 4096 for x in v):
        raise ConfigError(f"command line: {flag} values must be in [2, 4096], got '{s}'")
    return v


def main(argv=None, prog: str = "python -m enkf.evaluate", load_agent=None, run_agent=None) -> int:
    """The command line of the suite. Without load_agent/run_agent (python -m enkf.evaluate) it runs the
    filters only and refuses --checkpoint; scripts/evaluate.py passes both and runs agents too."""
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="agent checkpoint (repeatable; only with scripts/evaluate.py)")  # fmt: skip
    ap.add_argument("--methods", default="free_run,obs_only,nudging,pertobs,eakf,etkf,letkf",
                    help=f"comma list of {', '.join(CLASSICAL)}")  # fmt: skip
    ap.add_argument("--n-ens", default="5,10,20,40", help="ensemble sizes for the RMSE-vs-N_ens sweep ('' = none)")
    ap.add_argument("--paths", type=int, default=10, help="held-out paths (own seed)")
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--tune-paths", type=int, default=4, help="tuning paths (own seed)")
    ap.add_argument("--tune-cycles", type=int, default=500)
    ap.add_argument("--seed", type=int, default=None, help="held-out seed (default: data_seed + 104729)")
    ap.add_argument("--no-path0", action="store_true", help="skip path 0 of the config's data (no data needed)")
    ap.add_argument("--out", default="", help="output folder (default logs/<config>/evaluate)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        methods = [m.strip() for m in a.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in CLASSICAL]
        if bad:
            raise ConfigError(
                f"command line: --methods: unknown method(s) {', '.join(bad)} (allowed: {', '.join(CLASSICAL)})"
            )
        n_ens = _ints(a.n_ens, "--n-ens")
        if a.checkpoint and load_agent is None:
            raise ConfigError("command line: --checkpoint: agents are run by the script-level tool: "
                              f"python scripts/evaluate.py --config {a.config} --checkpoint {a.checkpoint[0]}")  # fmt: skip
        if a.paths < 1 or a.tune_paths < 1 or a.cycles < 2 or a.tune_cycles < 2:
            raise ConfigError("command line: need --paths >= 1, --tune-paths >= 1, --cycles >= 2, --tune-cycles >= 2")
        if a.threads:
            torch.set_num_threads(a.threads)
        out = Path(a.out) if a.out else LOGS_ROOT / cfg.name / "evaluate"
        seed = cfg.data_seed + 104729 if a.seed is None else a.seed
        agents = [load_agent(Path(c)) for c in a.checkpoint]
        rep = evaluate(cfg, agents, methods, n_ens, a.paths, a.cycles, a.tune_paths, a.tune_cycles, seed,
                       not a.no_path0, out, progress=not a.quiet, run_agent=run_agent)  # fmt: skip
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(Path(rep["markdown"]).read_text(), file=sys.stderr)
    print(json.dumps({"markdown": rep["markdown"], "figures": rep["figures"], "seconds": rep["seconds"],
                      "tuned": rep["tuned"]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
