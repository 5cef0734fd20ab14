"""Benchmark: full data generation for a config (1M-step spin-up + 100 paths x 1000 cycles by default).

    python bench/data_generation.py --config configs/L96_1.py [--threads 1] [--out /tmp/bench_data] [--no-compile]

Runs `enkf.data` in a fresh process (so torch.compile's cost is included, as a user would see it) into a
scratch folder, and prints the wall time and the generator's own time per phase: spin-up (the fused C loop,
or torch where no C compiler exists), compile (torch.compile warm-up of the forecaster for both batch shapes),
paths (truth + EnKF cycles), write (paths.npz, spinup.npz), verification (normalization statistics and the
verification report) and plots. Target (issue 12): L96_1 in <= 120 s wall on one core of the 2-core project
machine. Last line: JSON {"config", "wall_s", "seconds": {phase: s}, "analysis_rmse", "forecast_rmse"}.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("spinup", "compile", "paths", "write", "verification", "plots")

ap = argparse.ArgumentParser()
ap.add_argument("--config", default="configs/L96_1.py")
ap.add_argument("--out", default=None, help="output folder (default: a temporary folder, removed afterwards)")
ap.add_argument("--no-compile", action="store_true", help="run the forecast eagerly")
ap.add_argument(
    "--threads", type=int, default=0, help="torch threads of the generator (1 = one core; 0 = torch's default)"
)
a = ap.parse_args()
out = a.out or tempfile.mkdtemp(prefix="bench_data_")
cmd = [sys.executable, "-m", "enkf.data", "--config", a.config, "--out", out, "--force", "--quiet"]
t0 = time.time()
env = {**os.environ, **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {})}  # torch reads it at start
p = subprocess.run(cmd + (["--no-compile"] if a.no_compile else []), cwd=ROOT, env=env, capture_output=True, text=True)
wall = time.time() - t0
if not a.out:
    shutil.rmtree(out, ignore_errors=True)
if p.returncode:
    print(p.stderr, file=sys.stderr)
    sys.exit(p.returncode)
s = json.loads(p.stdout.strip().splitlines()[-1])
secs = {k: s.get(f"seconds_{k}") for k in PHASES}
print(f"{a.config}: {s['paths']} paths x {s['cycles']} cycles, wall {wall:.1f} s (generator {s['seconds']:.1f} s); "
      f"analysis RMSE {s['analysis_rmse']:.4f} vs forecast {s['forecast_rmse']:.4f}")  # fmt: skip
for k, v in secs.items():
    print(f"  {k:<13} {v:7.2f} s")
print(json.dumps(dict(config=a.config, wall_s=round(wall, 1), seconds=secs, analysis_rmse=s["analysis_rmse"],
                      forecast_rmse=s["forecast_rmse"])))  # fmt: skip
