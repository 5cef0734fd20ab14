"""Benchmark: environment cycles per second (forecast of the agent's analysis + online-EAKF reward +
features), at num_envs 1, 16, 64, 256, against a naive reference in the same run: a per-member Python loop
that integrates one member at a time with its own model object (numpy RK4), as the user's old solver did.

    python bench/env_throughput.py [--config configs/L96_1.py] [--threads 1] [--seconds 5]

Last line: JSON {"best_cycles_per_s", "best_num_envs", "naive_cycles_per_s", "ratio", "by_num_envs"}.
Targets (issue 3): >= 2000 env cycles/s at the best num_envs and >= 100x the naive reference.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from configs.defaults import load_config  # noqa: E402
from enkf.data import ensure_data  # noqa: E402
from enkf.env import EnKFVecEnv  # noqa: E402
from models import lorenz96  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--config", default="configs/L96_1.py")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per setting")
a = ap.parse_args()
torch.set_num_threads(a.threads)
cfg = load_config(a.config)
data = ensure_data(cfg)

by = {}
for B in (1, 16, 64, 256):
    env = EnKFVecEnv(cfg, data, B, seed=0)
    env.set_paths(range(1, cfg.num_paths))
    env.reset()
    act = torch.zeros(B, env.M, env.N)
    for _ in range(3):  # compile + warm-up
        env.step(act, act)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < a.seconds:
        env.step(act, act)
        n += 1
    by[B] = n * B / (time.perf_counter() - t0)
    print(f"num_envs {B:4d}: {by[B]:9.1f} env cycles/s", flush=True)


class NaiveMember:
    """One member, its own model object, numpy RK4 step by step (the user's old solver's structure)."""

    def __init__(self, x, F, dt, steps):
        self.x, self.F, self.dt, self.steps = x.copy(), F, dt, steps

    def forecast(self):
        for _ in range(self.steps):
            self.x = lorenz96.rk4_step(self.x, self.dt, self.F)


xb0 = data.xb[1, 0].double().numpy()
members = [NaiveMember(xb0[i], cfg.F, cfg.dtda, cfg.steps_per_cycle) for i in range(cfg.N_ens)]
truth = NaiveMember(data.truth[1, 0].double().numpy(), cfg.F, cfg.dtda, cfg.steps_per_cycle)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < a.seconds or n < 1:
    for m in members + [truth]:
        m.forecast()
    n += 1
naive = n / (time.perf_counter() - t0)
print(f"naive per-member loop: {naive:.2f} cycles/s (forecast only, no analysis)")
best_B = max(by, key=by.get)
print(json.dumps({"best_cycles_per_s": round(by[best_B], 1), "best_num_envs": best_B, "naive_cycles_per_s": round(naive, 3),
                  "ratio": round(by[best_B] / naive, 1), "by_num_envs": {str(k): round(v, 1) for k, v in by.items()},
                  "threads": a.threads, "config": a.config}))  # fmt: skip
