"""Classical filters at their best: the tuning set, the grid of spread controls, the tuning rule, and the files.

    python -m enkf.tuned --config configs/L96_1.py [--methods eakf,etkf,letkf,pertobs] [--n-ens 5,10,20,40] [--force]

(= `make tune-filters CONFIG=...`, the only writer of the committed configs/tuned/<config>.json.)

The tuning set: TUNE_PATHS independent truths x TUNE_CYCLES cycles from their own seed (never the held-out set
of `enkf.evaluate`, never the training data). Every filter (EAKF, ETKF, PertObs, LETKF) is run on it over the
spread controls practitioners use, the settings of one round in one batch:
- multiplicative inflation applied before the analysis,
- the same inflation applied after the analysis instead,
- relaxation to prior spread (RTPS), alone or with a small prior inflation (1.05, 1.1),
- each of these with a random mean-preserving rotation of the analysis anomalies (square-root filters),
- the LETKF's half-width, where the config lists `loc_radii` (first the radii with prior inflation; then every
  control at the best radius).
The search: a coarse grid of each control (COARSE), then rounds that add the neighbours 1 and 2 steps of 0.05
(for inflation 0.25 from 2 and 1 from 5) either side of the best value of every control that came within 10% of the best, until
the best is bracketed by evaluated neighbours: the optimum is never between far-apart points. The rule: the
setting whose *worst* tuning path has the lowest time-mean analysis RMSE (a run that diverges on any path is
out), so one path that loses the truth in a burst rules a setting out. A best that is not bracketed (at the limit
of a control's range: inflation 10, RTPS 0.05 or 0.95; the search ran out of rounds; or the LETKF at the largest
swept half-width) is flagged "edge". Each tuned entry also keeps `inflation_only`, the best prior inflation without the other
controls: what the agent's prior inflation and the online teacher use.

Where tuned values are read (training, `make eval`, the trainer's path-0 reference): the committed file if it
matches the system (fingerprint of the system fields, tuning set and grid), else logs/<config>/tuned/<config>.json
(the run's own file); a value missing from both is tuned into the run's own file, announced in one line with
the expected time, with progress. Nothing but `python -m enkf.tuned` writes the committed file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import configs.defaults as D
from configs.defaults import REPO_ROOT, Config, ConfigError, load_config
from enkf import io
from enkf.cycle import assimilate, cycle, held_out_truth, make_forecaster, obs_setup, survived
from enkf.filters import make_analysis

TUNED_DIR = REPO_ROOT / "configs" / "tuned"
# The fields the tuned values depend on (the system and the filters; not the data's own inflation, which only
# shapes the stored training paths, nor N_ens, which is a key inside the file).
SYSTEM_FIELDS = ("data_seed", "model", "N", "F", "l63_sigma", "l63_rho", "l63_beta", "dtda", "oda", "obs_stride",
                 "obs_noise_var", "noise_strength", "loc_radius", "burn_in")  # fmt: skip
TUNE_PATHS, TUNE_CYCLES = 4, 500
METHODS = ("eakf", "etkf", "letkf", "pertobs")
SQRT = ("eakf", "etkf", "letkf")  # square-root filters: the rotation applies
GRID_VERSION = 3
# the coarse grid of each spread control (with and without rotation for square-root filters); the search then
# refines around the best values in steps of STEP until the best is bracketed by evaluated neighbours
COARSE = {"pre": (1.0, 1.1, 1.2, 1.35, 1.5, 2.0, 3.0, 5.0), "post": (1.1, 1.2, 1.35, 1.5, 2.0, 3.0, 5.0),
          "rtps": (0.2, 0.4, 0.6, 0.8, 0.9)}  # fmt: skip
STEP = {"pre": 0.05, "post": 0.05, "rtps": 0.05}
LIMITS = {"pre": (1.0, 10.0), "post": (1.0, 10.0), "rtps": (0.05, 0.95)}
RTPS_INFL = (1.05, 1.1)  # RTPS is also tried with these prior inflations at its best value
NEAR = 1.1  # a control whose coarse best is within 10% of the overall best is refined too


# ---------------------------------------------------------------------------------------------------
# Settings and the search
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Setting:
    """One filter setting: prior inflation, post-analysis inflation, RTPS, rotation, LETKF half-width."""

    method: str
    inflation: float = 1.0
    post_inflation: float = 1.0
    rtps: float = 0.0
    rotate: bool = False
    radius: float | None = None  # None: the config's loc_radius

    def label(self) -> str:
        parts = []
        if self.inflation != 1 or (self.post_inflation == 1 and self.rtps == 0):
            parts.append(f"inflation {self.inflation:g}")
        if self.post_inflation != 1:
            parts.append(f"post-inflation {self.post_inflation:g}")
        if self.rtps:
            parts.append(f"RTPS {self.rtps:g}")
        if self.rotate:
            parts.append("rotation")
        if self.radius is not None:
            parts.append(f"radius {self.radius:g}")
        return f"{self.method} ({', '.join(parts)})"

    @property
    def family(self) -> str:
        return "rtps" if self.rtps else "post" if self.post_inflation != 1 else "pre"

    @property
    def value(self) -> float:
        return {"pre": self.inflation, "post": self.post_inflation, "rtps": self.rtps}[self.family]

    def with_value(self, v: float) -> Setting:
        key = {"pre": "inflation", "post": "post_inflation", "rtps": "rtps"}[self.family]
        return dataclasses.replace(self, **{key: round(v, 4)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Setting:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def coarse_grid(method: str, radius: float | None = None, families=("pre", "post", "rtps")) -> list[Setting]:
    s = []
    for fam in families:
        key = {"pre": "inflation", "post": "post_inflation", "rtps": "rtps"}[fam]
        s += [Setting(method, radius=radius, **{key: v}) for v in COARSE[fam]]
    if method in SQRT:
        s += [dataclasses.replace(x, rotate=True) for x in s]
    return s


def neighbours(st: Setting) -> list[Setting]:
    """The settings one and two steps either side of st in its own control (within its limits); for the best RTPS
    also the same RTPS with a small prior inflation."""
    lo, hi = LIMITS[st.family]
    out = [st.with_value(st.value + k * step(st)) for k in (-2, -1, 1, 2) if lo <= st.value + k * step(st) <= hi]
    if st.family == "rtps" and st.inflation == 1.0:
        out += [dataclasses.replace(st, inflation=a) for a in RTPS_INFL]
    return out


def step(st: Setting) -> float:
    """The refinement step of st's control at its value: 0.05 (inflation 0.25 from 2, 1 from 5)."""
    if st.family == "rtps" or st.value < 2.0:
        return STEP[st.family]
    return 0.25 if st.value < 5.0 else 1.0


def at_edge(st: Setting, evaluated) -> bool:
    """The best setting is not bracketed: it sits at the limit of its control's range, or a neighbour one step away
    was not evaluated (the search ran out of rounds): a wider search might do better."""
    lo, hi = LIMITS[st.family]
    if st.value >= hi or (st.family == "rtps" and st.value <= lo):
        return True
    return any(lo <= st.value + k * step(st) <= hi and st.with_value(st.value + k * step(st)) not in evaluated
               for k in (-1, 1))  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Sets of truths with the config's EnKF (the tuning set here; the held-out set of enkf.evaluate)
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class EvalSet:
    name: str
    truth: torch.Tensor  # (P, T, N)
    y: torch.Tensor  # (P, T, p)
    xb: torch.Tensor  # (P, T, M, N) the config EnKF's backgrounds (xb[:, 0] starts every method)
    xa: torch.Tensor  # (P, T, M, N) the config EnKF's analyses
    enkf_seconds: float | None = None  # seconds per cycle of the run that made xa (None: not timed here)

    @property
    def P(self) -> int:
        return self.truth.shape[0]


def heldout_set(cfg: Config, name: str, paths: int, cycles: int, seed: int, fc, progress: bool) -> EvalSet:
    """Independent truths (their own seed), then the config's EnKF from x0 + noise (N_ens members)."""
    x0, truth, y, gen = held_out_truth(cfg, paths, cycles, 100.0, seed, fc, progress)
    gen.manual_seed(seed * 1000 + cfg.N_ens)  # the ensemble draw depends on N_ens; the truth does not
    obs, r = obs_setup(cfg)
    E0 = x0.unsqueeze(1) + cfg.noise_strength * torch.randn(paths, cfg.N_ens, cfg.N, generator=gen)  # (P, M, N)
    an = make_analysis(cfg.data_filter, obs, r, cfg.inflation, cfg.loc_radius, cfg.periodic, gen)
    t0 = time.time()
    res = assimilate(E0, y, truth, fc, an, store=True, progress=progress, desc=f"{name}: EnKF")
    return EvalSet(name, truth, y, res["xb"], res["xa"], (time.time() - t0) / cycles)


def run_settings(cfg: Config, settings: list[Setting], s: EvalSet, fc, gen, progress=False) -> list[dict]:
    """Every setting on every path of s, batched (one batch per LETKF radius). One result per setting:
    rmse, spread (P, T), the analysis mean of its path 0 (T, N), seconds per cycle of its batch."""
    out: list[dict | None] = [None] * len(settings)
    groups: dict = {}
    for i, st in enumerate(settings):
        groups.setdefault(st.radius, []).append(i)
    obs, r = obs_setup(cfg)
    P, T = s.P, s.y.shape[1]
    for rad, idx in groups.items():
        sts = [settings[i] for i in idx]
        n = len(sts)
        col = lambda k, dt=torch.float32, sts=sts: torch.tensor(
            [getattr(x, k) for x in sts], dtype=dt
        ).repeat_interleave(P)  # noqa: E731
        an = make_analysis(sts[0].method, obs, r, col("inflation"), cfg.loc_radius if rad is None else rad,
                           cfg.periodic, gen, col("post_inflation"), col("rtps"), col("rotate", torch.bool))  # fmt: skip
        t0 = time.time()
        res = cycle(s.xb[:, 0].repeat(n, 1, 1), s.y.repeat(n, 1, 1), s.truth.repeat(n, 1, 1), fc, an, progress,
                    f"{sts[0].method}: {n} settings x {P} paths")  # fmt: skip
        secs = (time.time() - t0) / T
        rm, sp = res["rmse"].reshape(n, P, T), res["spread"].reshape(n, P, T)
        for j, i in enumerate(idx):
            out[i] = dict(method=sts[j].method, param=sts[j].inflation, setting=sts[j], rmse=rm[j], spread=sp[j],
                          mean=res["mean"] if j == 0 else None, seconds=secs)  # fmt: skip
    return out


def minimax(res: list[dict], burn_in: int) -> list[float]:
    """Per result: the worst path's time-mean RMSE, inf where any path diverged."""
    return [r["rmse"][:, burn_in:].mean(1).max() if (survived(r["rmse"]) == r["rmse"].shape[1]).all() else np.inf
            for r in res]  # fmt: skip


def tune_method(cfg: Config, method: str, s: EvalSet, fc, gen, burn_in: int, progress=False,
                families=("pre", "post", "rtps"), rounds: int = 6) -> dict:  # fmt: skip
    """The best setting of `method` on set s by the minimax rule: the coarse grid of every control (with and
    without rotation), then up to `rounds` refinements around the best value of each control that came within
    NEAR of the overall best (and of the prior inflation alone, always), until the best is bracketed by evaluated
    neighbours. Returns the entry written to the
    files: the setting's fields, score (worst path's time-mean RMSE), tracked (some setting kept every path), edge,
    evaluated (number of settings), and inflation_only (the best prior inflation alone) with its score."""
    scores: dict[Setting, float] = {}

    def run(sts):
        sts = [x for x in dict.fromkeys(sts) if x not in scores]
        if sts:
            scores.update(zip(sts, minimax(run_settings(cfg, sts, s, fc, gen, progress), burn_in), strict=True))

    radius = None
    if method == "letkf" and cfg.loc_radii:  # first the half-width, with prior inflation only
        run([st for rad in cfg.loc_radius_list for st in coarse_grid(method, rad, ("pre",)) if not st.rotate])
        radius = min(scores, key=scores.get).radius
    run(coarse_grid(method, radius, families))
    for _ in range(rounds):
        mine = {k: v for k, v in scores.items() if k.radius == radius}
        best = min(mine.values())
        heads = {}
        for st, v in mine.items():  # the best of each (control, rotation, prior inflation) family
            key = (st.family, st.rotate, st.inflation if st.family == "rtps" else None)
            if key not in heads or v < mine[heads[key]]:
                heads[key] = st
        todo = [n for key, st in heads.items() if np.isfinite(mine[st]) and (mine[st] <= NEAR * best
                or key == ("pre", False, None)) for n in neighbours(st)]  # fmt: skip
        if not any(n not in scores for n in todo):
            break
        run(todo)
    mine = {k: v for k, v in scores.items() if k.radius == radius}
    k = min(mine, key=mine.get)
    plain = {st: v for st, v in mine.items() if (st.post_inflation, st.rtps, st.rotate) == (1.0, 0.0, False)}
    k0 = min(plain, key=plain.get)
    edge = bool(np.isfinite(mine[k])) and (at_edge(k, mine) or (radius is not None and len(cfg.loc_radius_list) > 1
                                                                and radius == max(cfg.loc_radius_list)))  # fmt: skip
    return {**k.to_dict(), "score": float(mine[k]), "tracked": bool(np.isfinite(mine[k])), "edge": edge,
            "evaluated": len(scores), "inflation_only": k0.inflation, "inflation_only_score": float(plain[k0])}  # fmt: skip


def tuning_seed(cfg: Config) -> int:
    """The tuning set's seed (enkf.evaluate: held-out seed data_seed + 104729, tuning set that + 1)."""
    return cfg.data_seed + 104729 + 1


def tuning_set(cfg: Config, fc, progress=True) -> EvalSet:
    return heldout_set(cfg, "tuning set", TUNE_PATHS, TUNE_CYCLES, tuning_seed(cfg), fc, progress)


def tune(cfg: Config, methods, progress=True) -> dict:
    """{method: entry} for `methods` at cfg.N_ens on the standard tuning set."""
    fc = make_forecaster(cfg, bucket=True)
    gen = torch.Generator().manual_seed(tuning_seed(cfg) - 1)
    s = tuning_set(cfg, fc, progress)
    burn = min(cfg.burn_in, TUNE_CYCLES // 2)
    got = {}
    for m in methods:
        t0 = time.time()
        got[m] = tune_method(cfg, m, s, fc, gen, burn, progress)
        e = got[m]
        if progress:
            note = "" if e["tracked"] else "; no setting tracked every tuning path"
            note += "; at the edge of the grid" if e["edge"] else ""
            print(f"[tuned] {cfg.name} N_ens={cfg.N_ens}: {Setting.from_dict(e).label()}, worst tuning path "
                  f"{e['score']:.4f}{note} ({time.time() - t0:.0f} s)", file=sys.stderr)  # fmt: skip
    return got


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------
def system_fields(cfg: Config) -> tuple[str, ...]:
    """The system fields, the KS domain length for model 'ks', and the swept LETKF radii where a config sets them
    (only there, so the other configs' tuned files keep their fingerprints)."""
    return SYSTEM_FIELDS + (("ks_length",) if cfg.model == "ks" else ()) + (("loc_radii",) if cfg.loc_radii else ())


def fingerprint(cfg: Config) -> str:
    return cfg.fingerprint(system_fields(cfg)) + f"-g{GRID_VERSION}-p{TUNE_PATHS}x{TUNE_CYCLES}"


def tuned_file(cfg: Config, folder: Path | None = None) -> Path:
    return Path(folder or TUNED_DIR) / f"{cfg.name}.json"


def own_dir(cfg: Config) -> Path:
    """The folder of tuned values that a run found itself (never the committed configs/tuned/)."""
    return D.LOGS_ROOT / cfg.name / "tuned"


def _load(cfg: Config, folder: Path | None = None) -> dict:
    p = tuned_file(cfg, folder)
    if not p.is_file():
        return {}
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: unreadable tuned-filter file ({e}); delete it to tune again") from None
    return d if isinstance(d, dict) and d.get("fingerprint") == fingerprint(cfg) else {}


def read(cfg: Config, folder: Path | None = None) -> dict:
    """{N_ens (str): {method: entry}} for cfg's system, or {} if the file is missing or stale."""
    return _load(cfg, folder).get("tuned", {})


def write(cfg: Config, values: dict, folder: Path | None = None) -> Path:
    """Merge {N_ens: {method: entry}} into cfg's file in `folder` (atomically; other entries kept)."""
    p = tuned_file(cfg, folder)
    old = _load(cfg, folder).get("tuned", {})
    for M, d in values.items():
        old.setdefault(str(M), {}).update(d)
    io.write_json(p, {
        "config": cfg.name, "fingerprint": fingerprint(cfg), "system": {k: getattr(cfg, k) for k in system_fields(cfg)},
        "tuning_set": {"paths": TUNE_PATHS, "cycles": TUNE_CYCLES, "seed": tuning_seed(cfg), "grid": GRID_VERSION,
                       "criterion": "lowest worst-path time-mean analysis RMSE (diverged runs excluded)"},
        "tuned": {k: old[k] for k in sorted(old, key=int)}, "updated": time.strftime("%Y-%m-%d"),
        "made_by": f"make tune-filters CONFIG=configs/{cfg.name}.py" if Path(folder or TUNED_DIR) == TUNED_DIR
        else "tuned on first use by a run whose system is not in configs/tuned/",
    })  # fmt: skip
    return p


def expected_seconds(cfg: Config, methods) -> float:
    """A rough estimate of a tuning's time on one core (cost grows with settings x paths x members x steps)."""
    per = sum(2.5 * len(coarse_grid(m)) + (8 * len(cfg.loc_radius_list) if m == "letkf" and cfg.loc_radii else 0)
              for m in methods)  # fmt: skip
    work = per * TUNE_PATHS * cfg.N_ens * cfg.N * TUNE_CYCLES * (cfg.steps_per_cycle + 2 * cfg.N)
    return 30.0 + work / 1.2e9  # calibrated on L96_1, L63 and KS tunings (2026-12-02)


def lookup(cfg: Config, method: str | None = None, create=True, progress=True) -> dict:
    """The tuned entry of `method` (default: the data filter) at cfg.N_ens: from the committed file, else the run's
    own file under logs/; tuned into the own file when in neither (create=True), else a ConfigError."""
    method = method or cfg.data_filter
    for folder in (TUNED_DIR, own_dir(cfg)):
        got = read(cfg, folder).get(str(cfg.N_ens), {}).get(method)
        if got is not None:
            return got
    if not create:
        raise ConfigError(f"{tuned_file(cfg)}: no tuned {method} for {cfg.name} at N_ens={cfg.N_ens} "
                          f"(run: make tune-filters CONFIG=configs/{cfg.name}.py)")  # fmt: skip
    p = tuned_file(cfg, own_dir(cfg))
    if progress:
        why = "is not in" if tuned_file(cfg).is_file() else "has no file in"
        print(f"[tuned] {cfg.name} (N_ens={cfg.N_ens}, this system) {why} configs/tuned/: tuning {method} on "
              f"{TUNE_PATHS} paths x {TUNE_CYCLES} cycles into {p} (about {expected_seconds(cfg, [method]) / 60:.0f} "
              "min on one core; the committed file is left alone)", file=sys.stderr)  # fmt: skip
    got = tune(cfg, [method], progress)[method]
    write(cfg, {cfg.N_ens: {method: got}}, own_dir(cfg))
    return got


def tuned_inflation(cfg: Config, method: str | None = None, create=True, progress=True) -> float:
    """The tuned prior inflation alone (no other control) of `method` at cfg.N_ens (see lookup)."""
    return float(lookup(cfg, method, create, progress)["inflation_only"])


def tuned_setting(cfg: Config, method: str | None = None, create=True, progress=True) -> Setting:
    return Setting.from_dict(lookup(cfg, method, create, progress))


def best_setting(cfg: Config, methods=METHODS) -> tuple[Setting, float] | None:
    """Of the tuned entries on file (committed, else the run's own) at cfg.N_ens, the one with the lowest tuning
    score over `methods`, and that score; None when none is on file (nothing is tuned here)."""
    got = {}
    for m in methods:
        try:
            got[m] = lookup(cfg, m, create=False)
        except ConfigError:
            continue
    if not got:
        return None
    m = min(got, key=lambda k: got[k]["score"] if got[k]["tracked"] else math.inf)
    return Setting.from_dict(got[m]), got[m]["score"]


def resolve(cfg: Config, progress=True) -> Config:
    """The effective config: teacher_inflation 0 -> the tuned value; agent_inflation 0 -> the teacher's."""
    ti = cfg.teacher_inflation
    if ti == 0 and (cfg.reward_target == "online" or cfg.agent_inflation == 0):
        ti = tuned_inflation(cfg, progress=progress)
    ai = ti if cfg.agent_inflation == 0 else cfg.agent_inflation
    return dataclasses.replace(cfg, teacher_inflation=ti, agent_inflation=ai)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m enkf.tuned", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS))
    ap.add_argument("--n-ens", default="", help="comma list of ensemble sizes (default: the config's N_ens)")
    ap.add_argument("--force", action="store_true", help="tune again even if the file has the values")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        sizes = [int(x) for x in a.n_ens.split(",") if x.strip()] if a.n_ens.strip() else [cfg.N_ens]
        if any(not 2 <= n <= 4096 for n in sizes):
            raise ConfigError(f"command line: --n-ens '{a.n_ens}': sizes must be in [2, 4096]")
        methods = [m.strip() for m in a.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in METHODS]
        if bad:
            raise ConfigError(f"command line: --methods: unknown {', '.join(bad)} (allowed: {', '.join(METHODS)})")
        if a.threads:
            torch.set_num_threads(a.threads)
        out = {}
        for n in sizes:
            c = dataclasses.replace(cfg, N_ens=n)
            have = {} if a.force else read(c).get(str(n), {})
            todo = [m for m in methods if m not in have]
            if todo:
                if not a.quiet:
                    print(f"[tuned] {cfg.name} N_ens={n}: tuning {', '.join(todo)} on {TUNE_PATHS} paths x {TUNE_CYCLES}"
                          f" cycles (about {expected_seconds(c, todo) / 60:.0f} min on one core)", file=sys.stderr)  # fmt: skip
                write(c, {n: tune(c, todo, not a.quiet)})  # after each size: a kill keeps what was done
            out[str(n)] = {m: Setting.from_dict(e).label() for m, e in read(c).get(str(n), {}).items() if m in methods}
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"config": cfg.name, "file": str(tuned_file(cfg)), "tuned": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
