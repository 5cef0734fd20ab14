"""The benchmark suite (enkf/evaluate.py for the filters, scripts/evaluate.py for agents), fine-tuning with
--init-from, and the pretrained export."""

import dataclasses
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import ppo_lstm_enkf as P
from configs.defaults import REPO_ROOT, load_config
from enkf import evaluate as E
from enkf.cycle import make_forecaster, rmse
from enkf.env import EnKFVecEnv
from scripts import evaluate as SE
from scripts import export_pretrained as EX


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_cfg_file, tiny_data, tmp_path_factory):
    """A tiny trained agent (a few iterations) and its folder."""
    _, data_dir, _, _ = tiny_data
    root = tmp_path_factory.mktemp("runs")
    old = P.LOGS_ROOT
    P.LOGS_ROOT = root
    try:
        cfg, args = P.parse_args(["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--total-timesteps",
                                  "256", "--no-progress", "--run-name", "ev"])  # fmt: skip
        P.train(cfg, args)
    finally:
        P.LOGS_ROOT = old
    return root / "tiny" / "runs" / "ev" / "checkpoints" / "latest.pt"


def test_rerun_of_the_data_filter_reproduces_the_stored_path(tiny_data):
    cfg, _, _, d = tiny_data
    s = E.path0_set(d)
    res = E.run_classical(cfg, cfg.data_filter, [cfg.inflation], s, make_forecaster(cfg), torch.Generator(), 10)[0]
    stored = rmse(d.xa[0].mean(1), d.truth[0]).numpy()
    np.testing.assert_allclose(res["rmse"][0], stored, rtol=1e-4, atol=1e-5)


def test_nudging_keeps_the_best_gain(tiny_data):
    cfg, _, _, d = tiny_data
    s = E.path0_set(d)
    fc = make_forecaster(cfg)
    best = E.run_classical(cfg, "nudging", [1.0], s, fc, torch.Generator(), 10)[0]
    obs, _ = E.obs_setup(cfg)
    scores = {}
    for g in E.NUDGING_GAINS:  # each gain alone, by hand
        x, errs = s.xb[0, 0].mean(0), []
        for t in range(s.y.shape[1]):
            x = x.clone()
            x[obs.idx] += g * (s.y[0, t] - x[obs.idx])
            errs.append(float(rmse(x, s.truth[0, t])))
            x = fc(x.unsqueeze(0))[0]
        scores[g] = np.mean(errs[10:])
    assert best["param"] == min(scores, key=scores.get)
    assert best["rmse"][0, 10:].mean() == pytest.approx(scores[best["param"]], rel=1e-4)


def test_evaluate_suite_tables_figures_and_nens_sweep(tiny_cfg_file, tiny_data, tiny_ckpt, tmp_path):
    cfg, data_dir, _, _ = tiny_data
    cfg = load_config(tiny_cfg_file)
    out = tmp_path / "ev"
    import enkf.data as D

    orig = D.data_dir_for
    D.data_dir_for = lambda c: data_dir  # path 0 from the fixture's data
    try:
        rep = SE.evaluate(cfg, [str(tiny_ckpt)], ["obs_only", "nudging", "eakf", "letkf"], [4, 8], paths=2, cycles=30,
                         tune_paths=2, tune_cycles=20, seed=11, path0=True, out=out, progress=False)  # fmt: skip
    finally:
        D.data_dir_for = orig
    md = (out / "eval.md").read_text()
    for f in ("rmse_over_time.png", "hovmoller.png", "rmse_vs_nens.png", "eval.json"):
        assert (out / f).is_file(), f
    assert "path 0" in md and "held-out set (2 paths)" in md and "N_ens=4" in md
    sets = rep["sets"]
    assert set(sets) == {"path 0, N_ens=8", "held-out set (2 paths), N_ens=8", "held-out set (2 paths), N_ens=4"}
    for rows in sets.values():
        ref = [r for r in rows if r["method"] == "eakf" and r["config_inflation"]][0]
        assert ref["ratio"] == pytest.approx(1.0)
        agent = [r for r in rows if r["method"].startswith("agent")][0]
        assert agent["cycles"] == (60 if rows is sets["path 0, N_ens=8"] else 30)
        assert agent["paths_survived"] >= 0 and "error" not in agent  # the local agent runs at any N_ens
    assert set(rep["tuned"]["4"]) == {"eakf", "letkf"}


def test_the_suite_makes_the_configs_data_before_a_smaller_size_needs_them(
    tiny_cfg_file, tiny_data, tiny_ckpt, monkeypatch, tmp_path
):
    """An agent evaluated at fewer members chooses its gain radius on the config's training paths: the suite makes
    those data (as `make data`, at the config's own size) before the first size, so a fresh clone's `make eval-all`
    never silently keeps the training choice. Data already stored are checked, not loaded for nothing."""
    import enkf.data as D

    cfg, calls = load_config(tiny_cfg_file), []

    class Stop(Exception):
        pass

    def fake_ensure(c, progress=True):
        calls.append(c.N_ens)
        raise Stop

    monkeypatch.setattr(E, "ensure_data", fake_ensure)
    monkeypatch.setattr(D, "data_dir_for", lambda c: tmp_path / "none")  # not stored
    monkeypatch.setattr(E, "tuned_settings", lambda *a, **k: pytest.fail("tuning ran before the data were made"))
    with pytest.raises(Stop):
        SE.evaluate(cfg, [str(tiny_ckpt)], ["eakf"], [4], paths=2, cycles=30, tune_paths=2, tune_cycles=20, seed=11,
                    path0=False, out=tmp_path / "ev", progress=False)  # fmt: skip
    assert calls == [cfg.N_ens]
    monkeypatch.setattr(D, "data_dir_for", lambda c: tiny_data[1])  # stored: on to the tuning, no load
    monkeypatch.setattr(E, "tuned_settings", lambda *a, **k: (_ for _ in ()).throw(Stop()))
    with pytest.raises(Stop):
        SE.evaluate(cfg, [str(tiny_ckpt)], ["eakf"], [4], paths=2, cycles=30, tune_paths=2, tune_cycles=20, seed=11,
                    path0=False, out=tmp_path / "ev", progress=False)  # fmt: skip
    assert calls == [cfg.N_ens]


def test_global_policy_is_not_applicable_at_other_sizes(tiny_cfg_file, tiny_data, tmp_path):
    cfg, _, _, d = tiny_data
    gcfg = load_config(tiny_cfg_file, {"policy": "global"})
    agent = P.Agent(gcfg, 18, 8, 8)
    ck = tmp_path / "g.pt"
    torch.save({"agent": agent.state_dict(), "config": gcfg.to_dict(), "normalization": d.norm.to_dict()}, ck)
    ag = SE.load_agent(ck)
    s = E.path0_set(d)
    s4 = E.EvalSet("x", s.truth, s.y, s.xb[:, :, :4], s.xa[:, :, :4])
    assert "tied to N_ens=8" in SE.run_agent(ag, cfg, s4)["error"]


def test_a_smaller_ensemble_gets_the_agents_own_gain_radius_chosen_on_training_paths(tiny_data, tiny_ckpt, tmp_path,
                                                                                      monkeypatch):  # fmt: skip
    """Zero-shot at fewer members than trained: the half-width whose trained analysis has the lowest worst-path RMSE
    on the training paths 1-10, cut to that size (never the held-out set); chosen once per agent, stored with an
    exported agent and read back from it; at as many members or more the training choice stands."""
    import enkf.data as D
    from enkf.gain import agent_scores, cut_members
    from enkf.rollout import rollout_paths

    cfg, data_dir, _, d = tiny_data
    monkeypatch.setattr(D, "data_dir_for", lambda c: data_dir)
    monkeypatch.setattr(SE, "_CHOSEN", {})
    loads, load = [], SE.load_data
    monkeypatch.setattr(SE, "load_data", lambda c: loads.append(c.N_ens) or load(c))
    stamp = [(f.name, f.stat().st_mtime_ns) for f in sorted(data_dir.iterdir())]
    ag = SE.load_agent(tiny_ckpt)
    run_cfg = SE.agent_env_config(ag["cfg"], cfg)
    for M in (8, 12):
        c = SE.gain_radius_at(run_cfg, ag, dataclasses.replace(cfg, N_ens=M), M)
        assert (c.N_ens, c.gain_radius) == (M, ag["cfg"].gain_radius)
    c4 = SE.gain_radius_at(run_cfg, ag, dataclasses.replace(cfg, N_ens=4), 4)  # as the suite calls
    d4, r4 = cut_members(dataclasses.replace(d, norm=ag["norm"]), 4), dataclasses.replace(run_cfg, N_ens=4)
    make = lambda env: SE.build_agent(ag, env.cfg, env)  # noqa: E731
    scores = agent_scores(r4, d4, [*cfg.loc_radius_list, 1e6], make)
    assert c4.N_ens == 4 and c4.gain_radius == min(scores, key=scores.get)
    env = EnKFVecEnv(dataclasses.replace(r4, gain_radius=1e6), d4, 5, seed=0, scoring=False)  # paths 1-5 of 6
    rm = rollout_paths(make(env), env, [1, 2, 3, 4, 5])["rmse"]  # (5, 60)
    assert scores[1e6] == pytest.approx(float(np.nanmean(rm[:, 50:], 1).max()))  # the worst path, cycles 50..
    again = SE.gain_radius_at(dataclasses.replace(run_cfg, seed=7), ag, cfg, 4)
    assert again.gain_radius == c4.gain_radius and loads == [cfg.N_ens]  # chosen once per agent, data read once
    s = E.path0_set(d)
    row = SE.run_agent(
        ag, dataclasses.replace(cfg, N_ens=4), E.EvalSet("x", s.truth, s.y, s.xb[:, :, :4], s.xa[:, :, :4])
    )
    assert np.isfinite(row["rmse"]).all()
    changed = c4.gain_radius != ag["cfg"].gain_radius  # a changed choice is named in the agent's row
    assert row["param"] == (f"gain_radius {c4.gain_radius:g} at 4 members" if changed else None)
    assert E.label(row, cfg) == (f"{row['method']} ({row['param']})" if changed else row["method"])
    # exported with its choices: read back without running the agent; a choice made on other data is made again
    out = tmp_path / "a.pt"
    assert EX.main(["--checkpoint", str(tiny_ckpt), "--out", str(out), "--command", "c", "--commit", "x", "--budget",
                    "b", "--zero-shot-sizes", ""]) == 0  # fmt: skip
    assert json.loads(out.with_suffix(".json").read_text())["zero_shot_gain_radius"] == {}
    assert EX.main(["--add-zero-shot", str(out), "--zero-shot-sizes", "4,8,12"]) == 0  # sizes >= 8: none to choose
    prov = json.loads(out.with_suffix(".json").read_text())
    stored = prov["zero_shot_gain_radius"]
    assert prov["commit"] == "x" and SE.load_agent(out)["provenance"]["zero_shot_gain_radius"] == stored  # both files
    assert list(stored) == ["4"] and stored["4"]["gain_radius"] == c4.gain_radius
    assert stored["4"]["scores"] == {f"{v:g}": x for v, x in scores.items()}
    ex = SE.load_agent(out)
    monkeypatch.setattr(SE, "agent_scores", lambda *a, **k: pytest.fail("a stored choice is chosen again"))
    assert SE.gain_radius_at(run_cfg, ex, cfg, 4).gain_radius == c4.gain_radius
    ex["provenance"]["zero_shot_gain_radius"]["4"]["data"] = "other"
    SE._CHOSEN.clear()
    with pytest.raises(pytest.fail.Exception, match="chosen again"):
        SE.gain_radius_at(run_cfg, ex, cfg, 4)
    # the training data are read, never regenerated for the smaller size; without them the training choice stands
    assert [(f.name, f.stat().st_mtime_ns) for f in sorted(data_dir.iterdir())] == stamp
    monkeypatch.setattr(D, "data_dir_for", lambda c: data_dir.parent / "none")
    SE._CHOSEN.clear()
    c4 = SE.gain_radius_at(run_cfg, ag, dataclasses.replace(cfg, N_ens=4), 4)
    assert (c4.N_ens, c4.gain_radius) == (4, ag["cfg"].gain_radius) and not (data_dir.parent / "none").exists()


def test_evaluate_cli_errors_are_one_line(tmp_path, capsys):
    cases = ((E.main, ["--methods", "kalman"], "unknown method"), (E.main, ["--n-ens", "1,2"], "--n-ens"),
             (E.main, ["--checkpoint", "pretrained/L96_1.pt"], "python scripts/evaluate.py --config"),
             (SE.main, ["--checkpoint", str(tmp_path / "x.pt"), "--no-path0"], "not found"))  # fmt: skip
    for main, argv, needle in cases:
        assert main(["--config", "configs/L96_1.py", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and needle in err, err
    # the script-level tool as a real process: it imports on its own and fails with one line, no traceback
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "evaluate.py"), "--config", "configs/L96_1.py",
                        "--checkpoint", str(tmp_path / "x.pt"), "--no-path0"], cwd=REPO_ROOT, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_filter_only_suite_runs_from_the_package_cli(tiny_cfg_file, tmp_path, capsys):
    """python -m enkf.evaluate: the suite without agents (no training script involved)."""
    out = tmp_path / "ev"
    argv = ["--config", str(tiny_cfg_file), "--methods", "obs_only,eakf", "--n-ens", "", "--paths", "1", "--cycles",
            "20", "--tune-paths", "1", "--tune-cycles", "6", "--no-path0", "--out", str(out), "--quiet"]  # fmt: skip
    assert E.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["tuned"]["8"]) == {"eakf"}
    rows = json.loads((out / "eval.json").read_text())["sets"]["held-out set (1 paths), N_ens=8"]
    assert [r["method"] for r in rows] == ["obs_only", "eakf"] + ["eakf"] * (len(rows) - 2)
    assert rows[1]["ratio"] == pytest.approx(1.0)


def test_the_package_does_not_import_the_training_script():
    """spec §2 in docs/design.md: scripts and bench -> training script -> enkf/ -> configs/, models/ (never upwards)."""
    for f in sorted((REPO_ROOT / "enkf").glob("*.py")):
        assert "ppo_lstm_enkf" not in f.read_text(), f


def test_init_from_starts_at_the_given_agent_and_checks_the_architecture(tiny_cfg_file, tiny_data, tiny_ckpt, tmp_path,
                                                                        monkeypatch):  # fmt: skip
    _, data_dir, _, _ = tiny_data
    monkeypatch.setattr(P, "LOGS_ROOT", tmp_path / "logs")
    common = ["--config", str(tiny_cfg_file), "--data-dir", str(data_dir), "--total-timesteps", "64", "--no-progress"]
    P.main(common + ["--run-name", "ft", "--init-from", str(tiny_ckpt), "--learning-rate", "1e-8"])
    a = torch.load(tiny_ckpt, weights_only=False)["agent"]
    b = torch.load(tmp_path / "logs" / "tiny" / "runs" / "ft" / "checkpoints" / "latest.pt", weights_only=False)
    for k in a:  # one update at lr 1e-8: still the initial agent
        torch.testing.assert_close(b["agent"][k], a[k], rtol=0, atol=1e-5)
    with pytest.raises(P.ConfigError, match="different architecture.*hidden"):
        P.train(*P.parse_args(common + ["--run-name", "ft2", "--init-from", str(tiny_ckpt), "--hidden", "4"]))


def test_export_pretrained_is_small_and_loads(tiny_ckpt, tmp_path):
    out = tmp_path / "pre" / "tiny.pt"
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "export_pretrained.py"), "--checkpoint",
                        str(tiny_ckpt), "--out", str(out), "--command", "python ppo_lstm_enkf.py ...", "--commit",
                        "abc1234", "--budget", "256 steps", "--zero-shot-sizes", ""], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size < 0.5 * tiny_ckpt.stat().st_size
    ag = SE.load_agent(out)
    assert ag["provenance"]["commit"] == "abc1234" and ag["cfg"].N == 8
    assert json.loads(out.with_suffix(".json").read_text())["command"].startswith("python ppo_lstm_enkf.py")
    full = torch.load(tiny_ckpt, weights_only=False)["agent"]
    for k, v in full.items():
        torch.testing.assert_close(ag["weights"][k], v)


def test_shipped_pretrained_agent_is_small_documented_and_assimilates():
    """pretrained/L96_1.pt: ≤ 5 MB, carries its provenance, and on fresh L96_1 truths it filters (survives, beats
    observation-only and the EnKF at the config inflation, with a calibrated ensemble)."""
    path = REPO_ROOT / "pretrained" / "L96_1.pt"
    assert path.stat().st_size <= 5 * 2**20
    ag = SE.load_agent(path)
    prov = ag["provenance"]
    assert prov["trained_on"] == "L96_1" and prov["command"].startswith("python ppo_lstm_enkf.py")
    assert prov["commit"] and prov["budget"] and ag["cfg"].N == 20
    cfg = load_config(REPO_ROOT / "configs" / "L96_1.py", {"compile": False})
    fc = make_forecaster(cfg)
    s = E.heldout_set(cfg, "t", paths=2, cycles=150, seed=5, fc=fc, progress=False)
    burn = 50
    agent = E.summarize(SE.run_agent(ag, cfg, s, fc), burn, None)
    # the EnKF (EAKF at the config inflation) is the run that made the set; observation-only with H = I puts every
    # member on y, so its analysis RMSE is that of y itself
    assert cfg.obs_stride == 1 and cfg.data_filter == "eakf"
    enkf = float(rmse(s.xa.mean(-2), s.truth)[:, burn:].mean())
    obs_only = float(rmse(s.y, s.truth)[:, burn:].mean())
    assert agent["paths_survived"] == 2
    assert agent["rmse"] < 0.9 * obs_only
    assert agent["rmse"] < 0.95 * enkf  # better than the inflation-5 EAKF
    assert 0.5 < agent["spread_over_rmse"] < 1.5  # a calibrated ensemble (0.7-0.8 on the held-out set)


def test_tuning_picks_the_inflation_whose_worst_path_is_best():
    """Near the stability edge a filter tracks on most paths and loses track on one: the mean would pick it,
    the minimax criterion does not; a diverged (non-finite) run is never picked."""
    T = 40
    fake = {  # inflation -> per-path RMSE levels (3 paths)
        1.1: [0.05, 0.05, 0.45],  # mean 0.18 (the best mean), worst 0.45
        1.2: [0.20, 0.20, 0.25],  # mean 0.22, worst 0.25 <- the robust choice
        1.5: [0.30, 0.30, 0.30],
        2.0: [0.01, 0.01, np.nan],  # diverged on one path
    }

    import enkf.tuned as TU

    res = lambda: [{"rmse": np.repeat(np.array(v)[:, None], T, 1)} for v in fake.values()]  # noqa: E731
    assert list(fake)[int(np.argmin(TU.minimax(res(), 10)))] == 1.2
    fake[1.2][2] = 0.9  # now 1.5 has the best worst path
    assert list(fake)[int(np.argmin(TU.minimax(res(), 10)))] == 1.5


def test_held_out_set_reuses_its_enkf_run_exactly(tiny_data):
    """The config EnKF row of a held-out set comes from the run that made the set; a fresh run agrees."""
    cfg = tiny_data[0]
    fc = make_forecaster(cfg)
    s = E.heldout_set(cfg, "h", paths=2, cycles=30, seed=3, fc=fc, progress=False)
    assert s.enkf_seconds is not None and s.enkf_seconds > 0
    tuned = {cfg.data_filter: {**E.Setting(cfg.data_filter, 1.2).to_dict(), "tracked": True, "edge": False}}
    raws, rows = E.run_methods(cfg, [cfg.data_filter], [], s, tuned, fc, torch.Generator(), 10)
    assert [r["param"] for r in raws] == [cfg.inflation, 1.2] and rows[0]["ratio"] == pytest.approx(1.0)
    fresh = E.run_classical(cfg, cfg.data_filter, [cfg.inflation], s, fc, torch.Generator(), 10)[0]
    np.testing.assert_allclose(raws[0]["rmse"], fresh["rmse"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(raws[0]["spread"], fresh["spread"], rtol=1e-4, atol=1e-5)


def test_a_filter_row_does_not_depend_on_the_other_methods_and_averages_its_streams(tiny_data):
    """Each filter draws from its own (seed, method) streams: its row is the same whichever methods ran before it; a
    setting with a random part is the mean of REPEATS streams, path by path."""
    cfg = tiny_data[0]
    fc = make_forecaster(cfg)
    s = E.heldout_set(cfg, "h", paths=2, cycles=30, seed=3, fc=fc, progress=False)
    rot = {"eakf": {**E.Setting("eakf", 1.1, rotate=True).to_dict(), "tracked": True, "edge": False}}
    alone, _ = E.run_methods(cfg, ["eakf"], [], s, rot, fc, torch.Generator(), 10, seed=5)
    after, _ = E.run_methods(cfg, ["pertobs", "eakf"], [], s, rot, fc, torch.Generator(), 10, seed=5)
    a, b = alone[-1], after[-1]
    assert a["setting"].rotate and a["repeats"] == E.REPEATS
    np.testing.assert_array_equal(a["rmse"], b["rmse"])
    runs = [E.run_settings(cfg, [a["setting"]], s, fc, torch.Generator().manual_seed(500 + 10 * E.TUNABLE.index("eakf") + k))[0]["rmse"]
            for k in range(E.REPEATS)]  # fmt: skip
    np.testing.assert_allclose(a["rmse"], np.mean(runs, 0), rtol=1e-6)
    assert not np.allclose(runs[0], runs[1])  # the streams differ


def test_adaptive_rtps_rows_join_the_best_filter_and_average_their_streams(tiny_data):
    """The untuned adaptive-RTPS filter (enkf.cycle.cycle_adaptive) runs beside the tuned rows: the ETKF always, the
    LETKF only where the config's data filter is the LETKF; with rotation it is the mean of REPEATS streams; it beats
    the observations alone; best_reference may pick it, but not when it lost a path."""
    from enkf.cycle import cycle_adaptive

    cfg = tiny_data[0]
    fc = make_forecaster(cfg)
    s = E.heldout_set(cfg, "h", paths=2, cycles=60, seed=3, fc=fc, progress=False)
    raws, rows = E.run_methods(cfg, ["obs_only", "eakf", "etkf", "letkf"], [], s, {}, fc, torch.Generator(), 20, seed=5)
    ad = {r["variant"]: (raw, r) for raw, r in zip(raws, rows, strict=True) if str(r["variant"]).startswith("adaptive")}
    assert set(ad) == {
        "adaptive RTPS",
        "adaptive RTPS, rotation",
    }  # the tiny config's data filter is the EAKF: no LETKF
    assert all(raw["method"] == "etkf" for raw, _ in ad.values())
    assert E.label(ad["adaptive RTPS, rotation"][1], cfg) == "etkf (adaptive RTPS, rotation, untuned)"
    obs_only = next(r for r in rows if r["method"] == "obs_only")
    assert ad["adaptive RTPS"][1]["rmse"] < obs_only["rmse"]
    raw = ad["adaptive RTPS, rotation"][0]
    assert raw["repeats"] == E.REPEATS
    runs = [cycle_adaptive(cfg, "etkf", s.xb[:, 0], s.y, s.truth, fc, [500 + 90 + k], True)
            for k in range(E.REPEATS)]  # fmt: skip
    np.testing.assert_allclose(raw["rmse"], np.mean([x["rmse"] for x in runs], 0), rtol=1e-6)
    loc = dataclasses.replace(cfg, data_filter="letkf")
    _, rows_l = E.run_methods(loc, ["etkf", "letkf"], [], s, {}, fc, torch.Generator(), 20, seed=5)
    assert {r["method"] for r in rows_l if str(r["variant"]).startswith("adaptive")} == {"etkf", "letkf"}
    best = dict(ad["adaptive RTPS"][1], rmse=1e-3)
    tuned = dict(next(r for r in rows if r["method"] == "etkf" and r["variant"] != "adaptive RTPS"), rmse=1.0)
    assert E.best_reference([tuned, best]) is best
    assert E.best_reference([tuned, dict(best, paths_survived=best["paths"] - 1)]) is tuned


def test_summary_leaves_out_lost_paths_without_warnings():
    """A path that lost the truth (NaN from some cycle on, here before the burn-in) is left out of the means, quietly: two of three kept."""
    rm = np.array([[1.0] * 50, [2.0] * 5 + [np.nan] * 45, [3.0] * 50])  # (P, T) RMSE per path and cycle
    res = {"method": "m", "param": "", "rmse": rm, "spread": 0.5 * rm, "seconds": 1e-3}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" on the lost path would fail here
        s = E.summarize(res, 10, 4.0)
        lost = E.summarize({**res, "rmse": rm[1:2], "spread": rm[1:2]}, 10, 4.0)
    assert (s["rmse"], s["rmse_std"], s["ratio"]) == (2.0, 1.0, 0.5)
    assert (s["paths_survived"], s["cycles_survived_min"], s["spread_over_rmse"]) == (2, 5, 0.5)
    assert lost["paths_survived"] == 0 and np.isnan(lost["rmse"]) and np.isnan(lost["spread"])
