import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_cfg_file(tmp_path_factory):
    """A tiny L96 config file (N=8, short paths, eager forecast) for fast tests."""
    d = tmp_path_factory.mktemp("cfg")
    p = d / "tiny.py"
    p.write_text(
        "config = dict(model='lorenz96', N=8, F=5.0, N_ens=8, dtda=0.01, oda=0.2, obs_noise_var=0.1,\n"
        "              inflation=1.5, teacher_inflation=1.5, spinup_steps=4000, num_paths=6, path_length=60, burn_in=10, compile=False,\n"
        "              episode_length=20, num_envs=8, num_steps=8, num_minibatches=2, update_members=4, hidden=8,\n"
        "              lstm_hidden=8, eval_interval=0, checkpoint_interval=0, torch_threads=1)\n"
    )
    return p


@pytest.fixture(scope="session")
def tiny_data(tiny_cfg_file, tmp_path_factory):
    from configs.defaults import load_config
    from enkf.data import generate, load_data

    cfg = load_config(tiny_cfg_file)
    out = tmp_path_factory.mktemp("data")
    summary = generate(cfg, out, progress=False)
    return cfg, out, summary, load_data(cfg, out)


@pytest.fixture(autouse=True)
def _tuned_files_in_tmp(tmp_path_factory, monkeypatch):
    """Tuned filters found by tests go to a temporary folder, never into the repository's configs/tuned/ or logs/
    (a run's own tuned file is under LOGS_ROOT/<config>/tuned/)."""
    import configs.defaults
    import enkf.tuned

    monkeypatch.setattr(enkf.tuned, "TUNED_DIR", tmp_path_factory.getbasetemp() / "tuned")
    monkeypatch.setattr(configs.defaults, "LOGS_ROOT", tmp_path_factory.getbasetemp() / "logs")
