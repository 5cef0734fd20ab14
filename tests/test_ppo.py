import json
import math

import pytest
import torch

import ppo_lstm_enkf as P
from configs.defaults import load_config

# a member-local policy without gates, for shape-generic tests with arbitrary channel counts
PLAIN = {"member_mix": False, "anomaly_gate": False, "innovation_gate": False}


def test_gae_hand_computed_with_termination_and_truncation_bootstrap():
    g, lam = 0.9, 0.8
    # one env, 3 steps. Step 1 ends an episode by truncation: its reward already carries g * V(final) = g * 5.
    r = torch.tensor([[1.0], [2.0 + g * 5.0], [3.0]])
    v = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [0.0], [1.0]])  # obs[2] starts a new episode
    next_v, next_done = torch.tensor([2.0]), torch.tensor([0.0])
    adv = P.compute_gae(r, v, dones, next_v, next_done, g, lam)
    d2 = 3.0 + g * 2.0 - 1.5
    a2 = d2
    d1 = (2.0 + g * 5.0) - 1.0  # no bootstrap from the next (reset) observation
    a1 = d1
    d0 = 1.0 + g * 1.0 - 0.5
    a0 = d0 + g * lam * a1
    torch.testing.assert_close(adv[:, 0], torch.tensor([a0, a1, a2]))
    # a terminated last step: next_done cuts the bootstrap of next_value
    adv2 = P.compute_gae(r, v, dones, next_v, torch.tensor([1.0]), g, lam)
    assert adv2[2, 0] == pytest.approx(3.0 - 1.5)


def test_gae_broadcasts_over_cells():
    r = torch.randn(4, 2, 3, 5)
    v = torch.randn(4, 2, 3, 5)
    dones = torch.zeros(4, 2)
    dones[2, 1] = 1
    nv, nd = torch.randn(2, 3, 5), torch.zeros(2)
    adv = P.compute_gae(r, v, dones, nv, nd, 0.9, 0.9)
    one = P.compute_gae(r[:, 1, 2, 3:4], v[:, 1, 2, 3:4], dones[:, 1:2], nv[1, 2, 3:4], nd[1:2], 0.9, 0.9)
    torch.testing.assert_close(adv[:, 1, 2, 3], one[:, 0])


def test_curriculum_rule():
    c = P.Curriculum(num_paths=100, episodes=100)
    assert c.paths == [1] and c.needed == 100
    assert not c.record(99)
    assert c.record(1) and c.paths == [1, 2] and c.needed == 50
    assert c.record(50) and c.n == 3 and c.needed == math.ceil(100 / 3)
    for _ in range(200):
        c.record(100)
    assert c.n == 99 and c.paths[-1] == 99 and 0 not in c.paths  # path 0 is never trained on
    assert not c.record(1000)
    off = P.Curriculum(num_paths=10, enabled=False)
    assert off.paths == list(range(1, 10))


@pytest.mark.parametrize("policy,agents", [("local", "single"), ("global", "single"), ("global", "per-member")])
def test_lstm_state_reset_at_episode_start(tiny_cfg_file, policy, agents):
    cfg = load_config(tiny_cfg_file, {"policy": policy, "agents": agents, **PLAIN})
    torch.manual_seed(0)
    agent = P.Agent(cfg, C=6, M=3, N=8)
    obs = torch.randn(5, 2, 3, 6, 8)
    done = torch.zeros(5, 2)
    done[3, 0] = 1.0  # env 0 starts a new episode at step 3
    state = agent.initial_state(2)
    state = (state[0] + 0.7, state[1] - 0.3)  # a non-zero carried state
    mean, _ = agent.actor_sequence(obs, state, done)
    fresh, _ = agent.actor_sequence(obs[3:, :1], agent.initial_state(1), torch.tensor([[1.0], [0.0]]))
    torch.testing.assert_close(mean[3:, 0], fresh[:, 0])
    # without the reset the carried state changes the output
    mean2, _ = agent.actor_sequence(obs, state, torch.zeros(5, 2))
    assert not torch.allclose(mean2[3:, 0], fresh[:, 0])


@pytest.mark.parametrize("policy,agents", [("local", "single"), ("global", "per-member")])
def test_member_subset_matches_full_forward(tiny_cfg_file, policy, agents):
    """The member-local and per-member policies treat members independently, so the update may subsample them
    (the member pooling layer has its own test in test_teacher_context.py)."""
    cfg = load_config(tiny_cfg_file, {"policy": policy, "agents": agents, **PLAIN})
    agent = P.Agent(cfg, C=6, M=4, N=8)
    obs = torch.randn(3, 2, 4, 6, 8)
    state = tuple(s + torch.randn_like(s) for s in agent.initial_state(2))
    full, _ = agent.actor_sequence(obs, state, torch.zeros(3, 2))
    Lh = state[0].shape[-1]
    sub_state = tuple(s.view(1, 2, 4, -1, Lh)[:, :, [1, 3]].reshape(1, -1, Lh) for s in state)
    sub, _ = agent.actor_sequence(obs[:, :, [1, 3]], sub_state, torch.zeros(3, 2))
    torch.testing.assert_close(sub, full[:, :, [1, 3]])
    # a member's action depends on its own observation only
    obs2 = obs.clone()
    obs2[:, :, 0] += 1.0
    other, _ = agent.actor_sequence(obs2, state, torch.zeros(3, 2))
    torch.testing.assert_close(other[:, :, 1:], full[:, :, 1:])
    assert not torch.allclose(other[:, :, 0], full[:, :, 0])


@pytest.mark.parametrize("policy", ["local", "global"])
def test_per_member_value_is_one_per_agent(tiny_cfg_file, policy):
    cfg = load_config(tiny_cfg_file, {"policy": policy, "agents": "per-member"})
    agent = P.Agent(cfg, C=6, M=4, N=8)
    v = agent.get_value(torch.randn(3, 2, 4, 6, 8))  # (S, B, M, N)
    assert v.shape == (3, 2, 4, 8)
    torch.testing.assert_close(v, v[..., :1].expand_as(v))  # constant over the agent's grid points
    assert v[..., 0].std() > 0  # but differs between agents


def test_per_member_training_logs_agent_statistics(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, data_dir, _, _ = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    out = _run(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--total-timesteps", str(2 * 64),
                "--no-progress", "--run-name", "pm", "--agents", "per-member", "--policy", "global"])  # fmt: skip
    assert out["steps"] == 128 and out["cycles"] == 60
    ea = EventAccumulator(str(tmp_path / "logs" / "tiny" / "runs" / "pm")).Reload()
    for tag in ("reward", "rmse"):
        lo, mid, hi = (ea.Scalars(f"agents/{tag}_{k}")[-1].value for k in ("min", "mean", "max"))
        assert lo <= mid <= hi and lo < hi


def _run(argv):
    cfg, args = P.parse_args(argv)
    return P.train(cfg, args)


@pytest.mark.parametrize("mode", ["self_critical", "gae"])
def test_checkpoint_resume_reproduces_training_exactly(tiny_cfg_file, tiny_data, tmp_path, monkeypatch, mode):
    _, data_dir, _, _ = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    common = ["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--total-timesteps", str(3 * 64),
              "--no-progress", "--seed", "3", "--advantage", mode]  # fmt: skip
    if mode == "gae":
        common += ["--explore-in-dynamics"]
    full = _run(common + ["--run-name", "full"])
    part = _run(common + ["--run-name", "part", "--stop-after", "2"])
    assert part["interrupted"] and part["steps"] == 2 * 64
    resumed = _run(common + ["--run-name", "part", "--resume"])
    assert resumed["steps"] == full["steps"] == 3 * 64 and resumed["iterations"] == 3
    runs = tmp_path / "logs" / "tiny" / "runs"
    a = torch.load(runs / "full" / "checkpoints" / "latest.pt", weights_only=False)
    b = torch.load(runs / "part" / "checkpoints" / "latest.pt", weights_only=False)
    for k in a["agent"]:
        torch.testing.assert_close(a["agent"][k], b["agent"][k], rtol=0, atol=0)
    assert a["value_rms"] == b["value_rms"]
    assert a["global_step"] == b["global_step"] and a["curriculum"] == b["curriculum"]
    assert json.loads((runs / "part" / "config.json").read_text())["seed"] == 3
    for f in ("summary.md", "rmse_over_time.png", "hovmoller.png", "spread_over_time.png"):
        assert (runs / "full" / "eval" / "final" / f).is_file()
    assert (runs / "full" / "checkpoints" / "best.pt").is_file() or full["cycles_survived"] < full["cycles"]
    # a resumed run refuses a changed config
    with pytest.raises(P.ConfigError, match="different config.*learning_rate"):
        _run(common + ["--run-name", "part", "--resume", "--learning-rate", "0.1"])
    # a checkpoint made before a field existed was made with its old value (LEGACY): a resume does not switch it
    ck = runs / "part" / "checkpoints" / "latest.pt"
    st = torch.load(ck, weights_only=False)
    st["config"].pop("rollout_pool")
    torch.save(st, ck)
    with pytest.raises(P.ConfigError, match="different config.*rollout_pool"):
        _run(common + ["--run-name", "part", "--resume"])
    assert _run(common + ["--run-name", "part", "--resume", "--no-rollout-pool"])["steps"] == 3 * 64


def test_resumed_run_keeps_its_wall_clock_budget(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """--max-minutes counts the training time of every invocation: a run resumed at half its budget anneals the
    learning rate from half, and one resumed past its budget stops at once (checkpoint and final eval)."""
    _, data_dir, _, _ = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    common = ["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--no-progress", "--run-name", "wc",
              "--max-minutes", "10", "--learning-rate", "1e-3", "--total-timesteps", str(10**6)]  # fmt: skip
    assert _run(common + ["--stop-after", "1"])["steps"] == 64
    ck = tmp_path / "logs" / "tiny" / "runs" / "wc" / "checkpoints" / "latest.pt"

    def resume_at(elapsed_s: float, extra: list) -> tuple[dict, float]:
        st = torch.load(ck, weights_only=False)
        st["elapsed"] = elapsed_s  # as if the earlier invocations had trained this long
        torch.save(st, ck)
        out = _run(common + ["--resume", *extra])
        return out, torch.load(ck, weights_only=False)["optimizer"]["param_groups"][0]["lr"]

    out, lr = resume_at(300.0, ["--stop-after", "1"])  # half of 10 minutes
    assert out["steps"] == 128 and 0.4e-3 < lr <= 0.5e-3
    out, _ = resume_at(700.0, [])  # past the budget: no further iteration, the final evaluation runs
    assert out["steps"] == 128 and not out["interrupted"] and "agent_rmse" in out


def test_eval_only(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    _, data_dir, _, _ = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    r = _run(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--total-timesteps", "64", "--no-progress",
              "--run-name", "e"])  # fmt: skip
    ck = tmp_path / "logs" / "tiny" / "runs" / "e" / "checkpoints" / "latest.pt"
    cfg, args = P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--eval-only",
                              "--checkpoint", str(ck)])  # fmt: skip
    s = P.eval_only(cfg, args)
    assert s["cycles"] == 60 and s["agent_rmse"] == pytest.approx(r["agent_rmse"], rel=1e-5, nan_ok=True)


def test_smoke_training_beats_zero_increment(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """A short training on the tiny config: the deterministic policy's analysis is closer to the truth than the
    zero-increment policy's (the forecast). (The mean per-cell reward is no yardstick: a CRPS contribution rewards
    spread, so the uncorrected forecast ensemble scores high on it.)"""
    _, data_dir, _, d = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    cfg, args = P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--total-timesteps", "12000",
                              "--no-progress", "--run-name", "smoke", "--learning-rate", "0.003",
                              "--init-action-std", "0.05"])  # fmt: skip
    P.train(cfg, args)
    st = torch.load(tmp_path / "logs" / "tiny" / "runs" / "smoke" / "checkpoints" / "latest.pt", weights_only=False)
    env = P.EnKFVecEnv(cfg, d, num_envs=8, seed=123)
    agent = P.Agent(cfg, env.C, env.M, env.N)
    agent.load_state_dict(st["agent"])

    def mean_rmse(policy):
        env.gen.manual_seed(7)
        obs = env.reset()
        state, done, total = agent.initial_state(8), torch.ones(8), 0.0
        for _ in range(20):
            with torch.no_grad():
                mean, state = agent.actor_step(obs, state, done)
            res = env.step(mean if policy == "agent" else torch.zeros_like(mean))
            total += res.info["rmse_truth"].mean().item()
            obs, done = res.obs, (res.terminated | res.truncated).float()
        return total / 20

    agent_rmse, zero_rmse = mean_rmse("agent"), mean_rmse("zero")
    assert agent_rmse < 0.8 * zero_rmse, (agent_rmse, zero_rmse)


def test_bad_cli_values_are_one_line_errors(tiny_cfg_file, capsys):
    assert P.main(["--config", str(tiny_cfg_file), "--num-envs", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "num_minibatches" in err and "divide num_envs = 7" in err and "\n" not in err
    assert P.main(["--config", "configs/nope.py"]) == 2
    assert "configs/nope.py: config file not found" in capsys.readouterr().err


def test_help_lists_documented_fields(capsys):
    with pytest.raises(SystemExit):
        P.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--num-envs" in out and "Parallel environments" in out and "--resume" in out
