"""Would the trained agent choose its zero-shot gain radius well? Its deterministic analysis at M members (the stored
ensembles cut to their first M) at each half-width of the config's loc_radii and none, on the stored training paths
1..P x C cycles; prints per half-width the mean RMSE (cycles 50..) and the worst path over 1000 and over 300 cycles,
and the worst of paths 1-4 over 300 cycles (the rule tried on 2026-12-07). With --heldout R1,R2 it also runs the
agent at those half-widths on the held-out set of `make eval` (10 truths x 1000 cycles, its burn-in) to judge the
scores, never to choose.

    python bench/zero_shot_radius.py configs/L96_2.py pretrained/L96_2.pt 10
    python bench/zero_shot_radius.py configs/L96_sparse.py pretrained/L96_sparse.pt 10 --paths 0 --heldout 6,8
    python bench/zero_shot_radius.py configs/L96_3.py pretrained/L96_3.pt 10 --field inflation_adapt_scale --values 1,0.5

2026-12-08: the table "the zero-shot gain radius chosen by the trained agent on a selection set as large as the
held-out set" of docs/results.md (M 5 and 10 on L96_2, L96_3, L63, L96_sparse, L96_1)."""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from configs.defaults import load_config  # noqa: E402
from enkf.cycle import make_forecaster  # noqa: E402
from enkf.data import PathData, ensure_data  # noqa: E402
from enkf.env import EnKFVecEnv  # noqa: E402
from enkf.rollout import rollout_paths  # noqa: E402
from enkf.tuned import heldout_set  # noqa: E402
from scripts import evaluate as SE  # noqa: E402 (load_agent, agent_env_config, build_agent, set_data)

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("config")
ap.add_argument("checkpoint")
ap.add_argument("members", type=int)
ap.add_argument("--paths", type=int, default=10, help="training paths 1..P (0: skip the selection scores)")
ap.add_argument("--cycles", type=int, default=1000)
ap.add_argument("--heldout", default="", help="comma list of values (half-widths, 1e6: none) for the held-out set")
ap.add_argument("--field", default="gain_radius", help="the env setting to vary, e.g. inflation_adapt_scale")
ap.add_argument("--values", default="", help="comma list of --field values (gain_radius: default loc_radii and none)")
ap.add_argument("--radius", type=float, help="gain_radius while another --field varies (default: the choice stored "
                "with the agent at M members, else the agent's own)")  # fmt: skip
a = ap.parse_args()
torch.set_num_threads(1)
target, ag, M = load_config(a.config), SE.load_agent(Path(a.checkpoint)), a.members
run_cfg = SE.agent_env_config(ag["cfg"], target)
stored = ((ag["provenance"] or {}).get("zero_shot_gain_radius") or {}).get(str(M), {}).get("gain_radius")
run_cfg = dataclasses.replace(run_cfg, gain_radius=a.radius or stored or run_cfg.gain_radius)
kind = type(getattr(run_cfg, a.field))
kind = (lambda x: x.lower() in ("1", "true")) if kind is bool else kind  # noqa: E731 - bool("False") is True
values = [kind(x) for x in a.values.split(",") if x] or [*run_cfg.loc_radius_list, 1e6]


def rollout(v, data: PathData, paths: list[int], cycles: int | None, fc=None) -> dict:
    """The agent's deterministic analysis with --field v at M members on `paths` of data (the first `cycles`)."""
    c = dataclasses.replace(run_cfg, N_ens=M, **{a.field: v})
    env = EnKFVecEnv(c, data, len(paths), seed=0, forecaster=fc, scoring=False)
    return rollout_paths(SE.build_agent(ag, c, env), env, paths, cycles)


data = ensure_data(dataclasses.replace(target, N_ens=ag["cfg"].N_ens), progress=False)
data = dataclasses.replace(data, xb=data.xb[:, :, :M], xa=data.xa[:, :, :M], norm=ag["norm"])  # (P, T, M, N)
ids = list(range(1, 1 + a.paths))
for v in values if a.paths > 0 else []:
    t0 = time.time()
    r = rollout(v, data, ids, a.cycles)
    T, rm, w300 = r["rmse"].shape[1], r["rmse"][:, 50:], np.nanmean(r["rmse"][:, 50:300], 1)  # (P, T - 50), (P,)
    print(f"{target.name} M={M} {a.field} {v}: mean {np.nanmean(rm):.4f} worst path {np.nanmean(rm, 1).max():.4f} "
          f"worst path (300 cycles) {w300.max():.4f} worst of 1-4 (300 cycles) {w300[:4].max():.4f} survived "
          f"{int((r['survived'] >= T).sum())}/{len(ids)} ({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
if a.heldout:
    cM = dataclasses.replace(target, N_ens=M)
    fc = make_forecaster(cM, bucket=True)
    s = heldout_set(cM, "held-out set (10 paths)", 10, 1000, target.data_seed + 104729, fc, False)  # as make eval-all
    for v in [kind(x) for x in a.heldout.split(",")]:
        r = rollout(v, SE.set_data(s, ag["norm"]), list(range(s.P)), None, fc)
        print(f"{target.name} M={M} {a.field} {v} (gain_radius {run_cfg.gain_radius:g}): held-out mean {np.nanmean(r['rmse'][:, min(target.burn_in, 500):]):.4f} "
              f"survived {int((r['survived'] >= s.y.shape[1]).sum())}/{s.P}", flush=True)  # fmt: skip
