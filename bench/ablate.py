"""Ablations: fixed-budget trainings over one factor at a time, answering the user's design questions (issue 4).

    python bench/ablate.py --config configs/L96_1.py --minutes 4 --seeds 1 2 [--only lstm,agents] [--workers 2]
    python bench/ablate.py --report-only            # rebuild the table from the finished runs

Every row changes one factor of the default (tuned) config and trains for the same wall-clock budget on one
core (`bench/learning.py`: --max-minutes, LR annealed over the budget, no periodic eval), then the final
weights run the deterministic policy over all 1000 cycles of held-out path 0. Several workers (one per core)
may run side by side, or be started later: each run is claimed with an exclusive file, finished runs are
skipped, so a killed ablation is resumed by running the same command again.
Outputs under logs/<config>/ablate/: runs/<row>__s<seed>.json (one per run), logs/<row>__s<seed>.log,
ablate.md (the table: mean ± std over seeds of the ratio to EnKF, cycles survived, spread/RMSE, training
env cycles/s) and ablate.json. Last line printed: the JSON path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from enkf import io  # noqa: E402

KEYS = ("agent_rmse", "enkf_rmse", "ratio", "obs_only_rmse", "nudging_rmse", "cycles_survived", "spread_over_rmse",
        "agent_spread", "steps", "sps", "seconds", "run")  # fmt: skip
OURS = ("ours (default)", [])
# factor -> rows (label, flags); the default row is shared by every factor
FACTORS: dict[str, list[tuple[str, list[str]]]] = {
    "features": [
        ("user's list: xa_prev,xb,dxa,y", ["--features", "xa_prev,xb,dxa,y"]),
        ("minimal: xb,y", ["--features", "xb,y"]),
        ("all 8 features", ["--features", "xb,y,innov,mean,spread,anom,xa_prev,dxa"]),
    ],
    "bound": [("normalized to ±1, bounds ±2", ["--bound", "2"])],
    "lstm": [
        ("LSTM 64x1", ["--lstm-hidden", "64", "--lstm-layers", "1"]),
        ("LSTM 256x2", ["--lstm-hidden", "256", "--lstm-layers", "2"]),
        ("LSTM 512x2", ["--lstm-hidden", "512", "--lstm-layers", "2"]),
        ("LSTM 512x3", ["--lstm-hidden", "512", "--lstm-layers", "3"]),
    ],
    "action": [("absolute action", ["--action", "absolute"])],
    "reward_target": [
        ("target: precomputed EnKF", ["--reward-target", "precomputed"]),
        ("target: truth", ["--reward-target", "truth"]),
    ],
    "window": [("window 1", ["--temporal-window", "1"]), ("window 8", ["--temporal-window", "8"])],
    "episode_length": [
        ("episodes of 25 cycles", ["--episode-length", "25"]),
        ("episodes of 400 cycles", ["--episode-length", "400"]),
    ],  # fmt: skip
    "agents": [
        ("per-member agents (conv trunk)", ["--agents", "per-member"]),
        ("per-member agents (MLP per member, the user's)", ["--agents", "per-member", "--policy", "global"]),
    ],
}
DEFAULT_NOTE = ("features xb,y,innov,mean,spread,anom; ±1 with bounds ±3; LSTM 16x1 per cell; increment action; "
                "online EAKF target; one agent per cell; window 3; episodes of 100 cycles")  # fmt: skip


def key_of(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")


def rows_for(only: list[str] | None) -> list[tuple[str, str, list[str]]]:
    rows = [("default", *OURS)]
    for factor, rs in FACTORS.items():
        if only and factor not in only:
            continue
        rows += [(factor, label, flags) for label, flags in rs]
    return rows


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True


def claim(path: Path) -> bool:
    """Exclusive claim of one run; a claim left by a dead worker is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return True
        except FileExistsError:
            try:
                pid = int(path.read_text() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and alive(pid):
                return False
            path.unlink(missing_ok=True)
    return False


def run_one(a, factor: str, label: str, flags: list[str], seed: int, out: Path) -> dict | None:
    key = f"{key_of(label)}__s{seed}"
    res_path = out / "runs" / f"{key}.json"
    if res_path.is_file() or not claim(out / "claims" / key):
        return None
    res = {"factor": factor, "label": label, "flags": flags, "seed": seed, "minutes": a.minutes}
    final = ROOT / "logs" / Path(a.config).stem / "runs" / f"ablate__{key}" / "final.json"
    if final.is_file():  # finished before its worker could record it (e.g. the worker was killed): harvest it
        done = json.loads(final.read_text())
        if not done.get("interrupted") and done.get("cycles_survived") is not None:
            io.write_json(res_path, res | {"returncode": 0, "harvested": True} | {k: done.get(k) for k in KEYS})
            (out / "claims" / key).unlink(missing_ok=True)
            return res
    log = out / "logs" / f"{key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "bench" / "learning.py"), "--config", a.config, "--minutes", str(a.minutes),
           "--seed", str(seed), "--threads", "1", "--run-name", f"ablate__{key}", "--",
           "--eval-interval", "0", *flags]  # fmt: skip
    print(f"[ablate] {time.strftime('%H:%M:%S')} start {label} seed {seed}", file=sys.stderr, flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, cwd=ROOT)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    res |= {"returncode": p.returncode, "wall_s": round(time.time() - t0, 1)}
    if p.returncode == 0 and lines:
        res |= json.loads(lines[-1])
    else:
        res["error"] = (p.stdout.strip().splitlines() or ["(no output)"])[-1][:500] + f" (see {log})"
    if p.returncode == 0 and res.get("cycles_survived") is None:  # interrupted (signal): not a result, rerun it
        print(f"[ablate] {label} seed {seed} was interrupted; not recorded", file=sys.stderr, flush=True)
    else:
        io.write_json(res_path, res)
    (out / "claims" / key).unlink(missing_ok=True)
    print(f"[ablate] {time.strftime('%H:%M:%S')} done  {label} seed {seed}: ratio {res.get('ratio')}, "
          f"survived {res.get('cycles_survived')}", file=sys.stderr, flush=True)  # fmt: skip
    return res


def fmt(xs, digits=3):
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    if not xs:
        return "–"
    return f"{np.mean(xs):.{digits}f} ± {np.std(xs):.{digits}f}" if len(xs) > 1 else f"{xs[0]:.{digits}f}"


def report(a, out: Path) -> Path:
    results = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    rows = []
    for factor, label, flags in rows_for(None):
        rs = [r for r in results if r["label"] == label]
        if not rs:
            continue
        ok = [r for r in rs if r.get("returncode") == 0 and "ratio" in r]
        rows.append({
            "factor": factor, "label": label, "flags": " ".join(flags), "seeds": [r["seed"] for r in rs],
            "minutes": sorted({r["minutes"] for r in rs}),
            "ratio": [r.get("ratio") for r in ok], "survived": [r.get("cycles_survived") for r in ok],
            "spread_over_rmse": [r.get("spread_over_rmse") for r in ok], "sps": [r.get("sps") for r in ok],
            "steps": [r.get("steps") for r in ok], "agent_rmse": [r.get("agent_rmse") for r in ok],
            "failed": [r["seed"] for r in rs if r not in ok],
        })  # fmt: skip
    enkf = next((r.get("enkf_rmse") for r in results if r.get("enkf_rmse")), None)
    minutes = sorted({m for r in rows for m in r["minutes"]})
    lines = [
        f"Ablation on {a.config}: {', '.join(f'{m:g}' for m in minutes)} min of training per run on one core, "
        f"seeds {sorted({s for r in rows for s in r['seeds']})}; evaluated on held-out path 0, all cycles "
        f"(EnKF analysis RMSE there: {enkf:.4f})."
        if enkf
        else f"Ablation on {a.config}.",
        f"Default: {DEFAULT_NOTE}. Made {time.strftime('%Y-%m-%d')} with `python bench/ablate.py --config "
        f"{a.config} --minutes {a.minutes:g} --seeds {' '.join(map(str, a.seeds))}`.",
        "",
        "| factor | setting | ratio to EnKF (mean ± std) | cycles survived (min) | spread/RMSE | env cycles/s | "
        "env steps | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        surv = f"{min(r['survived'])}" if r["survived"] else "–"
        fail = f" ({len(r['failed'])} failed)" if r["failed"] else ""
        lines.append(f"| {r['factor']} | {r['label']} | {fmt(r['ratio'])} | {surv} | {fmt(r['spread_over_rmse'], 2)} | "
                     f"{fmt(r['sps'], 0)} | {fmt(r['steps'], 0)} | {len(r['ratio'])}{fail} |")  # fmt: skip
    md = out / "ablate.md"
    io.write_text(md, "\n".join(lines) + "\n")
    io.write_json(out / "ablate.json", {"config": a.config, "rows": rows, "enkf_rmse": enkf})
    return md


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/L96_1.py")
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per run (same for every row)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", default="", help=f"comma list of factors (default all: {', '.join(FACTORS)})")
    ap.add_argument("--workers", type=int, default=1, help="runs side by side (one core each)")
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args()
    only = [f.strip() for f in a.only.split(",") if f.strip()] or None
    bad = [f for f in only or [] if f not in FACTORS]
    if bad:
        print(f"error: --only: unknown factor(s) {', '.join(bad)} (allowed: {', '.join(FACTORS)})", file=sys.stderr)
        sys.exit(2)
    if not (ROOT / a.config).is_file() and not Path(a.config).is_file():
        print(f"error: --config: {a.config} not found", file=sys.stderr)
        sys.exit(2)
    out = ROOT / "logs" / Path(a.config).stem / "ablate"
    if not a.report_only:
        jobs = [(f, lab, fl, s) for f, lab, fl in rows_for(only) for s in a.seeds]
        if a.workers > 1:  # re-launch this command as independent workers that share the claims
            argv = [x for x in sys.argv[1:] if not x.startswith("--workers")]
            if "--workers" in sys.argv:
                i = sys.argv.index("--workers") - 1
                argv = sys.argv[1:][:i] + sys.argv[1:][i + 2 :]
            procs = [subprocess.Popen([sys.executable, __file__, *argv, "--workers", "1"]) for _ in range(a.workers)]
            codes = [p.wait() for p in procs]
            if any(codes):
                print(f"[ablate] worker exit codes {codes}", file=sys.stderr)
        else:
            for f, lab, fl, s in jobs:
                if run_one(a, f, lab, fl, s, out) is not None:
                    report(a, out)
    md = report(a, out)
    print(md.read_text(), file=sys.stderr)
    print(json.dumps({"table": str(md), "json": str(out / "ablate.json")}))


if __name__ == "__main__":
    main()
