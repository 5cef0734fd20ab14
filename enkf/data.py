"""Data generation (spec §4 in docs/design.md): spin-up, start points, 100 EnKF paths, normalization, verification.

    python -m enkf.data --config configs/L96_1.py [--spinup-steps S] [--num-paths P] [--path-length T]
                        [--out DIR] [--force] [--no-compile]

Writes under logs/<config>/data/ (or --out):
    paths.npz           truth (P,T,N), obs (P,T,p), xb and xa (P,T,N_ens,N) float32; start_idx (P,),
                        start_states (P,N) float64; path 0 is for evaluation, 1.. for training
    spinup.npz          the spin-up trajectory thinned to every 100th step, for plots
    normalization.json  center/scale per quantity (state, obs, increment, innovation, anomaly, spread)
    verification.md/.json  per-path time-mean forecast vs analysis RMSE and spread; failing paths listed
    plots/              rmse_paths.png, hovmoller_path0.png, verification.png
    meta.json           written last: the config it was made from, its fingerprint, file sizes and hashes

Every file is written atomically. `load_data` refuses a folder whose meta.json is missing (incomplete run),
whose fingerprint differs from the current config (stale), or whose paths.npz does not match its recorded
size and hash (truncated or altered). The last line printed is one JSON summary object.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from configs.defaults import LOGS_ROOT, Config, ConfigError, load_config
from enkf import io
from enkf.cycle import assimilate, make_forecaster, obs_setup, simulate_truth, time_mean
from enkf.filters import make_analysis
from enkf.normalization import Normalizer
from models import fused, ks
from models.forecast import trajectory

FORMAT_VERSION = 1
# Fields whose change makes stored data stale.
DATA_FIELDS = (
    "data_seed", "model", "N", "F", "l63_sigma", "l63_rho", "l63_beta", "dtda", "oda", "obs_stride",
    "obs_noise_var", "N_ens", "inflation", "noise_strength", "data_filter", "loc_radius", "spinup_steps",
    "num_paths", "path_length",
)  # fmt: skip
THIN = 100


class DataError(RuntimeError):
    """Missing, stale or corrupt data; the message is one line for the user."""


def data_dir_for(cfg: Config) -> Path:
    return LOGS_ROOT / cfg.name / "data"


def data_fields(cfg: Config) -> tuple[str, ...]:
    """DATA_FIELDS, and the KS domain length for model 'ks' (only there, so other configs keep their data)."""
    return DATA_FIELDS + (("ks_length",) if cfg.model == "ks" else ())


def data_fingerprint(cfg: Config) -> str:
    return cfg.fingerprint(data_fields(cfg)) + f"-v{FORMAT_VERSION}"


# ---------------------------------------------------------------------------------------------------
# Batched simulation helpers (also used by the sweep, the environment's baselines and evaluation)
# ---------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------
def spinup(cfg: Config, progress=True):
    """One long truth trajectory from a random state near 0 (Kuramoto-Sivashinsky: from Kassam & Trefethen's state
    plus a 1e-3 zero-mean noise, `models.ks.initial_condition`; KS conserves the spatial mean, so the start must
    have mean 0); returns start states (P, N) float64, start indices (P,) (step numbers, drawn without replacement
    from the later half) and a thinned copy."""
    gen = torch.Generator().manual_seed(cfg.data_seed)
    if cfg.model == "ks":
        x0 = ks.initial_condition(Nx=cfg.N, L=cfg.ks_length, generator=gen)
    else:
        x0 = 0.01 * torch.randn(cfg.N, generator=gen, dtype=torch.float64)
    S = cfg.spinup_steps
    keep_from = S // 2  # keep states after steps keep_from+1 .. S (the later half)
    if cfg.model in fused.MODELS and fused.available():
        # one C loop over all S steps: the same float64 arithmetic as the torch code, bit for bit (tested)
        kept = torch.from_numpy(fused.trajectory(cfg.model, cfg.model_params, cfg.dtda, x0.numpy(), S, keep_from)[0])
    else:  # KS (ETDRK4 in torch), or no C compiler: torch, chunk by chunk (compiled if cfg.compile)
        with tqdm(total=S, desc="spin-up", disable=not progress, unit="step", unit_scale=True, leave=False) as bar:
            kept, _ = trajectory(cfg.model, cfg.model_params, cfg.dtda, x0, S, keep_from, compile=cfg.compile,
                                 progress=bar.update)  # fmt: skip
    if not torch.isfinite(kept).all():
        bad = int((~torch.isfinite(kept).all(-1)).nonzero()[0]) + keep_from + 1
        raise DataError(f"spin-up became non-finite at step {bad}: check dtda/F in the config")
    rng = np.random.default_rng(cfg.data_seed)
    pick = np.sort(rng.choice(kept.shape[0], size=cfg.num_paths, replace=False))
    rng.shuffle(pick)  # path order is random, not time-sorted
    start_idx = pick + keep_from + 1
    return kept[pick].numpy(), start_idx, kept[::THIN].numpy()


def generate(cfg: Config, out: Path, progress=True) -> dict:
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    io.clean_temp_files(out)
    (out / "meta.json").unlink(missing_ok=True)  # the folder is invalid until the new meta is written
    secs = {}  # seconds per phase
    starts, start_idx, thin = spinup(cfg, progress)
    secs["spinup"] = time.time() - t0

    t = time.time()
    fc = make_forecaster(cfg)
    P, M, N = cfg.num_paths, cfg.N_ens, cfg.N
    for shape in ((P, N), (P, M, N)):  # the two batch shapes below: compile (torch.compile) before timing paths
        fc(torch.zeros(shape))
    secs["compile"] = time.time() - t

    t = time.time()
    gen = torch.Generator().manual_seed(cfg.data_seed + 1)
    obs, r = obs_setup(cfg)
    x0 = torch.from_numpy(starts).float()  # (P, N)
    truth, y = simulate_truth(x0, cfg.path_length, fc, obs, r, gen, progress)
    E0 = x0.unsqueeze(1) + cfg.noise_strength * torch.randn(P, M, N, generator=gen)
    analysis = make_analysis(cfg.data_filter, obs, r, cfg.inflation, cfg.loc_radius, cfg.periodic, generator=gen)
    res = assimilate(E0, y, truth, fc, analysis, store=True, progress=progress, desc=f"{cfg.data_filter} paths")
    secs["paths"] = time.time() - t

    arrays = dict(
        truth=truth.numpy(), obs=y.float().numpy(), xb=res["xb"].numpy(), xa=res["xa"].numpy(),
        start_idx=start_idx.astype(np.int64), start_states=starts,
    )  # fmt: skip
    if not all(np.isfinite(a).all() for a in arrays.values()):
        raise DataError(f"{cfg.name}: generated paths contain non-finite values (filter diverged); not saved")
    t = time.time()
    raw = io.save_npz(out / "paths.npz", **arrays)
    io.save_npz(out / "spinup.npz", states=thin, thin=np.int64(THIN), keep_from=np.int64(cfg.spinup_steps // 2))
    secs["write"] = time.time() - t

    t = time.time()
    xb, xa = arrays["xb"], arrays["xa"]
    xb_mean = xb.mean(2, keepdims=True)
    norm = Normalizer.fit(
        dict(
            state=np.concatenate([arrays["truth"].ravel(), xb.ravel(), xa.ravel()]),
            obs=arrays["obs"],
            increment=xa - xb,
            innovation=arrays["obs"][:, :, None, :] - xb[..., cfg.obs_idx],
            anomaly=xb - xb_mean,
            spread=res["spread_f"].numpy(),
        ),
        seed=cfg.data_seed,
    )
    norm.save(out / "normalization.json")
    report = verify(cfg, res)
    write_verification(cfg, report, out)
    secs["verification"] = time.time() - t  # normalization statistics, verification report

    t = time.time()
    from enkf import plots  # matplotlib only when needed

    plots.data_plots(cfg, arrays, res, report, out / "plots", thin)
    secs["plots"] = time.time() - t
    secs["total"] = time.time() - t0
    secs = {k: round(v, 2) for k, v in secs.items()}
    meta = dict(
        format_version=FORMAT_VERSION, fingerprint=data_fingerprint(cfg), config=cfg.to_dict(),
        shapes={k: list(v.shape) for k, v in arrays.items()}, paths_bytes=len(raw),
        paths_sha256=hashlib.sha256(raw).hexdigest(), files=file_hashes(out), created=time.strftime("%Y-%m-%d %H:%M:%S"), seconds=secs,
    )  # fmt: skip
    io.write_json(out / "meta.json", meta)  # last: marks the folder complete
    return dict(
        config=cfg.name, out=str(out), paths=cfg.num_paths, cycles=cfg.path_length,
        forecast_rmse=report["forecast_rmse"], analysis_rmse=report["analysis_rmse"],
        analysis_spread=report["analysis_spread"], failed_paths=report["failed_paths"],
        seconds=secs["total"], **{f"seconds_{k}": v for k, v in secs.items() if k != "total"},
    )  # fmt: skip


def verify(cfg: Config, res: dict) -> dict:
    """Per-path time-mean forecast/analysis RMSE after burn-in; a path fails unless analysis is clearly
    (verify_max_ratio) below forecast."""
    f = time_mean(res["rmse_f"], cfg.burn_in)
    a = time_mean(res["rmse_a"], cfg.burn_in)
    s = time_mean(res["spread_a"], cfg.burn_in)
    ok = torch.isfinite(a) & (a <= cfg.verify_max_ratio * f)
    return dict(
        forecast_rmse=float(f.mean()), analysis_rmse=float(a.mean()), analysis_spread=float(s.mean()),
        per_path=[dict(path=i, forecast_rmse=float(f[i]), analysis_rmse=float(a[i]), spread=float(s[i]),
                       ok=bool(ok[i])) for i in range(len(f))],
        failed_paths=[i for i in range(len(f)) if not bool(ok[i])],
        max_ratio=cfg.verify_max_ratio, burn_in=cfg.burn_in,
    )  # fmt: skip


def write_verification(cfg: Config, rep: dict, out: Path) -> None:
    lines = [
        f"# Data verification: {cfg.name}",
        "",
        f"Filter `{cfg.data_filter}`, inflation {cfg.inflation:g}, N_ens {cfg.N_ens}, {cfg.num_paths} paths x "
        f"{cfg.path_length} cycles; time means over cycles {cfg.burn_in}..{cfg.path_length - 1}. A path passes "
        f"when analysis RMSE <= {cfg.verify_max_ratio:g} x forecast RMSE.",
        "",
        f"**Mean over paths: forecast RMSE {rep['forecast_rmse']:.4f}, analysis RMSE {rep['analysis_rmse']:.4f}, "
        f"analysis spread {rep['analysis_spread']:.4f}.**",
        "",
        ("All paths pass." if not rep["failed_paths"] else f"**FAILED paths: {rep['failed_paths']}**"),
        "",
        "| path | forecast RMSE | analysis RMSE | ratio | spread | ok |",
        "|---:|---:|---:|---:|---:|:---:|",
    ]
    for p in rep["per_path"]:
        ratio = p["analysis_rmse"] / p["forecast_rmse"] if p["forecast_rmse"] > 0 else float("nan")
        lines.append(f"| {p['path']} | {p['forecast_rmse']:.4f} | {p['analysis_rmse']:.4f} | {ratio:.3f} | "
                     f"{p['spread']:.4f} | {'yes' if p['ok'] else '**NO**'} |")  # fmt: skip
    io.write_text(out / "verification.md", "\n".join(lines) + "\n")
    io.write_json(out / "verification.json", rep)


# ---------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------
@dataclass
class PathData:
    truth: torch.Tensor  # (P, T, N)
    obs: torch.Tensor  # (P, T, p)
    xb: torch.Tensor  # (P, T, M, N)
    xa: torch.Tensor  # (P, T, M, N)
    start_idx: np.ndarray  # (P,)
    start_states: torch.Tensor  # (P, N)
    norm: Normalizer
    meta: dict
    folder: Path


NORM_KEYS = ("state", "obs", "increment", "innovation", "anomaly", "spread")


def file_hashes(folder: Path) -> dict:
    """sha256 of every file of a data folder but meta.json (which holds them), paths.npz (hashed on its own, and
    only where it is loaded) and the lock: {relative path: hex digest}."""
    skip = {"meta.json", "paths.npz", ".lock"}
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.rglob("*"))
            if f.is_file() and f.name not in skip and not f.name.endswith(".tmp")}  # fmt: skip


def load_normalization(path: Path) -> Normalizer:
    """normalization.json as a Normalizer; anything unreadable, incomplete or non-finite is a DataError naming it."""
    try:
        d = json.loads(path.read_text())
        missing = [k for k in NORM_KEYS if k not in d]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        norm = Normalizer.from_dict(d)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise DataError(f"{path}: unreadable ({e}); regenerate with --force") from None
    bad = [k for k, v in norm.stats.items() if not (np.isfinite(v.center) and np.isfinite(v.scale) and v.scale > 0)]
    if bad:
        raise DataError(f"{path}: non-finite or non-positive scale for {', '.join(bad)}; regenerate with --force")
    return norm


def check_data(cfg: Config, folder: Path) -> dict:
    """Return meta.json if `folder` holds complete data made from this config, else raise DataError."""
    meta_p = folder / "meta.json"
    if not meta_p.is_file():
        if (folder / "paths.npz").exists():
            raise DataError(f"{folder}: incomplete data (no meta.json; generation was interrupted); regenerate it")
        raise DataError(f"{folder}: no data; generate it with: python -m enkf.data --config <file>")
    try:
        meta = json.loads(meta_p.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_p}: unreadable ({e}); regenerate with --force") from None
    if meta.get("fingerprint") != data_fingerprint(cfg):
        old = meta.get("config", {})
        changed = [k for k in data_fields(cfg) if old.get(k) != getattr(cfg, k)]
        raise DataError(
            f"{folder}: stale data: made from a different config (changed: {', '.join(changed) or 'format'})"
        )
    p = folder / "paths.npz"
    if not p.is_file() or p.stat().st_size != meta.get("paths_bytes"):
        raise DataError(f"{p}: truncated or missing (size does not match meta.json); regenerate with --force")
    for name, digest in meta.get("files", {}).items():  # every other file (data made before the hashes: parsed below)
        f = folder / name
        if not f.is_file() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            raise DataError(f"{f}: {'missing' if not f.is_file() else 'content does not match meta.json'}; "
                            "regenerate with --force")  # fmt: skip
    load_normalization(folder / "normalization.json")
    try:
        json.loads((folder / "verification.json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{folder / 'verification.json'}: unreadable ({e}); regenerate with --force") from None
    return meta


def stored(cfg: Config, folder: Path | None = None) -> bool:
    """Whether complete data of this config are stored (check_data: paths.npz's size, not its parsed arrays)."""
    try:
        check_data(cfg, Path(folder) if folder else data_dir_for(cfg))
    except DataError:
        return False
    return True


def load_data(cfg: Config, folder: Path | None = None, verify_hash: bool = True) -> PathData:
    folder = Path(folder) if folder else data_dir_for(cfg)
    meta = check_data(cfg, folder)
    raw = (folder / "paths.npz").read_bytes()
    if verify_hash and hashlib.sha256(raw).hexdigest() != meta["paths_sha256"]:
        raise DataError(f"{folder / 'paths.npz'}: content does not match its recorded hash; regenerate with --force")
    import io as _io

    with np.load(_io.BytesIO(raw)) as z:
        a = {k: z[k] for k in z.files}
    return PathData(
        truth=torch.from_numpy(a["truth"]), obs=torch.from_numpy(a["obs"]), xb=torch.from_numpy(a["xb"]),
        xa=torch.from_numpy(a["xa"]), start_idx=a["start_idx"], start_states=torch.from_numpy(a["start_states"]),
        norm=load_normalization(folder / "normalization.json"), meta=meta, folder=folder,
    )  # fmt: skip


@contextlib.contextmanager
def folder_lock(folder: Path):
    """Exclusive lock on a data folder, so concurrent runs never generate into the same folder at once
    (the second waits, then finds valid data)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_data(cfg: Config, folder: Path | None = None, force: bool = False, progress=True) -> PathData:
    """Load the data for cfg, generating it first if it is missing, stale, incomplete or force is set.
    A folder given explicitly that holds the data of another config (another name) is refused, not
    overwritten; data of an earlier version of the same config are stale and regenerated."""
    if folder is not None and not force and (Path(folder) / "meta.json").is_file():
        try:
            meta = json.loads((Path(folder) / "meta.json").read_text())
        except json.JSONDecodeError:
            meta = {}
        old = meta.get("config", {})
        if meta.get("fingerprint") not in (None, data_fingerprint(cfg)) and old.get("name", cfg.name) != cfg.name:
            changed = [k for k in data_fields(cfg) if old.get(k) != getattr(cfg, k)]
            raise DataError(f"{folder}: holds the data of another config ({old.get('name', '?')}; differs in "
                            f"{', '.join(changed) or 'format'}); pass that config, or another --data-dir")  # fmt: skip
    folder = Path(folder) if folder else data_dir_for(cfg)
    if not force:
        try:
            return load_data(cfg, folder)
        except DataError:
            pass
    with folder_lock(folder):
        if not force:
            try:
                return load_data(cfg, folder)  # another process may have made it while we waited
            except DataError as e:
                print(f"[data] {e} -> generating", file=sys.stderr)
        generate(cfg, folder, progress)
    return load_data(cfg, folder)


# ---------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m enkf.data", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="config file, e.g. configs/L96_1.py")
    ap.add_argument("--spinup-steps", type=int, help="override spinup_steps (default 1,000,000)")
    ap.add_argument("--num-paths", type=int, help="override num_paths (default 100)")
    ap.add_argument("--path-length", type=int, help="override path_length (default 1000 cycles)")
    ap.add_argument("--burn-in", type=int, help="override burn_in (cycles left out of time means)")
    ap.add_argument("--out", help="output folder (default logs/<config>/data)")
    ap.add_argument("--force", action="store_true", help="regenerate even if valid data exists")
    ap.add_argument("--no-compile", action="store_true", help="run the forecast eagerly (no torch.compile)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    overrides = {k: v for k, v in dict(spinup_steps=args.spinup_steps, num_paths=args.num_paths,
                                        path_length=args.path_length, burn_in=args.burn_in).items() if v is not None}  # fmt: skip
    if args.no_compile:
        overrides["compile"] = False
    try:
        cfg = load_config(args.config, overrides)
        out = Path(args.out) if args.out else data_dir_for(cfg)
        if not args.force:
            try:
                check_data(cfg, out)
                rep = json.loads((out / "verification.json").read_text())
                print(f"[data] {out}: valid data exists (use --force to regenerate)", file=sys.stderr)
                summary = dict(config=cfg.name, out=str(out), paths=cfg.num_paths, cycles=cfg.path_length,
                               forecast_rmse=rep["forecast_rmse"], analysis_rmse=rep["analysis_rmse"],
                               analysis_spread=rep["analysis_spread"], failed_paths=rep["failed_paths"],
                               seconds=0.0, cached=True)  # fmt: skip
                print(json.dumps(summary))
                return 0
            except (DataError, FileNotFoundError):
                pass
        summary = generate(cfg, out, progress=not args.quiet)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary["failed_paths"]:
        print(f"[data] WARNING: {len(summary['failed_paths'])} path(s) fail verification: "
              f"{summary['failed_paths'][:20]} (see {out / 'verification.md'})", file=sys.stderr)  # fmt: skip
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
