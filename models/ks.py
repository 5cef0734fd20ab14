"""Kuramoto-Sivashinsky: u_t = -u u_x - u_xx - u_xxxx on a periodic domain [0, L) (Kuramoto 1978, Sivashinsky 1977).

Pseudo-spectral in space: the rfft over the last (grid) axis, wavenumbers k_n = 2 pi n / L, the linear operator
k^2 - k^4 applied exactly and the nonlinear term -u u_x = -(u^2)_x / 2 as -0.5 i k rfft(u^2), without dealiasing
(as DAPPER's KS model and Kassam & Trefethen's kursiv.m). Time: exponential time differencing RK4 (ETDRK4, Cox &
Matthews 2002) with the coefficients phi(h L) evaluated by the contour integral of Kassam & Trefethen (2005, SIAM J.
Sci. Comput. 26, 1214): the mean over M points on a circle of radius 1 around each h L, which avoids the cancellation
of the direct formulas near h L = 0.

Defaults are DAPPER's `dapper.mods.KS.Model(dt=0.25, DL=32, Nx=128)`: L = 32 pi, 128 points, dt = 0.25. One
difference, invisible on the attractor: at the Nyquist wavenumber (k = Nx pi / L = 4) kursiv.m and DAPPER set
k = 0, which leaves that mode frozen forever; here it keeps the zero derivative (the Nyquist cosine has u_x = 0 on
the grid) but gets its true linear rate k^2 - k^4 = -240, so a grid-scale sawtooth in a perturbed state decays at
once instead of persisting. States without a Nyquist component (all after one step) follow DAPPER's to round-off.

Everything works on any leading batch shape: states (..., Nx) in and out, torch or numpy, in the input's dtype.
The ETDRK4 coefficients are computed once per (dt, Nx, L, M) in float64 (the contour mean needs it) and cast once
per (dtype, device). The stepping runs in the input's dtype unless `compute_dtype` says otherwise: float32 differs
from float64 by 2e-7 (relative) after one step and ~3e-6 after 10 time units (chaos then amplifies it like any
perturbation, e^(0.09 t)). Cost on one core of this project's CPU, eager: ~90 us per step for one state (overhead),
~1.2-2.3 us per state-step in float32 and ~5-6.5 us in float64 for 640-2560 states.

Attractor (L = 32 pi): std(u) ~ 1.31, max |u| ~ 3.5, spatial mean exactly conserved (0 from the start states here),
largest Lyapunov exponent ~ 0.09 per time unit (Lyapunov time ~ 11, i.e. ~44 steps of 0.25); tests/test_ks.py.
Spin-up: from `initial_condition()` (Kassam & Trefethen's cos(x/16)(1 + sin(x/16)) plus a 1e-3 zero-mean noise)
std(u) reaches its attractor value after ~60 time units; `SPINUP_TIME` = 150 as DAPPER. Keep the noise: the pure
Kassam state is odd about x = L/4, KS preserves that symmetry exactly, and only round-off (growing ~e^(0.13 t))
leads out of that invariant subspace: without noise the state is still antisymmetric to 2e-7 at t = 150 (so is
DAPPER's x0; its bocquet2019 setup draws X0 = GaussRV(mu=x0, C=0.001)) and fully asymmetric only after t ~ 400.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

DT = 0.25
NX = 128
LENGTH = 32 * math.pi
M_CONTOUR = 32
SPINUP_TIME = 150.0  # DAPPER's spin-up from the Kassam-Trefethen state (time units)


def wavenumbers(Nx: int = NX, L: float = LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """(k for the derivative, k for the linear operator) of the rfft modes 0..Nx/2, float64 (Nx/2 + 1,)."""
    if Nx % 2:
        raise ValueError(f"Nx={Nx} must be even")
    k = 2 * np.pi / L * np.arange(Nx // 2 + 1)
    kd = k.copy()
    kd[-1] = 0.0  # the Nyquist cosine has a zero derivative on the grid
    return kd, k


@lru_cache(maxsize=32)
def etdrk4_coefficients(dt: float = DT, Nx: int = NX, L: float = LENGTH, M: int = M_CONTOUR) -> dict:
    """float64 numpy arrays (Nx/2 + 1,) of the ETDRK4 step: E = e^{hL}, E2 = e^{hL/2}, Q, f1, f2, f3 (Kassam &
    Trefethen 2005, eq. 2.5 with their contour means), plus lin = k^2 - k^4 and kd (derivative wavenumbers)."""
    kd, k = wavenumbers(Nx, L)
    lin = k**2 - k**4  # Fourier symbol of -d_xx - d_xxxx
    h = float(dt)
    z = h * lin
    r = np.exp(2j * np.pi * (np.arange(M) + 0.5) / M)  # M points on the unit circle (none on the real axis)
    zr = z[:, None] + r[None, :]  # (K, M)
    ez = np.exp(zr)

    def mean(a):  # contour mean; the exact value is real since z is real
        return a.mean(axis=-1).real

    return dict(
        E=np.exp(z),
        E2=np.exp(z / 2),
        Q=h * mean((np.exp(zr / 2) - 1) / zr),
        f1=h * mean((-4 - zr + ez * (4 - 3 * zr + zr**2)) / zr**3),
        f2=h * mean((2 + zr + ez * (-2 + zr)) / zr**3),
        f3=h * mean((-4 - 3 * zr - zr**2 + ez * (4 - zr)) / zr**3),
        lin=lin,
        kd=kd,
    )


def _as_tensor(u):
    """(tensor, was_numpy)."""
    if isinstance(u, torch.Tensor):
        return u, False
    return torch.as_tensor(np.asarray(u)), True


def tendency(u, L: float = LENGTH):
    """du/dt of the spectral (Fourier-Galerkin, not dealiased) KS equations for u (..., Nx), float64 inside.

    The right-hand side the ETDRK4 step integrates: a classical RK4 of this with a small step (dt <~ 0.01: the
    linear rates reach -240 at Nx=128, L=32 pi) is the reference integrator the tests use."""
    x, was_np = _as_tensor(u)
    Nx = x.shape[-1]
    kd, k = wavenumbers(Nx, L)
    lin = torch.as_tensor(k**2 - k**4)
    g = torch.as_tensor(-0.5j * kd)
    x64 = x.to(torch.float64)
    v = torch.fft.rfft(x64, dim=-1)  # (..., Nx/2+1)
    dv = lin * v + g * torch.fft.rfft(x64 * x64, dim=-1)
    out = torch.fft.irfft(dv, n=Nx, dim=-1).to(x.dtype)  # (..., Nx)
    return out.numpy() if was_np else out


def initial_condition(
    shape: tuple = (),
    Nx: int = NX,
    L: float = LENGTH,
    noise: float = 1e-3,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Kassam & Trefethen's start u = cos(x/16)(1 + sin(x/16)) (for L = 32 pi; x/16 -> 2 pi x / L in general) on
    x_j = j L / Nx, j = 1..Nx, as DAPPER's `x0_Kassam`, plus `noise` times a zero-mean white perturbation per
    state: (*shape, Nx). The mean of u is 0 and stays 0. The noise matters: the pure Kassam state is odd about
    x = L/4 and KS keeps that symmetry exactly, so without noise only round-off leads out of that invariant subspace.
    Spin it up for SPINUP_TIME (`KS().spinup`) to land on the attractor."""
    x = L * torch.arange(1, Nx + 1, dtype=torch.float64) / Nx
    y = 2 * math.pi * x / L
    u = (torch.cos(y) * (1 + torch.sin(y))).expand(*shape, Nx).clone()
    if noise:
        e = torch.randn(*shape, Nx, generator=generator, dtype=torch.float64)
        u += noise * (e - e.mean(-1, keepdim=True))
    return u.to(dtype)


class KS:
    """ETDRK4 integrator of the KS equation with step dt on Nx points of [0, L); states (..., Nx).

    compute_dtype=None steps in each input's own dtype (float32 in, float32 arithmetic); torch.float64 forces
    double precision for any input. The output always has the input's dtype (and type: numpy in, numpy out)."""

    def __init__(self, dt: float = DT, Nx: int = NX, L: float = LENGTH, M: int = M_CONTOUR,
                 compute_dtype: torch.dtype | None = None):  # fmt: skip
        self.dt, self.Nx, self.L, self.M = float(dt), int(Nx), float(L), int(M)
        self.compute_dtype = compute_dtype
        self.coef = etdrk4_coefficients(self.dt, self.Nx, self.L, self.M)  # float64 numpy, shared
        self._cast: dict = {}

    @property
    def grid(self) -> torch.Tensor:
        """x_j = j L / Nx, j = 1..Nx (DAPPER's grid), float64 (Nx,)."""
        return self.L * torch.arange(1, self.Nx + 1, dtype=torch.float64) / self.Nx

    def _coefs(self, dtype: torch.dtype, device) -> tuple:
        key = (dtype, str(device))
        if key not in self._cast:
            c = self.coef
            real = [torch.as_tensor(c[n], dtype=dtype, device=device) for n in ("E", "E2", "Q", "f1", "f2", "f3")]
            cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
            g = torch.as_tensor(-0.5j * c["kd"], dtype=cdtype, device=device)  # -u u_x = g * rfft(u^2)
            self._cast[key] = (*real, g)
        return self._cast[key]

    def _prepare(self, u):
        x, was_np = _as_tensor(u)
        if x.shape[-1] != self.Nx:
            raise ValueError(f"state has {x.shape[-1]} points on its last axis, the model has Nx={self.Nx}")
        dtype = self.compute_dtype or (x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float64)
        return x, was_np, dtype

    def _step_hat(self, v: torch.Tensor, c: tuple) -> torch.Tensor:
        """One ETDRK4 step of the Fourier coefficients v (..., Nx/2+1)."""
        E, E2, Q, f1, f2, f3, g = c
        n = self.Nx

        def nl(w):  # Fourier coefficients of -u u_x = -(u^2)_x / 2
            p = torch.fft.irfft(w, n=n, dim=-1)
            return g * torch.fft.rfft(p * p, dim=-1)

        Nv = nl(v)
        a = E2 * v + Q * Nv
        Na = nl(a)
        b = E2 * v + Q * Na
        Nb = nl(b)
        cc = E2 * a + Q * (2 * Nb - Nv)
        Nc = nl(cc)
        return E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc

    def integrate(self, u, n_steps: int = 1):
        """u (..., Nx) after n_steps ETDRK4 steps, same shape, dtype and type."""
        x, was_np, dtype = self._prepare(u)
        c = self._coefs(dtype, x.device)
        v = torch.fft.rfft(x.to(dtype), dim=-1)  # (..., Nx/2+1)
        for _ in range(int(n_steps)):
            v = self._step_hat(v, c)
        out = torch.fft.irfft(v, n=self.Nx, dim=-1).to(x.dtype)  # (..., Nx)
        return out.numpy() if was_np else out

    def step(self, u):
        """u (..., Nx) after one ETDRK4 step."""
        return self.integrate(u, 1)

    __call__ = integrate

    def trajectory(self, u, n_steps: int):
        """The states after steps 1..n_steps: (n_steps, ..., Nx), same dtype and type as u (..., Nx)."""
        x, was_np, dtype = self._prepare(u)
        c = self._coefs(dtype, x.device)
        v = torch.fft.rfft(x.to(dtype), dim=-1)
        out = torch.empty((int(n_steps),) + tuple(x.shape), dtype=x.dtype, device=x.device)
        for i in range(int(n_steps)):
            v = self._step_hat(v, c)
            out[i] = torch.fft.irfft(v, n=self.Nx, dim=-1)
        return out.numpy() if was_np else out

    def spinup(self, u, time: float = SPINUP_TIME):
        """u (..., Nx) integrated for `time` (rounded to whole steps), e.g. from `initial_condition()`."""
        return self.integrate(u, round(time / self.dt))
