"""One table for all configs (`make eval-all`): every shipped agent on its config's held-out set against the best
tuned classical filter, as a mean over training seeds, with the RMSE-vs-N_ens ratios of the shipped agent.

    python scripts/eval_all.py [--configs L96_1,L96_2,L96_3,L63,L96_sparse,KS] [--n-ens 5,10,20,40] [--threads 1]
    python scripts/eval_all.py --configs L96_sparse --update     # re-make one row, keep the others of the table

For each config: the seed agents pretrained/seeds/<config>_s<seed>.pt (else the shipped pretrained/<config>.pt
alone, labelled "1 seed"), the tuned EAKF, ETKF, LETKF and PertObs and the untuned adaptive-RTPS filters on the
held-out set of `make eval` (10 truths x 1000 cycles, N_ens of the config; tuned values from configs/tuned/); then
the shipped agent (a copy of one seed: that seed's row serves at the config's N_ens) and the filters at the other
ensemble sizes (zero-shot in N_ens), all in one run of enkf.evaluate. The best filter is the filter row with the
lowest held-out RMSE that kept every path. Writes docs/eval_all.md (or --out) and a JSON beside it; per-config
reports under logs/<config>/eval_all/. With --update, only --configs are evaluated and their rows replace those of
the existing table (its JSON), which must have been made with the same --n-ens, --paths and --cycles; every row keeps
the date and command that made it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from configs.defaults import LOGS_ROOT, ConfigError, load_config  # noqa: E402
from enkf import evaluate as E  # noqa: E402
from enkf import io  # noqa: E402
from enkf.data import DataError  # noqa: E402
from enkf.tuned import METHODS  # noqa: E402
from enkf.tuned import read as read_tuned  # noqa: E402
from scripts.evaluate import load_agent, run_agent  # noqa: E402

CONFIGS = ("L96_1", "L96_2", "L96_3", "L63", "L96_sparse", "KS")


def agents_of(name: str, pretrained: Path) -> tuple[list[Path], Path | None]:
    seeds = sorted((pretrained / "seeds").glob(f"{name}_s*.pt"))
    shipped = pretrained / f"{name}.pt"
    return seeds, (shipped if shipped.is_file() else None)


def same_agent(a: dict, b: dict) -> bool:
    """Whether two loaded agents (scripts/evaluate.py load_agent) have the same weights, config and normalization."""
    wa, wb = a["weights"], b["weights"]
    return (a["cfg"] == b["cfg"] and a["norm"].to_dict() == b["norm"].to_dict() and wa.keys() == wb.keys()
            and all(torch.equal(wa[k], wb[k]) for k in wa))  # fmt: skip


def summarize_config(name: str, n_ens: list[int], progress: bool, paths=10, cycles=1000, configs: Path = ROOT / "configs",
                     pretrained: Path = ROOT / "pretrained") -> dict:  # fmt: skip
    cfg = load_config(configs / f"{name}.py")
    seeds, shipped = agents_of(name, pretrained)
    out = LOGS_ROOT / name / "eval_all"
    agents = [load_agent(p) for p in seeds]
    # the shipped agent is a copy of its median seed (the same weights and config; its provenance may also carry the
    # zero-shot choices of scripts/export_pretrained.py): that seed's run serves at N_ens of the config (run once)
    ship = load_agent(shipped) if shipped else None
    twin = next((a for a in agents if ship and same_agent(a, ship)), None)
    if twin is not None:
        ship = dict(
            twin, provenance=ship["provenance"], path=ship["path"]
        )  # the seed's row; the shipped file's choices
    elif ship is not None:
        agents.append(ship)  # no seed files (the shipped agent alone, "1 seed"), or a shipped agent of its own
    # the other ensemble sizes where the committed tuned file has every filter (tuning them here would take minutes
    # per size; `make tune-filters CONFIG=... NENS=...` adds them); the others show "–" and are listed as not tuned
    on_file = read_tuned(cfg)
    sizes = [M for M in n_ens if M != cfg.N_ens and all(m in on_file.get(str(M), {}) for m in METHODS)]
    seed = cfg.data_seed + 104729
    held = f"held-out set ({paths} paths)"
    rep = E.evaluate(cfg, agents, list(METHODS), sizes if ship else [], paths, cycles, E.TUNE_PATHS, E.TUNE_CYCLES,
                     seed, False, out, progress=progress, run_agent=run_agent, nens_agents=[ship] if ship else [])  # fmt: skip
    rows = rep["sets"][f"{held}, N_ens={cfg.N_ens}"]
    best = E.best_reference(rows)
    grid = E.best_reference([r for r in rows if not str(r.get("variant", "")).startswith("adaptive")])  # tuned/config
    counted = {a["label"] for a in agents[: len(seeds) or len(agents)]}  # the seeds (else the shipped agent alone)
    ag = [r for r in rows if r["method"] in counted]
    res = {"config": name, "N_ens": cfg.N_ens, "seeds": len(ag), "agents": [a["method"] for a in ag],
           "best_filter": E.label(best, cfg) if best else None, "best_filter_rmse": best["rmse"] if best else None}  # fmt: skip
    if ag:
        rm = np.array([a["rmse"] for a in ag])
        res.update(agent_rmse=float(np.mean(rm)), agent_rmse_std=float(np.std(rm)) if len(rm) > 1 else None,
                   per_seed=[float(x) for x in rm], ratio=float(np.mean(rm)) / best["rmse"] if best else None,
                   best_grid_filter=E.label(grid, cfg) if grid else None, best_grid_rmse=grid["rmse"] if grid else None,
                   ratio_grid=float(np.mean(rm)) / grid["rmse"] if grid else None,
                   spread_over_rmse=float(np.mean([a["spread_over_rmse"] for a in ag])),
                   spread_over_rmse_min=float(np.min([a["spread_over_rmse"] for a in ag])),
                   paths_surviving=f"{min(a['paths_survived'] for a in ag)}/{ag[0]['paths']}")  # fmt: skip
    res["not_tuned"] = [M for M in n_ens if M != cfg.N_ens and M not in sizes]
    res["nens_ratio"] = {}
    for M in sorted(set(sizes) | {cfg.N_ens}) if ship and sizes else []:
        a = [r for r in rep["sets"].get(f"{held}, N_ens={M}", []) if r["method"] == ship["label"]]
        if a and "rmse" in a[0]:
            res["nens_ratio"][str(M)] = a[0]["ratio_to_best"]
    return res


def table(results: list[dict], sizes: list[int]) -> list[str]:
    f = lambda x, d=3: "–" if x is None or not math.isfinite(x) else f"{x:.{d}f}"  # noqa: E731
    out = ["| config | agent RMSE (mean ± std over seeds) | seeds | best filter (held-out) | its RMSE | ratio | "
           "ratio to the best grid-tuned filter | spread/RMSE (mean; min) | paths surviving (worst seed) | "
           + " | ".join(f"ratio N_ens {M}" for M in sizes) + " |", "|---|---|---:|---|---:|---:|---:|---:|---:|"
           + "---:|" * len(sizes)]  # fmt: skip
    for r in results:
        if "error" in r:
            out.append(f"| {r['config']} | n/a: {r['error']} |" + " |" * (8 + len(sizes)))
            continue
        if "agent_rmse" not in r:
            out.append(f"| {r['config']} | no shipped agent | 0 | {r['best_filter']} | {f(r['best_filter_rmse'], 4)} |"
                       + " |" * (4 + len(sizes)))  # fmt: skip
            continue
        sd = f" ± {f(r['agent_rmse_std'], 4)}" if r["agent_rmse_std"] is not None else " (1 seed)"
        cells = [f(r["nens_ratio"].get(str(M))) for M in sizes]
        out.append(f"| {r['config']} | {f(r['agent_rmse'], 4)}{sd} | {r['seeds']} | {r['best_filter']} | "
                   f"{f(r['best_filter_rmse'], 4)} | **{f(r['ratio'])}** | {f(r.get('ratio_grid'))} | "
                   f"{f(r['spread_over_rmse'], 2)}; "
                   f"{f(r['spread_over_rmse_min'], 2)} | {r['paths_surviving']} | " + " | ".join(cells) + " |")  # fmt: skip
    return out


def _one(name: str, job: tuple, threads: int = 0) -> dict:
    """summarize_config for one config, timed; a config or data error becomes the row's error."""
    if threads:
        torch.set_num_threads(threads)
    # a worker process runs several configs: each starts with an empty compile cache, as in a process of its own
    # (dynamo's recompile limit is per function and process; the forecasts of two configs share one function)
    torch._dynamo.reset()
    t1 = time.time()
    try:
        r = summarize_config(name, *job)
    except (ConfigError, DataError) as e:
        r = {"config": name, "error": str(e)}
    r["seconds"] = round(time.time() - t1, 1)
    print(f"[eval-all] {name}: {r['seconds']:.0f} s", file=sys.stderr)
    return r


def _state_size(path: Path) -> int:
    try:
        return load_config(path).N
    except ConfigError:  # reported in the config's row by _one
        return 0


def _last_seconds(out: Path) -> dict[str, float]:
    """{config: seconds its row took} from the table's JSON beside out (empty if there is none or it is unreadable)."""
    try:
        return {r["config"]: float(r["seconds"]) for r in json.loads(out.with_suffix(".json").read_text())["results"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _kept_rows(ap, a, sizes: list[int], names: list[str]) -> list[dict]:
    """--update: the rows of the existing table's JSON that this run does not re-make, after checking that the table
    was made with the same ensemble sizes, paths and cycles (a table of older make: read from its recorded command)."""
    path = Path(a.out).with_suffix(".json")
    try:
        old = json.loads(path.read_text())
        rows = old["results"]
        if "n_ens" in old:
            prev = (old["n_ens"], old["paths"], old["cycles"])
        else:
            o = ap.parse_args(old["command"].split()[2:])
            prev = (E._ints(o.n_ens, "--n-ens"), o.paths, o.cycles)
    except (OSError, ValueError, KeyError, TypeError, SystemExit) as e:
        raise ConfigError(f"command line: --update: {path} is not a table of eval_all to update ({e!r}); "
                          "run without --update to make a new one") from e  # fmt: skip
    if prev != (sizes, a.paths, a.cycles):
        raise ConfigError(f"command line: --update: {path} was made with --n-ens {','.join(map(str, prev[0]))} "
                          f"--paths {prev[1]} --cycles {prev[2]}; this run asks for --n-ens {','.join(map(str, sizes))} "
                          f"--paths {a.paths} --cycles {a.cycles} (use the same, or a new --out)")  # fmt: skip
    when = old.get("made") or "date not recorded"
    return [{"made": when, "command": old["command"].strip(), "run_minutes": old.get("seconds", 0) / 60, **r}
            for r in rows if r["config"] not in names]  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/eval_all.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--n-ens", default="5,10,20,40", help="ensemble sizes of the shipped agent's ratio columns")
    ap.add_argument("--out", default=str(ROOT / "docs" / "eval_all.md"))
    ap.add_argument("--paths", type=int, default=10, help="held-out truths per config")
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--configs-dir", default=str(ROOT / "configs"))
    ap.add_argument("--pretrained-dir", default=str(ROOT / "pretrained"))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--jobs", type=int, default=1, help="configs evaluated at once, one process (and core) each")
    ap.add_argument("--update", action="store_true", help="re-make only the rows of --configs in the existing --out "
                    "table (same --n-ens, --paths, --cycles); the other rows are kept with their dates")  # fmt: skip
    a = ap.parse_args(argv)
    try:
        names = [c.strip() for c in a.configs.split(",") if c.strip()]
        for n in names:
            if not (Path(a.configs_dir) / f"{n}.py").is_file():
                raise ConfigError(f"command line: --configs: no config file {Path(a.configs_dir) / n}.py")
        sizes = E._ints(a.n_ens, "--n-ens")
        kept = _kept_rows(ap, a, sizes, names) if a.update else []
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    job = (sizes, not a.quiet and a.jobs == 1, a.paths, a.cycles, Path(a.configs_dir), Path(a.pretrained_dir))
    if a.jobs > 1:  # a.jobs worker processes, one config at a time each (on one torch thread)
        from concurrent.futures import ProcessPoolExecutor

        # the longest first, so the last config to start is a short one: by the row's time in the last table, else
        # by state size (KS, N = 128, takes longest)
        size = {n: _state_size(Path(a.configs_dir) / f"{n}.py") for n in names}
        last = _last_seconds(Path(a.out))
        with ProcessPoolExecutor(a.jobs) as ex:
            futs = {n: ex.submit(_one, n, job, 1) for n in sorted(names, key=lambda n: (-last.get(n, 0), -size[n]))}
            results = [futs[n].result() for n in names]
    else:
        results = [_one(n, job) for n in names]
    secs = time.time() - t0
    cmd = ("python scripts/eval_all.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    now = time.strftime("%Y-%m-%d %H:%M")
    for r in results:  # each row's provenance (an --update keeps the other rows' own)
        r.update(made=now, command=cmd, run_minutes=round(secs / 60, 1))
    partial = set(names) < set(CONFIGS) and Path(a.out).resolve() == (ROOT / "docs" / "eval_all.md").resolve()
    if partial and not a.update:
        print(f"[eval-all] writing only {', '.join(names)} to {a.out}; --update keeps the other rows", file=sys.stderr)
    order = {n: i for i, n in enumerate(CONFIGS)}
    results = sorted(kept + results, key=lambda r: order.get(r["config"], len(order))) if kept else results
    runs: dict[str, list[str]] = {}  # "date with `command` in N min" -> the configs that run made
    for r in results:
        runs.setdefault(f"{r['made']} with `{r['command']}` in {r['run_minutes']:.1f} min", []).append(r["config"])
    made = "; ".join(f"{', '.join(c)}: {k}" for k, c in runs.items()) if len(runs) > 1 else next(iter(runs))
    md = ["# All configs: the shipped agents against the best classical filter (held-out sets)", "",
          f"Made {made}. Held-out set of each config:"
          f" {a.paths} truths x {a.cycles} cycles, time means over cycles 100..999 (L96_sparse, L63: their burn-in). Ratio: agent "
          "(mean over seeds) / best filter, the lowest RMSE of the grid-tuned EAKF/ETKF/LETKF/PertObs, the same at the "
          "config's setting and the untuned adaptive-RTPS filters (ETKF; LETKF where the config's data filter is the "
          "LETKF); ratio to the best grid-tuned filter: the same without the adaptive-RTPS rows (the yardstick before "
          "2026-12-06); the N_ens columns run the shipped agent zero-shot at that ensemble "
          "size against the best filter of the same size.", "", *table(results, sizes), ""]  # fmt: skip
    md += [f"- {r['config']}: no committed tuned filters at N_ens {', '.join(map(str, r['not_tuned']))} "
           f"(`make tune-filters CONFIG=configs/{r['config']}.py NENS=...`): those columns are left out."
           for r in results if r.get("not_tuned")]  # fmt: skip
    io.write_text(Path(a.out), "\n".join(md) + "\n")
    io.write_json(Path(a.out).with_suffix(".json"), {"results": results, "seconds": round(secs, 1), "command": cmd,
                                                     "made": now, "n_ens": sizes, "paths": a.paths,
                                                     "cycles": a.cycles})  # fmt: skip
    print("\n".join(md), file=sys.stderr)
    print(json.dumps({"out": a.out, "seconds": round(secs, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
