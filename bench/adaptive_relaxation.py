"""A classical filter with adaptive relaxation to prior spread, untuned, on the held-out sets of `make eval-all`.

    python bench/adaptive_relaxation.py [--configs L96_1,L96_2,L96_3,L63,L96_sparse,KS] [--threads 1]

Each cycle, per path, alpha moves by inflation_adapt * ln(estimate) (enkf.filters.adapt_relaxation: the innovation
estimate of Desroziers et al. 2005, integrated in the log so that it settles where the estimate's geometric mean is 1)
and the analysis anomalies are relaxed towards the prior spread by alpha (RTPS, Whitaker & Hamill 2012): the adaptive
RTPS of the literature (Ying & Zhang 2015; Kotsuki et al. 2017), with nothing tuned. No prior inflation. The filter is
the ETKF (global configs) or the LETKF at the config's half-width (where it is the data filter), with and without
random rotation of the anomalies (enkf.cycle.cycle_adaptive); a row with rotation is the mean of enkf.cycle.REPEATS
random streams, path by path, as in `make eval`. The held-out set is the one of scripts/eval_all.py (10 truths x 1000 cycles, seed data_seed + 104729,
N_ens of the config) and the time means start at cycle burn_in, so the figures stand beside docs/eval_all.json's best
grid-tuned filter and agent mean, which are printed with them. Prints one line per filter and a JSON summary at the end.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from configs.defaults import load_config  # noqa: E402
from enkf.cycle import REPEATS, adaptive_methods, cycle_adaptive, make_forecaster  # noqa: E402
from enkf.tuned import heldout_set  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="L96_1,L96_2,L96_3,L63,L96_sparse,KS")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    best = {r["config"]: r for r in json.loads((ROOT / "docs" / "eval_all.json").read_text())["results"]}
    summary = []
    for name in a.configs.split(","):
        t0 = time.time()
        cfg = load_config(ROOT / "configs" / f"{name}.py")
        fc = make_forecaster(cfg, bucket=True)
        seed = cfg.data_seed + 104729  # the held-out set of scripts/eval_all.py
        s = heldout_set(cfg, "held-out set (10 paths)", 10, 1000, seed, fc, progress=False)
        burn = min(cfg.burn_in, 500)
        method = adaptive_methods(cfg)[-1]  # the LETKF where it is the data filter, else the ETKF
        b = best.get(name, {})
        for rotate in (False, True):
            seeds = [seed + k for k in range(REPEATS if rotate else 1)]
            run = cycle_adaptive(cfg, method, s.xb[:, 0], s.y, s.truth, fc, seeds, rotate)
            rm, sp = run["rmse"][:, burn:].mean(1), run["spread"][:, burn:].mean(1)  # (P,) time mean per path
            row = dict(config=name, filter=f"{method} + adaptive relaxation" + (" + rotation" if rotate else ""),
                       rmse=float(rm.mean()), worst_path=float(rm.max()), spread_over_rmse=float((sp / rm).mean()),
                       alpha=float(run["alpha"][cfg.burn_in :].mean()), best_tuned=b.get("best_grid_filter", b.get("best_filter")),
                       best_tuned_rmse=b.get("best_grid_rmse", b.get("best_filter_rmse")), agent_rmse=b.get("agent_rmse"))  # fmt: skip
            row["ratio_to_best_tuned"] = row["rmse"] / row["best_tuned_rmse"] if b else None
            row["agent_ratio_to_this"] = b["agent_rmse"] / row["rmse"] if b else None
            summary.append(row)
            print(f"{name:11s} {row['filter']:40s} RMSE {row['rmse']:.4f} (worst path {row['worst_path']:.4f}, "
                  f"spread/RMSE {row['spread_over_rmse']:.2f}, alpha {row['alpha']:.3f}) | best tuned "
                  f"{row['best_tuned_rmse']:.4f} ({row['best_tuned']}): ratio {row['ratio_to_best_tuned']:.3f} | "
                  f"agent {row['agent_rmse']:.4f} = {row['agent_ratio_to_this']:.3f}x this", flush=True)  # fmt: skip
        print(f"  [{name}: {time.time() - t0:.0f} s]", flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
