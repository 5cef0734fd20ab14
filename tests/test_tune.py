"""Optuna search with shared SQLite storage (issue 6): a 2-trial study on a tiny budget, then a second
process joins the same study and adds a trial; the best parameters come out as a loadable config file."""

import json
import os
import subprocess
import sys

import pytest

from configs.defaults import REPO_ROOT, load_config

optuna = pytest.importorskip("optuna")


def test_two_processes_share_one_study(tiny_cfg_file, tiny_data, tmp_path):
    _, data_dir, _, _ = tiny_data
    db = tmp_path / "study.db"
    env = {**os.environ, "RL4DA_LOGS": str(tmp_path / "logs"), "PYTHONPATH": str(REPO_ROOT)}

    def tune(n, seed):
        cmd = [sys.executable, str(REPO_ROOT / "scripts" / "tune.py"), "--config", str(tiny_cfg_file), "--n-trials",
               str(n), "--total-timesteps", "128", "--eval-interval", "64", "--storage", f"sqlite:///{db}",
               "--study-name", "t", "--seed", str(seed), "--", "--data-dir", str(data_dir)]  # fmt: skip
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout.strip().splitlines()[-1])

    first = tune(2, 0)
    assert first["trials"] == 2 and first["complete"] + first["pruned"] == 2
    second = tune(1, 1)
    assert second["trials"] == 3  # joined the same study
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
    best = load_config(second["config_file"])  # a config file ppo_lstm_enkf.py --config accepts
    for k, v in study.best_params.items():
        assert getattr(best, k) == v
    assert best.name == "tiny" and best.N == 8  # the base config's system is kept
    runs = tmp_path / "logs" / "tiny" / "runs"
    assert len(list(runs.glob("tune_t_*"))) == 3
