import dataclasses
import math
import subprocess
import sys

import pytest

from configs.defaults import REPO_ROOT, Config, ConfigError, load_config, make_config

CONFIGS = ["L96_1", "L96_2", "L96_3", "L63", "L96_standard", "L63_standard", "KS"]


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_load(name):
    cfg = load_config(REPO_ROOT / "configs" / f"{name}.py")
    assert cfg.name == name


def test_spec_values():
    c = {n: load_config(REPO_ROOT / "configs" / f"{n}.py") for n in CONFIGS}
    assert (c["L96_1"].N, c["L96_1"].F, c["L96_2"].N, c["L96_3"].F) == (20, 5.0, 17, 4.5)
    for n in ("L96_1", "L96_2", "L96_3"):
        k = c[n]
        assert (k.N_ens, k.dtda, k.oda, k.obs_noise_var, k.inflation, k.noise_strength) == (
            20,
            2.5e-3,
            1.0,
            0.1,
            5.0,
            1.0,
        )
        assert k.steps_per_cycle == 400
    assert (c["L63"].N, c["L63"].dtda, c["L63"].inflation, c["L63"].model) == (3, 0.01, 1.5, "lorenz63")
    s = c["L96_standard"]
    assert (s.N, s.F, s.dtda, s.oda, s.obs_noise_var, s.N_ens) == (40, 8.0, 0.05, 0.05, 1.0, 20)
    s = c["L63_standard"]
    assert (s.dtda, s.oda, s.obs_noise_var, s.N_ens, s.steps_per_cycle) == (0.01, 0.25, 2.0, 20, 25)
    s = c["KS"]  # issue 18: DAPPER's KS (L = 32 pi, 128 points, dt 0.25), every 8th point, every 1.0, R = I
    assert (s.model, s.N, s.dtda, s.oda, s.steps_per_cycle, s.obs_stride, len(s.obs_idx)) == ("ks", 128, 0.25, 1.0, 4,
                                                                                               8, 16)  # fmt: skip
    assert (s.obs_noise_var, s.N_ens, s.data_filter, s.innovation_reach) == (1.0, 20, "letkf", 0)  # the one recipe
    assert s.model_params == {"L": pytest.approx(32 * math.pi)} and s.periodic and s.policy == "local"


def test_periodic_property_and_auto_policy():
    # the LETKF's periodic distances and the policy "auto" follow the grid: Lorenz-96 and KS are periodic (local
    # convs), Lorenz-63 is not (dense)
    l96, l63 = make_config({}, "t"), make_config(dict(model="lorenz63", N=3), "t")
    ks = make_config(dict(model="ks", N=32, ks_length=8 * math.pi), "t")
    assert (l96.periodic, l63.periodic, ks.periodic) == (True, False, True)
    assert (l96.policy, l63.policy, ks.policy) == ("local", "dense", "local")
    assert ks.model_params == {"L": 8 * math.pi} and l96.model_params == {"F": 8.0}
    # the receptive-field rule of the local policy applies to KS too
    with pytest.raises(ConfigError, match="field 'kernel' = 3: the policy sees 2 points to each side"):
        make_config(dict(model="ks", N=32, obs_stride=8, kernel=3, innovation_reach=0), "t")


def _write(tmp_path, body, name="c.py"):
    p = tmp_path / name
    p.write_text(body)
    return p


BAD = [
    ("config = dict(N_enz=20)", "unknown field 'N_enz' (did you mean 'N_ens'?)"),
    ("config = dict(N_ens='20')", "field 'N_ens' = '20' must be an integer"),
    ("config = dict(N_ens=1)", "field 'N_ens' = 1 is out of range [2, 4096]"),
    ("config = dict(N_ens=True)", "field 'N_ens' = True must be an integer"),
    ("config = dict(F='eight')", "field 'F' = 'eight' must be a number"),
    ("config = dict(F=float('nan'))", "field 'F' = nan must be finite"),
    ("config = dict(inflation=0.5)", "field 'inflation' = 0.5 is out of range [1, 100]"),
    ("config = dict(model='lorenz99')", "field 'model' = 'lorenz99' is not one of 'lorenz96', 'lorenz63'"),
    ("config = dict(compile='yes')", "field 'compile' = 'yes' must be true or false"),
    ("config = dict(model='lorenz63', N=20)", "field 'N' = 20: Lorenz-63 has exactly 3 variables"),
    ("config = dict(model='ks', N=33)", "field 'N' = 33: Kuramoto-Sivashinsky (pseudo-spectral) needs an even N >= 8"),
    ("config = dict(model='ks', N=6)", "field 'N' = 6: Kuramoto-Sivashinsky (pseudo-spectral) needs an even N >= 8"),
    ("config = dict(model='ks', ks_length=0.5)", "field 'ks_length' = 0.5 is out of range [1, 100000]"),
    ("config = dict(dtda=0.003, oda=1.0)", "field 'oda' = 1 is not a whole multiple of dtda = 0.003"),
    ("config = dict(path_length=50, burn_in=50)", "field 'burn_in' = 50 must be < path_length = 50"),
    ("config = dict(N=8, obs_stride=9)", "field 'obs_stride' = 9 exceeds N = 8"),
    ("config = [1, 2]", "'config' must be a dict"),
    ("x = 1", "defines no 'config'"),
    ("config = dict(N=)", "could not be executed: SyntaxError"),
]


@pytest.mark.parametrize("body,msg", BAD)
def test_bad_config_files_name_file_and_field(tmp_path, body, msg):
    p = _write(tmp_path, body)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    text = str(e.value)
    assert str(p) in text and msg in text
    assert "\n" not in text


def test_missing_file():
    with pytest.raises(ConfigError, match="nope.py: config file not found"):
        load_config("nope.py")


def test_overrides_are_checked_and_applied(tmp_path):
    p = _write(tmp_path, "config = dict(N=12)")
    cfg = load_config(p, {"F": 6})
    assert cfg.F == 6.0 and isinstance(cfg.F, float) and cfg.N == 12 and cfg.name == "c"
    with pytest.raises(ConfigError, match="command-line override.*'N_ens' = 0 is out of range"):
        load_config(p, {"N_ens": 0})


def test_config_is_frozen():
    cfg = make_config({}, "defaults")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.N = 3  # type: ignore[misc]
    assert isinstance(cfg, Config)


@pytest.mark.parametrize("args,msg", [
    (["--config", "configs/missing.py"], "configs/missing.py: config file not found"),
    (["--config", "configs/L96_1.py", "--num-paths", "0"], "field 'num_paths' = 0 is out of range"),
])  # fmt: skip
def test_cli_prints_one_line_and_exits_2(args, msg):
    p = subprocess.run([sys.executable, "-m", "enkf.data", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and msg in p.stderr
