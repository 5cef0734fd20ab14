"""Benchmark: full data generation for a config (1M-step spin-up + 100 paths x 1000 cycles by default).

    python bench/data_generation.py --config configs/L96_1.py [--out /tmp/bench_data]

Runs `enkf.data` in a fresh process (so torch.compile's cost is included, as a user would see it) into a
scratch folder, and prints the wall time next to the generator's own split (spin-up / paths).
Target (issue 2): L96_1 in <= 120 s wall on the 2-core project machine.
Last line: JSON {"config", "wall_s", "seconds_spinup", "seconds_paths", "analysis_rmse", "forecast_rmse"}.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ap = argparse.ArgumentParser()
ap.add_argument("--config", default="configs/L96_1.py")
ap.add_argument("--out", default=None)
a = ap.parse_args()
out = a.out or tempfile.mkdtemp(prefix="bench_data_")
t0 = time.time()
p = subprocess.run([sys.executable, "-m", "enkf.data", "--config", a.config, "--out", out, "--force", "--quiet"],
                   cwd=ROOT, capture_output=True, text=True)  # fmt: skip
wall = time.time() - t0
if p.returncode:
    print(p.stderr, file=sys.stderr)
    sys.exit(p.returncode)
s = json.loads(p.stdout.strip().splitlines()[-1])
print(f"{a.config}: {s['paths']} paths x {s['cycles']} cycles, wall {wall:.1f} s "
      f"(spin-up {s['seconds_spinup']:.1f} s, paths {s['seconds_paths']:.1f} s); "
      f"analysis RMSE {s['analysis_rmse']:.4f} vs forecast {s['forecast_rmse']:.4f}")  # fmt: skip
print(json.dumps(dict(config=a.config, wall_s=round(wall, 1), seconds_spinup=s["seconds_spinup"],
                      seconds_paths=s["seconds_paths"], analysis_rmse=s["analysis_rmse"],
                      forecast_rmse=s["forecast_rmse"])))  # fmt: skip
