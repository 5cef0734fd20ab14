"""scripts/train_concurrent.sh (make train-all / status / stop): parallel trainings with PID files, a status
that is right while they run, a summary of exit codes, and a stop that checkpoints."""

import os
import shutil
import subprocess
import sys
import time

import torch

from configs.defaults import REPO_ROOT

SCRIPT = str(REPO_ROOT / "scripts" / "train_concurrent.sh")


def _setup(tmp_path, tiny_cfg_file, names):
    env = {**os.environ, "RL4DA_LOGS": str(tmp_path / "logs"), "PY": sys.executable, "PYTHONPATH": str(REPO_ROOT)}
    cfgs = []
    for n in names:
        p = tmp_path / f"{n}.py"
        shutil.copy(tiny_cfg_file, p)
        cfgs.append(str(p))
    return env, cfgs


def _status(env):
    return subprocess.run([SCRIPT, "--status"], env=env, capture_output=True, text=True, timeout=60).stdout


def _wait_summary(tmp_path, timeout=600):
    log = tmp_path / "logs" / "train_all.log"
    t0 = time.time()
    while time.time() - t0 < timeout:
        if log.is_file() and "summary:" in log.read_text():
            return log.read_text()
        time.sleep(0.5)
    raise AssertionError(f"no summary after {timeout} s: {log.read_text() if log.is_file() else '(no log)'}")


def test_train_all_runs_in_parallel_and_status_tracks_them(tmp_path, tiny_cfg_file):
    env, cfgs = _setup(tmp_path, tiny_cfg_file, ["ta", "tb"])
    r = subprocess.run([SCRIPT, "--background", *cfgs, "--", "--total-timesteps", "1280", "--no-progress"], env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and "background" in r.stdout
    seen_running = set()
    t0 = time.time()
    while time.time() - t0 < 600 and len(seen_running) < 2:
        st = _status(env)
        seen_running |= {
            n for n in ("ta", "tb") if any(ln.startswith(n) and "running (pid" in ln for ln in st.splitlines())
        }
        if "summary:" in (
            (tmp_path / "logs" / "train_all.log").read_text() if (tmp_path / "logs" / "train_all.log").is_file() else ""
        ):
            break
        time.sleep(0.3)
    assert seen_running == {"ta", "tb"}, "both trainings should be reported as running at the same time"
    summary = _wait_summary(tmp_path)
    for n in ("ta", "tb"):
        assert f"{n}" in summary and (tmp_path / "logs" / n / "train.exit").read_text().strip() == "0"
        assert (tmp_path / "logs" / n / "train.log").is_file()
    st = _status(env)
    assert st.count("finished, exit 0") == 2


def test_stop_checkpoints_every_training(tmp_path, tiny_cfg_file):
    env, cfgs = _setup(tmp_path, tiny_cfg_file, ["tc"])
    subprocess.run([SCRIPT, "--background", *cfgs, "--", "--total-timesteps", str(10**9), "--no-progress",
                    "--checkpoint-interval", "64", "--run-name", "long"], env=env, check=True, timeout=60)  # fmt: skip
    ck = tmp_path / "logs" / "tc" / "runs" / "long" / "checkpoints" / "latest.pt"
    t0 = time.time()
    while not ck.is_file() and time.time() - t0 < 300:
        time.sleep(0.3)
    assert "running (pid" in _status(env)
    out = subprocess.run([SCRIPT, "--stop"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "1 training(s) signalled" in out
    summary = _wait_summary(tmp_path)
    assert "tc" in summary and "exit 0" in summary  # SIGTERM: checkpoint, then a clean exit
    assert torch.load(ck, weights_only=False)["global_step"] > 0
    assert "finished, exit 0" in _status(env)


def test_eval_all_schedules_by_the_last_tables_row_times(tmp_path):
    """scripts/eval_all.py --jobs N starts the configs longest first, by each row's seconds in the last table's JSON;
    no table or an unreadable one: none known (the state size decides)."""
    import json

    import scripts.eval_all as EA

    out = tmp_path / "all.md"
    assert EA._last_seconds(out) == {}
    out.with_suffix(".json").write_text("{not json")
    assert EA._last_seconds(out) == {}
    out.with_suffix(".json").write_text(json.dumps({"results": [{"config": "A", "seconds": 5}, {"config": "B"}]}))
    assert EA._last_seconds(out) == {}  # a row without its time: the table is not used
    rows = [{"config": "A", "seconds": 5}, {"config": "B", "seconds": 50.5}]
    out.with_suffix(".json").write_text(json.dumps({"results": rows}))
    assert EA._last_seconds(out) == {"A": 5.0, "B": 50.5}
