"""Optuna hyperparameter search for ppo_lstm_enkf.py (issue 6; CleanRL's tuner uses Optuna too).

    python scripts/tune.py --config configs/L96_1.py --n-trials 20 --minutes 5
    python scripts/tune.py --config configs/L96_1.py --n-trials 20 --minutes 5   # a 2nd process joins the study
    python scripts/tune.py --config configs/L96_1.py --storage postgresql://user:pw@host/db --study-name l96

Each trial trains one run (logs/<config>/runs/tune_<study>_<trial>/) with sampled learning rate, advantage
estimator, gamma, GAE lambda, clip, epochs, minibatches, entropy coefficient, LSTM size and rollout length, for
--minutes of wall clock (or --total-timesteps). Its periodic evaluations on held-out path 0 (ratio of the
agent's analysis RMSE to the EnKF's) are reported to a median pruner, which stops unpromising trials early;
the objective is the final evaluation's ratio (lower is better; a run that does not survive all cycles scores
5 + the fraction of cycles lost). The study lives in --storage (default: SQLite under logs/<config>/tune/),
so any number of processes, on one machine or many (PostgreSQL/MySQL URL), can work on it at once. After
every finished trial the best parameters so far are written as a config file, logs/<config>/tune/best_<study>.py,
that `ppo_lstm_enkf.py --config` accepts. Extra flags after `--` go to every trial's training.
Last line printed: JSON with the best value, parameters and the config file path.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

import ppo_lstm_enkf as P  # noqa: E402
from configs.defaults import LOGS_ROOT, ConfigError, load_config  # noqa: E402
from enkf import io  # noqa: E402

PENALTY = 5.0


def sample(trial: optuna.Trial, num_envs: int) -> dict:
    """The search space (one place): values are config fields."""
    mbs = [m for m in (1, 2, 4, 8) if num_envs % m == 0]
    p = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "advantage": trial.suggest_categorical("advantage", ["self_critical", "gae"]),
        "gamma": trial.suggest_float("gamma", 0.8, 0.995),
        "gae_lambda": trial.suggest_float("gae_lambda", 0.8, 1.0),
        "clip_coef": trial.suggest_float("clip_coef", 0.1, 0.3),
        "update_epochs": trial.suggest_int("update_epochs", 1, 4),
        "num_minibatches": trial.suggest_categorical("num_minibatches", mbs),
        "ent_coef": trial.suggest_float("ent_coef", 1e-6, 1e-2, log=True),
        "lstm_hidden": trial.suggest_categorical("lstm_hidden", [0, 8, 16, 32, 64]),
        "num_steps": trial.suggest_categorical("num_steps", [8, 16, 32]),
    }
    return p


def objective_value(out: dict) -> float:
    cyc, surv = out.get("cycles"), out.get("cycles_survived")
    if not cyc or surv is None:
        return float("nan")
    if surv < cyc:
        return PENALTY + (1.0 - surv / cyc)
    return float(out["ratio"])


def write_best(study: optuna.Study, base_path: str, out: Path) -> Path | None:
    try:
        best = study.best_trial
    except ValueError:  # no finished trial yet
        return None
    base = load_config(base_path)
    values = {k: v for k, v in base.to_dict().items() if k in base.__dataclass_fields__}
    values.update(best.params)
    lines = [f'"""Best parameters of Optuna study {study.study_name!r} on {base_path}: trial {best.number}, '
             f'objective (ratio to EnKF on path 0) {best.value:.4f}. Written by scripts/tune.py."""', "",
             "config = dict("]  # fmt: skip
    lines += [f"    {k}={v!r}," for k, v in values.items()]
    lines.append(")")
    path = out / f"best_{study.study_name}.py"
    io.write_text(path, "\n".join(lines) + "\n")
    return path


def storage_url(url: str) -> str:
    """SQLAlchemy >= 2.1 reads postgresql:// as the psycopg 3 driver; requirements.txt installs psycopg2, so a
    plain postgresql:// URL uses psycopg2 unless psycopg 3 is installed."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def open_storage(url: str, attempts: int = 6) -> optuna.storages.RDBStorage:
    """The study's database. Workers that start at the same moment on an empty database race to create Optuna's
    tables (measured: `duplicate key ... pg_type` on PostgreSQL with two processes); the loser retries, and
    then finds the tables made. A database that stays unreachable ends in a one-line error."""
    import random
    import time

    import sqlalchemy.exc

    for i in range(attempts):
        try:
            return optuna.storages.RDBStorage(storage_url(url))
        except sqlalchemy.exc.SQLAlchemyError as e:
            if i == attempts - 1:
                msg = str(e.orig if getattr(e, "orig", None) else e).strip().splitlines()[0]
                raise ConfigError(f"--storage {hide_password(url)}: cannot open the study database ({msg})") from None
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def hide_password(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db (summaries end up in logs)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/L96_1.py")
    ap.add_argument("--n-trials", type=int, default=20, help="trials for this process (others may join)")
    ap.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    ap.add_argument("--minutes", type=float, default=5.0, help="wall-clock training budget per trial")
    ap.add_argument("--total-timesteps", type=int, default=0, help="step budget per trial instead of --minutes")
    ap.add_argument("--eval-interval", type=int, default=50_000, help="steps between pruning evaluations")
    ap.add_argument("--storage", default="", help="Optuna storage URL (default sqlite under logs/<config>/tune/)")
    ap.add_argument("--study-name", default="", help="default <config>-tune")
    ap.add_argument("--seed", type=int, default=None, help="sampler seed (default: random, so workers differ)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    ap.add_argument("extra", nargs="*", help="flags for every trial's training (after --)")
    a = ap.parse_args(argv)
    try:
        base = load_config(a.config)
        if a.n_trials < 1 or a.minutes <= 0 or a.eval_interval < 1:
            raise ConfigError("command line: need --n-trials >= 1, --minutes > 0, --eval-interval >= 1")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = LOGS_ROOT / base.name / "tune"
    out.mkdir(parents=True, exist_ok=True)
    storage = a.storage or f"sqlite:///{out / 'optuna.db'}"
    name = a.study_name or f"{base.name}-tune"
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        db = open_storage(storage)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    study = optuna.create_study(
        study_name=name, storage=db, direction="minimize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=a.seed, n_startup_trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )  # fmt: skip

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        params = sample(trial, base.num_envs)
        argv = ["--config", a.config, "--run-name", f"tune_{name}_{trial.number:04d}", "--torch-threads",
                str(a.threads), "--eval-interval", str(a.eval_interval), "--no-progress", *a.extra]  # fmt: skip
        if a.total_timesteps:
            argv += ["--total-timesteps", str(a.total_timesteps)]
        else:
            argv += ["--max-minutes", str(a.minutes), "--total-timesteps", str(10**10)]
        for k, v in params.items():
            argv += [f"--{k.replace('_', '-')}", str(v)]
        cfg, args = P.parse_args(argv)

        def on_eval(step: int, s: dict) -> bool:
            trial.report(objective_value(s), step)
            return trial.should_prune()

        trial.set_user_attr("worker", worker)  # which machine and process ran it (several may share a study)
        res = P.train(cfg, args, on_eval=on_eval)
        trial.set_user_attr("run", res.get("run"))
        if res.get("pruned"):
            raise optuna.TrialPruned()
        v = objective_value(res)
        print(f"[tune] trial {trial.number}: objective {v:.4f} params {params}", file=sys.stderr, flush=True)
        return v

    def after(study, trial):
        if trial.state == optuna.trial.TrialState.COMPLETE:
            write_best(study, a.config, out)

    study.optimize(objective, n_trials=a.n_trials, timeout=a.timeout, callbacks=[after], catch=(ConfigError,))
    best_path = write_best(study, a.config, out)
    states = [t.state.name for t in study.trials]
    mine = sum(t.user_attrs.get("worker") == worker for t in study.trials)
    summary = {"study": name, "storage": hide_password(storage), "worker": worker, "trials": len(states),
               "trials_by_this_worker": mine, "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED")}  # fmt: skip
    if best_path is not None:
        summary |= {"best_value": study.best_value, "best_params": study.best_params, "config_file": str(best_path)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
