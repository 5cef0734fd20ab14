"""A fused RK4 stepping loop in C for one long trajectory (the data spin-up: 1,000,000 sequential steps).

The spin-up is one state of N numbers stepped a million times; per step there is too little work for torch
(every operator call costs microseconds, torch.compile's warm-up costs tens of seconds). A 40-line C loop,
built once with the system C compiler (the one torch.compile needs anyway) and loaded with ctypes, runs the
whole trajectory in well under a second.

The C code performs the same IEEE double operations in the same order as `lorenz96.rk4_step` /
`lorenz63.rk4_step` on float64 tensors (built with -ffp-contract=off, no fast-math), so it reproduces the
eager torch trajectory bit for bit; tests/test_models.py checks this. `trajectory` falls back to the torch
implementation (`models.forecast.trajectory`) when no C compiler is available.

Only the Lorenz models (`MODELS`) are here: Kuramoto-Sivashinsky needs FFTs and a far shorter spin-up (tens of
thousands of ETDRK4 steps), which `models.forecast.trajectory` runs in torch (enkf.data.spinup picks that).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void tend(int model, const double *p, int n, const double *x, double *k) {
    if (model == 0) { /* Lorenz-96: (x[i+1] - x[i-2]) * x[i-1] - x[i] + F */
        for (int i = 0; i < n; i++) {
            double xp1 = x[(i + 1) % n], xm1 = x[(i + n - 1) % n], xm2 = x[(i + n - 2) % n];
            k[i] = (xp1 - xm2) * xm1 - x[i] + p[0];
        }
    } else { /* Lorenz-63 */
        double a = x[0], b = x[1], c = x[2];
        k[0] = p[0] * (b - a);
        k[1] = a * (p[1] - c) - b;
        k[2] = a * b - p[2] * c;
    }
}

/* n_steps RK4 steps of x (n); the states after steps keep_from+1 .. n_steps go to kept (row-major). */
int rk4_trajectory(int model, const double *p, int n, double dt, int64_t n_steps, int64_t keep_from,
                   double *x, double *kept) {
    double *buf = malloc(5 * (size_t)n * sizeof(double));
    if (!buf) return -1;
    double *k1 = buf, *k2 = buf + n, *k3 = buf + 2 * n, *k4 = buf + 3 * n, *t = buf + 4 * n;
    double h = 0.5 * dt, s = dt / 6.0;
    for (int64_t step = 1; step <= n_steps; step++) {
        tend(model, p, n, x, k1);
        for (int i = 0; i < n; i++) t[i] = x[i] + h * k1[i];
        tend(model, p, n, t, k2);
        for (int i = 0; i < n; i++) t[i] = x[i] + h * k2[i];
        tend(model, p, n, t, k3);
        for (int i = 0; i < n; i++) t[i] = x[i] + dt * k3[i];
        tend(model, p, n, t, k4);
        for (int i = 0; i < n; i++) x[i] = x[i] + s * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        if (step > keep_from) memcpy(kept + (step - keep_from - 1) * n, x, sizeof(double) * n);
    }
    free(buf);
    return 0;
}
"""
MODELS = ("lorenz96", "lorenz63")  # the models the C loop knows
_FLAGS = ["-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math"]
_lib: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(tempfile.gettempdir(), f"rl4da-{os.getuid()}")
    return Path(base) / "rl4da_fused"


def _compile(cc: str, so: Path) -> None:
    """Build the shared library at `so` atomically (a concurrent build never loads a half-written file)."""
    so.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=so.parent, suffix=".so.tmp")
    os.close(fd)
    src = Path(tmp).with_suffix(".c")
    try:
        src.write_text(_SRC)
        r = subprocess.run([cc, *_FLAGS, "-o", tmp, str(src)], capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise OSError(f"{cc}: {r.stderr.strip()[:200]}")
        os.replace(tmp, so)
    finally:
        Path(tmp).unlink(missing_ok=True)
        src.unlink(missing_ok=True)


def _build() -> ctypes.CDLL | None:
    """Compile the C source once per source/flags/compiler (cached by hash); None when that is not possible."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if os.environ.get("RL4DA_NO_FUSED") or not cc:
        return None
    key = hashlib.sha256((_SRC + " ".join(_FLAGS) + cc).encode()).hexdigest()[:16]
    so = _cache_dir() / f"rk4_{key}.so"
    try:
        if not so.is_file():
            _compile(cc, so)
        lib = ctypes.CDLL(str(so))
    except (OSError, subprocess.SubprocessError) as e:
        print(f"[models] fused RK4 loop unavailable ({e}); the spin-up uses torch", file=sys.stderr)
        return None
    f = lib.rk4_trajectory
    dp = ctypes.POINTER(ctypes.c_double)
    f.argtypes = [ctypes.c_int, dp, ctypes.c_int, ctypes.c_double, ctypes.c_int64, ctypes.c_int64, dp, dp]
    f.restype = ctypes.c_int
    return lib


def available() -> bool:
    global _lib
    if _lib is None:
        _lib = _build() or False
    return bool(_lib)


def trajectory(model: str, params: dict, dt: float, x0: np.ndarray, n_steps: int, keep_from: int):
    """One state x0 (N,) float64 stepped n_steps times; returns (states after steps keep_from+1..n_steps,
    shape (n_steps - keep_from, N), float64; the final state). Raises RuntimeError if the loop is unavailable."""
    if not available():
        raise RuntimeError("fused RK4 loop unavailable (no C compiler)")
    x = np.array(x0, dtype=np.float64).ravel().copy()
    n = x.shape[0]
    if model == "lorenz96":
        m, p = 0, [float(params["F"])]
    elif model == "lorenz63":
        from models import lorenz63

        m = 1
        p = [float(params.get(k, d)) for k, d in (("sigma", lorenz63.SIGMA), ("rho", lorenz63.RHO),
                                                  ("beta", lorenz63.BETA))]  # fmt: skip
        if n != 3:
            raise ValueError(f"lorenz63 needs N = 3, got {n}")
    else:
        raise ValueError(f"the fused RK4 loop knows {', '.join(map(repr, MODELS))}, not {model!r} "
                         "(use models.forecast.trajectory)")  # fmt: skip
    if not 0 <= keep_from <= n_steps:
        raise ValueError(f"need 0 <= keep_from <= n_steps, got {keep_from}, {n_steps}")
    kept = np.empty((n_steps - keep_from, n), dtype=np.float64)
    pa = np.asarray(p, dtype=np.float64)
    dp = ctypes.POINTER(ctypes.c_double)
    rc = _lib.rk4_trajectory(m, pa.ctypes.data_as(dp), n, float(dt), int(n_steps), int(keep_from),
                             x.ctypes.data_as(dp), kept.ctypes.data_as(dp))  # fmt: skip
    if rc:
        raise ValueError(f"fused RK4 loop failed (code {rc})")
    return kept, x
