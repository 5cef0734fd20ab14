"""Lorenz-63: dx/dt = s(y - x), dy/dt = x(r - z) - y, dz/dt = xy - bz (Lorenz 1963).

State on the last axis (size 3) by default; any leading batch shape; numpy or torch.
"""

import numpy as np
import torch

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0


def tendency(x, sigma: float = SIGMA, rho: float = RHO, beta: float = BETA, axis: int = -1):
    """Lorenz-63 tendency of `x` (..., 3) (variables on `axis`)."""
    if isinstance(x, torch.Tensor):
        a, b, c = x.unbind(axis)
        return torch.stack((sigma * (b - a), a * (rho - c) - b, a * b - beta * c), dim=axis)
    a, b, c = np.moveaxis(x, axis, 0)
    return np.stack((sigma * (b - a), a * (rho - c) - b, a * b - beta * c), axis=axis)


def rk4_step(x, dt: float, sigma: float = SIGMA, rho: float = RHO, beta: float = BETA, axis: int = -1):
    """One classical 4th-order Runge-Kutta step of length dt."""
    k1 = tendency(x, sigma, rho, beta, axis)
    k2 = tendency(x + 0.5 * dt * k1, sigma, rho, beta, axis)
    k3 = tendency(x + 0.5 * dt * k2, sigma, rho, beta, axis)
    k4 = tendency(x + dt * k3, sigma, rho, beta, axis)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(x, n_steps: int, dt: float, sigma: float = SIGMA, rho: float = RHO, beta: float = BETA):
    """Integrate `x` (..., 3) for n_steps RK4 steps (reference implementation, no compile)."""
    for _ in range(n_steps):
        x = rk4_step(x, dt, sigma, rho, beta)
    return x
