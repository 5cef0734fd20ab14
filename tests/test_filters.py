import math

import pytest
import torch

from configs.defaults import make_config
from enkf.cycle import assimilate, make_forecaster, obs_setup, simulate_truth, time_mean
from enkf.filters import ObsOp, eakf, etkf, gaspari_cohn, inflate, letkf, make_analysis, obs_only, pertobs

D = torch.float64


def _problem(B=3, M=30, N=6, idx=(0, 2, 3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    L = torch.randn(N, N, generator=g, dtype=D)
    E = torch.randn(B, M, N, generator=g, dtype=D) @ L + 1.0  # (B, M, N)
    obs = ObsOp(N, idx=list(idx))
    r = torch.tensor([0.5, 1.0, 0.3, 2.0], dtype=D)[: len(idx)]
    y = torch.randn(B, len(idx), generator=g, dtype=D)
    return E, obs, r, y


def _kalman(E, obs, r, y):
    """Exact Kalman update of the ensemble's sample mean and covariance."""
    M, N = E.shape[-2:]
    m = E.mean(-2)
    A = E - m.unsqueeze(-2)
    P = A.transpose(-1, -2) @ A / (M - 1)
    H = torch.zeros(obs.p, N, dtype=D)
    H[range(obs.p), obs.positions] = 1.0
    S = H @ P @ H.T + torch.diag(r)
    K = P @ H.T @ torch.linalg.inv(S)
    ma = m + (K @ (y - m @ H.T).unsqueeze(-1)).squeeze(-1)
    Pa = P - K @ H @ P
    return ma, Pa


def _moments(E):
    M = E.shape[-2]
    m = E.mean(-2)
    A = E - m.unsqueeze(-2)
    return m, A.transpose(-1, -2) @ A / (M - 1)


@pytest.mark.parametrize("name", ["eakf", "etkf", "letkf"])
def test_square_root_filters_are_exact_kalman(name):
    # Deterministic square-root filters reproduce the Kalman mean and covariance of the ensemble's
    # own sample statistics exactly, for any ensemble size (LETKF with an infinite radius = ETKF).
    E, obs, r, y = _problem()
    ma, Pa = _kalman(E, obs, r, y)
    Ea = make_analysis(name, obs, r, 1.0, radius=1e9)(E, y)
    m, P = _moments(Ea)
    torch.testing.assert_close(m, ma, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(P, Pa, rtol=1e-9, atol=1e-9)


def test_pertobs_matches_kalman_for_large_ensemble():
    E, obs, r, y = _problem(B=2, M=20000, seed=3)
    ma, Pa = _kalman(E, obs, r, y)
    Ea = pertobs(E, y, obs, r, generator=torch.Generator().manual_seed(0))
    m, P = _moments(Ea)
    torch.testing.assert_close(m, ma, atol=1e-9, rtol=0)  # centred perturbations: the mean is exact
    assert (P - Pa).abs().max() < 0.05 * Pa.abs().max()


def test_dense_H_equals_index_H():
    E, obs, r, y = _problem()
    H = torch.zeros(obs.p, 6, dtype=D)
    H[range(obs.p), obs.positions] = 1.0
    dense = ObsOp(6, H=H)
    for f in (eakf, etkf):
        torch.testing.assert_close(f(E, y, dense, r), f(E, y, obs, r))


def test_inflation_scales_anomalies_only():
    E, *_ = _problem()
    Ei = inflate(E, 2.5)
    torch.testing.assert_close(Ei.mean(-2), E.mean(-2))
    torch.testing.assert_close(Ei - Ei.mean(-2, keepdim=True), 2.5 * (E - E.mean(-2, keepdim=True)))
    # a per-batch tensor of inflations acts per batch element
    infl = torch.tensor([1.0, 2.0, 3.0], dtype=D)
    Eb = inflate(E, infl)
    for b in range(3):
        torch.testing.assert_close(Eb[b], inflate(E[b], float(infl[b])))


def test_gaspari_cohn_shape():
    d = torch.linspace(0, 5, 501, dtype=D)
    g = gaspari_cohn(d, 2.0)
    assert g[0] == pytest.approx(1.0)
    assert (g[d >= 4.0] == 0).all() and (g[d < 3.99] > 0).all()
    assert (g[1:] <= g[:-1] + 1e-12).all()  # monotone
    assert (g[1:] - g[:-1]).abs().max() < 0.02  # continuous


def test_letkf_localization_keeps_far_points_untouched():
    # one observation at grid point 0; with radius 1 (support 2) points >= 2 away get no update
    E, _, _, _ = _problem(N=10, idx=(0,))
    obs = ObsOp(10, idx=[0])
    y = torch.zeros(E.shape[0], 1, dtype=D)
    Ea = letkf(E, y, obs, torch.tensor([0.5], dtype=D), radius=1.0)
    torch.testing.assert_close(Ea[..., 3:8], E[..., 3:8])
    assert (Ea[..., 0] - E[..., 0]).abs().max() > 1e-3


@pytest.mark.parametrize("N,stride,M,radius,periodic", [
    (128, 8, 20, 8.0, True),  # Kuramoto-Sivashinsky-like: 4 local observations per point
    (128, 8, 20, 16.0, True),  # 8
    (40, 4, 20, 4.0, True),  # L96_sparse-like
    (20, 1, 20, 4.0, True),  # full observation, 15 local observations < M
    (40, 1, 30, 2.0, False),  # non-periodic
])  # fmt: skip
def test_letkf_local_observation_space_equals_ensemble_space_transform(N, stride, M, radius, periodic):
    # letkf computes each point's transform in the space of its k < M local observations (`_local_letkf`); the
    # (M, M) ensemble-space transform `_transform` of Hunt et al. (2007) must give the same analysis to round-off
    from enkf.filters import _as_r, _transform, loc_weights

    g = torch.Generator().manual_seed(N + M)
    obs = ObsOp(N, idx=list(range(0, N, stride)))
    E = 1.3 * torch.randn(2, 3, M, N, generator=g, dtype=D) + 0.5
    y = torch.randn(2, 3, obs.p, generator=g, dtype=D)
    r = 0.2 + torch.rand(obs.p, generator=g, dtype=D)
    infl = 1.0 + torch.rand(2, 3, generator=g, dtype=D)
    rho = loc_weights(obs, N, radius, periodic)
    assert 0 < int((rho > 0).sum(-1).max()) < M  # the local path is the one under test
    Ei = inflate(E, infl)
    xm = Ei.mean(-2, keepdim=True)
    HE = obs(Ei)
    Y = HE - HE.mean(-2, keepdim=True)
    W, wm = _transform(Y.unsqueeze(-3), (y - HE.mean(-2)).unsqueeze(-2), rho / _as_r(r, obs.p, Ei), M)
    ref = xm + torch.einsum("...nji,...jn->...in", W + wm.unsqueeze(-1), Ei - xm)
    torch.testing.assert_close(letkf(E, y, obs, r, infl, radius, periodic), ref, rtol=1e-12, atol=1e-12)


def test_obs_only_baseline():
    E, obs, r, y = _problem()
    Ea = obs_only(E, y, obs)
    torch.testing.assert_close(Ea[..., obs.positions], y.unsqueeze(-2).expand(-1, E.shape[1], -1))
    torch.testing.assert_close(Ea[..., 1], E[..., 1])


@pytest.fixture(scope="module")
def l96_1_problem():
    """Truths and observations on the L96_1 setup (N=20, F=5, R=0.1 I, inflation 5), made once for every filter."""
    cfg = make_config(dict(name="L96_1", N=20, F=5.0, obs_noise_var=0.1, inflation=5.0, compile=False), "test")
    g = torch.Generator().manual_seed(0)
    obs, r = obs_setup(cfg)
    fc = make_forecaster(cfg)
    x = 5.0 + torch.randn(4, 20, generator=g)
    for _ in range(20):
        x = fc(x)  # onto the attractor
    truth, y = simulate_truth(x, 60, fc, obs, r, g, progress=False)
    E0 = x.unsqueeze(1) + torch.randn(4, cfg.N_ens, 20, generator=g)
    return cfg, obs, r, fc, truth, y, E0


@pytest.mark.parametrize("name", ["eakf", "etkf", "pertobs", "letkf"])
def test_filters_reduce_error_on_L96_1(name, l96_1_problem):
    """On the L96_1 setup (N=20, F=5, R=0.1 I, inflation 5), every filter's analysis beats its forecast."""
    cfg, obs, r, fc, truth, y, E0 = l96_1_problem
    analysis = make_analysis(name, obs, r, cfg.inflation, radius=4.0, generator=torch.Generator().manual_seed(1))
    res = assimilate(E0, y, truth, fc, analysis, progress=False)
    a, f = time_mean(res["rmse_a"], 10), time_mean(res["rmse_f"], 10)
    assert torch.isfinite(a).all()
    assert (a < 0.8 * f).all(), (name, a, f)
    assert (a < math.sqrt(0.1)).all()  # better than observation-only (whose RMSE is ~ the obs error std)


@pytest.mark.parametrize("M", [30, 5])  # N = 6: a full-rank and a rank-4 prior covariance
def test_state_space_gain_and_root_are_the_etkf(M):
    """gain_and_root without localization: K H (y - H mean) is the ETKF's mean update and S A its analysis anomalies,
    with partial observation; S P S^T = (I - K H) P."""
    from enkf.filters import gain_and_root

    E, obs, _, y = _problem(M=M)
    r = 0.5  # the env's R = r I
    A = E - E.mean(1, keepdim=True)  # (B, M, N)
    idx = obs.idx
    KH, S = gain_and_root(A, torch.ones(6, 6, dtype=D), idx, r)
    want = etkf(E, y, obs, r)
    d = torch.zeros(3, 6, dtype=D)
    d[:, idx] = y - E.mean(1)[:, idx]
    torch.testing.assert_close(E.mean(1) + (KH @ d.unsqueeze(-1)).squeeze(-1), want.mean(1))
    torch.testing.assert_close(A @ S.transpose(1, 2), want - want.mean(1, keepdim=True))
    P = A.transpose(1, 2) @ A / (M - 1)
    torch.testing.assert_close(S @ P @ S.transpose(1, 2), P - KH @ P)
    assert (KH[..., [1, 4]] == 0).all()  # unobserved points take no innovation
