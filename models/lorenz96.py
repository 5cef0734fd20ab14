"""Lorenz-96: dx_n/dt = (x_{n+1} - x_{n-2}) x_{n-1} - x_n + F on a periodic grid (Lorenz 1996).

Vectorized with a roll along the grid axis, as DAPPER does, so the same code runs on a single state (N,),
an ensemble (N_ens, N) or a batch of ensembles (B, N_ens, N), in numpy or torch.
"""

import numpy as np
import torch


def _roll(x, shift: int, axis: int):
    if isinstance(x, torch.Tensor):
        return torch.roll(x, shift, dims=axis)
    return np.roll(x, shift, axis=axis)


def tendency(x, F: float, axis: int = -1):
    """Lorenz-96 tendency of `x` (..., N) (grid on `axis`)."""
    xp1 = _roll(x, -1, axis)  # x_{n+1}
    xm1 = _roll(x, 1, axis)  # x_{n-1}
    xm2 = _roll(x, 2, axis)  # x_{n-2}
    return (xp1 - xm2) * xm1 - x + F


def rk4_step(x, dt: float, F: float, axis: int = -1):
    """One classical 4th-order Runge-Kutta step of length dt."""
    k1 = tendency(x, F, axis)
    k2 = tendency(x + 0.5 * dt * k1, F, axis)
    k3 = tendency(x + 0.5 * dt * k2, F, axis)
    k4 = tendency(x + dt * k3, F, axis)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(x, n_steps: int, dt: float, F: float):
    """Integrate `x` (..., N) for n_steps RK4 steps (reference implementation, no compile)."""
    for _ in range(n_steps):
        x = rk4_step(x, dt, F)
    return x
