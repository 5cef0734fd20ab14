"""Export a trained agent as a small self-contained file under pretrained/ (issue 5).

    python scripts/export_pretrained.py --checkpoint logs/L96_1/runs/pretrained_L96_1/checkpoints/best.pt \
        --out pretrained/L96_1.pt --command "python ppo_lstm_enkf.py ..." --commit 5215b2b --budget "30 min, 1 core"

Keeps what evaluation needs (weights, the agent's config, its normalization statistics, the global step) and
drops the optimizer, environment and RNG state; adds the provenance (command, commit, budget, date, the run's
final evaluation). Writes <out> and <out>.json (the provenance, readable) atomically.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", required=True, help="the training command that made the run")
    ap.add_argument("--commit", required=True, help="git commit the run was trained at")
    ap.add_argument("--budget", required=True, help="training budget, e.g. '30 min on one core'")
    a = ap.parse_args(argv)
    try:
        st = P.load_checkpoint(a.checkpoint)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ck = Path(a.checkpoint)
    final = ck.parent.parent / "final.json"
    prov = {
        "command": a.command, "commit": a.commit, "budget": a.budget, "source": str(ck), "step": st.get("global_step"),
        "exported": time.strftime("%Y-%m-%d"), "trained_on": st["config"].get("name"),
        "selected_by": st.get("best") if ck.name == "best.pt" else "final weights",
        "run_final_eval": json.loads(final.read_text()) if final.is_file() else None,
    }  # fmt: skip
    slim = {"agent": st["agent"], "config": st["config"], "normalization": st["normalization"],
            "global_step": st.get("global_step"), "provenance": prov}  # fmt: skip
    buf = _io.BytesIO()
    torch.save(slim, buf)
    out = Path(a.out)
    io.write_bytes(out, buf.getvalue())
    io.write_json(out.with_suffix(".json"), prov)
    print(json.dumps({"out": str(out), "bytes": len(buf.getvalue()), "step": prov["step"]}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
