"""What sets the dense gap? The untrained gain-gated agent against the ETKF/EAKF with the agent's adaptive inflation
(a share kappa of the innovation estimate) and at fixed settings, on data paths 0-3 (1000 cycles, burn-in 100).

    python bench/inflation_probe.py L96_2 agent_start,etkf_adapt,k05,k025,etkf_tuned [gain_radius]
    python bench/inflation_probe.py L96_2 agent_start,agent_relax,etkf_adapt_rot,etkf_relax_rot,etkf_tuned

The agent's prior inflation starts at the config's effective agent_inflation (enkf.tuned.resolve: the tuned teacher
inflation, 1.25 on L96_2) and is clipped at inflation_adapt_max^2, as in the env; the gain radius is the one training
would choose (enkf.gain.choose_gain_radius: 20 on L96_2) unless given.

Prints per-path RMSE, the mean and spread/RMSE per variant (and the mean adaptive factor or relaxation). 2026-12-06:
the figures of docs/results.md ("the inflation the recipe follows", and the second command: "adaptive relaxation").
2026-12-07 ("the reward's clip, the square-root rows and rotation"):

    python bench/inflation_probe.py L96_2 agent_relax,agent_sr_relax,agent_sr_relax_rot,etkf_relax,etkf_relax_rot 1e6
    python bench/inflation_probe.py L96_2 negative 1e6

The agent variants start from the features and rotation of before 2026-12-07 (kgsr, no rotation) unless named."""

import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from configs.defaults import load_config  # noqa: E402
from enkf.cycle import make_forecaster, obs_setup, rmse, spread  # noqa: E402
from enkf.data import ensure_data  # noqa: E402
from enkf.env import EnKFVecEnv  # noqa: E402
from enkf.filters import adapt_inflation, adapt_relaxation, eakf, etkf, inflate, post_process  # noqa: E402
from enkf.gain import choose_gain_radius, gain_action  # noqa: E402
from enkf.tuned import resolve  # noqa: E402

torch.set_num_threads(1)
cfgname = sys.argv[1] if len(sys.argv) > 1 else "L96_2"
which = sys.argv[2].split(",") if len(sys.argv) > 2 else None
cfg = resolve(load_config(f"configs/{cfgname}.py"))
data = ensure_data(cfg, progress=False)
cfg = dataclasses.replace(cfg, gain_radius=float(sys.argv[3])) if len(sys.argv) > 3 else choose_gain_radius(cfg, data)
paths = [0, 1, 2, 3]
T, burn = 1000, 100
truth, y, xb0 = data.truth[paths, :T].float(), data.obs[paths, :T].float(), data.xb[paths, 0].float()
obs, r = obs_setup(cfg)
fc = make_forecaster(cfg)


def report(name, rm, sp):
    rm, sp = torch.as_tensor(rm), torch.as_tensor(sp)
    m = rm[:, burn:].mean(1)
    s = sp[:, burn:].mean(1)
    print(
        f"{name:40s} rmse per path {[round(float(v), 4) for v in m]} mean {float(m.mean()):.4f} spread/rmse {float((s / m).mean()):.3f}",
        flush=True,
    )


def run_env(name, **kw):  # the start until 2026-12-07 (kgsr, no rotation) unless kw says otherwise
    c = dataclasses.replace(cfg, **({"features": KGSR, "rotate": False} | kw))
    env = EnKFVecEnv(c, data, len(paths), scoring=False)
    env.reset_to(paths, 0, T)
    rm, sp = [], []
    for _ in range(T - 1):
        out = env.step(gain_action(env))
        rm.append(out.info["rmse_truth"])
        sp.append(out.info["spread"])
    report(name, torch.stack(rm, 1), torch.stack(sp, 1))


def run_filter(
    name, base, adapt=cfg.inflation_adapt, infl=1.0, rtps=0.0, rotate=False, post=1.0, kappa=1.0, relax=False
):
    lams = []
    alpha = torch.zeros(len(paths))
    g = torch.Generator().manual_seed(5)
    lam2 = torch.full((len(paths),), cfg.agent_inflation**2, dtype=torch.float32)
    E = xb0.clone()
    rm = torch.empty(len(paths), T)
    sp = torch.empty(len(paths), T)
    for t in range(T):
        if relax:  # spread_adapt relax: no prior inflation, the analysis relaxed by the adaptive alpha
            alpha = adapt_relaxation(alpha, E, y[:, t], obs, r, adapt, cfg.inflation_adapt_max**2)
            lams.append(float(alpha.mean()))
            Eb, rtps = E, alpha
        elif adapt > 0:
            lam2 = adapt_inflation(lam2, E, y[:, t], obs, r, adapt, cfg.inflation_adapt_max**2, kappa)  # as the env
            lams.append(float(lam2.sqrt().mean()))
            Eb = inflate(E, lam2.sqrt())
        else:
            Eb = inflate(E, infl)
        Ea = base(Eb, y[:, t], obs, r)
        Ea = post_process(Ea, Eb, post, rtps, rotate, g)
        rm[:, t] = rmse(Ea.mean(-2), truth[:, t])
        sp[:, t] = spread(Ea)
        E = fc(Ea)
    report(name, rm, sp)
    if lams:
        print("   mean alpha" if relax else "   mean lambda", sum(lams[burn:]) / len(lams[burn:]))


def negative_scores(name, **kw):
    """The share of cells whose CRPS contribution is negative (their reward was clipped to exactly 1 before 2026-12-07),
    for the untrained gain-gated analysis on paths 1-4, cycles 50-200."""
    c = dataclasses.replace(cfg, **({"features": KGSR, "rotate": False} | kw))
    env = EnKFVecEnv(c, data, 4, scoring=True)
    env.reset_to([1, 2, 3, 4], 0, 300)
    share = []
    for t in range(200):
        a = gain_action(env)
        r = env.reward(env.analysis_from_action(a, relax=False), env.teacher())[0]  # 1 - score
        share += [float((r > 1).float().mean())] if t >= 50 else []
        env.step(a, a)
    print(f"{name:40s} share of cells with a negative score {sum(share) / len(share):.3f}", flush=True)


SR = ",".join(f for f in cfg.features.split(",") if f[:2] != "sr") + "," + ",".join(f"sr{k}" for k in range(-8, 9))
KGSR = ",".join(f for f in cfg.features.split(",") if f[:2] != "sr") + ",kgsr"  # the default features until 2026-12-07
t0 = time.time()
jobs = {
    "k05": lambda: run_filter("ETKF adaptive kappa .5", etkf, kappa=0.5),
    "k025": lambda: run_filter("ETKF adaptive kappa .25", etkf, kappa=0.25),
    "k05rot": lambda: run_filter("ETKF adaptive kappa .5 rot", etkf, kappa=0.5, rotate=True),
    "f102rot": lambda: run_filter("ETKF fixed 1.02 rot", etkf, adapt=0, infl=1.02, rotate=True),
    "f105rot": lambda: run_filter("ETKF fixed 1.05 rot", etkf, adapt=0, infl=1.05, rotate=True),
    "f110": lambda: run_filter("ETKF fixed 1.10", etkf, adapt=0, infl=1.10),
    "agent_start": lambda: run_env("untrained gain-gated agent (adaptive)"),
    "agent_relax": lambda: run_env("untrained gain-gated agent (relax)", spread_adapt="relax"),
    "agent_relax_rot": lambda: run_env("untrained agent (relax) + rotation", spread_adapt="relax", rotate=True),
    "agent_start_rot": lambda: run_env("untrained agent (adaptive) + rotation", rotate=True),
    "agent_sr": lambda: run_env("untrained agent + sr rows (adaptive)", features=SR),
    "agent_sr_rot": lambda: run_env("untrained agent + sr rows (adaptive) + rot", features=SR, rotate=True),
    "agent_sr_relax": lambda: run_env("untrained agent + sr rows (relax)", features=SR, spread_adapt="relax"),
    "agent_sr_relax_rot": lambda: run_env(
        "untrained agent + sr rows (relax) + rot", features=SR, spread_adapt="relax", rotate=True
    ),  # fmt: skip
    "negative": lambda: negative_scores("untrained agent (relax): CRPS < 0", spread_adapt="relax"),
    "etkf_relax": lambda: run_filter("ETKF adaptive relaxation", etkf, relax=True),
    "etkf_relax_rot": lambda: run_filter("ETKF adaptive relaxation + rotation", etkf, relax=True, rotate=True),
    "agent_start_nokgsr": lambda: run_env("gain-gated, no kgsr", features=cfg.features.replace(",kgsr", "")),
    "etkf_adapt": lambda: run_filter("ETKF adaptive", etkf),
    "etkf_adapt_rot": lambda: run_filter("ETKF adaptive + rotation", etkf, rotate=True),
    "eakf_adapt": lambda: run_filter("EAKF adaptive", eakf),
    "etkf_adapt_rtps": lambda: run_filter("ETKF adaptive + RTPS 0.1", etkf, rtps=0.1),
    "etkf_tuned": lambda: run_filter("ETKF tuned (RTPS .1, rot)", etkf, adapt=0, rtps=0.1, rotate=True),
    "etkf_rtps": lambda: run_filter("ETKF RTPS .1 no rot", etkf, adapt=0, rtps=0.1),
}
for k in which or jobs:
    jobs[k]()
    print(f"  [{time.time() - t0:.0f}s]", flush=True)
