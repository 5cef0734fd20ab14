"""Tuned filter inflations, written to and read from a file, so that no value is copied by hand.

    python -m enkf.tuned --config configs/L96_1.py [--methods eakf,letkf,pertobs] [--n-ens 20] [--force]

The tuning is the one `enkf.evaluate` does (the same tuning set: 4 truths x 500 cycles from their own seed,
never the held-out set or the training data; the inflation whose *worst* tuning path has the lowest
time-mean analysis RMSE). Results go to configs/tuned/<config>.json, keyed by ensemble size and method,
with a fingerprint of the system fields: a config whose system changed is tuned again.
`teacher_inflation = 0` (the default) makes training read the data filter's tuned value from there
(tuning it first when missing or stale); `enkf.evaluate` writes every value it tunes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from configs.defaults import REPO_ROOT, Config, ConfigError, load_config
from enkf import io

TUNED_DIR = REPO_ROOT / "configs" / "tuned"
# The fields the tuned inflation depends on (the system and the filters; not the data's own inflation,
# which only shapes the stored training paths, nor N_ens, which is a key inside the file).
SYSTEM_FIELDS = ("data_seed", "model", "N", "F", "l63_sigma", "l63_rho", "l63_beta", "dtda", "oda", "obs_stride",
                 "obs_noise_var", "noise_strength", "loc_radius", "burn_in")  # fmt: skip
TUNE_PATHS, TUNE_CYCLES = 4, 500


def system_fields(cfg: Config) -> tuple[str, ...]:
    """The system fields, and the swept LETKF radii where a config sets them (older files stay valid)."""
    return SYSTEM_FIELDS + (("loc_radii",) if cfg.loc_radii else ())


def fingerprint(cfg: Config) -> str:
    return cfg.fingerprint(system_fields(cfg))


def tuned_file(cfg: Config, folder: Path | None = None) -> Path:
    return Path(folder or TUNED_DIR) / f"{cfg.name}.json"


def tuning_seed(cfg: Config) -> int:
    """The tuning set's seed (enkf.evaluate: held-out seed data_seed + 104729, tuning set that + 1)."""
    return cfg.data_seed + 104729 + 1


def _load(cfg: Config, folder: Path | None = None) -> dict:
    p = tuned_file(cfg, folder)
    if not p.is_file():
        return {}
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: unreadable tuned-inflation file ({e}); delete it to tune again") from None
    return d if d.get("fingerprint") == fingerprint(cfg) else {}


def read(cfg: Config, folder: Path | None = None) -> dict:
    """{N_ens (str): {method: inflation}} for cfg's system, or {} if the file is missing or stale."""
    return _load(cfg, folder).get("inflations", {})


def read_radii(cfg: Config, folder: Path | None = None) -> dict:
    """{N_ens (str): {"letkf": tuned half-width}} (only where the tuning swept loc_radii), or {}."""
    return _load(cfg, folder).get("loc_radii", {})


def write(cfg: Config, values: dict, folder: Path | None = None, tune_paths=TUNE_PATHS, tune_cycles=TUNE_CYCLES,
          seed: int | None = None, radii: dict | None = None) -> Path:  # fmt: skip
    """Merge {N_ens: {method: inflation}} (and {N_ens: {"letkf": radius}}) into cfg's file (atomically; other
    entries of the same system kept)."""
    p = tuned_file(cfg, folder)
    d = _load(cfg, folder)
    old, old_r = d.get("inflations", {}), d.get("loc_radii", {})
    for M, d in values.items():
        old.setdefault(str(M), {}).update({m: float(v) for m, v in d.items()})
    for M, d in (radii or {}).items():
        old_r.setdefault(str(M), {}).update({m: float(v) for m, v in d.items()})
    io.write_json(p, {
        "config": cfg.name, "fingerprint": fingerprint(cfg),
        "system": {k: getattr(cfg, k) for k in system_fields(cfg)},
        "tuning_set": {"paths": tune_paths, "cycles": tune_cycles, "seed": tuning_seed(cfg) if seed is None else seed,
                       "criterion": "lowest worst-path time-mean analysis RMSE (diverged runs excluded)"},
        "inflations": old, **({"loc_radii": old_r} if old_r else {}), "updated": time.strftime("%Y-%m-%d"),
        "made_by": f"python -m enkf.tuned --config configs/{cfg.name}.py (or enkf.evaluate)",
    })  # fmt: skip
    return p


def tune_inflations(cfg: Config, methods, progress=True) -> tuple[dict, dict]:
    """Tune `methods` at cfg.N_ens on the tuning set; returns {method: inflation} and {"letkf": radius} (the
    LETKF's half-width is swept with its inflation when the config lists loc_radii)."""
    import torch

    from enkf.data import make_forecaster
    from enkf.evaluate import heldout_set, tune_params

    fc = make_forecaster(cfg, bucket=True)
    gen = torch.Generator().manual_seed(tuning_seed(cfg) - 1)
    s = heldout_set(cfg, "tuning set", TUNE_PATHS, TUNE_CYCLES, tuning_seed(cfg), fc, progress)
    burn = min(cfg.burn_in, TUNE_CYCLES // 2)
    got = {m: tune_params(cfg, m, s, fc, gen, burn) for m in methods}
    for m, v in got.items():
        if not v[2] and progress:
            print(f"[tuned] warning: no {m} setting tracked every tuning path of {cfg.name} at N_ens={cfg.N_ens}; "
                  f"writing the first inflation, {v[0]:g}", file=sys.stderr)  # fmt: skip
    return {m: v[0] for m, v in got.items()}, {m: v[1] for m, v in got.items() if v[1] is not None}


def tuned_inflation(cfg: Config, method: str | None = None, folder: Path | None = None, create=True,
                    progress=True) -> float:  # fmt: skip
    """The tuned inflation of `method` (default: the data filter) at cfg.N_ens, from the file; tuned and
    written first if missing or stale (create=True), else a ConfigError."""
    method = method or cfg.data_filter
    got = read(cfg, folder).get(str(cfg.N_ens), {}).get(method)
    if got is not None:
        return float(got)
    if not create:
        raise ConfigError(f"{tuned_file(cfg, folder)}: no tuned inflation for {method} at N_ens={cfg.N_ens} "
                          f"(run: python -m enkf.tuned --config configs/{cfg.name}.py)")  # fmt: skip
    if progress:
        print(f"[tuned] no tuned {method} inflation for {cfg.name} at N_ens={cfg.N_ens}: tuning it "
              f"({TUNE_PATHS} paths x {TUNE_CYCLES} cycles) ...", file=sys.stderr)  # fmt: skip
    vals, radii = tune_inflations(cfg, [method], progress)
    val = vals[method]
    p = write(cfg, {cfg.N_ens: {method: val}}, folder, radii={cfg.N_ens: radii} if radii else None)
    if progress:
        print(f"[tuned] {method} inflation {val:g} written to {p}", file=sys.stderr)
    return val


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
    ap.add_argument("--methods", default="eakf", help="comma list of pertobs, eakf, etkf, letkf")
    ap.add_argument("--n-ens", type=int, default=0, help="ensemble size (default: the config's N_ens)")
    ap.add_argument("--force", action="store_true", help="tune again even if the file has the values")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        if a.n_ens:
            if not 2 <= a.n_ens <= 4096:
                raise ConfigError(f"command line: --n-ens {a.n_ens} is out of range [2, 4096]")
            cfg = dataclasses.replace(cfg, N_ens=a.n_ens)
        methods = [m.strip() for m in a.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in ("pertobs", "eakf", "etkf", "letkf")]
        if bad:
            raise ConfigError(
                f"command line: --methods: unknown {', '.join(bad)} (allowed: pertobs, eakf, etkf, letkf)"
            )
        have = {} if a.force else read(cfg).get(str(cfg.N_ens), {})
        todo = [m for m in methods if m not in have]
        if todo:
            vals, radii = tune_inflations(cfg, todo, not a.quiet)
            write(cfg, {cfg.N_ens: vals}, radii={cfg.N_ens: radii} if radii else None)
        d = _load(cfg)
        vals = d.get("inflations", {}).get(str(cfg.N_ens), {})
        radii = d.get("loc_radii", {}).get(str(cfg.N_ens), {})
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"config": cfg.name, "N_ens": cfg.N_ens, "file": str(tuned_file(cfg)),
                      "inflations": {m: vals[m] for m in methods},
                      **({"loc_radii": radii} if radii else {})}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
