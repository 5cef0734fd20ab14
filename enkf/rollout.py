"""A policy's deterministic analysis over whole stored paths: the path-0 evaluation during training (the training
script's Evaluator) and the agents' rows of the benchmark suite (scripts/evaluate.py). The agent is any object with
initial_state(B, device) and actor_step(obs, state, done) -> (mean action, state), as the training script's Agent."""

from __future__ import annotations

import torch

from enkf.env import EnKFVecEnv


@torch.no_grad()
def rollout_paths(agent, env: EnKFVecEnv, paths, cycles: int | None = None) -> dict:
    """The mean action on each of `paths` (env.B == len(paths)) from its first stored background to the end, or for
    its first `cycles` cycles: rmse, spread (P, T) (NaN after a halt), path 0's analysis means (T', N), cycles
    survived (P,) (a halt at cycle t: t)."""
    P, T = len(paths), env.T if cycles is None else min(cycles, env.T)
    obs = env.reset_to(list(paths), 0, T)
    state, done = agent.initial_state(P, env.device), torch.ones(P, device=env.device)
    rm, sp, means = torch.full((P, T), float("nan")), torch.full((P, T), float("nan")), []
    alive, survived = torch.ones(P, dtype=torch.bool), torch.full((P,), T)
    for t in range(T):
        mean, state = agent.actor_step(obs, state, done)
        if alive[0]:
            means.append(env.analysis_from_action(mean)[0].mean(0).cpu())  # (N,) path 0's analysis mean
        res = env.step(mean)
        rm[alive, t], sp[alive, t] = res.info["rmse_truth"].cpu()[alive], res.info["spread"].cpu()[alive]
        halted = res.terminated.cpu() & alive
        survived[halted] = t
        alive &= ~halted
        if not alive.any():
            break
        obs, done = res.obs, torch.zeros(P, device=env.device)
    return dict(rmse=rm.numpy(), spread=sp.numpy(), mean=torch.stack(means).numpy(), survived=survived.numpy())
