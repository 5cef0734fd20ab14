import numpy as np
import pytest
import torch

from models import Forecaster, lorenz63, lorenz96
from models.forecast import trajectory


def test_l96_tendency_hand_computed():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    F = 8.0
    # dx_n = (x_{n+1} - x_{n-2}) x_{n-1} - x_n + F, periodic
    expected = [(x[(n + 1) % 5] - x[(n - 2) % 5]) * x[(n - 1) % 5] - x[n] + F for n in range(5)]
    # n=0: (2 - 4) * 5 - 1 + 8 = -3
    assert expected[0] == -3.0
    np.testing.assert_allclose(lorenz96.tendency(x, F), expected)
    np.testing.assert_allclose(lorenz96.tendency(torch.tensor(x), F).numpy(), expected)


def test_l96_fixed_point_and_energy():
    # x = F everywhere is a fixed point of Lorenz-96
    x = np.full(10, 5.0)
    np.testing.assert_allclose(lorenz96.tendency(x, 5.0), 0.0, atol=1e-12)
    # the advection term conserves energy: sum x * ((x_{n+1} - x_{n-2}) x_{n-1}) = 0
    x = np.random.default_rng(0).normal(size=12)
    adv = lorenz96.tendency(x, 0.0) + x
    assert abs(np.dot(x, adv)) < 1e-12


def test_l63_tendency_hand_computed():
    x = np.array([1.0, 2.0, 3.0])
    # s(y-x) = 10, x(r-z) - y = 25 - 2 = 23, xy - bz = 2 - 8 = -6
    np.testing.assert_allclose(lorenz63.tendency(x), [10.0, 23.0, -6.0])
    np.testing.assert_allclose(lorenz63.tendency(torch.tensor(x)).numpy(), [10.0, 23.0, -6.0])
    # batched along another axis
    xb = np.stack([x, 2 * x], axis=1)  # (3, 2) variables first
    np.testing.assert_allclose(lorenz63.tendency(xb, axis=0)[:, 0], [10.0, 23.0, -6.0])


@pytest.mark.parametrize("mod,kw,n", [(lorenz96, {"F": 8.0}, 8), (lorenz63, {}, 3)])
def test_rk4_fourth_order_convergence(mod, kw, n):
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=n) + (np.array([0, 0, 20.0]) if n == 3 else 0)
    T = 0.2
    ref = mod.integrate(x0, 3200, T / 3200, **kw)
    errs = [np.abs(mod.integrate(x0, k, T / k, **kw) - ref).max() for k in (20, 40, 80)]
    orders = [np.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(3.7 < o < 4.3 for o in orders), (errs, orders)


def test_rk4_step_hand_computed_linear_part():
    # With F=0 and x=0 the state stays 0; with a constant offset the tendency is F - x (advection vanishes)
    x = np.full(6, 2.0)
    out = lorenz96.rk4_step(x, 0.1, F=3.0)
    exact = 3.0 + (2.0 - 3.0) * np.exp(-0.1)  # dx/dt = F - x for a constant state
    np.testing.assert_allclose(out, exact, rtol=1e-7)


def test_batch_shapes_and_backends_agree():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 10))
    a = lorenz96.integrate(x, 5, 0.01, 8.0)
    b = lorenz96.integrate(torch.tensor(x), 5, 0.01, 8.0).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(a[1, 2], lorenz96.integrate(x[1, 2], 5, 0.01, 8.0), rtol=1e-12)


@pytest.mark.parametrize("model,params,n", [("lorenz96", {"F": 8.0}, 10), ("lorenz63", {}, 3)])
def test_forecaster_matches_reference(model, params, n):
    x = torch.randn(2, 5, n, dtype=torch.float64) + (torch.tensor([0, 0, 20.0]) if n == 3 else 0)
    fc = Forecaster(model, params, dt=0.01, n_steps=23, compile=False, chunk=10)  # 2 chunks + 3 tail steps
    mod = lorenz96 if model == "lorenz96" else lorenz63
    ref = mod.integrate(x, 23, 0.01, **params)
    out = fc(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_forecaster_bucket_padding_is_invisible():
    x = torch.randn(3, 7, 10, dtype=torch.float64)  # 21 states: padded to 64 inside
    plain = Forecaster("lorenz96", {"F": 8.0}, dt=0.01, n_steps=20, compile=False)
    padded = Forecaster("lorenz96", {"F": 8.0}, dt=0.01, n_steps=20, compile=False, bucket=True)
    out = padded(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, plain(x), rtol=0, atol=0)


def test_trajectory_keeps_later_half():
    x0 = torch.randn(6, dtype=torch.float64)
    kept, last = trajectory("lorenz96", {"F": 8.0}, 0.01, x0, 60, keep_from=30, compile=False, chunk=25)
    assert kept.shape == (30, 6)
    torch.testing.assert_close(kept[0], lorenz96.integrate(x0, 31, 0.01, 8.0))
    torch.testing.assert_close(kept[-1], lorenz96.integrate(x0, 60, 0.01, 8.0))
    torch.testing.assert_close(last, kept[-1])


@pytest.mark.parametrize(
    "model,params,n,dt",
    [("lorenz96", {"F": 5.0}, 20, 2.5e-3), ("lorenz63", {"sigma": 10.0, "rho": 28.0, "beta": 8 / 3}, 3, 0.01)],
)
def test_fused_loop_is_the_torch_trajectory_bit_for_bit(model, params, n, dt):
    """The C stepping loop of the spin-up does the same float64 operations in the same order as the torch code."""
    from models import fused

    if not fused.available():
        pytest.skip("no C compiler here: the spin-up runs the torch trajectory (the code under comparison)")
    x0 = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) + (20.0 if n == 3 else 5.0)
    kept_t, last_t = trajectory(model, params, dt, x0, 3000, keep_from=1000, compile=False)
    kept_f, last_f = fused.trajectory(model, params, dt, x0.numpy(), 3000, keep_from=1000)
    assert kept_f.shape == (2000, n) and kept_f.dtype == np.float64
    np.testing.assert_array_equal(kept_f, kept_t.numpy())
    np.testing.assert_array_equal(last_f, last_t.numpy())
    with pytest.raises(ValueError, match="keep_from"):
        fused.trajectory(model, params, dt, x0.numpy(), 10, keep_from=11)


def test_forecaster_compiles_one_graph_per_shape_whatever_the_grad_mode():
    """The forecast is never differentiated: called with autograd on and off (the evaluation suite does both), it
    compiles one graph per batch shape, not one per grad mode (which exhausted dynamo's recompile limit on L63's
    filter grid and left the rest of the suite running eagerly)."""
    from torch._dynamo.utils import counters

    fc = Forecaster("lorenz63", {}, dt=0.01, n_steps=2, chunk=2)
    x = torch.randn(5, 3)
    before = counters["stats"]["unique_graphs"]
    with_grad = fc(x.clone().requires_grad_())
    with torch.no_grad():
        without = fc(x)
    assert counters["stats"]["unique_graphs"] - before == 1
    assert not with_grad.requires_grad
    torch.testing.assert_close(with_grad, without, rtol=0, atol=0)
