"""The training script's shape (issue 19, item 3): one file of at most 900 lines; Agent(cfg, C, M, N) builds one class
per network kind behind a common interface; train()'s main loop fits on a screen, its phases are named functions."""

import inspect
from pathlib import Path

import pytest
import torch

import ppo_lstm_enkf as P
from configs.defaults import load_config

ROOT = Path(__file__).resolve().parent.parent


def test_the_script_is_one_file_of_at_most_900_lines():
    assert len((ROOT / "ppo_lstm_enkf.py").read_text().splitlines()) <= 900


def test_train_body_is_at_most_120_lines():
    assert len(inspect.getsource(P.train).splitlines()) <= 120


@pytest.mark.parametrize(
    "policy, agents, cls",
    [("local", "single", "LocalAgent"), ("local", "per-member", "LocalAgent"), ("dense", "single", "DenseAgent"),
     ("global", "single", "GlobalAgent"), ("global", "per-member", "MemberAgent")],
)  # fmt: skip
def test_each_kind_builds_its_own_class(tiny_cfg_file, policy, agents, cls):
    cfg = load_config(tiny_cfg_file, {"policy": policy, "agents": agents})
    C = cfg.temporal_window * len(cfg.feature_list)
    ag = P.Agent(cfg, C, 4, 8)
    assert type(ag) is getattr(P, cls) and isinstance(ag, P.Agent)
    assert ag.kind == {"MemberAgent": "member"}.get(cls, policy) and ag.per_member == (agents == "per-member")
    # one interface: the same calls and shapes for every kind
    obs, done = torch.randn(3, 2, 4, C, 8), torch.zeros(3, 2)
    mean, state = ag.actor_sequence(obs, ag.initial_state(2), done)
    assert mean.shape == (3, 2, 4, 8) and ag.get_value(obs).shape == (3, 2, 4, 8)
    assert state[0].shape == (cfg.lstm_layers, ag.cells(2), cfg.lstm_hidden)
    assert set(ag.state_dict()) >= {"actor_logstd", "lstm.weight_ih_l0", "actor_head.weight", "encoder.0.weight"}
    assert any(k.startswith("critic.") for k in ag.state_dict())


def test_an_agent_deep_copies_to_its_kind(tiny_cfg_file):
    import copy

    cfg = load_config(tiny_cfg_file)
    ag = P.Agent(cfg, cfg.temporal_window * len(cfg.feature_list), 4, 8)
    twin = copy.deepcopy(ag)  # rebuilt without the constructor's arguments
    assert type(twin) is P.LocalAgent
    assert all(torch.equal(a, b) for a, b in zip(ag.state_dict().values(), twin.state_dict().values(), strict=True))


def test_training_phases_are_named_functions():
    for name in ("imitate", "rollout", "ppo_update", "log_iteration", "after_iteration", "evaluate"):
        assert inspect.isfunction(getattr(P, name)), name
    assert inspect.isclass(P.Run) and callable(P.Run.checkpoint) and callable(P.Run.load)
