"""Issue 17, items 2 and 4: the recipe's parts. The supervised warm start (imitation of the best tuned filter on the
agent's own forecasts), the dense policy for small non-periodic states (Lorenz-63) and the policy chosen by model."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import ppo_lstm_enkf as P
from configs.defaults import REPO_ROOT, ConfigError, load_config
from enkf.data import data_fingerprint


def test_policy_auto_follows_the_model():
    assert load_config("configs/L96_1.py").policy == "local"
    assert load_config("configs/L63.py").policy == "dense"
    assert load_config("configs/L63.py", {"policy": "global"}).policy == "global"
    with pytest.raises(ConfigError, match="correlation distance must be < N = 3"):
        load_config("configs/L63.py", {"features": "xb,innov,corr3"})


def test_dense_policy_is_member_equivariant_and_subsets_exactly():
    torch.manual_seed(0)
    cfg = load_config("configs/L63.py")
    C = cfg.temporal_window * len(cfg.feature_list)
    ag = P.Agent(cfg, C, 10, 3)
    obs, done = torch.randn(3, 2, 10, C, 3), torch.zeros(3, 2)
    st = ag.initial_state(2)
    m, _ = ag.actor_sequence(obs, st, done)
    assert m.shape == (3, 2, 10, 3)
    perm = torch.randperm(10)
    m2, _ = ag.actor_sequence(obs[:, :, perm], st, done)
    torch.testing.assert_close(m2, m[:, :, perm])  # members are exchangeable
    sub = perm[:4]
    cells = tuple(s.view(1, 2, 10, -1, s.shape[-1])[:, :, sub].reshape(1, -1, s.shape[-1]) for s in st)
    m3, _ = ag.actor_sequence(obs, cells, done, members=sub)  # the update's member subset, pooling over all
    torch.testing.assert_close(m3, m[:, :, sub])
    # the gates: the head multiplies the newest anomaly and innovation of each variable
    assert ag.gate_idx and ag.actor_head.out_features == (1 + len(ag.gate_idx) + len(ag.kg)) * 3
    assert ag.get_value(obs[0]).shape == (2, 10, 3)


def test_imitation_warm_start_learns_the_filter(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """With imitation only (fraction 1), an agent without the gain gate (which would start at the filter already): the
    regression loss falls and the agent's analysis on path 0 gets close to
    the filter it imitates; the loss is logged and the run evaluates."""
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    _, data_dir, _, _ = tiny_data
    out = P.train(*P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--run-name", "imi",
                                 "--imitation-fraction", "1", "--total-timesteps", "8192", "--learning-rate", "3e-3",
                                 "--no-progress", "--no-gain-gate", "--features", "xb,y,innov,mean,spread,anom,gain"]))  # fmt: skip
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tmp_path / "tiny" / "runs" / "imi"))
    ea.Reload()
    loss = [e.value for e in ea.Scalars("imitation/loss")]
    assert len(loss) > 0.9 * 8192 // (8 * 8) and np.mean(loss[-10:]) < 0.5 * np.mean(loss[:10])  # one per iteration
    assert out["cycles_survived"] == out["cycles"]
    # from an increment of ~0 (the forecast: free run 1.7) to within reach of the filter it imitates (nothing tuned on
    # file for the tiny config: the data filter at the teacher inflation, i.e. the stored EnKF)
    assert out["agent_rmse"] < 0.8 * out["obs_only_rmse"] and out["agent_rmse"] < 1.6 * out["enkf_rmse"]
    cfg = json.loads((tmp_path / "tiny" / "runs" / "imi" / "config.json").read_text())
    assert cfg["imitation_fraction"] == 1.0


def test_eval_all_writes_one_table_with_seed_means(tiny_cfg_file, tiny_data, tmp_path, monkeypatch, capsys):
    """make eval-all on a tiny config (three configs in two processes): two seed agents give a mean ± std, the best tuned
    filter is named, the shipped agent's N_ens ratios are filled where the filters are tuned; a config without an
    agent says so; a shipped agent without seed files is the "1 seed" row."""
    import shutil

    import enkf.tuned as T
    import scripts.eval_all as EA

    cfg, data_dir, _, _ = tiny_data
    monkeypatch.setattr(T, "TUNED_DIR", tmp_path / "tuned")
    for name in ("tiny", "other", "solo"):  # tuned values on file (the tuning itself is tested elsewhere)
        c = dataclasses.replace(cfg, name=name)
        for M, infl in ((8, 1.5), (4, 2.0)):
            T.write(c, {M: {m: {**T.Setting(m, infl, rtps=0.2 * (m == "etkf")).to_dict(), "score": 0.1, "tracked": True,
                                "edge": False, "inflation_only": infl} for m in T.METHODS}})  # fmt: skip
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    cfgs, pre = tmp_path / "configs", tmp_path / "pretrained"
    (pre / "seeds").mkdir(parents=True)
    cfgs.mkdir()
    shutil.copy(tiny_cfg_file, cfgs / "tiny.py")
    shutil.copy(tiny_cfg_file, cfgs / "other.py")
    shutil.copy(tiny_cfg_file, cfgs / "solo.py")
    for sd in (1, 2):
        P.train(*P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--run-name", f"s{sd}",
                               "--seed", str(sd), "--total-timesteps", "4096", "--imitation-fraction", "1",
                               "--learning-rate", "3e-3", "--no-progress"]))  # fmt: skip
        shutil.copy(
            tmp_path / "logs" / "tiny" / "runs" / f"s{sd}" / "checkpoints" / "latest.pt",
            pre / "seeds" / f"tiny_s{sd}.pt",
        )
    st = torch.load(pre / "seeds" / "tiny_s1.pt", weights_only=False)  # seed 1 shipped with a zero-shot choice stored
    st["provenance"] = {
        "zero_shot_gain_radius": {"4": {"gain_radius": 2.0, "data": data_fingerprint(cfg), "rule": "t"}}
    }
    torch.save(st, pre / "tiny.pt")  # the same agent as seed 1's file, not the same bytes
    shutil.copy(pre / "seeds" / "tiny_s2.pt", pre / "solo.pt")  # a shipped agent without seed files
    out = tmp_path / "all.md"
    argv = ["--configs", "tiny,other,solo", "--n-ens", "4,8,16", "--paths", "2", "--cycles", "30", "--configs-dir", str(cfgs),
            "--pretrained-dir", str(pre), "--out", str(out), "--quiet", "--jobs", "2"]  # fmt: skip
    assert EA.main(argv) == 0
    res = json.loads(out.with_suffix(".json").read_text())["results"]
    tiny, other, solo = res
    assert tiny["seeds"] == 2 and len(tiny["per_seed"]) == 2 and tiny["agent_rmse_std"] is not None
    assert tiny["agent_rmse"] == pytest.approx(np.mean(tiny["per_seed"]))
    assert tiny["ratio"] == pytest.approx(tiny["agent_rmse"] / tiny["best_filter_rmse"])
    assert tiny["ratio_grid"] == pytest.approx(tiny["agent_rmse"] / tiny["best_grid_rmse"])
    assert tiny["best_grid_rmse"] >= tiny["best_filter_rmse"] and "adaptive" not in tiny["best_grid_filter"]
    assert set(tiny["nens_ratio"]) == {"4", "8"} and tiny["best_filter"].split(" ")[0] in T.METHODS
    # the shipped agent is seed 1's agent: its row at the config's N_ens is seed 1's (run once, not twice), and at 4
    # members it runs with the choice stored in the shipped file
    own = tiny["nens_ratio"][str(tiny["N_ens"])]
    assert own == pytest.approx(tiny["per_seed"][0] / tiny["best_filter_rmse"]) and tiny["agents"][0].endswith("s1")
    sets = json.loads((EA.LOGS_ROOT / "tiny" / "eval_all" / "eval.json").read_text())["sets"]
    assert [r["method"] for r in sets["held-out set (2 paths), N_ens=8"] if r["method"].startswith("agent")] == [
        "agent tiny_s1", "agent tiny_s2"]  # fmt: skip
    assert [r.get("param") for r in sets["held-out set (2 paths), N_ens=4"] if r["method"].startswith("agent")] == [
        "gain_radius 2 at 4 members"]  # fmt: skip
    assert "agent_rmse" not in other
    assert solo["seeds"] == 1 and solo["agent_rmse_std"] is None and solo["agents"] == ["agent solo"]
    assert solo["nens_ratio"][str(solo["N_ens"])] == pytest.approx(solo["ratio"]) and set(solo["nens_ratio"]) == {
        "4",
        "8",
    }
    md = out.read_text()
    assert (
        "| tiny |" in md
        and "no shipped agent" in md
        and "(1 seed)" in md
        and "ratio N_ens 4" in md
        and "best grid-tuned" in md
    )
    assert tiny["not_tuned"] == [16] and "no committed tuned filters at N_ens 16" in md  # not tuned here: left out
    # --update re-makes one row and keeps the others (with their own date and command); other settings are refused
    (pre / "solo.pt").unlink()
    assert EA.main([*argv[:1], "solo", *argv[2:-2], "--update"]) == 0
    new = json.loads(out.with_suffix(".json").read_text())
    assert [r["config"] for r in new["results"]] == ["tiny", "other", "solo"]
    assert new["results"][:2] == res[:2] and new["results"][2]["seeds"] == 0 and "agent_rmse" not in new["results"][2]
    assert new["results"][2]["command"].endswith("--update") and res[0]["command"] == new["results"][0]["command"]
    md = out.read_text()
    assert "| tiny |" in md and "| solo | no shipped agent" in md and "tiny, other: " in md and "solo: " in md
    capsys.readouterr()
    assert EA.main([*argv[:1], "solo", *argv[2:3], "4,8", *argv[4:-2], "--update"]) == 2
    assert "was made with --n-ens 4,8,16 --paths 2 --cycles 30" in capsys.readouterr().err
    assert json.loads(out.with_suffix(".json").read_text()) == new  # refused before anything ran: the table is kept


def test_innovation_inflation_recovers_a_known_underdispersion():
    """An ensemble whose covariance is the forecast error's divided by lambda^2: the estimate is lambda^2 on average."""
    from enkf.cycle import obs_setup
    from enkf.filters import innovation_inflation

    g = torch.Generator().manual_seed(0)
    cfg = load_config("configs/L96_1.py", {"obs_stride": 2})
    obs, r = obs_setup(cfg)
    B, M, N, lam = 400, 200, cfg.N, 1.6
    L = torch.randn(N, N, generator=g, dtype=torch.float64) * 0.3 + torch.eye(N, dtype=torch.float64)  # Pt = L L^T
    truth = torch.randn(B, N, generator=g, dtype=torch.float64) @ L.T  # error of the mean (0) ~ N(0, Pt)
    E = torch.randn(B, M, N, generator=g, dtype=torch.float64) @ L.T / lam  # the ensemble: Pt / lambda^2
    E = E - E.mean(1, keepdim=True)  # centred on 0, the forecast mean
    y = obs(truth) + r**0.5 * torch.randn(B, obs.p, generator=g, dtype=torch.float64)
    est = innovation_inflation(E, y, obs, r)  # (B,)
    assert est.shape == (B,)
    assert abs(est.mean().item() / lam**2 - 1) < 0.05
    assert abs(innovation_inflation(E * lam, y, obs, r).mean().item() - 1) < 0.05  # a calibrated one asks for 1


def test_adaptive_inflation_in_the_env(tiny_cfg_file, tiny_data):
    """inflation_adapt moves each env's factor that fraction of the way (in lambda^2) to the clipped estimate, from
    agent_inflation at every episode start; 0 keeps the fixed factor; the teachers see the fixed-inflation prior."""
    from enkf.env import EnKFVecEnv
    from enkf.filters import innovation_inflation

    _, _, _, d = tiny_data
    cfg = load_config(tiny_cfg_file, {"agent_inflation": 1.2, "inflation_adapt": 0.25, "inflation_adapt_max": 2.0})
    env = EnKFVecEnv(cfg, d, 4, seed=0)
    env.reset()
    lam2 = env.lam2.clone()
    Eb = d.xb[:4, 5].clone()
    thin = Eb.mean(1, keepdim=True) + 1e-3 * (Eb - Eb.mean(1, keepdim=True))  # far too thin: the estimate clips at 4
    y = d.obs[:4, 5] + 5.0
    out = env.prior(thin, y)
    torch.testing.assert_close(env.lam2, 0.75 * lam2 + 0.25 * 4.0)
    s_in, s_out = thin.std(1), out.std(1)
    torch.testing.assert_close(s_out, s_in * env.lam2.sqrt().view(4, 1), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(env.prior_as_fixed().std(1), env.Eb.std(1) * 1.2 / env.lam2.sqrt().view(4, 1))
    env.reset()  # every episode starts from agent_inflation, then takes in its first observation
    p, t = env.path, env.t
    est = innovation_inflation(d.xb[p, t], d.obs[p, t], env.obs_op, env.r).clamp(1.0, 4.0)
    torch.testing.assert_close(env.lam2, 0.75 * 1.2**2 + 0.25 * est)
    before = env.lam2.clone()
    res = env.step(torch.zeros(4, cfg.N_ens, cfg.N))  # the step takes in the next cycle's observation
    assert ((env.lam2 >= 0.75 * before + 0.25 - 1e-6) & (env.lam2 <= 0.75 * before + 1.0 + 1e-6)).all()
    assert res.obs.shape[0] == 4
    fixed = EnKFVecEnv(dataclasses.replace(cfg, inflation_adapt=0.0), d, 4, seed=0)
    fixed.reset()
    fixed.step(torch.zeros(4, cfg.N_ens, cfg.N))
    torch.testing.assert_close(fixed.lam2, torch.full((4,), 1.2**2))  # fixed: never moves
    st = fixed.state_dict()
    del st["lam2"]  # a checkpoint from before the field: loads, the fixed factor stays
    fixed.load_state_dict(st)


def test_inflation_scale_follows_that_share_of_the_estimate(tiny_cfg_file, tiny_data):
    """inflation_adapt_scale s: the factor squared moves towards 1 + s (estimate - 1); 0 (not chosen) is s = 1."""
    from enkf.env import EnKFVecEnv

    _, _, _, d = tiny_data
    Eb = d.xb[:4, 5].clone()
    thin = Eb.mean(1, keepdim=True) + 1e-3 * (Eb - Eb.mean(1, keepdim=True))  # the estimate clips at 4
    y = d.obs[:4, 5] + 5.0
    for s, target in ((0.0, 4.0), (1.0, 4.0), (0.5, 2.5), (0.25, 1.75)):
        cfg = load_config(tiny_cfg_file, {"agent_inflation": 1.2, "inflation_adapt": 0.25, "inflation_adapt_max": 2.0,
                                          "inflation_adapt_scale": s})  # fmt: skip
        env = EnKFVecEnv(cfg, d, 4, seed=0)
        env.reset()
        lam2 = env.lam2.clone()
        env.prior(thin, y)
        torch.testing.assert_close(env.lam2, 0.75 * lam2 + 0.25 * target)


def test_the_recipe_chooses_gain_radius_then_inflation_scale_on_training_paths(tiny_cfg_file, tiny_data, tmp_path,
                                                                                monkeypatch):  # fmt: skip
    """choose_inflation_scale picks the scale with the lowest worst-path RMSE of the untrained gain-gated analysis (at
    the chosen gain radius), leaves a set value alone (the default 1), and is 1 without adaptive inflation; a training
    run with --inflation-adapt-scale 0 records both choices in its config.json, and an agent file from before the
    field loads with scale 1 (what it was trained with)."""
    from enkf.gain import INFLATION_SCALES, choose_gain_radius, choose_inflation_scale, untrained_scores

    _, data_dir, _, d = tiny_data
    cfg = choose_gain_radius(load_config(tiny_cfg_file, {"inflation_adapt_scale": 0.0, "spread_adapt": "prior"}), d)
    assert load_config(tiny_cfg_file).inflation_adapt_scale == 1.0  # the recipe: the whole estimate
    assert cfg.gain_radius in [*cfg.loc_radius_list, 1e6]
    scores = untrained_scores(cfg, d, "inflation_adapt_scale", INFLATION_SCALES)
    assert set(scores) == set(INFLATION_SCALES) and len(set(scores.values())) == len(INFLATION_SCALES)  # they differ
    assert choose_inflation_scale(cfg, d).inflation_adapt_scale == min(scores, key=scores.get)
    assert choose_inflation_scale(dataclasses.replace(cfg, inflation_adapt_scale=0.5), d).inflation_adapt_scale == 0.5
    assert choose_inflation_scale(dataclasses.replace(cfg, inflation_adapt=0.0), d).inflation_adapt_scale == 1.0
    assert choose_inflation_scale(dataclasses.replace(cfg, spread_adapt="relax"), d).inflation_adapt_scale == 1.0
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    P.train(*P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--run-name", "ch",
                           "--total-timesteps", "64", "--no-progress", "--inflation-adapt-scale", "0",
                           "--spread-adapt", "prior"]))  # fmt: skip
    run = json.loads((tmp_path / "tiny" / "runs" / "ch" / "config.json").read_text())
    assert (run["gain_radius"], run["inflation_adapt_scale"]) == (cfg.gain_radius, min(scores, key=scores.get))
    ck = torch.load(tmp_path / "tiny" / "runs" / "ch" / "checkpoints" / "latest.pt", weights_only=False)
    del ck["config"]["inflation_adapt_scale"]
    torch.save(ck, tmp_path / "old.pt")
    assert P.load_checkpoint(str(tmp_path / "old.pt"))["config"]["inflation_adapt_scale"] == 1.0


def test_gain_cli_names_a_bad_config_file():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "enkf.gain", "--config", "configs/nope.py"], capture_output=True,
                       text=True, cwd=REPO_ROOT)  # fmt: skip
    assert r.returncode != 0 and "configs/nope.py" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("stride", [1, 4])
def test_gain_features_give_the_filter_mean_update(stride):
    """kg-k ... kgk are the rows of the ensemble Kalman gain of the prior: summed against the innovations of the
    points j + k (all k) they give the ETKF's mean update exactly, with full and with sparse observations."""
    from enkf.cycle import obs_setup
    from enkf.env import EnKFVecEnv
    from enkf.filters import etkf

    cfg = load_config("configs/L96_1.py", {"obs_stride": stride, "innovation_reach": 4})
    env = EnKFVecEnv.__new__(EnKFVecEnv)  # only the gain rows are needed: no data
    env.obs_op, env.r, env.N = *obs_setup(cfg), cfg.N
    env.rho = torch.ones(cfg.N, cfg.N)  # no localization: the ETKF's global gain
    g = torch.Generator().manual_seed(1)
    E = torch.randn(3, 20, cfg.N, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2, cfg.N, dtype=torch.float64)
    E = E + 0.5 * E.roll(1, -1)
    G = env._gain_rows(E - E.mean(1, keepdim=True))  # (3, N, N)
    y = torch.randn(3, env.obs_op.p, generator=g, dtype=torch.float64)
    d = torch.zeros(3, cfg.N, dtype=torch.float64)
    d[:, env.obs_op.idx] = y - E.mean(1)[:, env.obs_op.idx]
    upd = sum(G[:, :, k] * d.roll(-k, -1) for k in range(cfg.N))
    torch.testing.assert_close(upd, etkf(E, y, env.obs_op, env.r, 1.0).mean(1) - E.mean(1))
    if stride > 1:
        unobserved = (torch.arange(cfg.N) + 1) % stride != 0  # rows j whose neighbour j + 1 is not observed
        assert (G[:, unobserved, 1] == 0).all() and (G[:, ~unobserved, 1] != 0).all()


def test_gain_gate_multiplies_each_gain_row_by_the_neighbours_innovation():
    """With the head's weights zero and the bias 1 on the gain-gate channels only, the increment at j is
    sum_k kg_k(j) * innov_i(j + k): the prior's own Kalman gain applied to the member's innovations."""
    feats = "xb,innov,anom,kg-1,kg0,kg1"
    cfg = load_config("configs/L96_1.py", {"features": feats, "innovation_reach": 1, "gain_gate": True})
    F, W, M, N = 6, cfg.temporal_window, 4, cfg.N
    ag = P.Agent(cfg, W * F, M, N)
    assert [(k, on_anom) for _, k, on_anom in ag.kg] == [(-1, False), (0, False), (1, False)]
    n_out = ag.actor_head.out_channels
    assert n_out == 1 + 2 + 2 + 3  # mean, anom and innov gates, 2 shifts, 3 gain rows
    with torch.no_grad():
        ag.actor_head.weight.zero_()
        ag.actor_head.bias.zero_()
        ag.actor_head.bias[-3:] = 1.0
    obs = torch.randn(1, 2, M, W * F, N)
    m, _ = ag.actor_sequence(obs, ag.initial_state(2), torch.zeros(1, 2))
    new = obs[..., (W - 1) * F :, :]  # the newest window step (..., F, N)
    inn = new[..., 1, :]
    want = sum(new[..., 3 + i, :] * inn.roll(-k, -1) for i, k in enumerate((-1, 0, 1)))
    torch.testing.assert_close(m, want)
    off = P.Agent(dataclasses.replace(cfg, gain_gate=False), W * F, M, N)
    assert off.kg == [] and off.actor_head.out_channels == n_out - 3


@pytest.mark.parametrize("policy", ["local", "dense"])
def test_gain_gate_starts_as_the_kalman_update_of_each_member(tiny_cfg_file, tiny_data, policy):
    """An untrained agent with the gain gate (head weights zeroed to remove the random part; the biases as built)
    turns each member into xb_i + K (y - H xb_i): its analysis mean is the ETKF's mean analysis of the same prior."""
    from enkf.env import EnKFVecEnv
    from enkf.filters import etkf

    _, _, _, d = tiny_data
    kg = ",".join(f"kg{k}" for k in range(-3, 5))  # N = 8: every column of the gain
    cfg = load_config(tiny_cfg_file, {"features": f"xb,innov,anom,{kg}", "gain_gate": True, "rtps": 0.0, "gain_radius": 1e6,
                                      "agent_inflation": 1.3, "policy": policy})  # fmt: skip
    env = EnKFVecEnv(cfg, d, 3, seed=0)
    obs = env.reset()
    ag = P.Agent(cfg, env.C, env.M, env.N)
    assert len(ag.kg) == 8
    with torch.no_grad():
        ag.actor_head.weight.zero_()
    mean, _ = ag.actor_step(obs, ag.initial_state(3), torch.ones(3))
    xa = env.analysis_from_action(mean)
    want = etkf(env.Eb.double(), env.y[env.path, env.t].double(), env.obs_op, env.r, 1.0).mean(1)
    torch.testing.assert_close(xa.mean(1).double(), want, rtol=1e-4, atol=1e-4)
    assert (xa.std(1) < env.Eb.std(1)).all()  # every member moved by the gain: the spread shrinks


def test_gain_features_repeat_no_column_on_a_small_grid(tiny_data, tiny_cfg_file):
    """kg offsets outside -(N-1)//2 ... N//2 are zero (N = 8: kg-4 would repeat kg4's column), so one feature list
    serves every N."""
    from enkf.env import EnKFVecEnv

    _, _, _, d = tiny_data
    kg = ",".join(f"kg{k}" for k in range(-8, 9))
    cfg = load_config(tiny_cfg_file, {"features": f"xb,innov,{kg}"})
    env = EnKFVecEnv(cfg, d, 2, seed=0)
    obs = env.reset()  # (B, M, C, N): the newest window step holds the features in order
    F = 2 + 17
    new = obs[:, :, (cfg.temporal_window - 1) * F :, :]
    nonzero = [k for i, k in enumerate(range(-8, 9)) if new[:, :, 2 + i].abs().sum() > 0]
    assert nonzero == list(range(-3, 5))


def test_gain_and_square_root_gates_start_as_the_eakf_for_uncorrelated_variables(tiny_cfg_file, tiny_data):
    """With a prior whose sample covariance is diagonal (Hadamard anomalies), the untrained agent's analysis with the
    gain gate and kgsr is the serial EAKF's: mean + K d, anomalies times sqrt(1 - K), variable by variable."""
    from enkf.env import EnKFVecEnv
    from enkf.filters import eakf

    _, _, _, d = tiny_data
    kg = ",".join(f"kg{k}" for k in range(-3, 5))
    cfg = load_config(tiny_cfg_file, {"features": f"xb,innov,anom,{kg},kgsr", "gain_gate": True, "rtps": 0.0,
                                      "agent_inflation": 1.0})  # fmt: skip
    env = EnKFVecEnv(cfg, d, 2, seed=0)
    env.reset()
    h = torch.tensor([[1.0]])
    for _ in range(3):  # 8 x 8 Hadamard: orthogonal columns, so the anomalies are uncorrelated across variables
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    scale = torch.linspace(0.1, 0.5, cfg.N)  # small enough that no normalized feature is clipped at the bound
    env.Eb = (d.truth[env.path, env.t].unsqueeze(1) + 0.3 + (h * scale).unsqueeze(0)).clone()  # (2, M=8, N=8)
    f = env._features(torch.arange(2))  # (B, M, F, N)
    obs = f.unsqueeze(1).expand(-1, cfg.temporal_window, -1, -1, -1).permute(0, 2, 1, 3, 4).reshape(2, 8, -1, cfg.N)
    ag = P.Agent(cfg, env.C, 8, cfg.N)
    assert ag.kg[-1][1:] == (0, True)  # the kgsr gate: offset 0, on the anomaly
    with torch.no_grad():
        ag.actor_head.weight.zero_()
    mean, _ = ag.actor_step(obs, ag.initial_state(2), torch.ones(2))
    xa = env.analysis_from_action(mean)
    Eb, y = env.Eb.double(), env.y[env.path, env.t].double()  # (B, M, N), (B, N): full observation
    m, v = Eb.mean(1, keepdim=True), Eb.var(1, keepdim=True)
    K = v / (v + env.r)  # uncorrelated variables: the serial EAKF is one scalar update per variable
    want = m + K * (y.unsqueeze(1) - m) + (1 - K).sqrt() * (Eb - m)
    torch.testing.assert_close(xa.double(), want, rtol=1e-4, atol=1e-4)
    ok = v[:, 0, :] > 0  # where the variable has spread, the serial EAKF of the filters module agrees
    torch.testing.assert_close(eakf(Eb, y, env.obs_op, env.r, 1.0)[ok.unsqueeze(1).expand_as(Eb)],
                               want[ok.unsqueeze(1).expand_as(Eb)], rtol=1e-6, atol=1e-6)  # fmt: skip


def test_every_shipped_config_leaves_the_recipe_at_its_defaults():
    """Issue 17 item 2: a config file describes the system, its data and the filters' tuning grid; every agent and
    training setting comes from the defaults (what differs per config is computed from the data at training start)."""
    import runpy

    from enkf.data import DATA_FIELDS

    system = set(DATA_FIELDS) | {"burn_in", "loc_radii", "verify_max_ratio", "ks_length"}
    files = sorted(p for p in (REPO_ROOT / "configs").glob("*.py") if p.name not in ("defaults.py", "__init__.py"))
    assert {"KS.py", "L63.py", "L96_1.py", "L96_2.py", "L96_3.py", "L96_sparse.py"} <= {p.name for p in files}
    for p in files:
        extra = set(runpy.run_path(str(p))["config"]) - system
        assert not extra, f"{p.name} sets agent/training fields by hand: {sorted(extra)}"


def test_adaptive_relaxation_rises_for_a_thin_ensemble_and_falls_for_a_wide_one():
    """adapt_relaxation integrates rate * ln(estimate): a forecast thinner than its innovations raises alpha, a wider
    one lowers it, a calibrated one leaves it about where it was; alpha stays in [0, 1]; a non-finite forecast counts as
    calibrated. relax_to_prior_spread keeps the mean and gives spread (1 - alpha) s_a + alpha s_b per grid point."""
    from enkf.filters import ObsOp, adapt_relaxation, relax_to_prior_spread

    g = torch.Generator().manual_seed(0)
    B, M, N = 4, 50, 8
    obs, r = ObsOp(N), 0.1
    truth = torch.randn(B, N, generator=g)
    y = truth + r**0.5 * torch.randn(B, N, generator=g)
    ens = lambda s: truth.unsqueeze(1) + s * torch.randn(B, M, N, generator=g)  # noqa: E731 - error = spread
    a0 = torch.full((B,), 0.5)
    off = (truth + torch.randn(B, N, generator=g)).unsqueeze(1)  # a mean error of about 1
    thin = adapt_relaxation(a0, off + 0.05 * torch.randn(B, M, N, generator=g), y, obs, r, 0.1, 9.0)
    wide = adapt_relaxation(a0, ens(3.0), y, obs, r, 0.1, 9.0)
    assert (thin > a0).all() and (wide < a0).all()
    assert (thin - a0).max() <= 0.1 * np.log(9.0) + 1e-6  # the estimate is clipped at max2
    assert adapt_relaxation(torch.ones(B), off + 0.01 * ens(1.0), y, obs, r, 0.5, 9.0).eq(1).all()  # never above 1
    assert adapt_relaxation(torch.zeros(B), ens(5.0), y, obs, r, 0.5, 9.0).eq(0).all()  # never below 0
    nan = ens(1.0)
    nan[0, 0, 0] = float("nan")
    assert adapt_relaxation(a0, nan, y, obs, r, 0.1, 9.0)[0] == 0.5
    Eb, Ea = ens(1.0), ens(0.2)
    for alpha in (0.0, 0.3, torch.tensor([0.0, 0.25, 0.5, 1.0])):
        out = relax_to_prior_spread(Ea, Eb, alpha)
        torch.testing.assert_close(out.mean(1), Ea.mean(1))
        a = alpha.view(B, 1) if isinstance(alpha, torch.Tensor) else alpha
        torch.testing.assert_close(out.std(1), (1 - a) * Ea.std(1) + a * Eb.std(1), rtol=1e-4, atol=1e-6)


def test_relax_mode_leaves_the_prior_alone_and_relaxes_the_analysis(tiny_cfg_file, tiny_data):
    """spread_adapt relax: the agent's prior is its forecast (no inflation), each env's alpha starts at 0 with every
    episode and moves with the observation about to be assimilated, the analysis is relaxed towards the prior spread by
    it (in training the agent is scored before the relaxation), the teachers still see the fixed-inflation prior, and
    alpha is part of the env's state (resume)."""
    from enkf.env import EnKFVecEnv
    from enkf.filters import adapt_relaxation

    _, _, _, d = tiny_data
    cfg = load_config(tiny_cfg_file, {"agent_inflation": 1.2, "spread_adapt": "relax", "inflation_adapt": 0.25,
                                      "rotate": False})  # fmt: skip
    env = EnKFVecEnv(cfg, d, 4, seed=0)
    env.reset()
    p, t = env.path, env.t
    torch.testing.assert_close(env.Eb, d.xb[p, t])  # not inflated
    a1 = adapt_relaxation(torch.zeros(4), d.xb[p, t], d.obs[p, t], env.obs_op, env.r, 0.25, cfg.inflation_adapt_max**2)
    torch.testing.assert_close(env.alpha, a1)
    torch.testing.assert_close(env.prior_as_fixed().std(1), env.Eb.std(1) * 1.2)
    env.alpha[:] = torch.tensor([0.0, 0.25, 0.5, 1.0])
    shrink = -0.9 * (env.Eb - env.Eb.mean(1, keepdim=True)) / env.nc["increment"][1]  # the anomalies to a tenth
    xa = env.analysis_from_action(shrink)
    a = env.alpha.view(4, 1)
    torch.testing.assert_close(xa.std(1), (1 - a) * 0.1 * env.Eb.std(1) + a * env.Eb.std(1), rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(env.analysis_from_action(shrink, env.Eb.clone()).std(1), 0.1 * env.Eb.std(1),
                               rtol=1e-3, atol=1e-5)  # another prior (the warm start's): no alpha  # fmt: skip
    # training (a sampled and a deterministic action): the agent is scored on its analysis before the relaxation (as a
    # filter's RTPS follows its analysis); the relaxed analysis is what is integrated
    raw = env.analysis_from_action(shrink, relax=False)
    want_r = env.reward(raw, env.teacher(), xa_others=raw)[0]
    before = env.alpha.clone()
    res = env.step(shrink, shrink)
    assert not torch.equal(env.alpha, before)
    torch.testing.assert_close(res.reward, want_r)
    torch.testing.assert_close(env.xa_prev, xa)  # relaxed by each env's alpha
    st = env.state_dict()
    other = EnKFVecEnv(cfg, d, 4, seed=1)
    other.load_state_dict(st)
    torch.testing.assert_close(other.alpha, env.alpha)
    prior = EnKFVecEnv(dataclasses.replace(cfg, spread_adapt="auto"), d, 4, seed=0)  # not chosen yet: prior inflation
    prior.reset()
    assert not torch.allclose(prior.Eb, d.xb[prior.path, prior.t]) and prior.alpha.eq(0).all()


def test_the_recipe_chooses_where_the_spread_adapts(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """choose_spread_adapt: of prior and relax, the lower worst-path RMSE of the untrained gain-gated analysis on
    training paths 1-4; a set value stays; without adaptive inflation: prior. A training run records the choice in its
    config.json and checkpoints; an agent file from before the field loads with prior (what it was trained with)."""
    from enkf.gain import choose_gain_radius, choose_spread_adapt, untrained_scores

    _, data_dir, _, d = tiny_data
    assert load_config(tiny_cfg_file).spread_adapt == "auto"  # the recipe
    cfg = choose_gain_radius(load_config(tiny_cfg_file, {"spread_adapt": "auto"}), d)
    scores = untrained_scores(cfg, d, "spread_adapt", ("prior", "relax"))
    assert scores["prior"] != scores["relax"]
    best = min(scores, key=scores.get)
    assert choose_spread_adapt(cfg, d).spread_adapt == best
    assert choose_spread_adapt(dataclasses.replace(cfg, spread_adapt="relax"), d).spread_adapt == "relax"
    assert choose_spread_adapt(dataclasses.replace(cfg, inflation_adapt=0.0), d).spread_adapt == "prior"
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    P.train(*P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--run-name", "sa",
                           "--total-timesteps", "64", "--no-progress", "--spread-adapt", "auto"]))  # fmt: skip
    run = json.loads((tmp_path / "tiny" / "runs" / "sa" / "config.json").read_text())
    assert run["spread_adapt"] == best
    ck = torch.load(tmp_path / "tiny" / "runs" / "sa" / "checkpoints" / "latest.pt", weights_only=False)
    assert ck["config"]["spread_adapt"] == best
    del ck["config"]["spread_adapt"]
    torch.save(ck, tmp_path / "old.pt")
    assert P.load_checkpoint(str(tmp_path / "old.pt"))["config"]["spread_adapt"] == "prior"


def test_gain_and_square_root_rows_start_as_the_etkf(tiny_cfg_file, tiny_data):
    """With the kg rows and the sr rows (S - I + K H) gated at 1, the untrained agent's analysis is the ETKF's (symmetric
    root), for correlated anomalies of rank M - 1 < N (the pseudo-inverse path)."""
    from enkf.env import EnKFVecEnv
    from enkf.filters import etkf

    _, _, _, d = tiny_data
    rows = ",".join(f"{q}{k}" for q in ("kg", "sr") for k in range(-3, 5))
    cfg = load_config(tiny_cfg_file, {"features": f"xb,innov,anom,{rows}", "gain_gate": True, "rtps": 0.0,
                                      "agent_inflation": 1.0, "gain_radius": 1e6})  # fmt: skip
    env = EnKFVecEnv(cfg, d, 2, seed=0)
    env.reset()
    g = torch.Generator().manual_seed(3)
    A = torch.randn(2, 6, cfg.N, generator=g) @ torch.randn(cfg.N, cfg.N, generator=g) * 0.05  # correlated
    A = A - A.mean(1, keepdim=True)  # (B, M=6, N=8): rank 5
    env.Eb = d.truth[env.path, env.t].unsqueeze(1) + 0.2 + A
    f = env._features(torch.arange(2))
    assert f.abs().max() < cfg.bound  # nothing clipped
    M = 6
    obs = f.unsqueeze(1).expand(-1, cfg.temporal_window, -1, -1, -1).permute(0, 2, 1, 3, 4).reshape(2, M, -1, cfg.N)
    ag = P.Agent(cfg, env.C, M, cfg.N)
    assert [k for _, k, a in ag.kg if a] == list(range(-3, 5))  # the sr gates, on the anomaly
    with torch.no_grad():
        ag.actor_head.weight.zero_()
    mean, _ = ag.actor_step(obs, ag.initial_state(2), torch.ones(2))
    xa = env.analysis_from_action(mean).double()
    Eb, y = env.Eb.double(), env.y[env.path, env.t].double()
    want = etkf(Eb, y, env.obs_op, env.r, 1.0)
    torch.testing.assert_close(xa, want, rtol=1e-4, atol=1e-4)
    assert (xa - xa.mean(1, keepdim=True)).abs().max() > 1e-3  # the anomalies did not vanish


@pytest.mark.parametrize("config", ["tiny", "configs/L63.py"])
def test_rollout_pool_gives_the_updates_means_and_gradients_before_a_step(tiny_cfg_file, config):
    """rollout_pool: the member pool kept from the rollout's steps, with only the acting members' observations, gives
    the update the same means and gradients as pooling over all members again (so the two differ only by the weight
    steps taken within an update), for the local and the dense policy."""
    torch.manual_seed(0)
    cfg = load_config(tiny_cfg_file if config == "tiny" else config)
    S, B, M, N, C = 3, 2, 6, cfg.N, cfg.temporal_window * len(cfg.feature_list)
    ag = P.Agent(cfg, C, M, N)
    obs, done, st = torch.randn(S, B, M, C, N), torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]]), ag.initial_state(B)
    pools, s = [], st
    with torch.no_grad():  # the rollout, one step at a time
        for t in range(S):
            _, s = ag.actor_step(obs[t], s, done[t])
            pools.append(ag.pool)  # (B, 1, H, n)
    pool = torch.stack(pools)  # (S, B, 1, H, n)
    assert pool.shape == (S, B, 1, cfg.hidden, 1 if ag.kind == "dense" else N)
    sub = torch.tensor([4, 1, 3])
    cells = ag.select_state(st, slice(None), sub)
    means, grads = [], []
    for kw in (dict(obs=obs, members=sub), dict(obs=obs[:, :, sub], pool=pool.flatten(0, 1))):
        ag.zero_grad()
        m, _ = ag.actor_sequence(state=cells, done=done, **kw)  # (S, B, 3, N)
        (m**2).sum().backward()
        means.append(m.detach())
        grads.append([p.grad.clone() for p in ag.encoder.parameters()])
    torch.testing.assert_close(means[1], means[0])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    assert any(g.abs().sum() > 0 for g in grads[0])  # the encoder's weights do get a gradient


def test_rollout_keeps_the_member_pool_of_each_step(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """With rollout_pool (the default) the run's buffer holds, for every rollout step, the mean over members of the first layer on
    that step's observations (the weights are unchanged between the rollout and this check)."""
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    _, data_dir, _, _ = tiny_data
    cfg, args = P.parse_args(
        ["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--no-progress", "--run-name", "pool"]
    )  # fmt: skip (the default)
    r = P.Run(cfg, args)
    P.rollout(r)
    with torch.no_grad():
        want = r.agent._layer1(r.buf["obs"].flatten(0, 1)).mean(1, keepdim=True)  # (S*B, 1, H, N)
    torch.testing.assert_close(r.buf["pool"].flatten(0, 1), want)
    assert r.buf["pool"].abs().sum() > 0 and "pool" not in P.Run(*P.parse_args(["--config", str(tiny_cfg_file),
        "--data-dir", str(data_dir), "--no-progress", "--run-name", "nopool", "--no-rollout-pool"])).buf  # fmt: skip


def test_mixed_ensemble_sizes_take_turns_and_resume_exactly(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """mix_sizes: iterations take N_ens and the extra sizes in turn, each size with its own env (the stored ensembles
    cut to its first members, the gain radius chosen again for it), buffers and LSTM state, logged under size<M>/; a run
    cut and resumed ends with the same weights and the same extra env as one that ran through."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from enkf.gain import at_size

    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    tiny, data_dir, _, data = tiny_data
    common = ["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--no-progress", "--seed", "3",
              "--total-timesteps", str(3 * 64), "--mix-sizes", "4"]  # fmt: skip
    r = P.Run(*P.parse_args(common + ["--run-name", "look"]))
    big, small = (s["env"] for s in r.slots)
    assert (big.M, small.M, r.env is big, r.agent.M) == (8, 4, True, 8)
    torch.testing.assert_close(small.xb_enkf, data.xb[:, :, :4])  # (P, T, 4, N): the first 4 stored members
    want = at_size(dataclasses.replace(r.cfg, gain_radius=0), data, 4)[0].gain_radius
    assert small.rho.equal(P.EnKFVecEnv(dataclasses.replace(r.cfg, N_ens=4, gain_radius=want), data, 1).rho)
    r.use(1)
    assert (r.env, r.agent.M, r.buf["obs"].shape[2], r.lstm_state[0].shape[1]) == (small, 4, 4, 8 * 4 * tiny.N)
    P.rollout(r)
    moved = r.next_obs
    r.use(0)
    assert r.env is big and r.agent.M == 8 and r.slots[1]["next_obs"] is moved  # kept for its next turn
    r = P.Run(*P.parse_args(common + ["--run-name", "all", "--no-curriculum"]))  # every size starts on the same paths
    assert [s["env"].paths.tolist() for s in r.slots] == [list(range(1, data.truth.shape[0]))] * 2

    full = P.train(*P.parse_args(common + ["--run-name", "full"]))
    P.train(*P.parse_args(common + ["--run-name", "part", "--stop-after", "2"]))
    resumed = P.train(*P.parse_args(common + ["--run-name", "part", "--resume"]))
    assert resumed["steps"] == full["steps"] == 3 * 64
    a, b = (torch.load(tmp_path / "tiny" / "runs" / n / "checkpoints" / "latest.pt", weights_only=False)
            for n in ("full", "part"))  # fmt: skip
    for k in a["agent"]:
        torch.testing.assert_close(a["agent"][k], b["agent"][k], rtol=0, atol=0)
    (sa,), (sb,) = a["slots"], b["slots"]
    assert sa["env"]["Eb"].shape == (8, 4, tiny.N) and sa["env"]["t"].equal(sb["env"]["t"])
    torch.testing.assert_close(sa["lstm_state"][0], sb["lstm_state"][0], rtol=0, atol=0)
    ea = EventAccumulator(str(tmp_path / "tiny" / "runs" / "full")).Reload()
    assert [e.step for e in ea.Scalars("rmse/agent_vs_truth")] == [64, 192]  # iterations 1 and 3: N_ens
    assert [e.step for e in ea.Scalars("size4/rmse/agent_vs_truth")] == [128]  # iteration 2: 4 members


@pytest.mark.parametrize("bad", ["8", "1", "4,4", "four"])
def test_mix_sizes_out_of_range_is_a_clear_error(tiny_cfg_file, bad):
    with pytest.raises(ConfigError, match=r"field 'mix_sizes' = .* distinct ensemble sizes in \[2, N_ens = 8\)"):
        load_config(tiny_cfg_file, {"mix_sizes": bad})
