"""Issue 11: the tuned teacher (file-backed), the truth curriculum, ensemble-context features, the member
pooling layer, prior inflation of the agent's ensemble, RTPS, and the tuned-EnKF reference in evaluations."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import enkf.tuned as T
import ppo_lstm_enkf as P
from configs.defaults import ConfigError, load_config
from enkf.cycle import obs_setup
from enkf.env import EnKFVecEnv
from enkf.filters import eakf
from enkf.report import path_baselines


# ---------------------------------------------------------------------------------------------------
# tuned inflations: written to and read from a file
# ---------------------------------------------------------------------------------------------------
def _entry(method="eakf", inflation=1.2, score=0.2, **kw):
    return {**T.Setting(method, inflation=inflation, **kw).to_dict(), "score": score, "tracked": True, "edge": False,
            "inflation_only": inflation, "inflation_only_score": score}  # fmt: skip


def test_tuned_file_round_trip_and_stale_system(tiny_cfg_file, tmp_path, monkeypatch):
    cfg = load_config(tiny_cfg_file)
    monkeypatch.setattr(T, "TUNED_DIR", tmp_path)
    T.write(cfg, {8: {"eakf": _entry()}, 4: {"letkf": _entry("letkf", 1.1)}})
    assert T.read(cfg) == {"8": {"eakf": _entry()}, "4": {"letkf": _entry("letkf", 1.1)}}
    assert T.tuned_inflation(cfg, create=False) == 1.2
    T.write(cfg, {8: {"letkf": _entry("letkf", 1.05, rtps=0.5)}})  # merged, not replaced
    assert set(T.read(cfg)["8"]) == {"eakf", "letkf"}
    assert T.tuned_setting(cfg, "letkf", create=False) == T.Setting("letkf", 1.05, rtps=0.5)
    # another system (F) makes the file stale: nothing is read, and without create it is a clear error
    other = dataclasses.replace(cfg, F=6.0)
    assert T.read(other) == {}
    with pytest.raises(ConfigError, match="no tuned eakf for tiny at N_ens=8"):
        T.tuned_inflation(other, create=False)
    (tmp_path / f"{cfg.name}.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable tuned-filter file"):
        T.read(cfg)


def test_missing_tuned_value_is_tuned_into_the_runs_own_file_not_the_committed_one(tiny_cfg_file, tmp_path,
                                                                                    monkeypatch, capsys):  # fmt: skip
    """Issue 17: a run whose system is not in configs/tuned/ (here burn_in differs) tunes into logs/<config>/tuned/,
    says so in one line with the expected time, and leaves the committed file byte for byte."""
    import configs.defaults as D

    cfg = load_config(tiny_cfg_file)
    committed, logs = tmp_path / "committed", tmp_path / "logs"
    monkeypatch.setattr(T, "TUNED_DIR", committed)
    monkeypatch.setattr(D, "LOGS_ROOT", logs)
    monkeypatch.setattr(T, "TUNE_PATHS", 2)
    monkeypatch.setattr(T, "TUNE_CYCLES", 40)
    T.write(cfg, {8: {"eakf": _entry(), "etkf": _entry("etkf")}, 4: {"eakf": _entry(inflation=2.0)}})
    before = (committed / "tiny.json").read_bytes()
    other = dataclasses.replace(cfg, burn_in=5)  # what `--burn-in 5` on the command line makes
    e = T.lookup(other, "eakf")
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if "tuning eakf" in ln]
    assert len(line) == 1 and "min on one core" in line[0] and str(logs / "tiny" / "tuned" / "tiny.json") in line[0]
    assert (committed / "tiny.json").read_bytes() == before  # the committed file is untouched
    own = json.loads((logs / "tiny" / "tuned" / "tiny.json").read_text())
    assert own["tuned"]["8"]["eakf"] == e and own["fingerprint"] == T.fingerprint(other)
    assert T.lookup(other, "eakf", create=False) == e  # read back from the own file, nothing tuned again
    assert "tuning" not in capsys.readouterr().err
    # the committed values still serve the committed system, all entries kept
    assert T.lookup(cfg, "eakf", create=False) == _entry() and set(T.read(cfg)) == {"4", "8"}


def test_resolve_reads_the_tuned_teacher_and_agent_inflation(tiny_cfg_file, monkeypatch, tmp_path):
    cfg = load_config(tiny_cfg_file, {"teacher_inflation": 0.0, "agent_inflation": 0.0})
    monkeypatch.setattr(T, "TUNED_DIR", tmp_path)
    T.write(cfg, {cfg.N_ens: {"eakf": {**_entry(inflation=1.1, rotate=True), "inflation_only": 1.35}}})
    r = T.resolve(cfg)
    assert (r.teacher_inflation, r.agent_inflation) == (1.35, 1.35)  # the prior inflation alone
    # explicit values win; agent_inflation 1 means none
    r = T.resolve(dataclasses.replace(cfg, teacher_inflation=1.1, agent_inflation=1.0))
    assert (r.teacher_inflation, r.agent_inflation) == (1.1, 1.0)


# ---------------------------------------------------------------------------------------------------
# the environment
# ---------------------------------------------------------------------------------------------------
def _env(tiny_data, **kw):
    """An env with the fixed prior inflation these tests check (the adaptive one is tested in test_recipe.py)."""
    cfg, _, _, d = tiny_data
    kw.setdefault("inflation_adapt", 0.0)
    kw.setdefault("rotate", False)  # the integrated analysis is the agent's own
    e = EnKFVecEnv(dataclasses.replace(cfg, **kw), d, num_envs=3, seed=0)
    e.set_paths([1, 2])
    e.reset()
    return e


def test_teacher_uses_teacher_inflation_on_the_raw_forecast(tiny_data):
    cfg, _, _, d = tiny_data
    plain = _env(tiny_data, teacher_inflation=1.3, agent_inflation=1.0, reward_target="online", rtps=0.0)
    raw = plain.Eb.clone()  # (B, M, N) the stored backgrounds
    y = plain.y[plain.path, plain.t]
    obs, r = obs_setup(cfg)
    torch.testing.assert_close(plain.teacher(), eakf(raw, y, obs, r, 1.3))
    # with agent_inflation the agent's prior is inflated, and the teacher is the same analysis
    inf = _env(tiny_data, teacher_inflation=1.3, agent_inflation=1.3, reward_target="online", rtps=0.0)
    torch.testing.assert_close(inf.Eb.std(1), 1.3 * raw.std(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(inf.Eb.mean(1), raw.mean(1))
    torch.testing.assert_close(inf.teacher(), eakf(raw, y, obs, r, 1.3), rtol=1e-4, atol=1e-5)
    # the next prior is the inflated forecast of the agent's analysis
    a = torch.zeros(3, inf.M, inf.N)
    xa = inf.analysis_from_action(a)
    res = inf.step(a)
    live = ~(res.terminated | res.truncated)
    fc = inf.fc(xa)
    m = fc.mean(1, keepdim=True)
    torch.testing.assert_close(inf.Eb[live], (m + 1.3 * (fc - m))[live])


def test_truth_weight_mixes_teacher_and_truth_scores(tiny_data):
    e0 = _env(tiny_data, teacher_inflation=1.3, reward_target="online")
    et = _env(tiny_data, teacher_inflation=1.3, reward_target="truth")
    a = 0.2 * torch.randn(3, e0.M, e0.N, generator=torch.Generator().manual_seed(0))
    xa = e0.analysis_from_action(a)
    r_teacher, _ = e0.reward(xa, e0.teacher())
    r_truth, _ = et.reward(xa, et.teacher())
    e0.truth_weight = 1.0
    torch.testing.assert_close(e0.reward(xa, e0.teacher())[0], r_truth)
    e0.truth_weight = 0.25
    torch.testing.assert_close(e0.reward(xa, e0.teacher())[0], 0.75 * r_teacher + 0.25 * r_truth)
    assert not torch.allclose(r_teacher, r_truth)


def test_context_features_are_member_correlations_and_gain(tiny_data):
    e = _env(tiny_data, features="xb,anom,corr1,corr2,gain")
    f = e._features(torch.arange(3))  # (B, M, F, N)
    E = e.Eb.double().numpy()  # (B, M, N)
    for b in range(3):
        c = np.corrcoef(E[b].T)  # (N, N) correlations across members
        N = E.shape[-1]
        for j in range(N):
            assert f[b, 0, 2, j].item() == pytest.approx(c[j, (j + 1) % N], abs=1e-4)
            assert f[b, 0, 3, j].item() == pytest.approx(c[j, (j + 2) % N], abs=1e-4)
        s2 = E[b].var(0, ddof=1)
        np.testing.assert_allclose(f[b, 0, 4].numpy(), s2 / (s2 + e.r), rtol=1e-4)
    # ensemble-wide features are the same for every member
    torch.testing.assert_close(f[:, 1:, 2:], f[:, :1, 2:].expand_as(f[:, 1:, 2:]))


def test_rtps_relaxes_analysis_spread_towards_the_prior(tiny_data):
    e = _env(tiny_data, rtps=0.6)
    # an action that shrinks every anomaly to 20 percent
    anom = e.Eb - e.Eb.mean(1, keepdim=True)
    a = (-0.8 * anom) / e.nc["increment"][1]
    xa = e.analysis_from_action(a)
    sb, sa = e.Eb.std(1), 0.2 * e.Eb.std(1)
    torch.testing.assert_close(xa.std(1), 0.4 * sa + 0.6 * sb, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(xa.mean(1), e.Eb.mean(1), rtol=1e-5, atol=1e-5)


def test_evaluation_env_does_not_score(tiny_data):
    cfg, _, _, d = tiny_data
    e = EnKFVecEnv(dataclasses.replace(cfg, teacher_inflation=0.0, agent_inflation=1.0), d, num_envs=2, scoring=False)
    e.reset()
    res = e.step(torch.zeros(2, e.M, e.N))
    assert (res.reward == 0).all() and torch.isfinite(res.info["rmse_truth"]).all()


# ---------------------------------------------------------------------------------------------------
# the member pooling layer
# ---------------------------------------------------------------------------------------------------
def test_member_mix_is_permutation_equivariant_and_sees_the_ensemble(tiny_cfg_file):
    cfg = load_config(tiny_cfg_file, {"member_mix": True, "anomaly_gate": False, "innovation_gate": False})
    agent = P.Agent(cfg, C=6, M=4, N=8)
    obs = torch.randn(3, 2, 4, 6, 8)
    state = agent.initial_state(2)
    done = torch.zeros(3, 2)
    full, _ = agent.actor_sequence(obs, state, done)
    perm = torch.tensor([2, 0, 3, 1])
    permuted, _ = agent.actor_sequence(obs[:, :, perm], state, done)
    torch.testing.assert_close(permuted, full[:, :, perm])
    # a member's action now depends on the other members (unlike the member-local policy)
    obs2 = obs.clone()
    obs2[:, :, 0] += 1.0
    other, _ = agent.actor_sequence(obs2, state, done)
    assert not torch.allclose(other[:, :, 1:], full[:, :, 1:])
    # the update's member subset: pooling over all members, actions for the subset only
    Lh = state[0].shape[-1]
    sub_state = tuple(s.view(1, 2, 4, -1, Lh)[:, :, [1, 3]].reshape(1, -1, Lh) for s in state)
    sub, _ = agent.actor_sequence(obs, sub_state, done, members=torch.tensor([1, 3]))
    torch.testing.assert_close(sub, full[:, :, [1, 3]])
    # under autograd the update's estimator: exact values, and with all members acting the exact gradient
    with torch.enable_grad():
        g = []
        for members in (None, torch.arange(4)):
            agent.zero_grad()
            m, _ = agent.actor_sequence(obs, state, done, members=members)
            torch.testing.assert_close(m, full)
            (m**2).sum().backward()
            g.append(agent.encoder[0].weight.grad.clone())
        torch.testing.assert_close(g[0], g[1])
    # independent of N_ens and N: the same weights run on 6 members of a 12-point grid
    big = P.Agent(cfg, C=6, M=6, N=12)
    big.load_state_dict(agent.state_dict())
    out, _ = big.actor_sequence(torch.randn(2, 1, 6, 6, 12), big.initial_state(1), torch.zeros(2, 1))
    assert out.shape == (2, 1, 6, 12) and torch.isfinite(out).all()


def test_member_mix_training_run_and_eval(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    _, data_dir, _, _ = tiny_data
    out = P.train(*P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--run-name", "mix",
                                 "--member-mix", "--features", "xb,y,innov,mean,spread,anom,corr1,gain",
                                 "--agent-inflation", "0", "--reward-target", "online", "--truth-weight", "1", "--truth-ramp", "0.5",
                                 "--reward-form", "crps", "--total-timesteps", "1024", "--no-progress"]))  # fmt: skip
    run = tmp_path / "tiny" / "runs" / "mix"
    saved = json.loads((run / "config.json").read_text())
    assert saved["agent_inflation"] == saved["teacher_inflation"] == 1.5  # resolved: the tiny config's teacher
    evals = [json.loads(x) for x in (run / "evals.jsonl").read_text().splitlines()]
    assert evals[-1]["final"] and evals[-1]["step"] == out["steps"]
    # nothing on file for the tiny config: the reference is the data filter at the given teacher inflation (the stored
    # EnKF), or the untuned adaptive-RTPS ETKF where that is lower on path 0
    ev = evals[-1]
    assert ev["best_filter"] == "eakf (inflation 1.5)" or ev["best_filter"].startswith("etkf (adaptive RTPS")
    assert np.isfinite(ev["best_filter_rmse"]) and ev["best_filter_rmse"] <= 1.003 * ev["enkf_rmse"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run))
    ea.Reload()
    w = [e.value for e in ea.Scalars("reward/truth_weight")]
    assert w[0] < 0.5 and w[-1] == pytest.approx(1.0)  # the ramp from teacher to truth


# ---------------------------------------------------------------------------------------------------
# the tuned EnKF beside the agent
# ---------------------------------------------------------------------------------------------------
def test_path_baseline_tuned_enkf_reproduces_the_stored_filter_at_its_inflation(tiny_data):
    cfg, _, _, d = tiny_data
    obs, _ = obs_setup(cfg)
    fc = EnKFVecEnv(cfg, d, 1, scoring=False).fc
    base = path_baselines(cfg, d, 0, fc, obs, best=T.Setting("eakf", cfg.inflation))
    np.testing.assert_allclose(base["best_filter"], base["enkf"], rtol=2e-3, atol=1e-5)
    other = path_baselines(cfg, d, 0, fc, obs, best=T.Setting("eakf", cfg.inflation, rtps=0.5))
    assert other["best_filter_label"] == "eakf (inflation 1.5, RTPS 0.5)"
    assert not np.allclose(other["best_filter"], base["enkf"])
    # the trainer's reference (adaptive=True): the lower of the tuned filter and the untuned adaptive-RTPS ETKF
    from enkf.cycle import cycle_adaptive

    both = path_baselines(cfg, d, 0, fc, obs, best=T.Setting("eakf", cfg.inflation, rtps=0.5), adaptive=True)
    ad = cycle_adaptive(cfg, "etkf", d.xb[0, :1], d.obs[0][None], d.truth[0][None], fc,
                        [cfg.data_seed], False)["rmse"][0]  # fmt: skip
    b = cfg.burn_in
    assert both["best_filter"][b:].mean() <= min(other["best_filter"][b:].mean(), ad[b:].mean()) + 1e-9
    assert ("adaptive RTPS" in both["best_filter_label"]) == (
        both["best_filter"][b:].mean() < other["best_filter"][b:].mean()
    )


def test_plot_training_curve(tmp_path):
    import scripts.plot_training_curve as C

    run = tmp_path / "run"
    run.mkdir()
    rows = [dict(step=s, seconds=60.0 * s / 1000, agent_rmse=0.3 - 1e-4 * s, enkf_rmse=0.23, best_filter_rmse=0.14,
                 best_filter="eakf (inflation 1.35)") for s in (100, 200, 300)]  # fmt: skip
    (run / "evals.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n" + json.dumps(rows[-1]) + "\n")
    assert C.main([str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 10_000
    assert [r["step"] for r in C.read_evals(run)] == [100, 200, 300]


def test_gates_multiply_the_newest_anomaly_and_innovation(tiny_cfg_file):
    cfg = load_config(
        tiny_cfg_file, {"anomaly_gate": True, "innovation_gate": True, "lstm_hidden": 0, "gain_gate": False}
    )
    F = len(cfg.feature_list)
    agent = P.Agent(cfg, C=cfg.temporal_window * F, M=4, N=8)
    last = (cfg.temporal_window - 1) * F
    assert agent.gate_idx == [last + cfg.feature_list.index("anom"), last + cfg.feature_list.index("innov")]
    torch.nn.init.normal_(agent.actor_head.weight)
    obs = torch.randn(1, 2, 4, cfg.temporal_window * F, 8)
    state = agent.initial_state(2)
    base, _ = agent.actor_sequence(obs, state, torch.zeros(1, 2))
    # the mean is affine in the gate inputs: doubling the newest innovation adds c * innov once more
    obs2 = obs.clone()
    obs2[..., agent.gate_idx[1], :] *= 2
    enc = agent.encoder  # the encoder also sees the changed channel, so compare through the head directly
    h = agent._encode(obs2.reshape(2, 4, -1, 8)).reshape(2 * 4 * 8, -1)
    c = agent.actor_head(h.reshape(8, 8, -1).permute(0, 2, 1))  # (B*M, 3, N)
    expect = (
        c[:, 0]
        + c[:, 1] * obs2[0, :, :, agent.gate_idx[0]].reshape(8, 8)
        + c[:, 2] * obs2[0, :, :, agent.gate_idx[1]].reshape(8, 8)
    )
    got, _ = agent.actor_sequence(obs2, state, torch.zeros(1, 2))
    torch.testing.assert_close(got[0], expect.reshape(2, 4, 8))
    assert enc is agent.encoder and not torch.allclose(got, base)
    # without the gate's feature the gate does not apply (the user's feature list has neither)
    plain = P.Agent(load_config(tiny_cfg_file, {"features": "xa_prev,xb,dxa,y"}), C=12, M=4, N=8)
    assert plain.gate_idx == [] and plain.actor_head.out_channels == 1


@pytest.mark.parametrize("target", ["truth", "precomputed"])
def test_crps_member_score_is_its_marginal_effect_on_the_ensemble_crps(tiny_data, target):
    """Each cell-agent's CRPS score is exactly its own effect on the ensemble's fair CRPS (an exact potential
    game: the members' optimum is the calibrated ensemble). Half the pair term, as before, under-disperses."""
    e = _env(tiny_data, reward_form="crps", reward_target=target)
    s = e.nc["state"][1]
    g = torch.Generator().manual_seed(3)
    xa = e.Eb + 0.3 * torch.randn(e.Eb.shape, generator=g)
    tgt = e.teacher()

    def ens_crps(x):  # (B, N) fair CRPS of the ensemble x against the target, in normalized units
        z, zt = x / s, tgt / s
        M = z.shape[1]
        to_t = (z.unsqueeze(2) - zt.unsqueeze(1)).abs().mean(2).mean(1)
        pair = (z.unsqueeze(2) - z.unsqueeze(1)).abs().sum((1, 2)) / (2 * M * (M - 1))
        return to_t - pair

    r0, _ = e.reward(xa, tgt)
    i, j = 2, 5
    moved = xa.clone()
    moved[:, i, j] += 0.2
    r1, _ = e.reward(moved, tgt, xa_others=xa)  # member i moved, the others at their deterministic play
    M = xa.shape[1]
    dC = ens_crps(moved)[:, j] - ens_crps(xa)[:, j]
    ok = (r0[:, i, j] - 1).abs().lt(2) & (r1[:, i, j] - 1).abs().lt(2)  # rewards are 1 - score, the score in [-2, 2]
    assert ok.any()
    torch.testing.assert_close((r0 - r1)[:, i, j][ok], (M * dC)[ok], rtol=1e-4, atol=1e-6)
