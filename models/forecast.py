"""Batched forecaster: integrate any batch of states for a fixed number of RK4 steps, fast.

Kuramoto-Sivashinsky ('ks') is not stepped by RK4 here: the forecaster and `trajectory` delegate to the ETDRK4
integrator `models.ks.KS` (eager torch, FFTs; states in their own dtype), one per grid size N.

Measured on this project's 2-core CPU (float32, 2100 states of N=20): rolling along the last (grid) axis
makes torch.compile's kernels slow (modulo indexing on the inner axis defeats vectorization), while the
grid-first layout (N, batch) compiles to ~40-80 us per RK4 step, 5-8x faster than eager. So the forecaster
moves the grid axis to the front once per call, runs compiled chunks of `chunk` RK4 steps, and moves it back.
"""

from functools import partial

import torch

from models import ks, lorenz63, lorenz96


def make_tendency(model: str, params: dict):
    """Return f(x, axis) for 'lorenz96' (params: F) or 'lorenz63' (params: sigma, rho, beta). 'ks' has no RK4
    tendency here (the forecaster integrates it with ETDRK4); see `models.ks.tendency`."""
    if model == "lorenz96":
        return partial(lorenz96.tendency, F=float(params["F"]))
    if model == "lorenz63":
        return partial(
            lorenz63.tendency,
            sigma=float(params.get("sigma", lorenz63.SIGMA)),
            rho=float(params.get("rho", lorenz63.RHO)),
            beta=float(params.get("beta", lorenz63.BETA)),
        )
    if model == "ks":
        raise ValueError("model 'ks' is integrated by ETDRK4 (models.ks.KS), not by an RK4 tendency")
    raise ValueError(f"unknown model {model!r}; allowed: 'lorenz96', 'lorenz63', 'ks'")


class _KSModels:
    """One `ks.KS(dt, Nx=N, L)` per grid size N, made on first use (the forecaster learns N from its input)."""

    def __init__(self, params: dict, dt: float):
        self.L, self.dt = float(params.get("L", ks.LENGTH)), float(dt)
        self._by_n: dict[int, ks.KS] = {}

    def __call__(self, N: int) -> ks.KS:
        if N not in self._by_n:
            self._by_n[N] = ks.KS(self.dt, Nx=N, L=self.L)
        return self._by_n[N]


def _rk4_chunk(x, n: int, dt: float, f):
    """n RK4 steps of x (N, B) with the grid on axis 0."""
    for _ in range(n):
        k1 = f(x, axis=0)
        k2 = f(x + 0.5 * dt * k1, axis=0)
        k3 = f(x + 0.5 * dt * k2, axis=0)
        k4 = f(x + dt * k3, axis=0)
        x = x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return x


class Forecaster:
    """Integrates states (..., N) forward by `n_steps` RK4 steps of length `dt`.

    compile=True uses torch.compile on chunks of `chunk` steps (one-off compile of ~10 s per new batch
    shape); compile=False runs the same arithmetic eagerly (used by tests and tiny runs).

    model 'ks' (params: L): `n_steps` ETDRK4 steps of `models.ks.KS(dt, Nx=N, L)`, eager (compile, chunk and
    bucket do not apply), in the input's dtype; `run_grid_first` is not available.
    """

    def __init__(self, model: str, params: dict, dt: float, n_steps: int, compile: bool = True, chunk: int = 10,
                 bucket: bool = False):  # fmt: skip
        self.model = model
        self.dt, self.n_steps = float(dt), int(n_steps)
        if model == "ks":
            self.ks = _KSModels(params, self.dt)
            self.bucket = False
            return
        self.f = make_tendency(model, params)
        self.chunk = max(1, min(int(chunk), self.n_steps))
        self.n_chunks, self.rest = divmod(self.n_steps, self.chunk)
        body = partial(_rk4_chunk, n=self.chunk, dt=self.dt, f=self.f)
        tail = partial(_rk4_chunk, n=self.rest, dt=self.dt, f=self.f)
        if compile:
            body = torch.compile(body, dynamic=False)
            tail = torch.compile(tail, dynamic=False) if self.rest else tail
        self._body, self._tail = body, tail
        # bucket: pad the batch to a power of two (>= 64) so that callers with many different batch sizes
        # (the evaluation suite) trigger a handful of compiles instead of one per size
        self.bucket = bool(bucket)
        if compile and bucket:
            # one compiled graph per bucket (64 .. 2^20 states: 15 sizes); dynamo's default limit of 8 graphs per
            # function would silently drop the larger buckets to eager code (measured: the N_ens=40 part of
            # `make eval` took 431 s that way on a shared core, 201 s with this limit on two idle cores)
            cfg = torch._dynamo.config
            cfg.recompile_limit = max(cfg.recompile_limit, 32)

    @torch.no_grad()  # never differentiated; one grad mode, so one compiled graph per batch shape, not two
    def run_grid_first(self, xt: torch.Tensor, n_steps: int | None = None) -> torch.Tensor:
        """Integrate xt (N, B) (grid first) by n_steps (a multiple of `chunk` unless it is n_steps)."""
        if self.model == "ks":
            raise ValueError("run_grid_first is for the RK4 models; call the forecaster on (..., N) states for 'ks'")
        if n_steps is None or n_steps == self.n_steps:
            for _ in range(self.n_chunks):
                xt = self._body(xt)
            return self._tail(xt) if self.rest else xt
        if n_steps % self.chunk:
            raise ValueError(f"n_steps={n_steps} must be a multiple of chunk={self.chunk}")
        for _ in range(n_steps // self.chunk):
            xt = self._body(xt)
        return xt

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., N) -> x after n_steps RK4 steps, same shape and dtype (no autograd graph)."""
        if self.model == "ks":
            return self.ks(x.shape[-1]).integrate(x, self.n_steps)
        shape = x.shape
        xt = x.reshape(-1, shape[-1]).T.contiguous()  # (N, B)
        B = xt.shape[1]
        if self.bucket:
            Bp = max(64, 1 << (B - 1).bit_length())
            xt = torch.cat([xt, xt.new_zeros(xt.shape[0], Bp - B)], 1)  # zero states stay finite
        xt = self.run_grid_first(xt)[:, :B]
        return xt.T.reshape(shape).contiguous()


def _rk4_history(x, n: int, dt: float, f):
    """n RK4 steps of x (N, B); returns every state, (n, N, B)."""
    out = []
    for _ in range(n):
        x = _rk4_chunk(x, 1, dt, f)
        out.append(x)
    return torch.stack(out)


def trajectory(
    model: str,
    params: dict,
    dt: float,
    x0: torch.Tensor,
    n_steps: int,
    keep_from: int,
    compile: bool = True,
    chunk: int = 25,
    progress=None,
):
    """Integrate one or more states x0 (..., N) for n_steps; return (states after steps keep_from+1..n_steps,
    shape (n_steps - keep_from, ..., N)) and the final state. The long spin-up uses this: a compiled chunk of
    25 steps on a single state costs ~3.5 us per step here, 6x less than a numpy loop. Model 'ks' (params: L):
    ETDRK4 steps of `models.ks.KS` (eager, in x0's dtype), `chunk` steps between progress calls."""
    if model == "ks":
        return _ks_trajectory(_KSModels(params, dt)(x0.shape[-1]), x0, n_steps, keep_from, chunk, progress)
    f = make_tendency(model, params)
    shape = x0.shape
    x = x0.reshape(-1, shape[-1]).T.contiguous()  # (N, B)
    body = partial(_rk4_history, n=chunk, dt=float(dt), f=f)
    if compile:
        body = torch.compile(body, dynamic=False)
    kept = torch.empty((n_steps - keep_from,) + tuple(x.shape), dtype=x.dtype)  # (K, N, B)
    done = 0
    while done < n_steps:
        n = min(chunk, n_steps - done)
        hist = body(x) if n == chunk else _rk4_history(x, n, float(dt), f)  # (n, N, B)
        lo, hi = done + 1, done + n  # step numbers of hist[0] and hist[-1]
        if hi > keep_from:
            a = max(lo, keep_from + 1)
            kept[a - keep_from - 1 : hi - keep_from] = hist[a - lo :]
        x = hist[-1]
        done += n
        if progress is not None:
            progress(n)
    kept = kept.permute(0, 2, 1).reshape((n_steps - keep_from,) + tuple(shape))
    return kept, x.T.reshape(shape)


def _ks_trajectory(m: ks.KS, x0: torch.Tensor, n_steps: int, keep_from: int, chunk: int, progress):
    """`trajectory` for model 'ks': (states after steps keep_from+1..n_steps, (n_steps - keep_from, ..., N);
    the final state)."""
    kept = torch.empty((n_steps - keep_from,) + tuple(x0.shape), dtype=x0.dtype)
    x, done, chunk = x0, 0, max(1, int(chunk))
    while done < n_steps:
        n = min(chunk, n_steps - done)
        if done + n <= keep_from:  # nothing of this chunk is kept
            x = m.integrate(x, n)
        else:
            hist = m.trajectory(x, n)  # (n, ..., N): steps done+1 .. done+n
            a = max(done + 1, keep_from + 1)
            kept[a - keep_from - 1 : done + n - keep_from] = hist[a - done - 1 :]
            x = hist[-1]
        done += n
        if progress is not None:
            progress(n)
    return kept, x
