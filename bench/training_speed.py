"""Benchmark: where a training iteration's time goes, for variants of the training flags, run side by side.

    python bench/training_speed.py --config configs/L96_sparse.py [--iterations 20] [-- "--no-rollout-pool" ""]

Each variant (a string of flags; by default `--no-rollout-pool` and the defaults) is `ppo_lstm_enkf.py --config C
--seed 1 --torch-threads 1 --stop-after K <flags>` in its own process, all variants at once (one core each: start as
many as the machine has cores, and nothing else beside them), so they share the conditions. Per variant it prints
env steps per second and the mean seconds per iteration of the rollout (of which the environment) and of the PPO
update, from the run's TensorBoard tags perf/rollout_s, perf/env_s and perf/update_s (the first two iterations left
out: compilation and warm-up). The runs are deleted afterwards.
Last line: JSON, one record per variant.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from configs.defaults import LOGS_ROOT, load_config  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--config", default="configs/L96_sparse.py")
ap.add_argument("--iterations", type=int, default=20, help="PPO iterations per variant (>= 4)")
ap.add_argument(
    "variants", nargs="*", default=["--no-rollout-pool", ""], help='flag strings after --; "" = the defaults'
)
a = ap.parse_args()
if a.iterations < 4:
    ap.error(f"--iterations must be >= 4 (the first two are left out), got {a.iterations}")
name = load_config(a.config).name
stamp = time.strftime("%Y%m%d-%H%M%S")
runs = [f"bench_speed_{i}_{stamp}" for i in range(len(a.variants))]
procs = [
    subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "ppo_lstm_enkf.py"),
            "--config",
            a.config,
            "--seed",
            "1",
            "--torch-threads",
            "1",
            "--stop-after",
            str(a.iterations),
            "--run-name",
            run,
            "--no-progress",
            *v.split(),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    for v, run in zip(a.variants, runs, strict=True)
]
print(f"[speed] {name}: {len(procs)} variants x {a.iterations} iterations, side by side ...", file=sys.stderr)
outs = [p.communicate() for p in procs]

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

res = []
for v, run, p, (out, err) in zip(a.variants, runs, procs, outs, strict=True):
    folder = LOGS_ROOT / name / "runs" / run
    if p.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        sys.exit(f"error: variant {v!r} failed (exit {p.returncode}): {err.strip().splitlines()[-1:]}")
    ea = EventAccumulator(str(folder)).Reload()
    final = json.loads(out.strip().splitlines()[-1])
    m = {t: [e.value for e in ea.Scalars(f"perf/{t}")[2:]] for t in ("rollout_s", "env_s", "update_s")}
    res.append(
        dict(variant=v or "(defaults)", sps=final["sps"], **{t: round(sum(x) / len(x), 3) for t, x in m.items()})
    )
    shutil.rmtree(folder, ignore_errors=True)
print(f"| {name} | steps/s | rollout s/it | (env) | update s/it |\n|---|---:|---:|---:|---:|")
for r in res:
    print(f"| {r['variant']} | {r['sps']} | {r['rollout_s']:.2f} | {r['env_s']:.2f} | {r['update_s']:.2f} |")
print(json.dumps(dict(config=name, iterations=a.iterations, variants=res)))
