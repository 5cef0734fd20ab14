"""Figures (matplotlib, Agg backend). Every figure is saved atomically as PNG and returned, so callers can
also send it to TensorBoard."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from enkf.io import save_figure  # noqa: E402


def _save(fig, path: Path):
    save_figure(fig, path)
    plt.close(fig)
    return path


# one colour per method in every figure; configured settings dashed, tuned solid; agents black (then olive, cyan)
COLORS = {"letkf": "tab:green", "etkf": "tab:orange", "eakf": "tab:blue", "pertobs": "tab:red", "obs only": "tab:purple",
          "obs_only": "tab:purple", "nudging": "tab:brown", "free run": "tab:pink", "free_run": "tab:pink",
          "enkf": "tab:gray"}  # fmt: skip
AGENT_COLORS = ("black", "tab:olive", "tab:cyan")


def styles(labels) -> dict[str, dict]:
    """Line style per label: the method's colour (the first of COLORS found in the label, 'letkf' before 'etkf'),
    dashed for a configured setting, dotted for a spread, dash-dot for a forecast; agents in AGENT_COLORS."""
    out, agents = {}, []
    for lab in labels:
        low = lab.lower()
        if low.startswith("agent"):
            name = low.split(" spread")[0].split(" rmse")[0]
            agents += [name] if name not in agents else []
            color, lw = AGENT_COLORS[agents.index(name) % len(AGENT_COLORS)], 1.4
        else:
            color = next((c for k, c in COLORS.items() if k in low.replace("best tuned filter: ", "")), "tab:gray")
            lw = 1.0
        ls = ":" if "spread" in low else "-." if "forecast" in low else "--" if "config" in low else "-"
        out[lab] = dict(color=color, ls=ls, lw=lw)
    return out


def rmse_over_time(series: dict[str, np.ndarray], title: str, path: Path, ylabel="RMSE vs truth", logy=True):
    """series: label -> (T,) arrays, drawn over cycles."""
    fig, ax = plt.subplots(figsize=(9, 3.4 + 0.2 * -(-len(series) // 2)), layout="constrained")
    st = styles(series)
    for label, s in series.items():
        ax.plot(np.arange(len(s)), s, label=label, **(st[label] | {"lw": st[label]["lw"] * 0.9}))
    v = np.concatenate([np.asarray(s, dtype=float).ravel() for s in series.values()] or [np.zeros(0)])
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and logy:  # a run that blew up would squash the others: the range ends at 30x the median
        ax.set_ylim(np.percentile(v, 0.5) / 1.5, min(v.max(), 30 * float(np.median(v))) * 1.5)
    ax.set_xlabel("assimilation cycle")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncol=2, fontsize=7, frameon=False)  # below the axes, never over them
    ax.grid(alpha=0.3)
    return _save(fig, path)


def hovmoller(fields: dict[str, np.ndarray], title: str, path: Path, t_max: int | None = 200):
    """fields: label -> (T, N) arrays. States share one colour scale; labels starting with 'error' share a
    diverging one."""
    fields = {k: v for k, v in fields.items() if not k.startswith("error")} | {
        k: v for k, v in fields.items() if k.startswith("error")
    }  # the states, then the errors: each group's colourbar spans its own panels
    n = len(fields)
    fig, axes = plt.subplots(1, n, figsize=(2.5 * n + 0.5, 4.6), sharey=True, layout="constrained")
    axes = np.atleast_1d(axes)
    states = [v for k, v in fields.items() if not k.startswith("error")]
    vmin = min(float(np.nanmin(v[:t_max])) for v in states) if states else None
    vmax = max(float(np.nanmax(v[:t_max])) for v in states) if states else None
    errs = [v for k, v in fields.items() if k.startswith("error")]
    emax = max(float(np.nanmax(np.abs(v[:t_max]))) for v in errs) if errs else 1.0
    ims = {"state": [], "error": []}  # one shared colourbar per scale, below its panels (never beside a panel)
    for ax, (label, v) in zip(axes, fields.items(), strict=True):
        v = v[:t_max]
        err = label.startswith("error")
        im = ax.imshow(v, aspect="auto", origin="lower", cmap="RdBu_r" if err else "viridis",
                       vmin=-emax if err else vmin, vmax=emax if err else vmax, interpolation="nearest")  # fmt: skip
        ims["error" if err else "state"].append((ax, im))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("grid point")
    for kind, pairs in ims.items():
        if pairs:
            cb = fig.colorbar(pairs[0][1], ax=[a for a, _ in pairs], location="bottom", shrink=0.8, aspect=30)
            cb.set_label("state" if kind == "state" else "error (estimate - truth)", fontsize=8)
    axes[0].set_ylabel("assimilation cycle")
    fig.suptitle(title)
    return _save(fig, path)


def data_plots(cfg, arrays: dict, res: dict, report: dict, folder: Path, spin_thin: np.ndarray):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shown = [p for p in (0, 1, 2, 3) if p < cfg.num_paths]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.2 * len(shown)), sharex=True, squeeze=False)
    for ax, p in zip(axes[:, 0], shown, strict=True):
        ax.plot(res["rmse_f"][p].numpy(), lw=0.8, label="forecast (xb mean)")
        ax.plot(res["rmse_a"][p].numpy(), lw=0.8, label="analysis (xa mean)")
        ax.plot(res["spread_a"][p].numpy(), lw=0.8, ls="--", label="analysis spread")
        ax.axhline(np.sqrt(cfg.obs_noise_var), color="k", lw=0.6, ls=":", label="obs error std")
        ax.set_yscale("log")
        ax.set_ylabel(f"path {p}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=4)
    axes[0, 0].set_title(f"{cfg.name}: {cfg.data_filter} RMSE vs truth (inflation {cfg.inflation:g})")
    axes[-1, 0].set_xlabel("assimilation cycle")
    _save(fig, folder / "rmse_paths.png")

    truth0 = arrays["truth"][0]
    xa0 = arrays["xa"][0].mean(1)
    xb0 = arrays["xb"][0].mean(1)
    hovmoller({"truth": truth0, "analysis mean": xa0, "error forecast": xb0 - truth0, "error analysis": xa0 - truth0},
              f"{cfg.name}, path 0 (first 200 cycles)", folder / "hovmoller_path0.png")  # fmt: skip

    per = report["per_path"]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    idx = np.arange(len(per))
    ax.bar(idx, [p["forecast_rmse"] for p in per], color="tab:orange", alpha=0.6, label="forecast")
    ax.bar(idx, [p["analysis_rmse"] for p in per], color="tab:blue", alpha=0.8, label="analysis")
    bad = [p["path"] for p in per if not p["ok"]]
    if bad:
        ax.scatter(bad, [per[b]["forecast_rmse"] for b in bad], color="red", marker="x", label="failed")
    ax.set_xlabel("path")
    ax.set_ylabel("time-mean RMSE")
    ax.set_title(f"{cfg.name}: verification (after {cfg.burn_in} cycles burn-in)")
    ax.legend(fontsize=8)
    _save(fig, folder / "verification.png")

    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(np.arange(len(spin_thin)) * 100, spin_thin[:, 0], lw=0.3)
    ax.set_xlabel("spin-up step (later half)")
    ax.set_ylabel("x_0")
    ax.set_title(f"{cfg.name}: spin-up trajectory (every 100th step of the later half)")
    _save(fig, folder / "spinup.png")


def rmse_vs_nens(nens_rows: dict, sizes: list[int], title: str, path: Path) -> Path:
    """Time-mean RMSE (± std over paths) against the ensemble size, one line per method: {name: [(N_ens, row)]}."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    st = styles(nens_rows)
    for name, pts in nens_rows.items():
        pts = [(M, r) for M, r in pts if np.isfinite(r.get("rmse", np.nan))]
        if pts and name != "free_run":
            ax.errorbar([M for M, _ in pts], [r["rmse"] for _, r in pts], yerr=[r["rmse_std"] for _, r in pts],
                        marker="o", ms=3, capsize=2, label=name, **st[name])  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(M) for M in sizes])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("ensemble size N_ens")
    ax.set_ylabel("time-mean analysis RMSE")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, title="dashed: configured setting, solid: tuned", title_fontsize=7)
    return _save(fig, path)
