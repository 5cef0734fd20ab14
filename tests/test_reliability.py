"""Runs that survive kills, signals, bad input and non-finite values (issue 6). Tiny configs; real processes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import ppo_lstm_enkf as P
from configs.defaults import REPO_ROOT
from enkf.data import DataError, load_data

PY = sys.executable


def _env(tmp_path):
    return {**os.environ, "RL4DA_LOGS": str(tmp_path / "logs"), "PYTHONPATH": str(REPO_ROOT)}


def _wait_for(pred, timeout=120.0, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return pred()
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------------
def test_kill9_during_data_generation_never_leaves_valid_partial_data(tiny_cfg_file, tiny_data, tmp_path):
    cfg, _, _, ref = tiny_data
    out = tmp_path / "data"
    cmd = [PY, "-m", "enkf.data", "--config", str(tiny_cfg_file), "--out", str(out), "--quiet"]
    # kill at several moments after generation has started (the folder exists from its first step)
    for delay in (0.0, 0.15, 0.4, 0.8):
        p = subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert _wait_for(lambda: out.is_dir() and not (out / "meta.json").exists(), proc=p) or p.poll() is not None
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        try:  # whatever was left either loads as the complete, correct data or is refused
            d = load_data(cfg, out)
        except DataError:
            continue
        np.testing.assert_array_equal(d.xa.numpy(), ref.xa.numpy())
    # a rerun continues (regenerates) and ends with the complete data
    r = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = load_data(cfg, out)
    np.testing.assert_array_equal(d.truth.numpy(), ref.truth.numpy())
    np.testing.assert_array_equal(d.xa.numpy(), ref.xa.numpy())
    assert not list(out.glob("*.tmp*")), "temporary files left behind"


def _train_cmd(cfg_file, data_dir, name, total, extra=()):
    return [PY, str(REPO_ROOT / "ppo_lstm_enkf.py"), "--config", str(cfg_file), "--data-dir", str(data_dir),
            "--total-timesteps", str(total), "--run-name", name, "--seed", "5", "--no-progress",
            "--checkpoint-interval", "64", *extra]  # fmt: skip


def test_kill9_during_training_then_resume_continues_exactly(tiny_cfg_file, tiny_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, data_dir, _, _ = tiny_data
    total = 64 * 10
    runs = tmp_path / "logs" / "tiny" / "runs"
    full = subprocess.run(_train_cmd(tiny_cfg_file, data_dir, "full", total), env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert full.returncode == 0, full.stderr
    p = subprocess.Popen(_train_cmd(tiny_cfg_file, data_dir, "killed", total), env=_env(tmp_path),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ck = runs / "killed" / "checkpoints" / "latest.pt"

    def mid_run():
        try:
            return ck.is_file() and 2 * 64 <= torch.load(ck, weights_only=False)["global_step"] < total
        except Exception:  # noqa: BLE001 - the file is being replaced
            return False

    assert _wait_for(mid_run, proc=p), "no mid-run checkpoint appeared"
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = torch.load(ck, weights_only=False)["global_step"]
    assert killed_at < total
    res = subprocess.run(_train_cmd(tiny_cfg_file, data_dir, "killed", total, ["--resume"]), env=_env(tmp_path),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"step {killed_at}" in res.stderr  # it continued from the checkpoint, not from 0
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["steps"] == total and not out["interrupted"]
    a = torch.load(runs / "full" / "checkpoints" / "latest.pt", weights_only=False)
    b = torch.load(ck, weights_only=False)
    for k in a["agent"]:  # same weights, LR schedule, curriculum and RNG streams as the uninterrupted run
        torch.testing.assert_close(a["agent"][k], b["agent"][k], rtol=0, atol=0)
    assert a["curriculum"] == b["curriculum"] and a["iteration"] == b["iteration"]
    # TensorBoard: one continuous curve, no restart at 0, no gap
    ea = EventAccumulator(str(runs / "killed")).Reload()
    steps = [e.step for e in ea.Scalars("charts/learning_rate")]
    assert steps == list(range(64, total + 1, 64)), steps
    lr_full = [e.value for e in EventAccumulator(str(runs / "full")).Reload().Scalars("charts/learning_rate")]
    np.testing.assert_allclose([e.value for e in ea.Scalars("charts/learning_rate")], lr_full, rtol=1e-6)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_checkpoint_then_exits_cleanly(tiny_cfg_file, tiny_data, tmp_path, sig):
    _, data_dir, _, _ = tiny_data
    ck = tmp_path / "logs" / "tiny" / "runs" / "sig" / "checkpoints" / "latest.pt"
    p = subprocess.Popen(_train_cmd(tiny_cfg_file, data_dir, "sig", 64 * 100_000), env=_env(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert _wait_for(ck.is_file, proc=p)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    assert "Traceback" not in stderr
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["interrupted"] and 0 < out["steps"] < 64 * 100_000
    assert torch.load(ck, weights_only=False)["global_step"] == out["steps"]  # the checkpoint is the last state


# ---------------------------------------------------------------------------------------------------
def _malformed(tmp_path, tiny_cfg_file, tiny_data_dir):
    """20 malformed inputs: (description, argv for ppo_lstm_enkf.main, substring the error must contain)."""

    def cfg(text):
        p = tmp_path / f"bad{len(list(tmp_path.glob('bad*.py')))}.py"
        p.write_text(text)
        return str(p)

    good = str(tiny_cfg_file)
    d = str(tiny_data_dir)
    notck = tmp_path / "not_a_checkpoint.pt"
    notck.write_text("hello")
    other = tmp_path / "other_data"
    other.mkdir(exist_ok=True)
    (other / "meta.json").write_text(json.dumps({"fingerprint": "0000", "config": {"name": "L96_2", "N": 17}}))
    return [
        ("field of wrong type", ["--config", cfg("config = dict(N='twenty')")], "field 'N'"),
        ("field out of range", ["--config", cfg("config = dict(N_ens=1)")], "field 'N_ens'"),
        ("unknown field", ["--config", cfg("config = dict(learning_rat=0.1)")], "unknown field 'learning_rat'"),
        ("value not among the choices", ["--config", cfg("config = dict(policy='cnn')")], "field 'policy'"),
        ("missing config file", ["--config", str(tmp_path / "nope.py")], "config file not found"),
        ("config file with a syntax error", ["--config", cfg("config = dict(N=")], "could not be executed"),
        ("config file without `config`", ["--config", cfg("x = 1")], "config"),
        ("`config` that is not a dict", ["--config", cfg("config = [1, 2]")], "must be a dict"),
        ("float for an int field", ["--config", cfg("config = dict(num_envs=8.5)")], "field 'num_envs'"),
        ("cross-field rule", ["--config", cfg("config = dict(obs_stride=50, N=8)")], "field 'obs_stride'"),
        ("bad CLI number", ["--config", good, "--num-envs", "abc"], "--num-envs"),
        ("CLI value out of range", ["--config", good, "--gamma", "1.5"], "field 'gamma'"),
        ("unknown CLI flag", ["--config", good, "--learning-rat", "0.1"], "Unrecognized"),
        ("CLI value not divisible", ["--config", good, "--num-minibatches", "3"], "num_minibatches"),
        ("unknown feature", ["--config", good, "--features", "xb,foo"], "unknown feature 'foo'"),
        ("--resume without a run", ["--config", good, "--data-dir", d, "--resume", "--run-name", "nope"],
         "--resume"),
        ("--eval-only without checkpoint", ["--config", good, "--eval-only"], "needs --checkpoint"),
        ("missing checkpoint", ["--config", good, "--eval-only", "--checkpoint", str(tmp_path / "x.pt")],
         "not found"),
        ("a file that is no checkpoint", ["--config", good, "--data-dir", d, "--eval-only", "--checkpoint",
                                          str(notck)], "not a readable checkpoint"),
        ("data directory of another config", ["--config", good, "--data-dir", str(other)], "another config"),
    ]  # fmt: skip


def test_twenty_malformed_inputs_give_one_line_errors(tiny_cfg_file, tiny_data, tmp_path, capsys, monkeypatch):
    _, data_dir, _, _ = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    cases = _malformed(tmp_path, tiny_cfg_file, data_dir)
    assert len(cases) == 20 and base_ok(tiny_cfg_file)
    for what, argv, needle in cases:
        code = P.main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, (what, code, err)
        assert err.startswith("error: ") and "\n" not in err, (what, err)
        assert needle in err, (what, needle, err)
        assert "Traceback" not in err


def base_ok(cfg_file) -> bool:
    """The tiny config itself parses (so the errors above come from the malformed parts)."""
    cfg, _ = P.parse_args(["--config", str(cfg_file)])
    return cfg.N == 8


def test_malformed_input_in_a_real_process_has_no_traceback(tmp_path):
    r = subprocess.run([PY, str(REPO_ROOT / "ppo_lstm_enkf.py"), "--config", "configs/L96_1.py", "--gamma", "2"],
                       cwd=REPO_ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "field 'gamma'" in r.stderr


# ---------------------------------------------------------------------------------------------------
def test_non_finite_state_halts_only_that_episode(tiny_data):
    from enkf.env import EnKFVecEnv

    cfg, _, _, d = tiny_data
    env = EnKFVecEnv(cfg, d, num_envs=3, seed=0)
    env.reset()
    a = torch.zeros(3, env.M, env.N)
    a[1, 2, 4] = float("nan")  # one value of env 1
    res = env.step(a)
    assert res.terminated.tolist() == [False, True, False]
    assert torch.isfinite(res.obs).all()  # env 1 was reset to a fresh episode; the others carry on
    assert int(res.info["episode_length"][1]) == 1


def test_non_finite_loss_skips_the_update_and_training_goes_on(tiny_cfg_file, tiny_data, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from enkf.env import EnKFVecEnv

    _, data_dir, _, _ = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    real_step = EnKFVecEnv.step
    calls = {"n": 0}

    def poisoned(self, action, mean_action=None):
        res = real_step(self, action, mean_action)
        calls["n"] += self.B == 8  # the training env's steps only
        if self.B == 8 and calls["n"] in (3, 4):  # the training env, second rollout: a NaN reward
            res.reward[0] = float("nan")  # every member of env 0: whichever members a minibatch updates
        return res

    monkeypatch.setattr(EnKFVecEnv, "step", poisoned)
    out = P.main(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--total-timesteps", str(4 * 64),
                  "--no-progress", "--run-name", "nan", "--num-steps", "2"])  # fmt: skip
    assert out == 0
    run = tmp_path / "logs" / "tiny" / "runs" / "nan"
    st = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert st["global_step"] == 4 * 64  # training went on to the end
    assert all(torch.isfinite(v).all() for v in st["agent"].values())  # the weights were not poisoned
    skipped = [e.value for e in EventAccumulator(str(run)).Reload().Scalars("losses/skipped_updates")]
    assert skipped[0] == 0 and skipped[-1] > 0  # the skipped update was logged
