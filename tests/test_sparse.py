"""Issue 13: sparse observations. The L96_sparse config, the policy's receptive field (conv trunk and the
innovation reach), the env's partial-observation features and LETKF teacher, and the LETKF tuned over inflation
and localization radius together."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import enkf.evaluate as E
import enkf.tuned as T
import ppo_lstm_enkf as P
from configs.defaults import ConfigError, load_config
from enkf.cycle import obs_setup
from enkf.data import generate, load_data
from enkf.env import EnKFVecEnv
from enkf.filters import letkf

TINY_SPARSE = (
    "config = dict(model='lorenz96', N=12, F=8.0, N_ens=6, dtda=0.05, oda=0.15, obs_stride=4, obs_noise_var=1.0,\n"
    "              data_filter='letkf', inflation=1.05, loc_radius=2.0, loc_radii='1,2', spinup_steps=4000,\n"
    "              num_paths=4, path_length=60, burn_in=10, compile=False, episode_length=20, num_envs=4,\n"
    "              num_steps=8, num_minibatches=2, update_members=3, hidden=8, lstm_hidden=8, kernel=3,\n"
    "              innovation_reach=2, teacher_inflation=1.05, agent_inflation=1.05, eval_interval=0, checkpoint_interval=0,\n"
    "              torch_threads=1)\n"
)


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    d = tmp_path_factory.mktemp("sparse")
    p = d / "tiny_sparse.py"
    p.write_text(TINY_SPARSE)
    cfg = load_config(p)
    out = d / "data"
    generate(cfg, out, progress=False)
    return p, cfg, out, load_data(cfg, out)


def test_the_sparse_config_is_the_issue_setup():
    cfg = load_config("configs/L96_sparse.py")
    assert (cfg.N, cfg.F, cfg.obs_stride, cfg.N_ens, cfg.obs_noise_var) == (40, 8.0, 4, 20, 1.0)
    assert cfg.obs_idx == list(range(0, 40, 4)) and cfg.oda == 0.15 and cfg.dtda <= 0.05
    assert cfg.data_filter == "letkf" and len(cfg.loc_radius_list) > 1
    # the one recipe (no per-config agent settings): the prior's gain rows reach the observations 4 points away
    assert cfg.gain_gate and {"kg-4", "kg4"} <= set(cfg.feature_list) and cfg.innovation_reach == 0


def test_receptive_field_and_radii_rules_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="field 'kernel' = 1: the policy sees 0 points.*obs_stride = 4"):
        load_config("configs/L96_sparse.py", {"kernel": 1, "innovation_reach": 0})
    # the innovation reach alone can cover the gap between observations
    assert load_config("configs/L96_sparse.py", {"kernel": 1, "innovation_reach": 2}).kernel == 1
    with pytest.raises(ConfigError, match="field 'loc_radii'"):
        load_config("configs/L96_sparse.py", {"loc_radii": "2,x"})
    with pytest.raises(ConfigError, match="field 'loc_radii'"):
        load_config("configs/L96_sparse.py", {"loc_radii": "0,2"})


def _agent(reach: int, N=16):
    cfg = load_config(
        "configs/L96_1.py",
        {"N": N, "N_ens": 3, "kernel": 1, "innovation_reach": reach, "hidden": 6, "lstm_hidden": 4, "gain_gate": False},
    )  # fmt: skip (the reach alone)
    C = cfg.temporal_window * len(cfg.feature_list)
    torch.manual_seed(0)
    ag = P.Agent(cfg, C, 3, N)
    torch.nn.init.normal_(ag.actor_head.weight, std=1.0)  # make every gate's coefficient non-zero
    return ag, C


@pytest.mark.parametrize("reach", [0, 1, 3])
def test_innovation_reach_is_the_exact_receptive_field_of_an_innovation(reach):
    """With a pointwise trunk (kernel 1) an innovation at point j moves the increments at j - reach ... j + reach
    (c_{i,k} * innov(i + k) with i + k = j) and nowhere else."""
    N, j = 16, 7
    ag, C = _agent(reach, N)
    obs = torch.randn(1, 1, 3, C, N)
    obs2 = obs.clone()
    obs2[..., ag.innov_gate, j] += 1.0
    st, done = ag.initial_state(1), torch.zeros(1, 1)
    with torch.no_grad():
        m1, _ = ag.actor_sequence(obs, st, done)
        m2, _ = ag.actor_sequence(obs2, st, done)
    moved = ((m2 - m1).abs() > 1e-7)[0, 0].all(0).nonzero().flatten().tolist()
    assert moved == list(range(j - reach, j + reach + 1))


def test_gate_inputs_hold_the_neighbours_innovations():
    ag, C = _agent(2)
    obs = torch.randn(2, 3, C, 16)
    g = ag.gate_inputs(obs)  # (2, 3, G, 16): own gates, then shifts -2, -1, 1, 2
    inn = obs[:, :, ag.innov_gate]
    assert g.shape[-2] == len(ag.gate_idx) + 4
    for n, k in enumerate(ag.shifts):
        for j in range(16):
            assert torch.equal(g[:, :, len(ag.gate_idx) + n, j], inn[..., (j + k) % 16])


def test_sparse_env_features_mask_and_letkf_teacher(sparse):
    _, cfg, _, data = sparse
    cfg = dataclasses.replace(cfg, reward_target="online", agent_inflation=1.0)
    env = EnKFVecEnv(cfg, data, 2, seed=0)
    obs = env.reset()  # (B, M, C, N)
    F = env.F
    assert F == len(cfg.feature_list) + 1  # + the observed mask
    last = obs[:, :, (cfg.temporal_window - 1) * F :]  # the newest step
    observed = torch.zeros(cfg.N, dtype=torch.bool)
    observed[::4] = True
    assert torch.equal(last[0, 0, -1], observed.float())  # the mask channel
    for f in ("y", "innov", "gain"):
        ch = last[:, :, cfg.feature_list.index(f)]
        assert (ch[..., ~observed] == 0).all() and (ch[..., observed] != 0).any()
    # the online teacher is the data filter, the LETKF with the config's localization, not a global EAKF
    obs_op, r = obs_setup(cfg)
    want = letkf(env.Eb, env.y[env.path, env.t], obs_op, r, 1.05, cfg.loc_radius)
    torch.testing.assert_close(env.teacher(), want)


def test_letkf_keeps_going_when_one_batch_element_diverged():
    cfg = load_config("configs/L96_sparse.py")
    obs_op, r = obs_setup(cfg)
    g = torch.Generator().manual_seed(0)
    E0 = torch.randn(2, 20, 40, generator=g) * 2 + 2
    y = torch.randn(2, 10, generator=g)
    bad = E0.clone()
    bad[1, 3, 5] = float("nan")
    out = letkf(bad, y, obs_op, r, 1.05, 4.0)
    assert torch.isnan(out[1]).any() and torch.isfinite(out[0]).all()
    torch.testing.assert_close(out[0], letkf(E0[:1], y[:1], obs_op, r, 1.05, 4.0)[0])


def test_tuning_picks_the_radius_then_the_controls(monkeypatch, sparse):
    """The LETKF of a config with loc_radii: the half-width first (prior inflation only), then every control at it;
    a method that no setting keeps on track is said to be untracked."""
    _, cfg, _, _ = sparse
    T_ = 40
    seen = []

    def run(c, sts, s, fc, gen, progress=False):  # RMSE depends on the (inflation, radius) pair and on RTPS
        seen.extend(sts)
        return [{"rmse": np.full((2, T_), 1.0 + abs(x.inflation - 1.1) + abs(x.radius - 2.0) + abs(x.rtps - 0.3))}
                for x in sts]  # fmt: skip

    monkeypatch.setattr(T, "run_settings", run)
    e = T.tune_method(cfg, "letkf", None, None, None, 10)
    assert (e["radius"], e["inflation"], e["rtps"], e["tracked"]) == (2.0, 1.1, 0.3, True)
    assert {x.radius for x in seen} == {1.0, 2.0} and e["inflation_only"] == 1.1
    monkeypatch.setattr(T, "run_settings", lambda c, sts, *a, **k: [{"rmse": np.full((2, T_), np.nan)} for _ in sts])
    assert not T.tune_method(cfg, "eakf", None, None, None, 10)["tracked"]


def test_tuned_radii_round_trip_and_fingerprint(sparse, tmp_path, monkeypatch):
    _, cfg, _, _ = sparse
    monkeypatch.setattr(T, "TUNED_DIR", tmp_path)
    st = T.Setting("letkf", 1.05, radius=2.0)
    T.write(cfg, {6: {"letkf": {**st.to_dict(), "score": 1.0, "tracked": True, "edge": False, "inflation_only": 1.05}}})
    assert T.tuned_setting(cfg, "letkf", create=False) == st
    d = json.loads((tmp_path / f"{cfg.name}.json").read_text())
    assert d["tuned"]["6"]["letkf"]["radius"] == 2.0 and d["system"]["loc_radii"] == "1,2"
    # another sweep of radii is another tuning: the file is stale for it
    assert T.read(dataclasses.replace(cfg, loc_radii="1,2,3")) == {}


def test_evaluate_tunes_the_letkf_radius_and_reports_it(sparse, tmp_path):
    _, cfg, data_dir, _ = sparse
    rep = E.evaluate(cfg, [], ["obs_only", "letkf"], [], paths=2, cycles=40, tune_paths=2, tune_cycles=40, seed=5,
                     path0=False, out=tmp_path, progress=False)  # fmt: skip
    rad = rep["tuned_settings"][str(cfg.N_ens)]["letkf"]["radius"]
    assert rad in (1.0, 2.0)
    rows = next(iter(rep["sets"].values()))
    lt = [r for r in rows if r["method"] == "letkf" and not str(r["variant"]).startswith("adaptive")]
    assert lt[0]["setting"]["radius"] == cfg.loc_radius and lt[-1]["setting"]["radius"] == rad
    ad = [r["variant"] for r in rows if r["method"] == "letkf" and str(r["variant"]).startswith("adaptive")]
    assert ad == ["adaptive RTPS", "adaptive RTPS, rotation"]  # the data filter is the LETKF: its adaptive rows run
    md = (tmp_path / "eval.md").read_text()
    assert f"radius {rad:g}" in md and "obs_only" in md and "Best filter" in md and "letkf (adaptive RTPS" in md


def test_training_on_sparse_observations_runs_and_evaluates(sparse, tmp_path, monkeypatch):
    p, cfg, data_dir, _ = sparse
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    cfg, args = P.parse_args(["--config", str(p), "--data-dir", str(data_dir), "--total-timesteps", "64",
                              "--no-progress", "--run-name", "sp"])  # fmt: skip
    out = P.train(cfg, args)
    assert out["cycles_survived"] == out["cycles"] and np.isfinite(out["agent_rmse"])
    assert np.isfinite(out["best_filter_rmse"]) and out["best_filter"].startswith("letkf")  # ran beside the agent


def test_path_baseline_runs_the_tuned_letkf_at_its_tuned_radius(sparse):
    from enkf.cycle import make_forecaster
    from enkf.report import path_baselines

    _, cfg, _, data = sparse
    obs_op, _ = obs_setup(cfg)
    fc = make_forecaster(cfg)
    at_config = path_baselines(cfg, data, 0, fc, obs_op, best=T.Setting("letkf", 1.05))["best_filter"]
    same = path_baselines(cfg, data, 0, fc, obs_op, best=T.Setting("letkf", 1.05, radius=cfg.loc_radius))
    other = path_baselines(cfg, data, 0, fc, obs_op, best=T.Setting("letkf", 1.05, radius=1.0))
    np.testing.assert_allclose(same["best_filter"], at_config)
    assert "radius 1" in other["best_filter_label"] and not np.allclose(other["best_filter"], at_config)


def test_table_labels_name_the_radius_and_an_untracked_tuning(sparse):
    _, cfg, _, _ = sparse
    assert E.label({"method": "letkf", "param": 1.05, "radius": 2.0, "config_inflation": True}, cfg) == (
        "letkf (inflation 1.05, radius 2, config)"
    )
    lab = E.label({"method": "eakf", "param": 1.0, "untracked": True}, cfg)
    assert lab == "eakf (inflation 1, tuned; no setting tracked every tuning path)"
    st = T.Setting("eakf", 1.0, post_inflation=1.15, rotate=True)
    assert E.label({"method": "eakf", "param": 1.0, "setting": st, "edge": True}, cfg) == (
        "eakf (post-inflation 1.15, rotation, tuned; not bracketed by the search)"
    )


@pytest.mark.parametrize("name,reach,bound", [("L96_sparse", 0, 1.0), ("L96_sparse_round2", 4, 0.95)])
def test_shipped_sparse_agents_are_small_documented_and_beat_the_letkf(name, reach, bound):
    """pretrained/L96_sparse.pt (the one recipe, median of 3 seeds) and pretrained/L96_sparse_round2.pt (round 2's
    sparse recipe, innovation reach 4, 120 min): <= 5 MB, carry their provenance, and on fresh L96_sparse truths (not
    the held-out set of the README) keep every path and beat the LETKF at its tuned setting (the config's), with a
    spread of the right order."""
    from configs.defaults import REPO_ROOT
    from enkf.cycle import make_forecaster, rmse
    from scripts import evaluate as SE

    path = REPO_ROOT / "pretrained" / f"{name}.pt"
    assert path.stat().st_size <= 5 * 2**20
    ag = SE.load_agent(path)
    prov = ag["provenance"]
    assert prov["trained_on"] == "L96_sparse" and prov["command"].startswith("python ppo_lstm_enkf.py")
    assert prov["commit"] and prov["budget"] and ag["cfg"].innovation_reach == reach
    cfg = load_config(REPO_ROOT / "configs" / "L96_sparse.py", {"compile": False})
    fc = make_forecaster(cfg)
    s = E.heldout_set(cfg, "t", paths=4, cycles=250, seed=11, fc=fc, progress=False)
    burn = 50
    agent = E.summarize(SE.run_agent(ag, cfg, s, fc), burn, None)
    letkf_rmse = float(rmse(s.xa.mean(-2), s.truth)[:, burn:].mean())  # the set's own LETKF run (1.05, radius 4)
    assert agent["paths_survived"] == 4
    assert agent["rmse"] < bound * letkf_rmse
    assert 0.5 < agent["spread_over_rmse"] < 1.3
