"""Benchmark suite with trained agents (`make eval`): the filters of enkf/evaluate.py plus agents from checkpoints.

    python scripts/evaluate.py --config configs/L96_1.py --checkpoint pretrained/L96_1.pt
    python scripts/evaluate.py --config configs/L96_2.py --checkpoint pretrained/L96_1.pt --n-ens ""   # transfer
    python scripts/evaluate.py --config configs/L96_1.py --help                                       # every flag

The agent part lives here, at script level, because it needs the training script's Agent and rollout
(ppo_lstm_enkf.py); the package enkf/ never imports the training script (spec §2 in docs/design.md). Everything else (held-out
sets, filters, inflation tuning, tables, figures, the flags) is enkf/evaluate.py; `python -m enkf.evaluate`
runs the same suite without agents. Outputs under logs/<config>/evaluate/ (or --out): eval.md, eval.json,
rmse_over_time.png, hovmoller.png, rmse_vs_nens.png; the last line printed is a JSON summary.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ppo_lstm_enkf as P  # noqa: E402
from configs.defaults import Config, ConfigError  # noqa: E402
from enkf import evaluate as E  # noqa: E402
from enkf.data import DataError, PathData, data_fields, data_fingerprint, load_data  # noqa: E402
from enkf.env import EnKFVecEnv  # noqa: E402
from enkf.evaluate import EvalSet, heldout_set, run_classical, summarize  # noqa: E402, F401 (re-exported)
from enkf.gain import AGENT_CYCLES, AGENT_PATHS, agent_scores, cut_members, uses_gain  # noqa: E402
from enkf.normalization import Normalizer  # noqa: E402
from enkf.rollout import rollout_paths  # noqa: E402


def load_agent(path: Path) -> dict:
    """A training checkpoint or a pretrained file: weights, the agent's config and its normalization."""
    path = Path(path)
    st = P.load_checkpoint(path)
    try:
        cfg = Config(**st["config"])
    except TypeError as e:
        raise ConfigError(f"--checkpoint: {path}: its config does not match this version ({e})") from None
    label = path.stem if path.parent.name != "checkpoints" else f"{path.parent.parent.name}/{path.stem}"
    return dict(path=str(path), label=f"agent {label}", cfg=cfg, norm=Normalizer.from_dict(st["normalization"]),
                weights=st["agent"], provenance=st.get("provenance"), step=st.get("global_step"))  # fmt: skip


def agent_env_config(agent_cfg: Config, target: Config) -> Config:
    """The agent's RL settings (features, window, action, bound, ...) on the target's system."""
    return dataclasses.replace(agent_cfg, **{k: getattr(target, k) for k in data_fields(target)}, burn_in=target.burn_in,
                               name=target.name, compile=target.compile)  # fmt: skip


_CHOSEN: dict[tuple, float] = {}  # gain_radius_at's choices in this process, by agent file, size and training data


def zero_shot_choice(ag: dict, target: Config, M: int, log=True) -> dict:
    """The trained agent's own gain_radius at M members (fewer than it was trained with) on the target system: of the
    target's loc_radii and none (1e6), the half-width whose deterministic analysis has the lowest worst-path RMSE
    (enkf.gain.agent_scores) on the target's stored training paths 1-10 x 1000 cycles at the trained size, their
    ensembles cut to M members. Returns {gain_radius, scores, data (the training data's fingerprint), rule}; raises
    DataError where those data are not stored. Held-out truths are never used. On one core about 10 s per half-width
    on L96 and 40 s on KS (2026-12-08)."""
    cfg = dataclasses.replace(agent_env_config(ag["cfg"], target), N_ens=M)
    trained = dataclasses.replace(target, N_ens=ag["cfg"].N_ens)
    data = cut_members(dataclasses.replace(load_data(trained), norm=ag["norm"]), M)
    cands = [*cfg.loc_radius_list, 1e6]
    if log:
        print(f"[gain] {target.name}: choosing the agent's gain_radius at {M} members: its analysis on training paths "
              f"1-{AGENT_PATHS} x {AGENT_CYCLES} cycles at {len(cands)} half-widths...", file=sys.stderr)  # fmt: skip
    scores = agent_scores(cfg, data, cands, lambda env: build_agent(ag, env.cfg, env), log=log)
    best = min(scores, key=scores.get) if np.isfinite(min(scores.values())) else ag["cfg"].gain_radius
    sc = {f"{v:g}": s if np.isfinite(s) else None for v, s in scores.items()}  # None: a path left the bounds
    return dict(gain_radius=best, scores=sc, data=data_fingerprint(trained),
                rule=f"worst path of training paths 1-{AGENT_PATHS} x {AGENT_CYCLES} cycles")  # fmt: skip


def gain_radius_at(cfg: Config, ag: dict, target: Config, M: int) -> Config:
    """cfg (the agent's settings on the target system) for M members: at fewer members than the agent of ag was trained
    with, the gain_radius of zero_shot_choice: stored with the agent (scripts/export_pretrained.py) for this target's
    training data, else chosen now (and once per process). A half-width chosen at 20 members, often none, would leave
    a 5-member prior's covariance and square root unlocalized. At as many members or more, or where the training data
    are not stored (the suite makes the config's own data first; data for another size are never made), the training
    choice stands."""
    trained = ag["cfg"]
    if M >= trained.N_ens or not uses_gain(cfg):
        return dataclasses.replace(cfg, N_ens=M)
    fp = data_fingerprint(dataclasses.replace(target, N_ens=trained.N_ens))
    key = (ag["path"], M, fp)
    stored = ((ag.get("provenance") or {}).get("zero_shot_gain_radius") or {}).get(str(M))
    if key not in _CHOSEN and stored and stored.get("data") == fp:
        print(f"[gain] {target.name}: gain_radius {stored['gain_radius']:g} at {M} members, stored with the agent "
              f"({stored['rule']})", file=sys.stderr)  # fmt: skip
        _CHOSEN[key] = stored["gain_radius"]
    if key not in _CHOSEN:
        try:
            _CHOSEN[key] = zero_shot_choice(ag, target, M)["gain_radius"]
        except DataError as e:
            print(f"[gain] {target.name}: gain_radius kept at {cfg.gain_radius:g} at {M} members: no stored training "
                  f"data to choose it on ({e})", file=sys.stderr)  # fmt: skip
            return dataclasses.replace(cfg, N_ens=M)
    return dataclasses.replace(cfg, N_ens=M, gain_radius=_CHOSEN[key])


def set_data(s: EvalSet, norm: Normalizer) -> PathData:
    """Set s as stored paths for the agent's env (every path from its first background), in the agent's scales."""
    return PathData(truth=s.truth, obs=s.y, xb=s.xb, xa=s.xa, start_idx=np.zeros(s.P, dtype=np.int64),
                    start_states=s.truth[:, 0], norm=norm, meta={}, folder=Path("."))  # fmt: skip


def build_agent(ag: dict, cfg: Config, env: EnKFVecEnv):
    """The agent of ag (load_agent) with its weights, in eval mode, for env (cfg: the agent's settings at env's size)."""
    agent = P.Agent(cfg, env.C, env.M, env.N)
    agent.load_state_dict(ag["weights"])
    return agent.eval()


def run_agent(ag: dict, target: Config, s: EvalSet, fc=None) -> dict:
    """The agent's deterministic policy on every path of set s, from the set's first background ensemble (at another
    ensemble size than the agent's, see gain_radius_at)."""
    cfg = agent_env_config(ag["cfg"], target)
    M, N = s.xb.shape[2], s.truth.shape[2]
    if ag["cfg"].policy == "global" and (M != ag["cfg"].N_ens or N != ag["cfg"].N):
        return dict(method=ag["label"], param=None, error=f"policy global is tied to N_ens={ag['cfg'].N_ens}, "
                    f"N={ag['cfg'].N}")  # fmt: skip
    if ag["cfg"].policy == "dense" and N != ag["cfg"].N:
        return dict(method=ag["label"], param=None, error=f"policy dense is tied to N={ag['cfg'].N}")
    cfg = gain_radius_at(cfg, ag, target, M)
    env = EnKFVecEnv(cfg, set_data(s, ag["norm"]), s.P, seed=0, forecaster=fc, scoring=False)
    t0 = time.time()
    r = rollout_paths(build_agent(ag, cfg, env), env, list(range(s.P)))
    T = s.y.shape[1]
    rechosen = cfg.gain_radius != ag["cfg"].gain_radius
    return dict(method=ag["label"], param=f"gain_radius {cfg.gain_radius:g} at {M} members" if rechosen else None,
                rmse=r["rmse"], spread=r["spread"], mean=r["mean"],
                seconds=(time.time() - t0) / T, survived=r["survived"])  # fmt: skip


def evaluate(cfg: Config, checkpoints, methods, n_ens, paths, cycles, tune_paths, tune_cycles, seed, path0: bool,
             out: Path, progress=True) -> dict:  # fmt: skip
    """The whole suite with the agents of `checkpoints` (paths); see enkf.evaluate.evaluate."""
    agents = [load_agent(Path(c)) for c in checkpoints]
    return E.evaluate(cfg, agents, methods, n_ens, paths, cycles, tune_paths, tune_cycles, seed, path0, out,
                      progress=progress, run_agent=run_agent)  # fmt: skip


def main(argv=None) -> int:
    return E.main(argv, prog="python scripts/evaluate.py", load_agent=load_agent, run_agent=run_agent)


if __name__ == "__main__":
    sys.exit(main())
