"""Atomic file writes: write to a temp file in the same folder, fsync, then rename over the target.
A reader therefore sees either the old complete file or the new complete file, never a partial one."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np


def write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text(path, text: str) -> None:
    write_bytes(Path(path), text.encode())


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_npz(path, **arrays) -> bytes:
    """Save arrays as an uncompressed .npz atomically; returns the bytes written (for hashing)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    write_bytes(Path(path), data)
    return data


def save_figure(fig, path, dpi: int = 110) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    write_bytes(Path(path), buf.getvalue())


def clean_temp_files(folder) -> int:
    """Remove temp files left by a killed writer; returns how many."""
    n = 0
    for p in Path(folder).glob(".*.tmp-*"):
        p.unlink(missing_ok=True)
        n += 1
    return n
