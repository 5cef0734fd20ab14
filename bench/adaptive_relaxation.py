"""A classical filter with adaptive relaxation to prior spread, untuned, on the held-out sets of `make eval-all`.

    python bench/adaptive_relaxation.py [--configs L96_1,L96_2,L96_3,L63,L96_sparse,KS] [--threads 1]

Each cycle, per path, alpha moves by inflation_adapt * ln(estimate) (enkf.filters.adapt_relaxation: the innovation
estimate of Desroziers et al. 2005, integrated in the log so that it settles where the estimate's geometric mean is 1)
and the analysis anomalies are relaxed towards the prior spread by alpha (RTPS, Whitaker & Hamill 2012): the adaptive
RTPS of the literature (Ying & Zhang 2015; Kotsuki et al. 2017), with nothing tuned. No prior inflation. The filter is
the ETKF (global configs) or the LETKF at the config's half-width (localized configs), with and without random
rotation of the anomalies; a row with rotation is the mean of enkf.evaluate.REPEATS random streams, path by path, as
in `make eval`. The held-out set is the one of scripts/eval_all.py (10 truths x 1000 cycles, seed data_seed + 104729,
N_ens of the config) and the time means start at cycle burn_in, so the figures stand beside docs/eval_all.json's best
grid-tuned filter and agent mean, which are printed with them. Prints one line per filter and a JSON summary at the end.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from configs.defaults import load_config  # noqa: E402
from enkf.cycle import cycle, make_forecaster, obs_setup  # noqa: E402
from enkf.evaluate import REPEATS  # noqa: E402
from enkf.filters import adapt_relaxation, make_analysis, post_process  # noqa: E402
from enkf.tuned import heldout_set  # noqa: E402


def run(cfg, s, fc, method: str, rotate: bool, seed: int) -> dict:
    """The filter with adaptive relaxation on every path of s, from its first background: rmse, spread (P, T), alpha."""
    obs, r = obs_setup(cfg)
    base = make_analysis(method, obs, r, 1.0, cfg.loc_radius, cfg.periodic)
    gen = torch.Generator().manual_seed(seed)
    state = {"alpha": torch.zeros(s.P), "trace": []}

    def an(Eb, y):  # Eb (P, M, N), y (P, p)
        state["alpha"] = adapt_relaxation(
            state["alpha"], Eb, y, obs, r, cfg.inflation_adapt, cfg.inflation_adapt_max**2
        )
        state["trace"].append(float(state["alpha"].mean()))
        return post_process(base(Eb, y), Eb, 1.0, state["alpha"], rotate, gen)

    out = cycle(s.xb[:, 0].float(), s.y.float(), s.truth.float(), fc, an)
    out["alpha"] = float(np.mean(state["trace"][cfg.burn_in :]))
    return out


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
        method = "letkf" if (cfg.obs_stride > 1 or cfg.model == "ks") else "etkf"
        b = best.get(name, {})
        for rotate in (False, True):
            reps = [run(cfg, s, fc, method, rotate, seed + k) for k in range(REPEATS if rotate else 1)]
            rm = np.mean([x["rmse"] for x in reps], 0)[:, burn:].mean(1)  # (P,) time mean per path
            sp = np.mean([x["spread"] for x in reps], 0)[:, burn:].mean(1)
            row = dict(config=name, filter=f"{method} + adaptive relaxation" + (" + rotation" if rotate else ""),
                       rmse=float(rm.mean()), worst_path=float(rm.max()), spread_over_rmse=float((sp / rm).mean()),
                       alpha=float(np.mean([x["alpha"] for x in reps])), best_tuned=b.get("best_grid_filter", b.get("best_filter")),
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
