"""Evaluation helpers (spec §8 in docs/design.md): classical baselines on a held-out path, and the report (plots + Markdown)
for an agent's run on that path. The agent's own rollout lives in the training script."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from configs.defaults import Config
from enkf import io
from enkf.cycle import REPEATS, adaptive_methods, cycle_adaptive, rmse, spread
from enkf.data import PathData
from enkf.filters import ObsOp, make_analysis, obs_only

NUDGING_GAINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def path_baselines(cfg: Config, data: PathData, path: int, fc, obs: ObsOp, best=None, adaptive=False) -> dict:
    """RMSE-vs-truth series (T,) on `path` for the stored EnKF (analysis and forecast), observation-only,
    free run, the best constant-gain nudging xa = xb + g (y - H xb) (g from NUDGING_GAINS) and, if `best` (an
    enkf.tuned.Setting: the best tuned filter) is given, that filter ("best_filter") or, with adaptive and where
    lower on this path, the untuned adaptive-RTPS filter of `make eval` (enkf.cycle.cycle_adaptive: the ETKF, and the
    LETKF where it is the data filter, with and without rotation; with rotation the mean of REPEATS streams), all
    started from the stored first background of the path. `fc` must accept (1, M, N) batches."""
    truth, y = data.truth[path], data.obs[path]  # (T, N), (T, p)
    T = truth.shape[0]
    out = {
        "enkf": rmse(data.xa[path].mean(1), truth).numpy(),
        "enkf_forecast": rmse(data.xb[path].mean(1), truth).numpy(),
        "enkf_spread": spread(data.xa[path]).numpy(),
    }
    xb0 = data.xb[path, 0].unsqueeze(0)  # (1, M, N)
    tuned = None
    if best is not None:
        tuned = make_analysis(best.method, obs, cfg.obs_noise_var, best.inflation,
                              cfg.loc_radius if best.radius is None else best.radius, cfg.periodic,
                              torch.Generator().manual_seed(cfg.data_seed), best.post_inflation, best.rtps, best.rotate)  # fmt: skip
        out["best_filter_label"] = best.label()
    for name in ("obs_only", "free_run") + (("best_filter",) if tuned else ()):
        Eb, series, sp = xb0, np.empty(T), np.empty(T)
        for t in range(T):
            if name == "obs_only":
                Ea = obs_only(Eb, y[t].unsqueeze(0), obs)
            else:
                Ea = tuned(Eb, y[t].unsqueeze(0)) if name == "best_filter" else Eb
            series[t] = float(rmse(Ea.mean(1), truth[t].unsqueeze(0)))
            sp[t] = float(spread(Ea)[0])
            Eb = fc(Ea)
        out[name] = series
        if name == "best_filter":
            out["best_filter_spread"] = sp
    for m in adaptive_methods(cfg) if best is not None and adaptive else ():
        for rot in (False, True):
            seeds = [cfg.data_seed + k for k in range(REPEATS if rot else 1)]
            run = cycle_adaptive(cfg, m, xb0, y[None], truth[None], fc, seeds, rot)
            rm, sp = run["rmse"][0], run["spread"][0]
            if np.isfinite(rm).all() and rm[cfg.burn_in :].mean() < out["best_filter"][cfg.burn_in :].mean():
                out.update(best_filter=rm, best_filter_spread=sp, best_filter_label=f"{m} ({run['variant']}, untuned)")
    # nudging of a single state (the background mean), one gain per "member" slot of the (1, M, N) batch
    G = len(NUDGING_GAINS)
    M = xb0.shape[1]
    g = torch.tensor(NUDGING_GAINS + (0.0,) * (M - G)) if M >= G else None
    if g is not None:
        xb = xb0.mean(1, keepdim=True).expand(1, M, -1).clone()  # (1, M, N): member k uses gain g[k]
        err = np.empty((T, M))
        for t in range(T):
            inc = torch.zeros_like(xb)
            inc[..., obs.idx] = y[t] - xb[..., obs.idx]
            xa = xb + g.view(1, M, 1) * inc
            err[t] = rmse(xa[0], truth[t]).numpy()
            xb = fc(xa)
        mean_err = np.where(np.isfinite(err), err, np.inf)[cfg.burn_in :].mean(0)[:G]
        k = int(np.argmin(mean_err))
        out["nudging"] = err[:, k]
        out["nudging_gain"] = float(NUDGING_GAINS[k])
    return out


def time_mean(series: np.ndarray, burn_in: int) -> float:
    s = np.asarray(series, dtype=np.float64)[burn_in:]
    return float(s.mean()) if len(s) and np.isfinite(s).all() else float("nan")


def write_report(cfg: Config, folder: Path, agent: dict, base: dict, truth: np.ndarray, enkf_mean: np.ndarray,
                 title: str, step: int | None = None) -> dict:  # fmt: skip
    """Plots (RMSE over time, spread over time, Hovmoeller) and a Markdown summary under `folder`.
    agent: rmse (T',), spread (T',), mean (T', N), survived (int). Returns the summary dict."""
    from enkf import plots

    folder.mkdir(parents=True, exist_ok=True)
    T = len(truth)
    surv = int(agent["survived"])
    b = cfg.burn_in
    summary = {
        "agent_rmse": time_mean(agent["rmse"], b) if surv == T else float("nan"),
        "agent_spread": time_mean(agent["spread"], b) if surv == T else float("nan"),
        "enkf_rmse": time_mean(base["enkf"], b),
        "enkf_spread": time_mean(base["enkf_spread"], b),
        "forecast_rmse": time_mean(base["enkf_forecast"], b),
        "obs_only_rmse": time_mean(base["obs_only"], b),
        "free_run_rmse": time_mean(base["free_run"], b),
        "nudging_rmse": time_mean(base.get("nudging", [np.nan]), b),
        "nudging_gain": base.get("nudging_gain"),
        "best_filter_rmse": time_mean(base["best_filter"], b) if "best_filter" in base else float("nan"),
        "best_filter": base.get("best_filter_label"),
        "cycles_survived": surv,
        "cycles": T,
    }
    summary["ratio"] = summary["agent_rmse"] / summary["enkf_rmse"]
    summary["ratio_to_best"] = summary["agent_rmse"] / summary["best_filter_rmse"]
    summary["spread_over_rmse"] = summary["agent_spread"] / summary["agent_rmse"]
    pad = lambda s: np.concatenate([s, np.full(T - len(s), np.nan)])  # noqa: E731
    figs = {}
    figs["rmse"] = plots.rmse_over_time(
        {"agent": pad(agent["rmse"]), "EnKF (teacher)": base["enkf"], "EnKF forecast": base["enkf_forecast"],
         "obs only": base["obs_only"], "free run": base["free_run"],
         **({f"nudging g={base['nudging_gain']:g}": base["nudging"]} if "nudging" in base else {}),
         **({f"best tuned filter: {base['best_filter_label']}": base["best_filter"]} if "best_filter" in base else {})},
        f"{title}: analysis RMSE vs truth", folder / "rmse_over_time.png")  # fmt: skip
    figs["spread"] = plots.rmse_over_time(
        {"agent spread": pad(agent["spread"]), "agent RMSE": pad(agent["rmse"]),
         "EnKF spread": base["enkf_spread"], "EnKF RMSE": base["enkf"]},
        f"{title}: ensemble spread vs RMSE", folder / "spread_over_time.png")  # fmt: skip
    am = np.concatenate([agent["mean"], np.full((T - len(agent["mean"]), truth.shape[1]), np.nan)])
    figs["hovmoller"] = plots.hovmoller(
        {"truth": truth, "EnKF": enkf_mean, "agent": am, "error EnKF": enkf_mean - truth, "error agent": am - truth},
        f"{title}: first 200 cycles", folder / "hovmoller.png")  # fmt: skip
    f = lambda x: "–" if x is None or not np.isfinite(x) else f"{x:.4f}"  # noqa: E731
    lines = [
        f"# {title}" + (f" (step {step})" if step is not None else ""),
        "",
        f"Path 0 (held out), {T} cycles, deterministic policy; time means over cycles {b}..{T - 1}.",
        "",
        "| method | analysis RMSE | ratio to EnKF | spread | spread/RMSE | cycles survived |",
        "|---|---:|---:|---:|---:|---:|",
        f"| agent | {f(summary['agent_rmse'])} | {f(summary['ratio'])} | {f(summary['agent_spread'])} | "
        f"{f(summary['spread_over_rmse'])} | {surv}/{T} |",
        *(
            [
                f"| best tuned filter: {base['best_filter_label']} | {f(summary['best_filter_rmse'])} | "
                f"{f(summary['best_filter_rmse'] / summary['enkf_rmse'])} | {f(time_mean(base['best_filter_spread'], b))} | "
                f"{f(time_mean(base['best_filter_spread'], b) / summary['best_filter_rmse'])} | {T}/{T} |"
            ]
            if "best_filter" in base
            else []
        ),
        f"| EnKF (data, {cfg.data_filter}, inflation {cfg.inflation:g}) | {f(summary['enkf_rmse'])} | 1.0000 | "
        f"{f(summary['enkf_spread'])} | {f(summary['enkf_spread'] / summary['enkf_rmse'])} | {T}/{T} |",
        f"| EnKF forecast | {f(summary['forecast_rmse'])} | {f(summary['forecast_rmse'] / summary['enkf_rmse'])} | | | |",
        f"| best constant-gain nudging (g={summary['nudging_gain']}) | {f(summary['nudging_rmse'])} | "
        f"{f(summary['nudging_rmse'] / summary['enkf_rmse'])} | 0 | | |",
        f"| observation only | {f(summary['obs_only_rmse'])} | {f(summary['obs_only_rmse'] / summary['enkf_rmse'])} | 0 | | |",
        f"| free run | {f(summary['free_run_rmse'])} | {f(summary['free_run_rmse'] / summary['enkf_rmse'])} | | | |",
        "",
        "Figures: rmse_over_time.png, spread_over_time.png, hovmoller.png",
    ]
    io.write_text(folder / "summary.md", "\n".join(lines) + "\n")
    io.write_json(folder / "summary.json", summary)
    summary["figures"] = {k: str(v) for k, v in figs.items()}
    return summary
