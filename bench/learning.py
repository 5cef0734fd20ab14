"""Benchmark: does the agent fit? Train for a wall-clock budget, then evaluate on held-out path 0.

    python bench/learning.py --config configs/L96_1.py --minutes 30 --seed 1 [--threads 1] [-- extra flags]

Runs `ppo_lstm_enkf.py` with `--max-minutes M` (the learning rate anneals over the budget), a large step
limit, and the given seed; the final evaluation runs the deterministic policy over all cycles of path 0.
Extra flags after `--` go to the training script (e.g. `-- --reward-target truth`).
Last line: JSON with agent_rmse, enkf_rmse, ratio, best_filter (the best tuned filter: lowest tuning-set score over
EAKF, ETKF, LETKF and PertObs with their tuned spread controls, configs/tuned/; or, since 2026-12-06, the untuned
adaptive-RTPS filter of `make eval` where that is lower on path 0), best_filter_rmse (it on the same path),
ratio_to_best, obs_only_rmse, nudging_rmse, cycles_survived,
spread_over_rmse, steps, sps, run.
Targets (issue 3, L96_1, 30 min): survives 1000/1000; ratio <= 1.00 (stretch 0.90); spread/RMSE in
[0.7, 1.3]; clearly better than observation-only and the best constant-gain nudging.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import ppo_lstm_enkf as P  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--config", default="configs/L96_1.py")
ap.add_argument("--minutes", type=float, default=30.0)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = one core per run)")
ap.add_argument("--run-name", default="")
ap.add_argument("extra", nargs="*", help="flags passed to ppo_lstm_enkf.py (after --)")
a = ap.parse_args()
name = a.run_name or f"bench_learning_{Path(a.config).stem}_s{a.seed}_{a.minutes:g}min_{time.strftime('%Y%m%d-%H%M%S')}"
argv = ["--config", a.config, "--seed", str(a.seed), "--max-minutes", str(a.minutes), "--torch-threads",
        str(a.threads), "--total-timesteps", str(10**10), "--run-name", name, *a.extra]  # fmt: skip
cfg, args = P.parse_args(argv)
out = P.train(cfg, args)
keys = ("agent_rmse", "enkf_rmse", "ratio", "best_filter", "best_filter_rmse", "ratio_to_best", "obs_only_rmse", "nudging_rmse", "cycles_survived", "spread_over_rmse",
        "agent_spread", "steps", "sps", "seconds", "run")  # fmt: skip
res = {k: out.get(k) for k in keys}
res["best"] = (
    {k: out["best"].get(k) for k in ("agent_rmse", "ratio", "ratio_to_best", "spread_over_rmse", "step")}
    if out.get("best")
    else None
)
res["config"], res["seed"], res["minutes"], res["extra"] = a.config, a.seed, a.minutes, a.extra
print(json.dumps(res, default=float))
