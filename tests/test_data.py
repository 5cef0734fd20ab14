import json
import shutil

import numpy as np
import pytest
import torch

from configs.defaults import load_config
from enkf.cycle import make_forecaster
from enkf.data import DataError, check_data, ensure_data, load_data
from enkf.normalization import Normalizer


def test_shapes_files_and_summary(tiny_data):
    cfg, out, summary, d = tiny_data
    P, T, M, N = cfg.num_paths, cfg.path_length, cfg.N_ens, cfg.N
    assert d.truth.shape == (P, T, N) and d.obs.shape == (P, T, N)
    assert d.xb.shape == (P, T, M, N) and d.xa.shape == (P, T, M, N)
    for f in (
        "paths.npz",
        "spinup.npz",
        "normalization.json",
        "verification.md",
        "verification.json",
        "meta.json",
        "plots/rmse_paths.png",
        "plots/hovmoller_path0.png",
        "plots/verification.png",
    ):
        assert (out / f).is_file(), f
    assert summary["analysis_rmse"] < summary["forecast_rmse"]
    assert set(summary) >= {"forecast_rmse", "analysis_rmse", "paths", "seconds"}


def test_start_points_from_later_half_without_replacement(tiny_data):
    cfg, _, _, d = tiny_data
    idx = d.start_idx
    assert len(set(idx.tolist())) == cfg.num_paths
    assert (idx > cfg.spinup_steps // 2).all() and (idx <= cfg.spinup_steps).all()


def test_paths_are_continuous(tiny_data):
    """xb[t] is the forecast of xa[t-1]; truth[t] the forecast of truth[t-1]; the first from the start state."""
    cfg, _, _, d = tiny_data
    fc = make_forecaster(cfg)
    torch.testing.assert_close(fc(d.xa[:, 4]), d.xb[:, 5], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fc(d.truth[:, 7]), d.truth[:, 8], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fc(d.start_states.float()), d.truth[:, 0], rtol=1e-4, atol=1e-4)
    # observations are truth + noise of the configured variance
    resid = (d.obs - d.truth).flatten()
    assert abs(resid.var().item() - cfg.obs_noise_var) < 0.2 * cfg.obs_noise_var


def test_verification_report(tiny_data):
    cfg, out, summary, _ = tiny_data
    rep = json.loads((out / "verification.json").read_text())
    assert len(rep["per_path"]) == cfg.num_paths
    for p in rep["per_path"]:
        assert p["ok"] == (p["analysis_rmse"] <= cfg.verify_max_ratio * p["forecast_rmse"])
    assert rep["failed_paths"] == [p["path"] for p in rep["per_path"] if not p["ok"]]
    assert "| path |" in (out / "verification.md").read_text()


def test_normalization_round_trip_and_range(tiny_data, tmp_path):
    _, _, _, d = tiny_data
    x = d.xb[:3]
    z = d.norm.normalize("state", x)
    torch.testing.assert_close(d.norm.denormalize("state", z), x, rtol=1e-5, atol=1e-5)
    assert z.abs().max() < 1.5 and z.abs().max() > 0.7  # about [-1, 1]
    inc = d.norm.normalize("increment", d.xa - d.xb)
    assert (inc.abs() <= 1).float().mean() > 0.99
    d.norm.save(tmp_path / "n.json")
    assert Normalizer.load(tmp_path / "n.json").to_dict() == d.norm.to_dict()


def test_stale_data_refused(tiny_data, tiny_cfg_file):
    cfg, out, _, _ = tiny_data
    other = load_config(tiny_cfg_file, {"inflation": 1.7})
    with pytest.raises(DataError, match="stale data.*changed: inflation"):
        load_data(other, out)


def test_truncated_and_incomplete_data_refused(tiny_data, tmp_path):
    cfg, out, _, _ = tiny_data
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    raw = (bad / "paths.npz").read_bytes()
    (bad / "paths.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated"):
        load_data(cfg, bad)
    # same size, altered content
    (bad / "paths.npz").write_bytes(raw[:-8] + b"\0" * 8)
    with pytest.raises(DataError, match="hash"):
        load_data(cfg, bad)
    (bad / "meta.json").unlink()
    with pytest.raises(DataError, match="incomplete"):
        check_data(cfg, bad)
    with pytest.raises(DataError, match="no data"):
        check_data(cfg, tmp_path / "empty")


def test_ensure_data_regenerates_stale(tiny_data, tiny_cfg_file, tmp_path):
    cfg, out, _, _ = tiny_data
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    other = load_config(tiny_cfg_file, {"num_paths": 3, "path_length": 20})
    d = ensure_data(other, folder, progress=False)
    assert d.truth.shape[:2] == (3, 20)
    assert json.loads((folder / "meta.json").read_text())["config"]["num_paths"] == 3


def test_generation_is_seeded(tiny_data, tiny_cfg_file, tmp_path):
    from enkf.data import generate

    cfg, out, _, d = tiny_data
    generate(cfg, tmp_path / "again", progress=False)
    d2 = load_data(cfg, tmp_path / "again")
    assert np.array_equal(d.start_idx, d2.start_idx)
    torch.testing.assert_close(d.xa, d2.xa)


def test_spinup_is_the_same_trajectory_as_before():
    """The L96_1 spin-up (1,000,000 RK4 steps, now one fused C loop) gives the start states the torch code gave.
    Reference values: commit c7b5c45 (torch.compile'd chunks of 25 steps), 2026-11-23; its whole kept half
    agreed with the fused loop to the last bit (max |difference| 0)."""
    from enkf.data import spinup
    from models import fused

    if not fused.available():
        pytest.skip("no C compiler: the spin-up falls back to the torch code itself (too slow for 1M steps here)")
    cfg = load_config("configs/L96_1.py")
    starts, idx, thin = spinup(cfg, progress=False)
    assert idx[:3].tolist() == [956298, 967462, 967002]
    ref0 = [-0.7875722426861961, 1.3211129650953446, 6.588846296440632, 0.5767495095038481, -1.8863575215307486,
            0.3638059178447276, 3.6305912146112207, 6.013902441250376, -1.2031819645467674, 2.602064316336829,
            2.6834653395898043, 1.9717286163608008, 3.608426478211344, 3.479312787129947, -2.167595891732501,
            1.6286581606575186, 1.8287478868044333, 3.01871723329465, 4.292492509530961, -0.6739931848540981]  # fmt: skip
    np.testing.assert_allclose(starts[0], ref0, rtol=1e-12, atol=1e-12)
    assert thin.shape == (5000, 20)
    np.testing.assert_allclose(thin[-1, :3], [4.318609946327716, 0.5071738996455806, -0.38341268263942685],
                               rtol=1e-12, atol=1e-12)  # fmt: skip


def test_spinup_without_the_fused_loop_gives_the_same_states(tiny_data, monkeypatch):
    """Where no C compiler exists the spin-up runs the torch trajectory: same start states."""
    from enkf.data import spinup
    from models import fused

    cfg, _, _, d = tiny_data
    monkeypatch.setattr(fused, "available", lambda: False)
    starts, idx, _ = spinup(cfg, progress=False)
    assert np.array_equal(idx, d.start_idx)
    np.testing.assert_allclose(starts, d.start_states.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name, damage",
    [
        ("normalization.json", "broken json"),
        ("normalization.json", "missing"),
        ("spinup.npz", "truncated"),
        ("verification.json", "broken json"),
        ("verification.md", "missing"),
        ("plots/rmse_paths.png", "truncated"),
    ],
)
def test_every_file_of_the_data_folder_is_checked_and_regenerated(tiny_data, tmp_path, name, damage):
    """A damaged file other than paths.npz is named in one DataError, and ensure_data regenerates the folder."""
    cfg, out, _, d = tiny_data
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    f = bad / name
    if damage == "missing":
        f.unlink()
    elif damage == "truncated":
        f.write_bytes(f.read_bytes()[:10])
    else:
        f.write_text('{"state": {"center": 0.0, "sca')
    with pytest.raises(DataError, match=name.replace(".", r"\.")):
        load_data(cfg, bad)
    d2 = ensure_data(cfg, bad, progress=False)  # regenerated, and the same data (seeded)
    torch.testing.assert_close(d2.xa, d.xa)
    assert d2.norm.to_dict() == d.norm.to_dict()


def test_normalization_checked_without_file_hashes(tiny_data, tmp_path):
    """Data written before meta.json held the file hashes: normalization.json is parsed and checked instead."""
    cfg, out, _, _ = tiny_data
    bad = tmp_path / "old"
    shutil.copytree(out, bad)
    meta = json.loads((bad / "meta.json").read_text())
    del meta["files"]
    (bad / "meta.json").write_text(json.dumps(meta))
    load_data(cfg, bad)  # valid as it is
    norm = json.loads((bad / "normalization.json").read_text())
    norm["state"]["scale"] = float("nan")
    (bad / "normalization.json").write_text(json.dumps(norm))
    with pytest.raises(DataError, match=r"normalization\.json: non-finite"):
        load_data(cfg, bad)
    del norm["state"]
    (bad / "normalization.json").write_text(json.dumps(norm))
    with pytest.raises(DataError, match=r"normalization\.json: unreadable \(missing state\)"):
        load_data(cfg, bad)
