"""Issue 17, items 2 and 4: the recipe's parts. The supervised warm start (imitation of the best tuned filter on the
agent's own forecasts), the dense policy for small non-periodic states (Lorenz-63) and the policy chosen by model."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import ppo_lstm_enkf as P
from configs.defaults import ConfigError, load_config


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
    assert ag.gate_idx and ag.actor_head.out_features == (1 + len(ag.gate_idx)) * 3
    assert ag.get_value(obs[0]).shape == (2, 10, 3)


def test_imitation_warm_start_learns_the_filter(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """With imitation only (fraction 1), the regression loss falls and the agent's analysis on path 0 gets close to
    the filter it imitates; the loss is logged and the run evaluates."""
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path)
    _, data_dir, _, _ = tiny_data
    out = P.train(*P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--run-name", "imi",
                                 "--imitation-fraction", "1", "--total-timesteps", "8192", "--learning-rate", "3e-3",
                                 "--no-progress"]))  # fmt: skip
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tmp_path / "tiny" / "runs" / "imi"))
    ea.Reload()
    loss = [e.value for e in ea.Scalars("imitation/loss")]
    assert len(loss) > 0.9 * 8192 // (8 * 8) and np.mean(loss[-10:]) < 0.5 * np.mean(loss[:10])  # one per iteration
    assert out["cycles_survived"] == out["cycles"]
    # from an increment of ~0 (the forecast: free run 1.7) to within reach of the filter it imitates
    assert out["agent_rmse"] < 0.8 * out["obs_only_rmse"] and out["agent_rmse"] < 1.6 * out["best_filter_rmse"]
    cfg = json.loads((tmp_path / "tiny" / "runs" / "imi" / "config.json").read_text())
    assert cfg["imitation_fraction"] == 1.0


def test_eval_all_writes_one_table_with_seed_means(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    """make eval-all on a tiny config: two seed agents give a mean ± std, the best tuned filter is named, the
    shipped agent's N_ens ratios are filled; a config without an agent says so."""
    import shutil

    import enkf.tuned as T
    import scripts.eval_all as EA

    cfg, data_dir, _, _ = tiny_data
    monkeypatch.setattr(T, "TUNED_DIR", tmp_path / "tuned")
    for name in ("tiny", "other"):  # tuned values on file (the tuning itself is tested elsewhere)
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
    for sd in (1, 2):
        P.train(*P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--run-name", f"s{sd}",
                               "--seed", str(sd), "--total-timesteps", "4096", "--imitation-fraction", "1",
                               "--learning-rate", "3e-3", "--no-progress"]))  # fmt: skip
        shutil.copy(
            tmp_path / "logs" / "tiny" / "runs" / f"s{sd}" / "checkpoints" / "latest.pt",
            pre / "seeds" / f"tiny_s{sd}.pt",
        )
    shutil.copy(pre / "seeds" / "tiny_s1.pt", pre / "tiny.pt")
    out = tmp_path / "all.md"
    argv = ["--configs", "tiny,other", "--n-ens", "4,8", "--paths", "2", "--cycles", "30", "--configs-dir", str(cfgs),
            "--pretrained-dir", str(pre), "--out", str(out), "--quiet"]  # fmt: skip
    assert EA.main(argv) == 0
    res = json.loads(out.with_suffix(".json").read_text())["results"]
    tiny, other = res
    assert tiny["seeds"] == 2 and len(tiny["per_seed"]) == 2 and tiny["agent_rmse_std"] is not None
    assert tiny["agent_rmse"] == pytest.approx(np.mean(tiny["per_seed"]))
    assert tiny["ratio"] == pytest.approx(tiny["agent_rmse"] / tiny["best_filter_rmse"])
    assert set(tiny["nens_ratio"]) == {"4", "8"} and tiny["best_filter"].split(" ")[0] in T.METHODS
    assert "agent_rmse" not in other
    md = out.read_text()
    assert "| tiny |" in md and "no shipped agent" in md and "ratio N_ens 4" in md
