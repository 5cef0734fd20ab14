"""The prior's Kalman gain as the agent's starting point (issue 17): the action of an untrained gain-gated policy, and
what the recipe chooses with it on training paths: the localization half-width of the gain features (gain_radius), where
the adaptive spread control acts (spread_adapt) and the share of the innovation estimate that the adaptive inflation
follows (inflation_adapt_scale)."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import torch

from configs.defaults import Config
from enkf.data import PathData
from enkf.env import EnKFVecEnv
from enkf.rollout import rollout_paths


def gain_gate_terms(features, with_anom: bool = True) -> list[tuple[str, int, bool]]:
    """The gain gate's terms, (feature, offset k, on the anomaly), in feature order: kg_k multiplies innov_i(j + k),
    sr_k multiplies anom_i(j + k) and kgsr anom_i(j) (k = 0); the anomaly terms only with_anom. The one rule the
    untrained action below and the agent's gates in the training script share."""
    terms = [(f, 0 if f == "kgsr" else int(f[2:]), "sr" in f) for f in features if f[:2] in ("kg", "sr")]
    return [t for t in terms if with_anom or not t[2]]


def gain_action(env: EnKFVecEnv) -> torch.Tensor:
    """(B, M, N) the normalized action of an untrained gain-gated policy (every gate at 1, nothing else): the sum
    over the kg features of kg_k(j) * innov_i(j + k), plus kgsr(j) * anom_i(j) and sr_k(j) * anom_i(j + k)."""
    f = env.window[:, -1]  # (B, M, F, N) the newest features
    ix = {name: i for i, name in enumerate(env.features)}
    inn = f[:, :, ix["innov"]]
    a = torch.zeros_like(inn)
    for name, k, on_anom in gain_gate_terms(env.features, "anom" in ix):
        a = a + f[:, :, ix[name]] * (f[:, :, ix["anom"]] if on_anom else inn).roll(-k, -1)
    return a


def uses_gain(cfg: Config) -> bool:
    """Whether the agent has kg features, so that an untrained gain-gated analysis exists to score."""
    return any(f.startswith("kg") for f in cfg.feature_list)


def untrained_scores(cfg: Config, data: PathData, field: str, candidates, cycles: int = 300, device="cpu") -> dict:
    """{value: worst-path RMSE} of the untrained gain-gated analysis (gain_action) with cfg.<field> = value, over
    training paths 1-4, cycles 50..cycles (a path that leaves the bounds scores inf). Path 0 and held-out truths are
    never used."""
    paths = list(range(1, min(5, data.truth.shape[0])))
    T = min(cycles, data.truth.shape[1])
    scores = {}
    for v in candidates:
        env = EnKFVecEnv(dataclasses.replace(cfg, **{field: v}), data, len(paths), device=device, scoring=False)
        env.reset_to(paths, 0, T)
        rm = []
        for _ in range(T - 1):
            res = env.step(gain_action(env))
            if res.terminated.any():
                rm = None
                break
            rm.append(res.info["rmse_truth"])
        scores[v] = float(torch.stack(rm[50:]).mean(0).max()) if rm and len(rm) > 50 else float("inf")
    return scores


def _log(cfg: Config, field: str, best, scores: dict) -> None:
    g = lambda v: v if isinstance(v, str) else f"{v:g}"  # noqa: E731 - a mode name or a number
    print(f"[gain] {cfg.name}: {field} {g(best)} (worst-path RMSE of the untrained gain-gated analysis on training paths "
          "1-4: " + ", ".join(f"{g(v)}: {s:.4f}" for v, s in scores.items()) + ")", file=sys.stderr)  # fmt: skip


def choose_gain_radius(cfg: Config, data: PathData, cycles: int = 300, device="cpu", log=False) -> Config:
    """cfg with gain_radius set: unchanged unless 0 and kg features are used; then, of loc_radii (or loc_radius) and
    none (1e6), the half-width with the lowest untrained_scores. The chosen value lands in the run's config.json;
    log=True prints the scores."""
    if cfg.gain_radius != 0 or not uses_gain(cfg):
        return cfg
    if log:
        print(f"[gain] {cfg.name}: choosing gain_radius on training paths 1-4 ({len(cfg.loc_radius_list) + 1} candidates "
              f"x {cycles} cycles)...", file=sys.stderr)  # fmt: skip
    scores = untrained_scores(cfg, data, "gain_radius", [*cfg.loc_radius_list, 1e6], cycles, device)
    best = min(scores, key=scores.get)
    if log:
        _log(cfg, "gain_radius", best, scores)
    return dataclasses.replace(cfg, gain_radius=best)


def cut_members(data: PathData, M: int) -> PathData:
    """The stored paths with their ensembles cut to the first M members (the same truths and observations)."""
    return dataclasses.replace(data, xb=data.xb[:, :, :M], xa=data.xa[:, :, :M])  # (P, T, M, N)


def at_size(cfg: Config, data: PathData, M: int, log=False) -> tuple[Config, PathData]:
    """cfg and data for M < cfg.N_ens members: the stored ensembles cut to their first M members (cut_members), and
    gain_radius chosen again on them by choose_gain_radius (with kg features). A half-width chosen at 20 members, often
    none, would leave a 5-member prior's covariance and square root unlocalized. Used by training on mixed ensemble
    sizes (mix_sizes); a trained agent at fewer members chooses with its own analysis (agent_scores)."""
    data, cfg = cut_members(data, M), dataclasses.replace(cfg, N_ens=M)
    return (choose_gain_radius(dataclasses.replace(cfg, gain_radius=0), data, log=log) if uses_gain(cfg) else cfg), data


AGENT_PATHS, AGENT_CYCLES = 10, 1000  # the selection set of agent_scores: training paths 1-10 x 1000 cycles


def agent_scores(cfg: Config, data: PathData, candidates, make_agent, paths: int = AGENT_PATHS,
                 cycles: int = AGENT_CYCLES, device="cpu", log=False) -> dict:  # fmt: skip
    """{half-width: worst-path RMSE} of a trained agent's deterministic analysis with cfg.gain_radius = half-width, on
    training paths 1..paths, cycles 50..cycles (a path that leaves the bounds scores inf). make_agent(env) returns the
    agent for env (built from env.cfg). The zero-shot rule at fewer members than trained (scripts/evaluate.py): a set
    as large as the held-out set, and the worst path, so that one burst is not averaged away. Path 0 and held-out
    truths are never used."""
    ids = list(range(1, min(paths + 1, data.truth.shape[0])))
    scores = {}
    for v in candidates:
        env = EnKFVecEnv(dataclasses.replace(cfg, gain_radius=v), data, len(ids), seed=0, device=device, scoring=False)
        r = rollout_paths(make_agent(env), env, ids, cycles)
        T = r["rmse"].shape[1]
        ok = (r["survived"] >= T).all() and T > 50
        scores[v] = float(np.nanmean(r["rmse"][:, 50:], 1).max()) if ok else float("inf")  # (P,) path means, worst
        if log:
            print(f"[gain] {cfg.name}: gain_radius {v:g} at {cfg.N_ens} members: worst path {scores[v]:.4f}",
                  file=sys.stderr, flush=True)  # fmt: skip
    return scores


INFLATION_SCALES = (1.0, 0.5)


def choose_inflation_scale(cfg: Config, data: PathData, cycles: int = 300, device="cpu", log=False) -> Config:
    """cfg with inflation_adapt_scale set: unchanged unless 0; 1 (the whole innovation estimate) without adaptive
    inflation or kg features (no untrained analysis to score) or with spread_adapt relax (no prior inflation); else, of INFLATION_SCALES, the one with the lowest
    untrained_scores (at the cfg's gain_radius: choose that first). Ties go to the larger scale (listed first)."""
    if cfg.inflation_adapt_scale != 0:
        return cfg
    if cfg.inflation_adapt == 0 or not uses_gain(cfg) or cfg.spread_adapt == "relax":  # relax: no prior inflation
        return dataclasses.replace(cfg, inflation_adapt_scale=1.0)
    scores = untrained_scores(cfg, data, "inflation_adapt_scale", INFLATION_SCALES, cycles, device)
    best = min(scores, key=scores.get)
    if log:
        _log(cfg, "inflation_adapt_scale", best, scores)
    return dataclasses.replace(cfg, inflation_adapt_scale=best)


def choose_spread_adapt(cfg: Config, data: PathData, cycles: int = 300, device="cpu", log=False) -> Config:
    """cfg with spread_adapt set: unchanged unless auto; prior without adaptive inflation or kg features; else of prior
    and relax the one with the lower untrained_scores (at the cfg's gain_radius: choose that first; a tie: prior)."""
    if cfg.spread_adapt != "auto":
        return cfg
    if cfg.inflation_adapt == 0 or not uses_gain(cfg):
        return dataclasses.replace(cfg, spread_adapt="prior")
    scores = untrained_scores(cfg, data, "spread_adapt", ("prior", "relax"), cycles, device)
    best = min(scores, key=scores.get)
    if log:
        _log(cfg, "spread_adapt", best, scores)
    return dataclasses.replace(cfg, spread_adapt=best)


def choose_from_data(cfg: Config, data: PathData, device="cpu", log=False) -> Config:
    """What the recipe computes from the data when training starts: gain_radius, spread_adapt, inflation_adapt_scale."""
    cfg = choose_spread_adapt(choose_gain_radius(cfg, data, device=device, log=log), data, device=device, log=log)
    return choose_inflation_scale(cfg, data, device=device, log=log)


if __name__ == "__main__":  # what the recipe would choose on a config, with the scores: python -m enkf.gain --config C
    import argparse

    from configs.defaults import ConfigError, load_config
    from enkf.data import DataError, ensure_data

    ap = argparse.ArgumentParser(description="Print the gain_radius and inflation_adapt_scale the recipe chooses.")
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        cfg = load_config(a.config)
        cfg = choose_from_data(cfg, ensure_data(cfg), log=True)
    except (ConfigError, DataError) as e:
        sys.exit(f"error: {e}")
    print(
        f"{cfg.name}: gain_radius {cfg.gain_radius:g}, spread_adapt {cfg.spread_adapt}, "
        f"inflation_adapt_scale {cfg.inflation_adapt_scale:g}"
    )
