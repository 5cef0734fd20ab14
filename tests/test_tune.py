"""Optuna search with shared SQLite storage (issue 6): two processes started together work on one study (as the
docs' `tune.py ... &` does), each adding its trials; the best parameters come out as a loadable config file.
The same with a real PostgreSQL server: test_tune_postgres.py."""

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
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [tune(2, 0), tune(1, 1)]  # at the same time, on one new study
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert [s["trials_by_this_worker"] for s in summaries] == [2, 1]  # each added its own trials
    assert max(s["trials"] for s in summaries) == 3  # to one study
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3 and len({t.user_attrs["worker"] for t in study.trials}) == 2
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    best = load_config(summaries[0]["config_file"])  # a config file ppo_lstm_enkf.py --config accepts
    for k, v in study.best_params.items():
        assert getattr(best, k) == v
    assert best.name == "tiny" and best.N == 8  # the base config's system is kept
    runs = tmp_path / "logs" / "tiny" / "runs"
    assert len(list(runs.glob("tune_t_*"))) == 3
