"""The prior's Kalman gain as the agent's starting point (issue 17): the action of an untrained gain-gated policy, and
the choice of the localization half-width of the gain features (gain_radius) on training paths."""

from __future__ import annotations

import dataclasses
import sys

import torch

from configs.defaults import Config
from enkf.data import PathData
from enkf.env import EnKFVecEnv


def gain_action(env: EnKFVecEnv) -> torch.Tensor:
    """(B, M, N) the normalized action of an untrained gain-gated policy (every gate at 1, nothing else): the sum
    over the kg features of kg_k(j) * innov_i(j + k), plus kgsr(j) * anom_i(j)."""
    f = env.window[:, -1]  # (B, M, F, N) the newest features
    ix = {name: i for i, name in enumerate(env.features)}
    inn = f[:, :, ix["innov"]]
    a = torch.zeros_like(inn)
    for name, i in ix.items():
        if name == "kgsr" and "anom" in ix:
            a = a + f[:, :, i] * f[:, :, ix["anom"]]
        elif name.startswith("kg") and name != "kgsr":
            a = a + f[:, :, i] * inn.roll(-int(name[2:]), -1)
    return a


def choose_gain_radius(cfg: Config, data: PathData, cycles: int = 300, device="cpu", log=False) -> Config:
    """cfg with gain_radius set: unchanged unless 0 and kg features are used; then, of loc_radii (or loc_radius) and
    none (1e6), the half-width whose untrained gain-gated analysis (gain_action) has the lowest worst-path RMSE over
    training paths 1-4 (cycles 50..cycles; a path that leaves the bounds scores inf). Path 0 and held-out truths are
    never used. The chosen value lands in the run's config.json; log=True prints the scores."""
    if cfg.gain_radius != 0 or not any(f.startswith("kg") for f in cfg.feature_list):
        return cfg
    paths = list(range(1, min(5, data.truth.shape[0])))
    T = min(cycles, data.truth.shape[1])
    scores = {}
    for r in [*cfg.loc_radius_list, 1e6]:
        env = EnKFVecEnv(dataclasses.replace(cfg, gain_radius=r), data, len(paths), device=device, scoring=False)
        env.reset_to(paths, 0, T)
        rm = []
        for _ in range(T - 1):
            res = env.step(gain_action(env))
            if res.terminated.any():
                rm = None
                break
            rm.append(res.info["rmse_truth"])
        scores[r] = float(torch.stack(rm[50:]).mean(0).max()) if rm and len(rm) > 50 else float("inf")
    best = min(scores, key=scores.get)
    if log:
        print(f"[gain] {cfg.name}: gain_radius {best:g} (worst-path RMSE of the untrained gain-gated analysis on "
              f"training paths {paths[0]}-{paths[-1]}: " + ", ".join(f"{r:g}: {v:.4f}" for r, v in scores.items()) + ")",
              file=sys.stderr)  # fmt: skip
    return dataclasses.replace(cfg, gain_radius=best)
