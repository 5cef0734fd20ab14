"""Training curves: the agent's analysis RMSE on held-out path 0 against env steps and wall-clock minutes.

    python scripts/plot_training_curve.py logs/L96_1/runs/RUN [logs/L96_1/runs/RUN2 ...] \
        [--labels "seed 1,seed 2"] [--out docs/training_curve_L96_1.png]

Reads each run's evals.jsonl (one line per periodic evaluation: step, training seconds, agent RMSE, the data
EnKF's and the tuned EnKF's RMSE on path 0) and draws both panels with the EnKF at the config inflation (the
data filter) and the EnKF at its tuned inflation as horizontal lines. Path 0 is the path the best checkpoint
is selected on: quote held-out-set figures (enkf.evaluate) for results, this figure for the shape of learning.
Last line printed: JSON {"out", "runs": [{"run", "evals", "last_rmse", "best_rmse"}]}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_evals(run: Path) -> list[dict]:
    p = run / "evals.jsonl"
    if not p.is_file():
        raise SystemExit(f"error: {p} not found (a run folder of ppo_lstm_enkf.py with at least one evaluation)")
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    # a resumed run may repeat steps after its last checkpoint: keep the last record of each step
    return sorted({r["step"]: r for r in rows}.values(), key=lambda r: r["step"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/plot_training_curve.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (logs/<config>/runs/<run>)")
    ap.add_argument("--labels", default="", help="comma list, one per run (default: run folder names)")
    ap.add_argument("--out", default="", help="PNG path (default: <first run>/training_curve.png)")
    ap.add_argument("--title", default="")
    a = ap.parse_args(argv)
    runs = [Path(r) for r in a.runs]
    labels = [s.strip() for s in a.labels.split(",")] if a.labels else [r.name for r in runs]
    if len(labels) != len(runs):
        print(f"error: --labels has {len(labels)} entries for {len(runs)} runs", file=sys.stderr)
        return 2
    data = [read_evals(r) for r in runs]
    out = Path(a.out) if a.out else runs[0] / "training_curve.png"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    ref = next((r for rows in data for r in rows), {})
    for rows, lab in zip(data, labels, strict=True):
        ys = [r["agent_rmse"] if r["agent_rmse"] is not None and math.isfinite(r["agent_rmse"]) else math.nan
              for r in rows]  # fmt: skip
        axes[0].plot([r["step"] / 1e6 for r in rows], ys, marker="o", ms=3, lw=1, label=lab)
        axes[1].plot([r["seconds"] / 60 for r in rows], ys, marker="o", ms=3, lw=1, label=lab)
    for ax in axes:
        if ref.get("enkf_rmse"):
            ax.axhline(ref["enkf_rmse"], color="k", ls="--", lw=1, label="EnKF, config inflation (data)")
        if ref.get("best_filter_rmse"):
            ax.axhline(
                ref["best_filter_rmse"], color="r", ls=":", lw=1.5, label=f"best tuned filter: {ref.get('best_filter')}"
            )
        elif ref.get("tuned_enkf_rmse"):  # runs from before the best-filter reference
            ax.axhline(ref["tuned_enkf_rmse"], color="r", ls=":", lw=1.5,
                       label=f"EnKF, tuned inflation {ref.get('tuned_inflation', 0):g}")  # fmt: skip
        ax.grid(alpha=0.3)
    axes[0].set_xlabel("env steps (millions)")
    axes[1].set_xlabel("training wall-clock (minutes)")
    axes[0].set_ylabel("analysis RMSE on path 0 (cycles 100..999)")
    axes[1].legend(fontsize=7)
    fig.suptitle(a.title or "agent RMSE on held-out path 0 during training (deterministic policy, 1000 cycles)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(out)
    plt.close(fig)
    summary = [{"run": str(r), "evals": len(rows),
                "last_rmse": rows[-1]["agent_rmse"] if rows else None,
                "best_rmse": min((x["agent_rmse"] for x in rows if x["agent_rmse"] is not None
                                  and math.isfinite(x["agent_rmse"])), default=None)}
               for r, rows in zip(runs, data, strict=True)]  # fmt: skip
    print(json.dumps({"out": str(out), "runs": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
