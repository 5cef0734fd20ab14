"""Export a trained agent as a small self-contained file under pretrained/ (issue 5).

    python scripts/export_pretrained.py --checkpoint logs/L96_1/runs/pretrained_L96_1/checkpoints/best.pt \
        --out pretrained/L96_1.pt --command "python ppo_lstm_enkf.py ..." --commit 5215b2b --budget "30 min, 1 core"

Keeps what evaluation needs (weights, the agent's config, its normalization statistics, the global step) and
drops the optimizer, environment and RNG state; adds the provenance (command, commit, budget, date, the run's
final evaluation), and the agent's zero-shot gain_radius at the smaller ensemble sizes of --zero-shot-sizes
(scripts/evaluate.py zero_shot_choice, on the config's training paths; `make eval` reads it instead of choosing again).
Writes <out> and <out>.json (the provenance, readable) atomically.

    python scripts/export_pretrained.py --add-zero-shot pretrained/L96_2.pt   # only add the zero-shot choices
"""

import argparse
import io as _io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import ppo_lstm_enkf as P  # noqa: E402
from configs.defaults import ConfigError  # noqa: E402
from enkf import io  # noqa: E402
from enkf.data import DataError, ensure_data  # noqa: E402
from enkf.gain import uses_gain  # noqa: E402
from scripts import evaluate as SE  # noqa: E402 (load_agent, zero_shot_choice)


def zero_shot(ck: Path, sizes: list[int], prov: dict) -> dict:
    """prov with zero_shot_gain_radius {size: choice} for the agent in file ck at each size below its own."""
    ag = SE.load_agent(ck)
    ensure_data(ag["cfg"])  # the training paths the choice is made on (made here if missing)
    ch = {str(m): SE.zero_shot_choice(ag, ag["cfg"], m) for m in sizes if m < ag["cfg"].N_ens and uses_gain(ag["cfg"])}
    return prov | {"zero_shot_gain_radius": ch}


def write(out: Path, slim: dict) -> int:
    buf = _io.BytesIO()
    torch.save(slim, buf)
    io.write_bytes(out, buf.getvalue())
    io.write_json(out.with_suffix(".json"), slim["provenance"])
    return len(buf.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="the run's checkpoint (best.pt or latest.pt)")
    ap.add_argument("--out")
    ap.add_argument("--command", help="the training command that made the run")
    ap.add_argument("--commit", help="git commit the run was trained at")
    ap.add_argument("--budget", help="training budget, e.g. '30 min on one core'")
    ap.add_argument("--zero-shot-sizes", default="5,10", help="ensemble sizes below the agent's at which its "
                    "gain_radius is chosen and stored ('' for none); about 0.5-5 min per size on one core (L63 fastest, KS slowest)")  # fmt: skip
    ap.add_argument("--add-zero-shot", metavar="FILE", help="only (re)compute the zero-shot choices of an exported "
                    "FILE and rewrite it, its provenance otherwise kept")  # fmt: skip
    a = ap.parse_args(argv)
    try:
        sizes = [int(m) for m in a.zero_shot_sizes.split(",") if m.strip()]
        if any(m < 2 for m in sizes):
            raise ValueError
    except ValueError:
        print(f"error: --zero-shot-sizes: {a.zero_shot_sizes!r} is not a comma list of sizes >= 2", file=sys.stderr)
        return 2
    if not a.add_zero_shot and (need := [f"--{k}" for k in ("checkpoint", "out", "command", "commit", "budget")
                                         if getattr(a, k) is None]):  # fmt: skip
        print(f"error: {', '.join(need)} required (or --add-zero-shot FILE)", file=sys.stderr)
        return 2
    try:
        st = P.load_checkpoint(a.add_zero_shot or a.checkpoint)
        if a.add_zero_shot:
            out = Path(a.add_zero_shot)
            st["provenance"] = zero_shot(out, sizes, st.get("provenance") or {})
            print(json.dumps({"out": str(out), "bytes": write(out, st), **st["provenance"]["zero_shot_gain_radius"]}))
            return 0
        ck = Path(a.checkpoint)
        final = ck.parent.parent / "final.json"
        prov = {
            "command": a.command, "commit": a.commit, "budget": a.budget, "source": str(ck),
            "step": st.get("global_step"), "exported": time.strftime("%Y-%m-%d"), "trained_on": st["config"].get("name"),
            "selected_by": st.get("best") if ck.name == "best.pt" else "final weights",
            "run_final_eval": json.loads(final.read_text()) if final.is_file() else None,
        }  # fmt: skip
        prov = zero_shot(ck, sizes, prov)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    slim = {"agent": st["agent"], "config": st["config"], "normalization": st["normalization"],
            "global_step": st.get("global_step"), "provenance": prov}  # fmt: skip
    out = Path(a.out)
    print(json.dumps({"out": str(out), "bytes": write(out, slim), "step": prov["step"]}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
