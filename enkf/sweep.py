"""Filter x inflation sweep on held-out start points (spec §3, §5 in docs/design.md).

    python -m enkf.sweep --config configs/L96_1.py --filters eakf,pertobs,letkf \
        --inflations 1.0,1.03,1.5,5.0 --cycles 1000 --paths 10

For each filter and inflation: time-mean analysis RMSE (ensemble mean vs truth, after --burn-in cycles),
forecast RMSE and analysis spread, averaged over --paths independent start points that were never used for
training data (their own seed; each spun up for --spinup-time model time units from a random state near 0, or
for Kuramoto-Sivashinsky from its usual start state, see held_out_truth).
Free run and observation-only are added as baselines. All runs of one filter are batched together
(paths x inflations). Prints a Markdown table, the RMSE-optimal inflation per filter, and, last, one JSON line
{"results": [...]}; writes both to logs/<config>/sweep/ as well.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from configs.defaults import LOGS_ROOT, ConfigError, load_config
from enkf import io
from enkf.cycle import assimilate, held_out_truth, make_forecaster, obs_setup, time_mean
from enkf.filters import make_analysis


def run_sweep(cfg, filters, inflations, cycles, paths, burn_in, spinup_time=100.0, seed=None, progress=True):
    seed = cfg.data_seed + 7919 if seed is None else seed
    fc = make_forecaster(cfg)
    x0, truth, y, gen = held_out_truth(cfg, paths, cycles, spinup_time, seed, fc, progress)
    obs, r = obs_setup(cfg)
    E0 = x0.unsqueeze(1) + cfg.noise_strength * torch.randn(paths, cfg.N_ens, cfg.N, generator=gen)  # (P, M, N)
    periodic = cfg.periodic
    results = []
    runs = [(f, inflations) for f in filters] + [("free_run", [1.0]), ("obs_only", [1.0])]
    for name, infls in runs:
        t0 = time.time()
        n_inf = len(infls)
        infl = torch.tensor(infls, dtype=torch.float32).repeat_interleave(paths)  # (n_inf*P,)
        analysis = make_analysis(name, obs, r, infl, cfg.loc_radius, periodic, generator=gen)
        res = assimilate(E0.repeat(n_inf, 1, 1), y.repeat(n_inf, 1, 1), truth.repeat(n_inf, 1, 1), fc, analysis,
                         progress=progress, desc=name)  # fmt: skip
        secs = time.time() - t0
        a = time_mean(res["rmse_a"], burn_in).reshape(n_inf, paths)
        f = time_mean(res["rmse_f"], burn_in).reshape(n_inf, paths)
        s = time_mean(res["spread_a"], burn_in).reshape(n_inf, paths)
        for i, v in enumerate(infls):
            row = dict(filter=name, inflation=None if name in ("free_run", "obs_only") else v,
                       analysis_rmse=_num(a[i].mean()), analysis_rmse_std=_num(a[i].std()) if paths > 1 else 0.0,
                       forecast_rmse=_num(f[i].mean()), spread=_num(s[i].mean()),
                       diverged_paths=int((~torch.isfinite(a[i]) | (a[i] > 100)).sum()),
                       seconds_per_cycle=round(secs / cycles / n_inf, 6))  # fmt: skip
            results.append(row)
    return results


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def best_by_filter(results) -> dict:
    best = {}
    for r in results:
        if r["inflation"] is None or r["analysis_rmse"] is None or r["diverged_paths"]:
            continue
        if r["filter"] not in best or r["analysis_rmse"] < best[r["filter"]]["analysis_rmse"]:
            best[r["filter"]] = r
    return best


def markdown(cfg, results, cycles, paths, burn_in) -> str:
    f = lambda x: "diverged" if x is None else f"{x:.4f}"  # noqa: E731
    lines = [
        f"### {cfg.name}: filters x inflation ({paths} held-out paths x {cycles} cycles, burn-in {burn_in}, "
        f"N_ens {cfg.N_ens})",
        "",
        "| filter | inflation | analysis RMSE | ± std (paths) | forecast RMSE | spread | spread/RMSE |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = (r["spread"] / r["analysis_rmse"]) if r["analysis_rmse"] and r["spread"] is not None else None
        infl = "–" if r["inflation"] is None else f"{r['inflation']:g}"
        lines.append(f"| {r['filter']} | {infl} | {f(r['analysis_rmse'])} | {f(r['analysis_rmse_std'])} | "
                     f"{f(r['forecast_rmse'])} | {f(r['spread'])} | {'–' if ratio is None else f'{ratio:.2f}'} |")  # fmt: skip
    lines.append("")
    for name, r in best_by_filter(results).items():
        lines.append(f"- best inflation for {name}: **{r['inflation']:g}** (analysis RMSE {r['analysis_rmse']:.4f})")
    return "\n".join(lines) + "\n"


def _floats(s: str, flag: str) -> list[float]:
    try:
        v = [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"command line: {flag} '{s}' must be comma-separated numbers") from None
    if not v or any(not (1.0 <= x <= 100.0) for x in v):
        raise ConfigError(f"command line: {flag} values must be in [1, 100], got '{s}'")
    return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m enkf.sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--filters", default="eakf,pertobs,letkf", help="comma list of eakf, etkf, pertobs, letkf")
    ap.add_argument("--inflations", default="1.0,1.03,1.5,5.0")
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--paths", type=int, default=10)
    ap.add_argument("--burn-in", type=int, default=None, help="default: the config's burn_in")
    ap.add_argument("--spinup-time", type=float, default=100.0, help="model time units of spin-up per path")
    ap.add_argument("--seed", type=int, default=None, help="held-out seed (default: config seed + 7919)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, {"compile": False} if args.no_compile else None)
        filters = [f.strip() for f in args.filters.split(",") if f.strip()]
        for f in filters:
            if f not in ("eakf", "etkf", "pertobs", "letkf"):
                raise ConfigError(
                    f"command line: --filters: unknown filter '{f}' (allowed: eakf, etkf, pertobs, letkf)"
                )
        infl = _floats(args.inflations, "--inflations")
        burn_in = cfg.burn_in if args.burn_in is None else args.burn_in
        if args.cycles < 2 or args.paths < 1 or not (0 <= burn_in < args.cycles):
            raise ConfigError("command line: need --cycles >= 2, --paths >= 1 and 0 <= --burn-in < --cycles")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = run_sweep(cfg, filters, infl, args.cycles, args.paths, burn_in, args.spinup_time, args.seed,
                        progress=not args.quiet)  # fmt: skip
    md = markdown(cfg, results, args.cycles, args.paths, burn_in)
    out = LOGS_ROOT / cfg.name / "sweep"
    io.write_text(out / "sweep.md", md)
    payload = {"config": cfg.name, "cycles": args.cycles, "paths": args.paths, "burn_in": burn_in,
               "results": results}  # fmt: skip
    io.write_json(out / "sweep.json", payload)
    print(md)
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
