"""A real PostgreSQL study (issue 12): a throw-away PostgreSQL server in a temporary folder on 127.0.0.1, two
scripts/tune.py processes working on one study through its postgresql:// URL at the same time, then the
server is stopped. These are the multi-machine commands of docs/operations.md, with 127.0.0.1 as the host.

The server binaries (initdb, pg_ctl, createdb) come from PATH or Debian's /usr/lib/postgresql/<version>/bin.
.ci/run installs the `postgresql` package when they are missing and then sets RL4DA_REQUIRE_POSTGRES=1, so that
in CI a server that cannot be found or started fails this test instead of skipping it. initdb refuses to run as
root: as root the server runs as the `postgres` user (else `nobody`)."""

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from configs.defaults import REPO_ROOT, load_config

REQUIRED = os.environ.get("RL4DA_REQUIRE_POSTGRES") == "1"


def _need(what: str):
    if REQUIRED:
        pytest.fail(f"{what} (RL4DA_REQUIRE_POSTGRES=1)")
    pytest.skip(what)


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name))
    return Path(dirs[-1]) if dirs and (Path(dirs[-1]) / "initdb").is_file() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """Start a PostgreSQL server in a temporary folder; yield the URL of an empty database; stop the server."""
    try:
        import psycopg2  # noqa: F401 - SQLAlchemy's PostgreSQL driver (requirements.txt)
    except ImportError:
        _need("psycopg2 is not installed (pip install -r requirements.txt)")
    bindir = _pg_bindir()
    if bindir is None:
        _need("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    run_as = {}
    base = Path(tempfile.mkdtemp(prefix="rl4da_pg_"))  # in /tmp, so the server's user can reach it
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pw = pwd.getpwnam("nobody")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    user, password, port = "rl4da", "tune-test-pw", _free_port()
    data, log = base / "data", base / "server.log"
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    if run_as:
        os.chown(pwfile, run_as["user"], run_as["group"])
    env = {**os.environ, "PGPASSWORD": password, "LC_ALL": "C"}

    def pg(*cmd, check=True):
        r = subprocess.run([str(bindir / cmd[0]), *cmd[1:]], cwd=base, env=env, capture_output=True, text=True,
                           timeout=120, **run_as)  # fmt: skip
        if check and r.returncode:
            server_log = log.read_text()[-2000:] if log.is_file() else ""
            pytest.fail(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-2000:]}\n{server_log}")
        return r

    try:
        # a throw-away server: no fsync (-N, fsync=off), stopped without a shutdown checkpoint (-m immediate)
        pg("initdb", "-D", str(data), "-U", user, f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "-N",
           "--no-instructions")  # fmt: skip
        pg("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
           f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")  # fmt: skip
        try:
            pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, "rl4da_tune")  # as in the docs
            yield f"postgresql://{user}:{password}@127.0.0.1:{port}/rl4da_tune"
        finally:
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_two_processes_share_one_postgres_study(postgres_url, tiny_cfg_file, tiny_data, tmp_path):
    optuna = pytest.importorskip("optuna")
    _, data_dir, _, _ = tiny_data
    env = {**os.environ, "RL4DA_LOGS": str(tmp_path / "logs"), "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "tune.py"), "--config", str(tiny_cfg_file), "--n-trials", "2",
           "--total-timesteps", "128", "--eval-interval", "64", "--storage", postgres_url, "--study-name", "l96_1"]  # fmt: skip
    procs = [subprocess.Popen(cmd + ["--seed", str(seed), "--", "--data-dir", str(data_dir)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert all(s["trials_by_this_worker"] == 2 for s in summaries), summaries  # both added their trials
    assert all("tune-test-pw" not in s["storage"] for s in summaries)  # the password is not printed
    study = optuna.load_study(study_name="l96_1", storage=postgres_url.replace("postgresql:", "postgresql+psycopg2:"))
    workers = [t.user_attrs["worker"] for t in study.trials]
    assert len(study.trials) == 4 and len(set(workers)) == 2 and all(workers.count(w) == 2 for w in workers)
    assert {s["worker"] for s in summaries} == set(workers)
    best_file = Path(summaries[-1]["config_file"])
    assert best_file == tmp_path / "logs" / "tiny" / "tune" / "best_l96_1.py" and best_file.is_file()
    best = load_config(best_file)  # a config file ppo_lstm_enkf.py --config accepts
    for k, v in study.best_params.items():
        assert getattr(best, k) == v


def test_unreachable_study_database_is_a_one_line_error_without_the_password():
    pytest.importorskip("optuna")
    from scripts import tune

    url = f"postgresql://rl4da:secret-pw@127.0.0.1:{_free_port()}/nowhere"  # nothing listens there
    with pytest.raises(tune.ConfigError, match="cannot open the study database") as e:
        tune.open_storage(url, attempts=1)
    assert "secret-pw" not in str(e.value) and "\n" not in str(e.value)
