import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from enkf.env import EnKFGymEnv, EnKFVecEnv


@pytest.fixture()
def env(tiny_data):
    """The env with a fixed prior inflation (prior(Eb) needs no observation; the adaptive one: test_recipe.py)."""
    cfg, _, _, d = tiny_data
    e = EnKFVecEnv(
        dataclasses.replace(cfg, inflation_adapt=0.0, rotate=False), d, num_envs=4, seed=0
    )  # rotation: below
    e.set_paths([1, 2, 3])
    e.reset()
    return e


def test_observation_shape_and_bounds(env):
    obs = env._obs()
    assert obs.shape == (4, env.M, env.W * env.F, env.N)
    assert obs.abs().max() <= env.bound


def test_continuity_next_forecast_integrates_agent_analysis(env):
    a = 0.3 * torch.randn(4, env.M, env.N, generator=torch.Generator().manual_seed(1))
    xa = env.analysis_from_action(a)
    expected = env.prior(env.fc(xa))  # the agent's next prior: its forecast, inflated by agent_inflation
    t_before = env.t.clone()
    res = env.step(a)
    live = ~(res.terminated | res.truncated)
    assert live.any()
    torch.testing.assert_close(env.Eb[live], expected[live])
    assert (env.t[live] == t_before[live] + 1).all()
    # the increment action adds denormalized increments; zero action keeps the forecast
    torch.testing.assert_close(env.analysis_from_action(torch.zeros_like(a)), env.Eb)


def test_reset_starts_from_stored_background_of_curriculum_paths(env):
    assert set(env.path.tolist()) <= {1, 2, 3}
    env.set_paths([2])
    env.reset()
    assert (env.path == 2).all()
    for b in range(4):
        torch.testing.assert_close(env.Eb[b], env.prior(env.xb_enkf[2, env.t[b]]))  # with agent_inflation
        assert env.t_end[b] == env.t[b] + env.L and env.t_end[b] < env.T


@pytest.mark.parametrize(
    "form,target", [("abs", "online"), ("abs", "truth"), ("crps", "precomputed"), ("crps", "truth")]
)
def test_reward_bounds_and_perfect_score(tiny_data, form, target):
    cfg, _, _, d = tiny_data
    cfg = dataclasses.replace(cfg, reward_form=form, reward_target=target)
    e = EnKFVecEnv(cfg, d, num_envs=3, seed=0)
    e.reset()
    for scale in (0.0, 1.0, 100.0):
        res = e.step(scale * torch.randn(3, e.M, e.N))
        assert res.reward.shape == (3, e.M, e.N)
        assert (res.reward >= -1).all() and (res.reward <= 3).all()  # 1 - score, the score clipped to [-2, 2]
        if form == "abs":  # an absolute error is >= 0
            assert (res.reward <= 1).all()
        assert (res.info["ensemble_reward"] >= -1).all() and (res.info["ensemble_reward"] <= 1).all()
    # an analysis equal to the target earns the maximum (abs: exactly 1)
    if form == "abs":
        tgt = e.teacher().expand(-1, e.M, -1)
        r, ens = e.reward(tgt, e.teacher())
        torch.testing.assert_close(r, torch.ones_like(r))
        torch.testing.assert_close(ens, torch.ones_like(ens))


def test_reward_grains_pool(tiny_data):
    cfg, _, _, d = tiny_data
    for grain in ("member", "ensemble"):
        e = EnKFVecEnv(dataclasses.replace(cfg, reward_grain=grain), d, num_envs=2, seed=0)
        e.reset()
        r = e.step(torch.randn(2, e.M, e.N)).reward
        ref = r[:, :, :1] if grain == "member" else r[:, :1, :1]
        torch.testing.assert_close(r, ref.expand_as(r))


def test_per_member_reward_is_one_minus_member_rmse(tiny_data):
    cfg, _, _, d = tiny_data
    e = EnKFVecEnv(dataclasses.replace(cfg, agents="per-member", reward_target="precomputed"), d, num_envs=2, seed=0)
    e.reset()
    a = 0.3 * torch.randn(2, e.M, e.N)
    xa = e.analysis_from_action(a)
    target = e.xa_enkf[e.path, e.t]  # (B, M, N)
    s = e.nc["state"][1]
    want = (1 - (((xa - target) / s) ** 2).mean(-1).sqrt()).clamp(-1, 1)  # (B, M) by hand
    res = e.step(a)
    torch.testing.assert_close(res.reward, want.unsqueeze(-1).expand_as(res.reward))
    assert res.reward[:, :, 0].std() > 0  # agents get different rewards
    assert res.info["member_rmse"].shape == (2, e.M)


def _crps_env(tiny_data):
    """One env scoring the CRPS against the truth, its truth (1, 1, N) and a seeded generator."""
    cfg, _, _, d = tiny_data
    e = EnKFVecEnv(dataclasses.replace(cfg, reward_form="crps", reward_target="truth"), d, num_envs=1, seed=0)
    e.reset()
    return e, e.teacher(), torch.Generator().manual_seed(0)


def test_crps_reward_is_not_cut_where_a_member_beats_its_spread(tiny_data):
    """A member closer to the truth than to the other members has a negative CRPS contribution: its reward is above 1,
    and moving it further towards the truth still pays (a reward clipped at 1 would make both the same)."""
    e, truth, g = _crps_env(tiny_data)
    ens = truth + 0.5 * torch.randn(1, e.M, e.N, generator=g)
    near, nearer = ens.clone(), ens.clone()
    near[:, 0], nearer[:, 0] = truth[:, 0] + 0.05, truth[:, 0] + 0.01
    r_near, r_nearer = e.reward(near, truth, ens)[0][:, 0], e.reward(nearer, truth, ens)[0][:, 0]
    assert (r_near > 1).all() and (r_nearer > r_near).all()


def test_crps_reward_prefers_spread_matching_target(tiny_data):
    """Against a truth, an ensemble spread around it scores better than the same mean collapsed but offset."""
    e, truth, g = _crps_env(tiny_data)
    spread = truth + 0.5 * torch.randn(1, e.M, e.N, generator=g)
    collapsed = truth + 0.5 + torch.zeros(1, e.M, e.N)
    assert e.reward(spread, truth)[0].mean() > e.reward(collapsed, truth)[0].mean()


def test_halting_on_nan_and_out_of_range(tiny_data):
    cfg, _, _, d = tiny_data
    e = EnKFVecEnv(dataclasses.replace(cfg, action="absolute"), d, num_envs=3, seed=0)
    e.reset()
    a = torch.zeros(3, e.M, e.N)
    a[1] = float("nan")
    res = e.step(a)
    assert bool(res.terminated[1])  # non-finite forecast
    assert not bool(res.terminated[0])
    # out of range: scale the state normalization so any forecast is far outside [-bound, bound]
    e2 = EnKFVecEnv(cfg, d, num_envs=2, seed=0)
    e2.reset()
    e2.nc["state"] = (1000.0, 1.0)
    res = e2.step(torch.zeros(2, e2.M, e2.N))
    assert res.terminated.all() and not res.truncated.any()
    # a halted env was reset to a fresh, finite episode
    assert torch.isfinite(e2.Eb).all() and (e2.ep_len == 0).all()


def test_truncation_and_final_obs(tiny_data):
    cfg, _, _, d = tiny_data
    e = EnKFVecEnv(cfg, d, num_envs=2, seed=0, episode_length=3)
    e.reset()
    for _ in range(3):
        res = e.step(torch.zeros(2, e.M, e.N))
    assert res.truncated.all() and not res.terminated.any()
    fo = res.info["final_obs"]
    assert fo is not None and fo.shape == res.obs.shape and not torch.equal(fo, res.obs)
    assert (res.info["episode_length"] == 3).all()


def test_gym_env_passes_check_env(tiny_data):
    cfg, _, _, d = tiny_data
    env = EnKFGymEnv(cfg, d, paths=[1, 2])
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert -1 <= r <= 3 and "cell_reward" in info


def test_registered_and_make_env(tiny_cfg_file, tiny_data):
    _, out, _, _ = tiny_data
    env = gym.make("EnKF-v0", config_path=str(tiny_cfg_file), data_dir=str(out), disable_env_checker=True)
    obs, _ = env.reset(seed=1)
    assert obs.shape == env.observation_space.shape
    assert math.isfinite(env.step(np.zeros(env.action_space.shape, np.float32))[1])


def test_self_critical_baseline_and_noise_free_dynamics(env):
    """With mean_action given (explore_in_dynamics off), the mean analysis is integrated, the sample is only
    scored, and the sample's reward equals the baseline when the sample is the mean."""
    mean = 0.2 * torch.randn(4, env.M, env.N, generator=torch.Generator().manual_seed(2))
    expected = env.prior(env.fc(env.analysis_from_action(mean)))
    res = env.step(mean + 0.5, mean)
    live = ~(res.terminated | res.truncated)
    torch.testing.assert_close(env.Eb[live], expected[live])
    assert not torch.allclose(res.reward, res.info["reward_mean_action"])
    env.reset()
    res = env.step(mean, mean)
    torch.testing.assert_close(res.reward, res.info["reward_mean_action"])


def test_spread_term_penalizes_collapse(tiny_data):
    cfg, _, _, d = tiny_data
    e = EnKFVecEnv(dataclasses.replace(cfg, spread_weight=1.0, reward_target="precomputed"), d, num_envs=2, seed=0)
    e.reset()
    target = e.teacher()  # (2, M, N) stored EnKF members
    collapsed = target.mean(1, keepdim=True).expand_as(target)
    r_match, _ = e.reward(target, target)
    r_coll, _ = e.reward(collapsed, target)
    e0 = EnKFVecEnv(cfg_no := dataclasses.replace(cfg, reward_target="precomputed"), d, num_envs=2, seed=0)
    e0.path, e0.t = e.path, e.t
    gap_with = (r_match - r_coll).mean()
    gap_without = (e0.reward(target, target)[0] - e0.reward(collapsed, target)[0]).mean()
    assert cfg_no.spread_weight == 0 and gap_with > gap_without > 0


def test_rotation_keeps_mean_and_spread_and_evaluations_repeat(tiny_data):
    """rotate: the integrated analysis is a random member mix of the unrotated one (same mean and covariance, other
    members), and reset_to restarts its stream, so two evaluations of the same policy are equal."""
    cfg, _, _, d = tiny_data
    envs = [
        EnKFVecEnv(dataclasses.replace(cfg, rotate=rot, rtps=0.0), d, 2, seed=0, scoring=False) for rot in (False, True)
    ]
    a = 0.1 * torch.randn(2, cfg.N_ens, cfg.N, generator=torch.Generator().manual_seed(0))
    got = []
    for e in envs:
        e.reset_to([1, 2], 0, 5)
        seen = {}
        e.fc = lambda x, seen=seen: seen.setdefault("xa", x.clone())  # the analysis that is integrated
        e.step(a)
        got.append(seen["xa"])
    plain, rotated = got
    torch.testing.assert_close(rotated.mean(1), plain.mean(1))
    A, B = plain - plain.mean(1, keepdim=True), rotated - rotated.mean(1, keepdim=True)
    torch.testing.assert_close(B.transpose(1, 2) @ B, A.transpose(1, 2) @ A, rtol=1e-4, atol=1e-5)
    assert (rotated - plain).abs().max() > 1e-3
    e = EnKFVecEnv(dataclasses.replace(cfg, rotate=True), d, 2, seed=0, scoring=False)
    runs = []
    for _ in range(2):
        e.reset_to([1, 2], 0, 6)
        runs.append(torch.stack([e.step(a).info["member_rmse"] for _ in range(5)]))
    torch.testing.assert_close(runs[0], runs[1])
