"""PPO with an LSTM policy that learns the analysis step of an Ensemble Kalman Filter (CleanRL style).

    python ppo_lstm_enkf.py --config configs/L96_1.py [--total-timesteps 2000000] [--num-envs 64] [--seed 1]
    python ppo_lstm_enkf.py --config configs/L96_1.py --run-name myrun --resume
    python ppo_lstm_enkf.py --config configs/L96_1.py --eval-only --checkpoint logs/L96_1/runs/R/checkpoints/best.pt

Every field of configs/defaults.py is a flag; the config file sets the defaults. Top to bottom: Args, Agent (a class
per network kind), PPO helpers, evaluation, checkpoints, training (Run, phases, train()). Writes logs/<config>/runs/<run>/
(config.json, TensorBoard events, checkpoints/, eval/, final.json); the last line printed is a JSON summary."""

from __future__ import annotations

import contextlib
import dataclasses
import io as _io
import itertools
import json
import math
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.utils.tensorboard import SummaryWriter

from configs.defaults import FIELDS, LEGACY, LOGS_ROOT, Config, ConfigError, load_config, make_config
from enkf import io
from enkf.cycle import obs_setup
from enkf.data import DataError, ensure_data
from enkf.env import EnKFVecEnv
from enkf.filters import make_analysis
from enkf.gain import at_size, choose_from_data, gain_gate_terms
from enkf.normalization import Normalizer
from enkf.report import path_baselines, write_report
from enkf.rollout import rollout_paths
from enkf.tuned import Setting, best_setting, resolve, tuned_setting


@dataclasses.dataclass(frozen=True)
class Args(Config):
    config: str = "configs/L96_1.py"  # Experiment config file; its values are the defaults of every other flag.
    run_name: str = ""  # Run folder name under logs/<config>/runs/ (default: <config>__s<seed>__<date-time>).
    data_dir: str = ""  # Data folder (default logs/<config>/data); generated if missing or stale.
    device: str = "cpu"  # torch device: cpu or cuda.
    resume: bool = False
    """Continue the run named by --run-name (default: the newest run of this config) from its latest checkpoint."""
    eval_only: bool = False  # Only evaluate --checkpoint on path 0 (plots + summary), no training.
    checkpoint: str = ""  # Checkpoint for --eval-only.
    init_from: str = ""
    """Fine-tuning: start a new run from this checkpoint's agent (trained on any config or ensemble size with the
    same architecture fields); its normalization statistics are kept, so step 0 is the zero-shot agent."""
    max_minutes: float = 0.0
    """Stop training after this many wall-clock minutes (0 = no limit), counted over the run's invocations (a resumed
    run continues its schedule, and extends it when given a larger value); a checkpoint and a final eval follow."""
    progress: bool = True  # Print one progress line per evaluation / every ~20 s.
    stop_after: int = 0
    """Stop after this many iterations in this invocation, with a checkpoint, as on SIGTERM (0 = off)."""


def parse_args(argv=None) -> tuple[Config, Args]:
    """--config sets the defaults, every other flag overrides them; all values are range-checked."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg_path = "configs/L96_1.py"
    for a, b in zip(argv, [*argv[1:], None], strict=True):  # the last --config PATH or --config=PATH wins
        if a == "--config" and b is not None or a.startswith("--config="):
            cfg_path = b if a == "--config" else a.split("=", 1)[1]
    base = load_config(cfg_path)
    err = _io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = tyro.cli(Args, args=argv, default=Args(**base.to_dict(), config=cfg_path))
    except SystemExit as e:
        if not e.code:
            raise
        # tyro draws a multi-line box; keep its message lines as one line
        lines = [s for ln in err.getvalue().splitlines() if (s := ln.strip(" │╭╮╰╯─\n"))] or ["error"]
        hints = ("Argument helptext", "For full helptext", "Perhaps you meant", "Arguments similar")
        body = itertools.takewhile(lambda ln: not ln.startswith(hints), lines[1:])
        raise ConfigError(f"command line: {lines[0]}: {' '.join(body)} (see --help)") from None
    changed = {k: getattr(args, k) for k in FIELDS if getattr(args, k) != getattr(base, k)}
    cfg = make_config(changed, f"{cfg_path} (command line)", base=base) if changed else base
    return cfg, args


# ---- Agent ----------------------------------------------------------------------------------------
def layer_init(layer, std=math.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


def conv(cin, cout, k, std=math.sqrt(2)):
    return layer_init(nn.Conv1d(cin, cout, k, padding=k // 2, padding_mode="circular"), std)


def mlp(D, H, out=0):
    """Linear(D, H), tanh, Linear(H, H), tanh; with out > 0 then Linear(H, out) (std 1: a value head)."""
    layers = [layer_init(nn.Linear(D, H)), nn.Tanh(), layer_init(nn.Linear(H, H)), nn.Tanh()]
    return nn.Sequential(*layers, *([layer_init(nn.Linear(H, out), std=1.0)] if out else []))


class Agent(nn.Module):
    """Policy and critic: observations (B, M, C, N) -> Gaussian means and values (B, M, N). Agent(cfg, C, M, N) builds
    the network kind's class (LocalAgent, DenseAgent, MemberAgent, GlobalAgent); the base holds the LSTM over the
    kind's cells (zeroed at episode starts), the clamped log-std, the gate inputs and actor_sequence / actor_step. A
    kind builds encoder, critic and actor_head (in this order: seeded weights) and defines the methods below."""

    def __new__(cls, cfg: Config | None = None, *args, **kwargs):
        if cls is Agent:  # dispatch on the network kind
            kind = "member" if (cfg.agents == "per-member" and cfg.policy == "global") else cfg.policy
            cls = {"local": LocalAgent, "dense": DenseAgent, "member": MemberAgent}.get(kind, GlobalAgent)
        return super().__new__(cls)

    def __init__(self, cfg: Config, C: int, M: int, N: int):
        super().__init__()
        self.M, self.N, H, L = M, N, cfg.hidden, cfg.lstm_hidden
        self.per_member, self.lstm_layers = cfg.agents == "per-member", cfg.lstm_layers
        self.mix, self.gate_idx, self.innov_gate, self.reach, self.shifts, self.kg = False, [], None, 0, [], []
        self._build(cfg, C, M, N, H, L or H)  # L or H: the head's input size
        if self.kg:  # the gain gates start at 1: the prior's Kalman gain on each innovation, the square-root correction
            nn.init.constant_(self.actor_head.bias[-len(self.kg) * (N if self.kind == "dense" else 1) :], 1.0)
        self.lstm = nn.LSTM(H, L, num_layers=cfg.lstm_layers) if L > 0 else None
        for name, p in self.lstm.named_parameters() if self.lstm is not None else []:  # weights and biases
            nn.init.constant_(p, 0) if "bias" in name else nn.init.orthogonal_(p, 1.0)
        self.actor_logstd = nn.Parameter(torch.tensor(math.log(cfg.init_action_std)))
        self.min_logstd, self.max_logstd = math.log(cfg.min_action_std), math.log(cfg.max_action_std)

    def _build(self, cfg: Config, C: int, M: int, N: int, H: int, L: int): ...
    def _encode(self, obs, members=None, pool=None): ...  # (B, M, C, N) -> (cells(B, K), H); K = len(members) or M
    def _head(self, h, B, M, gates=None): ...  # (cells(B, M), L) -> (B, M, N); gates (B, M, G, N)
    def get_value(self, obs): ...  # (..., M, C, N) -> (..., M, N)

    def cells(self, B: int, M: int | None = None) -> int:  # LSTM sequences for B envs of M members
        return B * (M or self.M)  # one per member

    def initial_state(self, B: int, device="cpu", M: int | None = None):
        L = self.lstm.hidden_size if self.lstm is not None else 1
        z = torch.zeros(self.lstm_layers, self.cells(B, M), L, device=device)
        return (z, z.clone())

    def select_state(self, state, envs, members=slice(None)):  # (layers, cells(B), L) -> (layers, cells(b, K), L)
        return tuple(s.view(s.shape[0], -1, self.M, self.cells(1, 1), s.shape[-1])[:, envs][:, :, members]
                     .reshape(s.shape[0], -1, s.shape[-1]) for s in state)  # fmt: skip

    def log_std(self):
        return self.actor_logstd.clamp(self.min_logstd, self.max_logstd)

    def actor_sequence(self, obs, state, done, members=None, pool=None):
        """obs (S, B, M, C, N), done (S, B) (1 where obs starts a new episode), state: LSTM state before obs[0] (of the
        selected members). members: indices of the members to act for (the update subsamples them; the member pooling
        still sees all M); or obs of those only and pool (S*B, 1, H, n), the rollout's member pool (rollout_pool).
        Returns means (S, B, K, N) and the final state."""
        S, B, M = obs.shape[:3]
        anom = self.gate_inputs(obs)  # (S, B, M, G, N) gate inputs
        if members is not None:
            M = len(range(M)[members]) if isinstance(members, slice) else len(members)
            anom = anom[:, :, members] if anom is not None else None
        cells = self.cells(B, M)
        h = self._encode(obs.reshape(S * B, *obs.shape[2:]), members, pool).reshape(S, cells, -1)  # (S, cells, H)
        if self.lstm is not None:
            outs = []
            for s in range(S):
                keep = 1.0 - done[s].float().repeat_interleave(self.cells(1, M)).unsqueeze(-1)  # (cells, 1)
                state = (keep * state[0], keep * state[1])
                o, state = self.lstm(h[s].unsqueeze(0), state)
                outs.append(o[0])
            h = torch.stack(outs)  # (S, cells, L)
        return self._head(h.reshape(S * cells, -1), S * B, M, anom).reshape(S, B, M, self.N), state

    def gate_inputs(self, obs):  # (..., M, C, N) -> (..., M, G, N) or None
        if not self.gate_idx:
            return None
        g, inn, a = obs[..., self.gate_idx, :], obs[..., self.innov_gate or 0, :], obs[..., self.gate_idx[0], :]
        if self.shifts:  # innov_i(j + k) at j for every shift k (periodic grid)
            g = torch.cat([g, torch.stack([inn.roll(-k, -1) for k in self.shifts], -2)], -2)
        if self.kg:  # kg_k(j) * innov_i(j + k) (the gain rows on the innovations); sr_k(j) * anom_i(j + k), kgsr: k = 0
            prods = [obs[..., c, :] * (a if on_a else inn).roll(-k, -1) for c, k, on_a in self.kg]  # (..., M, N) each
            g = torch.cat([g, torch.stack(prods, -2)], -2)
        return g

    def actor_step(self, obs, state, done):  # one step: obs (B, M, C, N), done (B,)
        mean, state = self.actor_sequence(obs.unsqueeze(0), state, done.unsqueeze(0))
        return mean[0], state


class LocalAgent(Agent):
    """local: per member, circular convs over the grid (weights shared by members and grid points), an LSTM per
    (member, grid point) cell, a 1x1 head: one increment per cell; any M, N. member_mix: the second conv also sees the
    members' mean of the first's channels. Gates: mean_i = a_i + b_i * anom_i + c_i * innov_i, so an anomaly scaling
    (square-root filter) or a gain times the innovation (Kalman update) is one multiplication, not a tanh fit.
    Critic: the conv trunk without the LSTM, one value per cell (with agents per-member its mean over the grid)."""

    kind = "local"

    def _gates(self, cfg: Config, C: int):  # gate_idx: the newest window step's channels that the head multiplies
        feats, last = cfg.feature_list, (cfg.temporal_window - 1) * (C // cfg.temporal_window)
        gates = [f for f, on in (("anom", cfg.anomaly_gate), ("innov", cfg.innovation_gate)) if on and f in feats]
        self.gate_idx, self.mix = [last + feats.index(f) for f in gates], cfg.member_mix
        if "innov" in gates:  # gain gate: + g_k kg_k(j) innov_i(j+k), + g_k sr_k(j) anom_i(j+k) (kgsr: k = 0)
            self.innov_gate, sr = self.gate_idx[gates.index("innov")], gates[0] == "anom"
            terms = gain_gate_terms(feats, sr) if cfg.gain_gate else []  # (feature, offset, on the anomaly)
            self.kg = [(last + feats.index(f), k, on_anom) for f, k, on_anom in terms]
        return gates, last

    def _build(self, cfg, C, M, N, H, L):
        gates, last = self._gates(cfg, C)
        if "innov" in gates:  # innovation reach R: + c_jk * innov_i(j+k), 0 < |k| <= R (unobserved points)
            self.reach = cfg.innovation_reach
            self.shifts = [k for k in range(-self.reach, self.reach + 1) if k != 0]
        k = cfg.kernel
        self.encoder = nn.Sequential(conv(C, H, k), nn.Tanh(), conv(2 * H if self.mix else H, H, k), nn.Tanh())
        self.critic = nn.Sequential(conv(C, H, k), nn.Tanh(), conv(H, H, k), nn.Tanh(), conv(H, 1, 1, std=1.0))
        self.actor_head = conv(L, 1 + len(self.gate_idx) + len(self.shifts) + len(self.kg), 1, std=0.01)

    def cells(self, B: int, M: int | None = None) -> int:
        return B * (M or self.M) * self.N  # one per (member, grid point)

    def _layer1(self, x):  # (B, K, C, N) -> (B, K, H, N): the first layer, per member
        B, K, C, N = x.shape
        return self.encoder[1](self.encoder[0](x.reshape(-1, C, N))).view(B, K, -1, N)

    def _encode(self, obs, members=None, pool=None):  # (B, M, C, N) -> (cells(B, K), H); K = len(members) or M
        B = obs.shape[0]
        if self.mix and pool is None and members is not None and torch.is_grad_enabled():
            with torch.no_grad():  # the update: the pool's value over all M members (or the rollout's, rollout_pool)
                pool = self._layer1(obs).mean(1, keepdim=True)  # (B, 1, H, n)
        if members is not None and (pool is not None or not self.mix):
            obs = obs[:, members]  # members are independent sequences
        h = self._layer1(obs)  # (B, K, H, n)
        if pool is not None:  # its gradient through the K acting members only (scaled by M/K: an unbiased estimate)
            h = torch.cat([h, (pool + (h - h.detach()).mean(1, keepdim=True)).expand_as(h)], 2)  # (B, K, 2H, n)
        elif self.mix:  # every member also sees the ensemble mean of each channel (the rollout keeps it: self.pool)
            self.pool = (pool := h.mean(1, keepdim=True)).detach()  # (B, 1, H, n)
            h = torch.cat([h, pool.expand_as(h)], 2)[:, members if members is not None else slice(None)]
        K, n = h.shape[1], h.shape[-1]
        h = self.encoder[3](self.encoder[2](h.reshape(B * K, -1, n)))  # (B*K, H, n)
        return h.permute(0, 2, 1).reshape(B * K * n, -1)  # (B*K*n, H)

    def _head(self, h, B, M, gates=None):  # (B*M*N, L) -> (B, M, N)
        return self._gated(self.actor_head(h.reshape(B * M, self.N, -1).permute(0, 2, 1)), B, M, gates)

    def _gated(self, out, B, M, gates):  # head out (B*M, 1 + G, N), gates (B, M, G, N) -> (B, M, N)
        if not self.gate_idx:
            return out.reshape(B, M, self.N)
        g = gates.reshape(B * M, -1, self.N)  # (B*M, G, N)
        return (out[:, 0] + (out[:, 1:] * g).sum(1)).reshape(B, M, self.N)

    def get_value(self, obs):
        *lead, M, C, N = obs.shape
        v = self.critic(obs.reshape(-1, C, N)).reshape(*lead, M, N)
        return v.mean(-1, keepdim=True).expand_as(v) if self.per_member else v


class DenseAgent(LocalAgent):
    """dense (small non-periodic states such as Lorenz-63; tied to N): the local trunk on a one-point "grid" whose
    channels are a member's (C, N) observation, with pooling and gates; an LSTM per member; increments per variable."""

    kind = "dense"
    cells = Agent.cells  # one per member

    def _build(self, cfg, C, M, N, H, L):
        self._gates(cfg, C)
        D, H2 = C * N, 2 * H if self.mix else H
        self.encoder = nn.Sequential(layer_init(nn.Linear(D, H)), nn.Tanh(), conv(H2, H, 1), nn.Tanh())
        self.critic = mlp(D, H, N)
        self.actor_head = layer_init(nn.Linear(L, (1 + len(self.gate_idx) + len(self.kg)) * N), std=0.01)

    def _layer1(self, x):  # (B, K, C, N) -> (B, K, H, 1): the whole member state on one point
        B, K, C, N = x.shape
        return self.encoder[1](self.encoder[0](x.reshape(B, K, C * N))).unsqueeze(-1)

    def _head(self, h, B, M, gates=None):  # (B*M, L) -> (B, M, N)
        return self._gated(self.actor_head(h).reshape(B * M, -1, self.N), B, M, gates)  # head (B*M, 1 + G, N)

    def get_value(self, obs):
        *lead, M, C, N = obs.shape
        return self.critic(obs.reshape(-1, C * N)).reshape(*lead, M, N)


class MemberAgent(Agent):
    """member (policy global with agents per-member, the user's multi-agent network): one MLP + LSTM per member
    over its own (C, N) observation, weights shared by members; the critic one value per agent."""

    kind = "member"

    def _build(self, cfg, C, M, N, H, L):
        self.encoder, self.critic = mlp(C * N, H), mlp(C * N, H, 1)
        self.actor_head = layer_init(nn.Linear(L, N), std=0.01)

    def _encode(self, obs, members=None, pool=None):  # (B, M, C, N) -> (cells(B, M), H): per member (global: per env)
        B, M = obs.shape[:2]
        return self.encoder(obs.reshape(self.cells(B, M), -1))

    def _head(self, h, B, M, gates=None):  # (cells(B, M), L) -> (B, M, N)
        return self.actor_head(h).reshape(B, M, self.N)

    def get_value(self, obs):
        *lead, M, C, N = obs.shape
        return self.critic(obs.reshape(-1, C * N)).reshape(*lead, M, 1).expand(*lead, M, N)


class GlobalAgent(MemberAgent):
    """global (the user's original): the member network over the whole ensemble state, tied to M and N."""

    kind = "global"

    def _build(self, cfg, C, M, N, H, L):
        self.encoder, self.critic = mlp(M * C * N, H), mlp(M * C * N, H, M * N)
        self.actor_head = layer_init(nn.Linear(L, M * N), std=0.01)

    def cells(self, B: int, M: int | None = None) -> int:
        return B  # one sequence per env

    def select_state(self, state, envs, members=slice(None)):
        return tuple(s[:, envs] for s in state)

    def get_value(self, obs):
        *lead, M, C, N = obs.shape
        return self.critic(obs.reshape(-1, M * C * N)).reshape(*lead, M, N)


def compute_gae(rewards, values, dones, next_value, next_done, gamma: float, lam: float):
    """GAE. rewards, values (S, B, ...); dones (S, B): 1 where obs[t] starts an episode; next_value (B, ...), next_done
    (B,) after the rollout. An episode end cuts the bootstrap (truncation: gamma * V(final obs) is in the reward)."""
    S, adv, lastgaelam = rewards.shape[0], torch.zeros_like(rewards), torch.zeros_like(next_value)
    for t in reversed(range(S)):
        m = (1.0 - (next_done if t == S - 1 else dones[t + 1])).view(-1, *[1] * (rewards.dim() - 2))  # nonterminal
        delta = rewards[t] + gamma * (next_value if t == S - 1 else values[t + 1]) * m - values[t]
        adv[t] = lastgaelam = delta + gamma * lam * m * lastgaelam
    return adv


def pool(x: torch.Tensor, grain: str) -> torch.Tensor:
    """Mean over the cells of each agent (cell: none; member: grid; ensemble: all), kept at cell shape."""
    dims = (-1,) if grain == "member" else (-2, -1)
    return x if grain == "cell" else x.mean(dims, keepdim=True).expand_as(x)


def agent_logprob(logp: torch.Tensor, grain: str) -> torch.Tensor:
    """Joint log-probability of each agent's action (sum over its cells), kept at cell shape."""
    n = logp.shape[-1] if grain == "member" else logp.shape[-1] * logp.shape[-2]
    return logp if grain == "cell" else pool(logp, grain) * n


def normal_logprob(a, mean, log_std):
    return -((a - mean) ** 2) / (2 * torch.exp(2 * log_std)) - log_std - 0.5 * math.log(2 * math.pi)


class RunningMeanStd:
    """Running mean/variance (Chan et al.) of value targets."""

    def __init__(self):
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def update(self, x: torch.Tensor):
        bm, bv, bc = float(x.mean()), float(x.var()), x.numel()
        d, tot = bm - self.mean, self.count + bc
        var = (self.var * self.count + bv * bc + d * d * self.count * bc / tot) / tot
        self.mean, self.var, self.count = self.mean + d * bc / tot, var, tot

    std = property(lambda self: math.sqrt(self.var) + 1e-8)


class Curriculum:
    """Path 1 first, the next path once the set has completed ceil(E / n) episodes (spec §6); never path 0."""

    def __init__(self, num_paths: int, episodes: int = 100, enabled: bool = True):
        self.max_paths, self.episodes, self.completed = num_paths - 1, episodes, 0
        self.n = 1 if enabled else self.max_paths

    paths = property(lambda self: list(range(1, self.n + 1)))  # the training paths in use
    needed = property(lambda self: math.ceil(self.episodes / self.n))  # completed episodes before the next path

    def record(self, completed_episodes: int) -> bool:  # True when a path was added
        if self.n < self.max_paths:
            self.completed += completed_episodes
            if self.completed >= self.needed:
                self.n, self.completed = self.n + 1, 0
                return True
        return False

    state_dict = lambda self: {"n": self.n, "completed": self.completed}  # noqa: E731
    load_state_dict = lambda self, d: self.__dict__.update(n=d["n"], completed=d["completed"])  # noqa: E731


# ---- Evaluation on the held-out path 0 (deterministic policy, whole path) -------------------------
class Evaluator:
    """Holds a 1-env copy of the environment on path 0 and the baselines there."""

    def __init__(self, cfg: Config, data, device):
        self.cfg, self.data = cfg, data
        self.env = EnKFVecEnv(cfg, data, 1, device=device, seed=0, scoring=False)
        # the reference: the best tuned filter on file, else the data filter at a given teacher inflation, else tuned here
        best, radius = best_setting(cfg), cfg.loc_radius if cfg.data_filter == "letkf" else None
        given = Setting(cfg.data_filter, cfg.teacher_inflation, radius=radius) if cfg.teacher_inflation > 0 else None
        self.best = best[0] if best is not None else given or tuned_setting(cfg)
        self.base = path_baselines(cfg, data, 0, self.env.fc, obs_setup(cfg)[0], best=self.best, adaptive=True)

    def __call__(self, agent: Agent, folder: Path, title: str, step: int | None = None) -> dict:
        was_training, _ = agent.training, agent.eval()
        r = rollout_paths(agent, self.env, [0])
        agent.train(was_training)
        n = int(r["survived"][0])
        k = n if n == self.env.T else n + 1  # the series cut at the halt, keeping the cycle that halted
        res = dict(rmse=r["rmse"][0, :k], spread=r["spread"][0, :k], mean=r["mean"][:k], survived=n)
        return write_report(self.cfg, folder, res, self.base, self.data.truth[0].numpy(),
                            self.data.xa[0].mean(1).numpy(), title, step)  # fmt: skip


# ---- Checkpoints and run folders ------------------------------------------------------------------
ARCH_FIELDS = ("agents", "policy", "features", "temporal_window", "hidden", "kernel", "lstm_hidden", "lstm_layers",
               "anomaly_gate", "innovation_gate", "innovation_reach", "gain_gate", "member_mix", "action", "bound")  # fmt: skip
AGENT_ENV_FIELDS = ("agent_inflation", "rtps", "inflation_adapt", "inflation_adapt_max", "inflation_adapt_scale",
                    "spread_adapt", "gain_radius", "rotate")  # action -> xa  # fmt: skip


def load_checkpoint(path, device="cpu", flag: str = "--checkpoint", cfg: Config | None = None) -> dict:
    """A checkpoint (training or pretrained): a dict with at least agent, config and normalization; any unreadable file
    is one clear ConfigError. With cfg, the architecture must match (a field newer than the file: its default)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{flag}: {p} not found")
    try:
        st = torch.load(p, map_location=device, weights_only=False)
        missing = [k for k in ("agent", "config", "normalization") if k not in st]
    except Exception as e:  # noqa: BLE001 - a bad file of any kind is one clear error
        raise ConfigError(f"{flag}: {p} is not a readable checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
    if missing:
        raise ConfigError(f"{flag}: {p} is not an agent checkpoint (missing: {', '.join(missing)})")
    st["config"] = LEGACY | st["config"]  # a field newer than the file: the value that reproduces its agent
    old = {k: st["config"].get(k, getattr(Config(), k)) for k in ARCH_FIELDS} if cfg is not None else {}
    if diff := [f"{k}={v!r}" for k, v in old.items() if v != getattr(cfg, k)]:
        raise ConfigError(f"{flag}: {path} has a different architecture ({', '.join(diff)}); pass the same values")
    return st


def run_folder(cfg: Config, args: Args) -> Path:
    root = LOGS_ROOT / cfg.name / "runs"
    if args.run_name:
        return root / args.run_name
    if args.resume:
        runs = sorted((p for p in root.glob("*") if (p / "checkpoints" / "latest.pt").is_file()),
                      key=lambda p: p.stat().st_mtime)  # fmt: skip
        if not runs:
            raise ConfigError(f"--resume: no run of {cfg.name} with a checkpoint under {root}")
        return runs[-1]
    return root / f"{cfg.name}__s{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


# ---- Training: per iteration imitate (warm start) or rollout, ppo_update, log_iteration; then after_iteration ----
RESUMABLE = ("total_timesteps", "eval_interval", "checkpoint_interval", "torch_threads", "compile")  # may change
EVAL_KEYS = ("agent_rmse", "ratio", "ratio_to_best", "agent_spread", "spread_over_rmse", "cycles_survived")
INFO_STATS = ("ensemble_reward", "rmse_truth", "rmse_enkf", "spread")  # env infos averaged over the rollout


class Run:
    """A run's state (new, --init-from or --resume) shared by the phases: its objects (env, agent, optimizer, writer,
    ...), counters, the env's next_obs (B, M, C, N) and next_done (B,), the LSTM state, rollout buffers buf (S, B)."""

    def __init__(self, cfg: Config, args: Args, on_eval=None):
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        self.args, self.on_eval, self.device = args, on_eval, torch.device(args.device)
        self.cfg = cfg = resolve(cfg)  # the effective teacher / agent inflations (tuned values from configs/tuned/)
        self.folder = run_folder(cfg, args)
        data = ensure_data(cfg, Path(args.data_dir) if args.data_dir else None)
        init = None
        if args.init_from and not args.resume:
            init = load_checkpoint(args.init_from, self.device, "--init-from", cfg)
            data = dataclasses.replace(data, norm=Normalizer.from_dict(init["normalization"]))  # the agent's own scales
        if data.truth.shape[0] < 2:
            raise ConfigError(f"{args.config}: field 'num_paths' must be >= 2 for training (path 0 is held out)")
        self.cfg = cfg = choose_from_data(cfg, data, self.device, args.progress and not args.resume)  # enkf.gain
        for seed_all in (random.seed, np.random.seed, torch.manual_seed):
            seed_all(cfg.seed)
        self.data, S, B, self.use_critic = data, cfg.num_steps, cfg.num_envs, cfg.advantage == "gae"
        self.grain = "member" if cfg.agents == "per-member" else cfg.reward_grain  # who gets a reward and a PPO ratio
        self.env = env = EnKFVecEnv(cfg, data, B, device=self.device, seed=cfg.seed)
        self.agent = Agent(cfg, env.C, env.M, env.N).to(self.device)
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=cfg.learning_rate, eps=1e-5)
        self.curriculum = Curriculum(data.truth.shape[0], cfg.curriculum_episodes, cfg.curriculum)
        self.value_rms, self.num_iterations = RunningMeanStd(), max(1, cfg.total_timesteps // (B * S))
        # elapsed0: training seconds before this invocation (resume)
        self.global_step, self.iteration, self.best, self.elapsed0 = 0, 0, {"agent_rmse": float("inf")}, 0.0
        sized = [at_size(cfg, data, m, log=args.progress and not args.resume) for m in cfg.mix_size_list]
        envs = [env, *(EnKFVecEnv(c, d, B, device=self.device, seed=cfg.seed + 100 * k, forecaster=env.fc)
                       for k, (c, d) in enumerate(sized, 1))]  # fmt: skip
        self.slots, self.cur = [self.slot(e) for e in envs], 0  # mix_sizes: an env per size, used in turn (use)
        self.__dict__.update(self.slots[0])
        if args.resume:
            self.load(self.folder / "checkpoints" / "latest.pt")
        elif init is not None:
            self.agent.load_state_dict(init["agent"])
            print(f"[init] weights from {args.init_from} (trained on {init['config'].get('name')}, "
                  f"step {init.get('global_step')})", file=sys.stderr)  # fmt: skip
        io.write_json(self.folder / "config.json", cfg.to_dict())
        self.writer = SummaryWriter(str(self.folder), purge_step=self.global_step + 1 if args.resume else None)
        if not args.resume:
            table = "\n".join(f"|{k}|{v}|" for k, v in cfg.to_dict().items())
            self.writer.add_text("config", "|field|value|\n|-|-|\n" + table)
        self.evaluator = Evaluator(cfg, data, self.device)
        self.teacher = make_teacher(cfg, env, self.evaluator.best) if cfg.imitation_fraction > 0 else None
        self.t_start, self.last_print, self.step0, self.it0 = time.time(), 0.0, self.global_step, self.iteration
        due = lambda every: (self.global_step // every + 1) * every if every else None  # noqa: E731
        self.next_eval, self.next_ckpt = due(cfg.eval_interval), due(cfg.checkpoint_interval)
        self.recent_rmse, self.skipped, self.pruned, self.stop = [], 0, False, False  # stop: signal, --stop-after

    def slot(self, env: EnKFVecEnv) -> dict:  # an ensemble size's env, rollout buffers buf (S, B), next_obs, LSTM state
        S, B, M, N, dev = self.cfg.num_steps, env.B, env.M, env.N, self.device
        env.set_paths(self.curriculum.paths)  # before its first reset
        zeros = lambda *shape: torch.zeros((S, B, *shape), device=dev)
        buf = {k: zeros(M, N) for k in ("act", "logp", "rew", "val", "base")} | {"obs": zeros(M, env.C, N)}
        buf["done"] = zeros()
        if self.cfg.rollout_pool and self.agent.mix:  # the member pool of every rollout step, for the update
            buf["pool"] = zeros(1, self.cfg.hidden, 1 if self.agent.kind == "dense" else N)
        return dict(env=env, buf=buf, next_obs=env.reset(), next_done=torch.ones(B, device=dev),
                    lstm_state=self.agent.initial_state(B, dev, M))  # fmt: skip

    def use(self, k: int) -> None:
        """Make slot k (0: N_ens, then mix_sizes) the run's env, buffers and state; agent.M follows (its state shapes)."""
        self.slots[self.cur] = {a: getattr(self, a) for a in self.slots[self.cur]}
        self.__dict__.update(self.slots[k])
        self.cur, self.agent.M = k, self.env.M
        self.env.set_paths(self.curriculum.paths)

    def load(self, ck: Path) -> None:
        """Resume from a training checkpoint (with the RNG states: the run continues as if uninterrupted)."""
        if not ck.is_file():
            raise ConfigError(f"--resume: {ck} not found")
        st = torch.load(ck, map_location=self.device, weights_only=False)
        old = LEGACY | st["config"]  # a field newer than the checkpoint: the value it was made with
        if diff := [k for k, v in old.items() if k not in RESUMABLE and getattr(self.cfg, k, None) != v]:
            raise ConfigError(f"--resume: {ck} was made with a different config (fields: {', '.join(diff)})")
        for k in ("agent", "optimizer", "curriculum", "env"):
            getattr(self, k).load_state_dict(st[k])
        self.value_rms.__dict__.update(st["value_rms"])
        self.global_step, self.iteration, self.best = st["global_step"], st["iteration"], st["best"]
        self.elapsed0 = st.get("elapsed", 0.0)
        self.next_obs, self.next_done = st["next_obs"].to(self.device), st["next_done"].to(self.device)
        self.lstm_state = tuple(s.to(self.device) for s in st["lstm_state"])
        for slot, saved in zip(self.slots[1:], st.get("slots", []), strict=True):  # mix_sizes (equal: checked above)
            slot["env"].load_state_dict(saved.pop("env"))
            slot.update(saved, lstm_state=tuple(saved["lstm_state"]))
        torch.set_rng_state(st["rng"]["torch"])
        np.random.set_state(st["rng"]["numpy"])
        random.setstate(st["rng"]["python"])
        print(f"[resume] {self.folder.name}: step {self.global_step}, iteration {self.iteration}, curriculum "
              f"{self.curriculum.n} paths", file=sys.stderr)  # fmt: skip

    def checkpoint(self, name: str = "latest.pt") -> None:  # written atomically
        self.use(0)
        self.writer.flush()  # every logged step up to the checkpoint is on disk: a resume continues without a gap
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
        buf = _io.BytesIO()
        torch.save(dict(agent=self.agent.state_dict(), optimizer=self.optimizer.state_dict(),
                        curriculum=self.curriculum.state_dict(), env=self.env.state_dict(),
                        value_rms=dict(self.value_rms.__dict__), global_step=self.global_step, iteration=self.iteration,
                        best=self.best, next_obs=self.next_obs.cpu(), next_done=self.next_done.cpu(),
                        lstm_state=tuple(s.cpu() for s in self.lstm_state), rng=rng, config=self.cfg.to_dict(),
                        normalization=self.data.norm.to_dict(), elapsed=self.elapsed0 + time.time() - self.t_start,
                        slots=[{k: v.state_dict() if k == "env" else v for k, v in s.items() if k != "buf"}
                               for s in self.slots[1:]]),
                   buf)  # fmt: skip
        io.write_bytes(self.folder / "checkpoints" / name, buf.getvalue())

    def progress(self, line: str) -> None:  # one progress line every ~20 s
        if self.args.progress and time.time() - self.last_print > 20:
            self.last_print = time.time()
            print(line, file=sys.stderr)


def evaluate(r: Run, final: bool = False) -> dict:
    """Evaluate on path 0 (report in eval/), log it, and keep best.pt (the lowest RMSE of a whole-path survival)."""
    import matplotlib.image as mpimg

    step, folder = r.global_step, r.folder / "eval" / ("final" if final else f"step_{r.global_step:09d}")
    s = r.evaluator(r.agent, folder, f"{r.cfg.name} agent", step)
    for k in EVAL_KEYS:
        r.writer.add_scalar(f"eval/{k}", s[k], step)
    rec = {k: s[k] for k in (*EVAL_KEYS, "enkf_rmse", "best_filter_rmse", "best_filter")}  # the learning curve
    rec.update(step=step, seconds=round(r.elapsed0 + time.time() - r.t_start, 1), final=final)
    with open(r.folder / "evals.jsonl", "a") as fh:
        fh.write(json.dumps(rec, default=float) + "\n")
    for name, p in s["figures"].items():
        img = mpimg.imread(p)
        r.writer.add_image(f"eval/{name}", img[..., :3] if img.shape[-1] == 4 else img, step, dataformats="HWC")
    if s["cycles_survived"] == s["cycles"] and s["agent_rmse"] < r.best["agent_rmse"]:
        r.best = {k: v for k, v in s.items() if k != "figures"} | {"step": step}
        r.checkpoint("best.pt")
    return s


def after_iteration(r: Run) -> bool:
    """Checkpoint and evaluate when due; True when the tuner's pruning asks to stop."""
    if r.next_ckpt is not None and r.global_step >= r.next_ckpt:
        r.checkpoint()
        r.next_ckpt += r.cfg.checkpoint_interval
    if r.next_eval is not None and r.global_step >= r.next_eval:
        s = evaluate(r)
        r.next_eval += r.cfg.eval_interval
        r.pruned = r.on_eval is not None and bool(r.on_eval(r.global_step, s))
        if r.args.progress and not r.pruned:
            print(f"[eval] step {r.global_step}: agent RMSE {s['agent_rmse']:.4f} (ratio {s['ratio']:.3f}, "
                  f"spread/RMSE {s['spread_over_rmse']:.2f}, survived {s['cycles_survived']})", file=sys.stderr)  # fmt: skip
    return r.pruned


def make_teacher(cfg: Config, env: EnKFVecEnv, best: Setting):
    """The imitation target: the best tuned filter's analysis (B, M, N) of the agent's prior env.Eb (its inflation over
    agent_inflation, which env.Eb carries already); no rotation: member i's target is the analysis of member i."""
    obs, r = obs_setup(cfg)
    radius = cfg.loc_radius if best.radius is None else best.radius
    an = make_analysis(best.method, obs, r, best.inflation / env.agent_infl, radius, cfg.periodic,
                       torch.Generator().manual_seed(cfg.seed + 2), best.post_inflation, best.rtps, False)  # fmt: skip
    return lambda: an(env.prior_as_fixed(), env.y[env.path, env.t])


def imitate(r: Run, frac: float) -> None:
    """A warm-start iteration imitating the best tuned filter (DAgger): num_steps cycles of the agent's deterministic
    analysis on its own forecasts (with probability beta, 1 -> 0 over the warm start's first half, the teacher's), then
    update_epochs x num_minibatches regression steps (whole env sequences, every member) on the analysis error."""
    cfg, env, agent, B, t_roll = r.cfg, r.env, r.agent, r.env.B, time.time()
    beta = max(0.0, 1.0 - 2.0 * frac / cfg.imitation_fraction)  # the teacher's share
    state0, steps, infos = tuple(s.clone() for s in r.lstm_state), [], []  # steps: obs, done, prior, teacher's analysis
    with torch.no_grad():
        for _ in range(cfg.num_steps):
            mean, r.lstm_state = agent.actor_step(r.next_obs, r.lstm_state, r.next_done)
            steps.append((r.next_obs, r.next_done, env.Eb.clone(), r.teacher()))  # teacher: (B, M, N)
            if beta > 0:  # the teacher's analysis as an action (exact for the increment action without RTPS)
                a_t = (steps[-1][3] - env.Eb) / env.nc["increment"][1]
                mean = torch.where(torch.rand(B, 1, 1, device=mean.device) < beta, a_t, mean)
            res = env.step(mean)
            r.next_obs, r.next_done = res.obs, (res.terminated | res.truncated).float()
            infos.append(res)
    obs_b, done_b, eb_b, tgt_b = (torch.stack(x) for x in zip(*steps, strict=True))  # (S, B, ...)
    idx, mb_envs, losses = np.arange(B), B // cfg.num_minibatches, []
    for _ in range(cfg.update_epochs):
        np.random.shuffle(idx)
        for start in range(0, B, mb_envs):
            mb = torch.as_tensor(idx[start : start + mb_envs])
            mean, _ = agent.actor_sequence(obs_b[:, mb], agent.select_state(state0, mb), done_b[:, mb])  # (S, b, M, N)
            loss = (((env.analysis_from_action(mean, eb_b[:, mb]) - tgt_b[:, mb]) / env.nc["state"][1]) ** 2).mean()
            r.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
            r.optimizer.step()
            losses.append(loss.item())
    r.global_step += B * cfg.num_steps
    for res in infos:
        if cfg.curriculum and r.curriculum.record(int(res.truncated.sum())):
            env.set_paths(r.curriculum.paths)
    loss, gs, rmse = float(np.mean(losses)), r.global_step, [res.info["rmse_truth"].mean() for res in infos]
    for tag, v in (("imitation/loss", loss), ("imitation/teacher_share", beta), ("rmse/agent_vs_truth",
                   float(np.mean(rmse))), ("curriculum/num_paths", r.curriculum.n)):  # fmt: skip
        r.writer.add_scalar(tag, v, gs)
    r.progress(f"[imitate] step {gs} it {r.iteration} | loss {loss:.4f} | rmse {np.mean([float(x) for x in rmse]):.3f} "
               f"| paths {r.curriculum.n} | {time.time() - t_roll:.2f}s")  # fmt: skip


@torch.no_grad()
def rollout(r: Run) -> dict:
    """num_steps steps of the sampled policy in every env into r.buf (a truncated episode's last reward carries
    gamma * V(final obs)); returns the rollout's statistics and the LSTM state it started from."""
    cfg, env, agent, vr, buf, B = r.cfg, r.env, r.agent, r.value_rms, r.buf, r.env.B
    st = dict(state0=(r.lstm_state[0].clone(), r.lstm_state[1].clone()), t_env=0.0, t_roll=time.time())
    st.update((k, []) for k in ("ret", "len", "agent_r", "agent_rmse", *INFO_STATS))
    for step in range(cfg.num_steps):
        r.global_step += B
        buf["obs"][step], buf["done"][step] = r.next_obs, r.next_done
        mean, r.lstm_state = agent.actor_step(r.next_obs, r.lstm_state, r.next_done)
        if "pool" in buf:  # the member pool (B, 1, H, n), for the update (rollout_pool)
            buf["pool"][step] = agent.pool
        value = agent.get_value(r.next_obs) * vr.std + vr.mean if r.use_critic else 0.0
        log_std = agent.log_std()
        action = mean + torch.exp(log_std) * torch.randn_like(mean)
        buf["val"][step], buf["act"][step], buf["logp"][step] = value, action, normal_logprob(action, mean, log_std)
        t0 = time.time()
        res = env.step(action, mean)
        st["t_env"] += time.time() - t0
        buf["rew"][step] = res.reward
        if not r.use_critic:
            buf["base"][step] = res.info["reward_mean_action"]
        elif res.truncated.any():  # bootstrap the value of the final observation at truncation
            v_final = agent.get_value(res.info["final_obs"]) * vr.std + vr.mean
            buf["rew"][step] += cfg.gamma * v_final * res.truncated.view(-1, 1, 1).float()
        r.next_obs, r.next_done = res.obs, (res.terminated | res.truncated).float()
        for k in INFO_STATS:
            st[k].append(res.info[k].mean().item())
        if agent.per_member:  # (M,) per step: each agent's reward and member RMSE, mean over envs
            st["agent_r"].append(res.reward[:, :, 0].mean(0))
            st["agent_rmse"].append(res.info["member_rmse"].mean(0))
        finished = r.next_done.bool()
        st["ret"] += res.info["episode_return"][finished].tolist()
        st["len"] += res.info["episode_length"][finished].tolist()
        if finished.any() and cfg.curriculum and r.curriculum.record(int(res.truncated.sum())):  # truncated: completed
            env.set_paths(r.curriculum.paths)
    st["t_roll"] = time.time() - st["t_roll"]
    return st


def ppo_update(r: Run, state0) -> dict:
    """Advantages (GAE per cell, or self-critical), then update_epochs x num_minibatches clipped PPO steps on whole
    env sequences (the LSTM from the rollout's initial state state0), update_members members each."""
    cfg, agent, vr, buf, optimizer, B, M = r.cfg, r.agent, r.value_rms, r.buf, r.optimizer, r.env.B, r.env.M
    use_critic, grain, t_upd = r.use_critic, r.grain, time.time()
    with torch.no_grad():  # termination cuts the bootstrap; truncation is bootstrapped already
        if use_critic:
            next_value = agent.get_value(r.next_obs) * vr.std + vr.mean
            adv = compute_gae(buf["rew"], buf["val"], buf["done"], next_value, r.next_done, cfg.gamma, cfg.gae_lambda)
            returns = adv + buf["val"]
            if cfg.norm_value:
                vr.update(returns)
        else:  # self-critical: what the sample gained over the mean action, cell by cell
            adv, returns = buf["rew"] - buf["base"], buf["rew"]
        adv = pool(adv, grain)
    ret_n, old_v_n = (returns - vr.mean) / vr.std, (buf["val"] - vr.mean) / vr.std
    old_logp = agent_logprob(buf["logp"], grain)
    env_idx, mb_envs = np.arange(B), B // cfg.num_minibatches
    K = M if (cfg.update_members == 0 or agent.kind == "global" or grain == "ensemble") else cfg.update_members
    u = dict(returns=returns, clipfracs=[], approx_kl=torch.tensor(0.0), gnorms=[])
    for _epoch in range(cfg.update_epochs):
        np.random.shuffle(env_idx)
        for start in range(0, B, mb_envs):
            mb = torch.as_tensor(env_idx[start : start + mb_envs], device=r.device)
            # members are independent sequences of the shared local policy: an unbiased subset
            mm = torch.randperm(M, device=r.device)[:K] if K < M else slice(None)
            mb_obs, mb_act, mb_logp, mb_adv, mb_ret, mb_oldv = (  # (S, b, K, ...)
                x[:, mb][:, :, mm] for x in (buf["obs"], buf["act"], old_logp, adv, ret_n, old_v_n))  # fmt: skip
            # with member pooling the pooling layer sees every member (or the rollout's pool); only K of them act
            mb_pool = buf["pool"][:, mb].flatten(0, 1) if "pool" in buf else None  # (S*b, 1, H, n)
            cells = agent.select_state(state0, mb, mm)
            obs_in, members = (buf["obs"][:, mb], mm) if agent.mix and mb_pool is None else (mb_obs, None)
            mean, _ = agent.actor_sequence(obs_in, cells, buf["done"][:, mb], members, mb_pool)  # (S, b, K, N)
            log_std = agent.log_std()
            logratio = agent_logprob(normal_logprob(mb_act, mean, log_std), grain) - mb_logp
            ratio = logratio.exp()
            with torch.no_grad():
                u["approx_kl"] = ((ratio - 1) - logratio).mean()
                u["clipfracs"].append(((ratio - 1.0).abs() > cfg.clip_coef).float().mean().item())
            if cfg.norm_adv:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
            v_loss = torch.zeros(())
            if use_critic:
                newv = agent.get_value(mb_obs)  # (S, b, K, N)
                v_loss = (newv - mb_ret) ** 2
                if cfg.clip_vloss:
                    v_clipped = mb_oldv + (newv - mb_oldv).clamp(-cfg.clip_coef, cfg.clip_coef)
                    v_loss = torch.max(v_loss, (v_clipped - mb_ret) ** 2)
                v_loss = 0.5 * v_loss.mean()
            entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std) * torch.ones(())
            loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
            u.update(pg_loss=pg_loss, v_loss=v_loss, entropy=entropy)
            optimizer.zero_grad()
            if ok := bool(torch.isfinite(loss)):
                loss.backward()
                ok = bool(torch.isfinite(gn := nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)))
            if not ok:  # a non-finite loss or gradient: skip the step instead of poisoning the weights
                optimizer.zero_grad()
                r.skipped += 1
                print(f"[warn] iteration {r.iteration}: non-finite loss or gradient, skipped ({r.skipped})", file=sys.stderr)  # fmt: skip
                continue
            u["gnorms"].append(float(gn))
            optimizer.step()
        if cfg.target_kl and u["approx_kl"] > cfg.target_kl:
            break
    u["t_upd"] = time.time() - t_upd
    return u


def log_iteration(r: Run, lr: float, st: dict, u: dict) -> str:
    """TensorBoard scalars of one PPO iteration (and the user's old tags); returns its progress line."""
    y_pred, y_true = r.buf["val"].flatten(), u["returns"].flatten()  # no gradients: rollout data
    ev = float("nan") if (var_y := y_true.var()) == 0 else float(1 - (y_true - y_pred).var() / var_y)  # explained var.
    sps = int((r.global_step - r.step0) / max(time.time() - r.t_start, 1e-9))
    std, m = float(torch.exp(r.agent.log_std().detach())), {k: float(np.mean(st[k])) for k in INFO_STATS}
    tags = {"charts/learning_rate": lr, "reward/truth_weight": r.env.truth_weight, "charts/SPS": sps,
            **({"losses/value_loss": u["v_loss"].item(), "losses/explained_variance": ev} if r.use_critic else {}),
            "losses/policy_loss": u["pg_loss"].item(), "losses/entropy": u["entropy"].item(),
            "losses/approx_kl": u["approx_kl"].item(),
            "losses/clipfrac": float(np.mean(u["clipfracs"])) if u["clipfracs"] else 0.0,
            "losses/skipped_updates": r.skipped, "curriculum/num_paths": r.curriculum.n,
            "curriculum/current_level": r.curriculum.n, "rmse/agent_vs_truth": m["rmse_truth"],
            "rmse/agent_vs_enkf": m["rmse_enkf"], "rmse/agent_spread": m["spread"],
            "reward/ensemble_1_minus_rmse": m["ensemble_reward"]}  # fmt: skip
    for tag, v in (("reward", st["agent_r"]), ("rmse", st["agent_rmse"])) if st["agent_r"] else ():
        v = torch.stack(v).mean(0)  # per-agent statistics over the N_ens agents (time-mean over the rollout first)
        tags.update({f"agents/{tag}_mean": float(v.mean()), f"agents/{tag}_min": float(v.min()),
                     f"agents/{tag}_max": float(v.max())})  # fmt: skip
    lstm = [] if r.agent.lstm is None else [p.grad.norm() ** 2 for p in r.agent.lstm.parameters() if p.grad is not None]
    tags.update({"policy/action_std": std, "policy/action_std_mean": std,
                 "grad/norm": float(np.mean(u["gnorms"])) if u["gnorms"] else float("nan"),
                 **({"gradients/lstm_total_norm": float(sum(lstm) ** 0.5)} if r.agent.lstm is not None else {}),
                 "perf/rollout_s": st["t_roll"], "perf/env_s": st["t_env"], "perf/update_s": u["t_upd"]})  # fmt: skip
    if st["ret"]:
        ret, ln = float(np.mean(st["ret"])), float(np.mean(st["len"]))
        tags.update({"charts/episodic_return": ret, "charts/episodic_length": ln, "episode/reward": ret,
                     "episode/length": ln})  # fmt: skip
    r.recent_rmse = (r.recent_rmse + [m["rmse_truth"]])[-10:]  # last 10 iterations
    tags["episode/rmse_mean_10"] = float(np.mean(r.recent_rmse))
    for tag, v in tags.items():  # mix_sizes: another size's iterations under size<M>/
        r.writer.add_scalar(f"size{r.env.M}/{tag}" if r.cur else tag, v, r.global_step)
    return (f"[train] step {r.global_step} it {r.iteration}/{r.num_iterations} SPS {sps} | rmse {m['rmse_truth']:.3f} "
            f"spread {m['spread']:.3f} | std {std:.3f} kl {u['approx_kl'].item():.4f} ev {ev:.2f} | paths "
            f"{r.curriculum.n} | roll {st['t_roll']:.2f}s (env {st['t_env']:.2f}) upd {u['t_upd']:.2f}s")  # fmt: skip


def train(cfg: Config, args: Args, on_eval=None) -> dict:
    """Train (or resume) a run; returns the final summary. on_eval(step, summary) is called after each periodic
    evaluation; if it returns True, training stops there (the tuner's pruning)."""
    r = Run(cfg, args, on_eval)
    cfg, n_it = r.cfg, r.num_iterations

    def on_signal(signum, frame):  # the first SIGINT/SIGTERM: checkpoint after this iteration; the second: abort
        if r.stop:
            raise KeyboardInterrupt
        r.stop = True
        print(f"\n[signal {signum}] saving a checkpoint after this iteration (again to abort)", file=sys.stderr)

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while r.iteration < n_it and not r.stop:
            spent = r.elapsed0 + time.time() - r.t_start  # training seconds, over every invocation of the run
            if args.max_minutes and spent > 60 * args.max_minutes:
                break
            if args.stop_after and r.iteration - r.it0 >= args.stop_after:
                r.stop = True
                break
            r.iteration += 1
            frac = (r.iteration - 1.0) / n_it
            if args.max_minutes:  # a wall-clock budget: anneal over the budget (or the steps, whichever ends first)
                frac = max(frac, spent / (60 * args.max_minutes))
            lr = cfg.learning_rate * (1.0 - frac) if cfg.anneal_lr else cfg.learning_rate
            r.optimizer.param_groups[0]["lr"] = lr
            # curriculum from the teacher to the truth: the truth's weight in the reward grows over truth_ramp
            w = cfg.truth_weight * (min(1.0, frac / cfg.truth_ramp) if cfg.truth_ramp > 0 else 1.0)
            for sl in r.slots:  # every ensemble size's env
                sl["env"].truth_weight = w
            if frac < cfg.imitation_fraction:  # supervised warm start: imitate the best tuned filter (DAgger)
                imitate(r, frac)
                if after_iteration(r):
                    break
                continue
            r.use((r.iteration - 1) % len(r.slots))  # mix_sizes: the ensemble sizes in turn
            st = rollout(r)
            line = log_iteration(r, lr, st, ppo_update(r, st["state0"]))
            r.use(0)
            if after_iteration(r):
                break
            r.progress(line)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        r.checkpoint()
    final = evaluate(r, final=True) if not (r.stop or r.pruned) else None  # r.stop: interrupted
    r.checkpoint()
    r.writer.close()
    out, seconds = {k: v for k, v in (final or {}).items() if k != "figures"}, time.time() - r.t_start
    out.update(run=str(r.folder), steps=r.global_step, iterations=r.iteration, curriculum_paths=r.curriculum.n,
               seconds=round(seconds, 1), sps=int((r.global_step - r.step0) / max(seconds, 1e-9)),
               interrupted=r.stop, pruned=r.pruned, best=r.best)  # fmt: skip
    io.write_json(r.folder / "final.json", out)
    return out


def eval_only(cfg: Config, args: Args) -> dict:
    if not args.checkpoint:
        raise ConfigError("--eval-only needs --checkpoint PATH")
    ck, st = Path(args.checkpoint), load_checkpoint(args.checkpoint, args.device, "--checkpoint", cfg)
    cfg = dataclasses.replace(cfg, **{k: st["config"].get(k, getattr(cfg, k)) for k in AGENT_ENV_FIELDS},
                              teacher_inflation=st["config"].get("teacher_inflation") or cfg.teacher_inflation)  # fmt: skip
    data = ensure_data(cfg, Path(args.data_dir) if args.data_dir else None)
    data = dataclasses.replace(data, norm=Normalizer.from_dict(st["normalization"]))  # the agent's own scales
    env = EnKFVecEnv(cfg, data, 1, device=args.device)
    agent = Agent(cfg, env.C, env.M, env.N).to(args.device)
    agent.load_state_dict(st["agent"])
    root = ck.parent.parent / "eval" if ck.parent.name == "checkpoints" else LOGS_ROOT / cfg.name / "eval_only"
    folder = root / f"eval_only_{ck.stem}_{cfg.name}"
    s = Evaluator(cfg, data, args.device)(agent, folder, f"{cfg.name} agent ({ck.name})", st.get("global_step"))
    return {k: v for k, v in s.items() if k != "figures"} | {"folder": str(folder)}


def main(argv=None) -> int:
    try:
        cfg, args = parse_args(argv)
        out = eval_only(cfg, args) if args.eval_only else train(cfg, args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
