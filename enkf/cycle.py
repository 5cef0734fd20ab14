"""The data-assimilation cycle that data generation, the sweep, the tuning, the benchmark and the environment share:
the forecaster, the observation setup, truth simulation (and independent held-out truths), the cycling of a filter,
and the error measures.

Shapes: states (..., N), ensembles (..., M, N), observations (..., p), series (B, T).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm import tqdm

from configs.defaults import Config
from enkf.filters import ObsOp, adapt_relaxation, make_analysis, post_process
from models import Forecaster, ks


def obs_setup(cfg: Config) -> tuple[ObsOp, float]:
    return ObsOp(cfg.N, idx=cfg.obs_idx), cfg.obs_noise_var


def make_forecaster(cfg: Config, compile: bool | None = None, bucket: bool = False) -> Forecaster:
    return Forecaster(cfg.model, cfg.model_params, cfg.dtda, cfg.steps_per_cycle,
                      compile=cfg.compile if compile is None else compile, bucket=bucket)  # fmt: skip


def simulate_truth(x0, T: int, fc: Forecaster, obs: ObsOp, r: float, gen: torch.Generator, progress=True):
    """Truth (B, T, N) after 1..T forecasts from x0 (B, N), and observations y (B, T, p) = H x + N(0, r)."""
    B, N = x0.shape
    truth = torch.empty(B, T, N, dtype=x0.dtype)
    x = x0
    for t in tqdm(range(T), desc="truth", disable=not progress, leave=False):
        x = fc(x)
        truth[:, t] = x
    y = obs(truth) + math.sqrt(r) * torch.randn(truth.shape[:-1] + (obs.p,), generator=gen, dtype=x0.dtype)
    return truth, y


def held_out_truth(cfg, paths: int, cycles: int, spinup_time: float, seed: int, fc, progress=True):
    """Independent truths (paths, cycles, N) and observations from their own seed.

    Kuramoto-Sivashinsky starts from Kassam & Trefethen's state plus a 1e-3 zero-mean noise per path
    (`models.ks.initial_condition`; KS conserves the spatial mean). 100 time units of spin-up suffice there
    (measured, L = 32 pi, N = 128, 10 paths: std(u) is on the attractor from t ~ 50 and the paths are mutually
    independent from t ~ 75, their pairwise distances then those of independent attractor states)."""
    gen = torch.Generator().manual_seed(seed)
    obs, r = obs_setup(cfg)
    if cfg.model == "ks":
        x = ks.initial_condition((paths,), Nx=cfg.N, L=cfg.ks_length, generator=gen, dtype=torch.float32)
    else:
        x = 0.01 * torch.randn(paths, cfg.N, generator=gen)
    if cfg.model == "lorenz63":
        x = x + torch.tensor([1.0, 1.0, 20.0])
    for _ in range(max(1, math.ceil(spinup_time / cfg.oda))):
        x = fc(x)
    truth, y = simulate_truth(x, cycles, fc, obs, r, gen, progress)
    return x, truth, y, gen


def rmse(xm, truth):
    """RMSE over the state axis of an estimate (..., N) against the truth (..., N)."""
    return ((xm - truth) ** 2).mean(-1).sqrt()


def spread(E):
    """Ensemble spread sqrt(mean_n var_n) of E (..., M, N) -> (...)."""
    return E.var(-2, unbiased=True).mean(-1).sqrt()


def assimilate(E0, y, truth, fc: Forecaster, analysis, store: bool = False, progress=True, desc="cycles"):
    """Cycle forecast + analysis for T = y.shape[-2] cycles. E0 (B, M, N), y (B, T, p), truth (B, T, N).

    Returns dict with rmse_f, rmse_a, spread_f, spread_a (B, T) and, if store, xb and xa (B, T, M, N)."""
    B, M, N = E0.shape
    T = y.shape[-2]
    out = {k: torch.empty(B, T) for k in ("rmse_f", "rmse_a", "spread_f", "spread_a")}
    if store:
        out["xb"] = torch.empty(B, T, M, N, dtype=torch.float32)
        out["xa"] = torch.empty(B, T, M, N, dtype=torch.float32)
    E = E0
    for t in tqdm(range(T), desc=desc, disable=not progress, leave=False):
        Eb = fc(E)  # (B, M, N)
        Ea = analysis(Eb, y[:, t])
        out["rmse_f"][:, t] = rmse(Eb.mean(-2), truth[:, t])
        out["rmse_a"][:, t] = rmse(Ea.mean(-2), truth[:, t])
        out["spread_f"][:, t] = spread(Eb)
        out["spread_a"][:, t] = spread(Ea)
        if store:
            out["xb"][:, t] = Eb
            out["xa"][:, t] = Ea
        E = Ea
    return out


def cycle(Eb0, y, truth, fc, analysis, progress=False, desc="") -> dict:
    """Analysis then forecast from the first background Eb0 (B, M, N): rmse, spread (B, T), mean of batch 0."""
    from tqdm import tqdm

    B, T = y.shape[0], y.shape[1]
    rm, sp, mean0 = torch.empty(B, T), torch.empty(B, T), torch.empty(T, Eb0.shape[-1])
    Eb = Eb0
    for t in tqdm(range(T), desc=desc, disable=not progress, leave=False):
        Ea = analysis(Eb, y[:, t])
        m = Ea.mean(-2)  # (B, N)
        rm[:, t], sp[:, t], mean0[t] = rmse(m, truth[:, t]), spread(Ea) if Ea.shape[-2] > 1 else 0.0, m[0]
        Eb = fc(Ea)
    return {"rmse": rm.numpy(), "spread": sp.numpy(), "mean": mean0.numpy()}


REPEATS = 3  # random streams of a filter with a random part (rotation, perturbed observations), averaged


def adaptive_methods(cfg: Config) -> tuple[str, ...]:
    """The filters that run untuned with adaptive RTPS (cycle_adaptive): the ETKF, and the LETKF where it is the
    config's data filter (a localized config)."""
    return ("etkf",) + (("letkf",) if cfg.data_filter == "letkf" else ())


def cycle_adaptive(cfg: Config, m: str, Eb0, y, truth, fc, seeds, rotate: bool) -> dict:
    """cycle() with filter m (etkf, or letkf at the config's half-width) untuned: no prior inflation, the analysis
    relaxed towards the prior spread by alpha (B,), which starts at 0 and moves each cycle by inflation_adapt (0.05 where
    the config sets 0) times the log of the innovation estimate (enkf.filters.adapt_relaxation): adaptive RTPS (Ying &
    Zhang 2015; Kotsuki et al. 2017), optionally with random rotation of the anomalies. One run per seed of `seeds` (its
    generator draws the rotations); rmse, spread (B, T) and alpha (T,: the mean over the batch) are averaged over the
    runs, cycle by cycle; mean and seconds per cycle are the first run's; variant names the row."""
    obs, r = obs_setup(cfg)
    base, runs = make_analysis(m, obs, r, 1.0, cfg.loc_radius, cfg.periodic), []
    for seed in seeds:
        gen, alpha, trace = torch.Generator().manual_seed(seed), [torch.zeros(Eb0.shape[0])], []

        def an(Eb, yt, gen=gen, alpha=alpha, trace=trace):  # Eb (B, M, N), yt (B, p)
            alpha[0] = adapt_relaxation(
                alpha[0], Eb, yt, obs, r, cfg.inflation_adapt or 0.05, cfg.inflation_adapt_max**2
            )
            trace.append(alpha[0].mean())
            return post_process(base(Eb, yt), Eb, 1.0, alpha[0], rotate, gen)

        t0 = time.time()
        out = cycle(Eb0, y, truth, fc, an)
        runs.append(out | {"seconds": (time.time() - t0) / y.shape[1], "alpha": torch.stack(trace).double().numpy()})
    out = runs[0] | {k: np.mean([x[k] for x in runs], 0) for k in ("rmse", "spread", "alpha")}
    return out | {"variant": "adaptive RTPS" + (", rotation" if rotate else ""), "repeats": len(runs)}


def time_mean(series: torch.Tensor, burn_in: int) -> torch.Tensor:
    """Time mean over cycles burn_in.. of (..., T) series; non-finite stays non-finite (a diverged run)."""
    return series[..., burn_in:].mean(-1)


def survived(series: np.ndarray, limit: float = 1e3) -> np.ndarray:
    """Cycles before the first non-finite or exploding RMSE, per row of (P, T)."""
    bad = ~np.isfinite(series) | (series > limit)
    return np.where(bad.any(1), bad.argmax(1), series.shape[1])
