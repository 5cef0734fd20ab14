"""The RL environment (spec §6 in docs/design.md): the agent does the analysis step of an EnKF, batched over envs in torch.

`EnKFVecEnv` runs `num_envs` episodes at once, each on one stored path:
- state: the agent's own forecast ensemble Eb (B, M, N), the cycle t, the path p, a window of features;
- observation (B, M, C, N): for every member and grid point the normalized features of the last
  `temporal_window` steps (C = window x features), clipped to [-bound, bound];
- action (B, M, N) in [-bound, bound] (normalized): an increment (xa = xb + denorm_increment(a)) or the
  analysis itself (xa = denorm_state(a));
- continuity: the agent's analysis xa_rl, not the EnKF's, is integrated to the next forecast;
- reward (B, M, N): per cell `1 - score`, the score clipped to [-2, 2] (a CRPS contribution is negative where
  the member is closer to the target than to the others), in normalized units, against the configured
  target (online EAKF of the agent's own ensemble, the stored EnKF analysis, or the truth); pooled to the
  member or the whole ensemble when `reward_grain` says so; with `agents = per-member`, 1 - RMSE_i of each
  member over the grid (the user's multi-agent reward). The user's whole-ensemble `1 - RMSE` against
  the same target is returned in `info` as well;
- termination when the next forecast is non-finite or leaves [-bound, bound]; truncation after
  `episode_length` cycles (training) or at the end of the path. Envs reset automatically; the last
  observation of a finished episode is in `info["final_obs"]` for the value bootstrap.

`make_env(config_path, data_dir=None, **overrides)` returns a plain single-path `gymnasium.Env` (registered as
`EnKF-v0`) with numpy spaces, for SB3/RLlib users.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from configs.defaults import Config, load_config
from enkf import filters
from enkf.cycle import make_forecaster, obs_setup, rmse, spread
from enkf.data import PathData
from enkf.filters import ObsOp, adapt_inflation, adapt_relaxation, inflate, loc_weights, make_analysis


@dataclass
class StepResult:
    obs: torch.Tensor  # (B, M, C, N) next observation (first of a new episode where done)
    reward: torch.Tensor  # (B, M, N) per-cell reward (pooled over the grain)
    terminated: torch.Tensor  # (B,) bool: the forecast left the bounds / became non-finite
    truncated: torch.Tensor  # (B,) bool: the episode reached its end
    info: dict


class EnKFVecEnv:
    """Batched EnKF-analysis environment over stored paths (torch, CPU or CUDA)."""

    def __init__(self, cfg: Config, data: PathData, num_envs: int, device="cpu", seed: int = 0,
                 episode_length: int | None = None, compile: bool | None = None, forecaster=None,
                 scoring: bool = True):  # fmt: skip
        """scoring=False (evaluation): no reward and no teacher, only the dynamics and the diagnostics."""
        if cfg.agent_inflation == 0 or (scoring and cfg.teacher_inflation == 0):
            from enkf.tuned import resolve

            cfg = resolve(cfg)
        self.cfg, self.data, self.B, self.device = cfg, data, num_envs, torch.device(device)
        self.scoring = scoring
        self.truth_weight = cfg.truth_weight  # the trainer ramps it (truth_ramp)
        self.M, self.N = cfg.N_ens, cfg.N
        self.T = data.truth.shape[1]
        self.L = min(episode_length or cfg.episode_length, self.T)
        self.W = cfg.temporal_window
        self.features = cfg.feature_list
        self.F = len(self.features) + (1 if cfg.obs_stride > 1 else 0)  # + observed mask for partial obs
        self.agent_infl = cfg.agent_inflation
        # adaptive prior inflation (inflation_adapt > 0): lambda^2 per env, moved each cycle towards what the innovations
        # ask for; it starts at agent_inflation^2 with every episode
        self.adapt, self.adapt_max2 = cfg.inflation_adapt, cfg.inflation_adapt_max**2
        self.adapt_scale = cfg.inflation_adapt_scale or 1.0  # 0: not chosen yet (enkf.gain): the whole estimate
        self.relax = cfg.spread_adapt == "relax" and self.adapt > 0  # else prior inflation (auto: not chosen yet)
        # the teacher sees the raw forecast inflated by teacher_inflation; Eb already carries agent_inflation
        self.teacher_infl = (cfg.teacher_inflation or cfg.inflation) / self.agent_infl
        self.C = self.W * self.F
        self.bound = cfg.bound
        self.obs_op, self.r = obs_setup(cfg)
        self.teacher_an = make_analysis(cfg.data_filter, self.obs_op, self.r, self.teacher_infl, cfg.loc_radius,
                                        cfg.periodic, torch.Generator().manual_seed(seed + 1))  # fmt: skip
        self.fc = forecaster or make_forecaster(cfg, compile)
        self.gen = torch.Generator().manual_seed(seed)
        self.seed, self.rot_gen = seed, torch.Generator().manual_seed(seed + 2)  # rotate: the rotations' stream
        dev = self.device
        self.truth, self.y = data.truth.to(dev), data.obs.to(dev)  # (P, T, N), (P, T, p)
        self.xa_enkf = data.xa.to(dev)  # (P, T, M, N)
        self.xb_enkf = data.xb.to(dev)
        norm = data.norm
        self.nc = {q: (norm.stats[q].center, norm.stats[q].scale) for q in norm.stats}
        # kg features in increment units per normalized innovation: kg_k(j) * innov_i(j + k) summed over k is the
        # normalized increment K d_i, so a gain gate of 1 applies the prior's Kalman gain exactly
        self.kg_scale = self.nc["innovation"][1] / self.nc["increment"][1]
        self.sr_scale = self.nc["anomaly"][1] / self.nc["increment"][1]  # kgsr * anom_i: a normalized increment
        gr = cfg.gain_radius or cfg.loc_radius  # rho (N, N): the Gaspari-Cohn taper between grid points
        self.rho = loc_weights(ObsOp(self.N), self.N, gr, cfg.periodic) if gr < 1e6 else torch.ones(self.N, self.N)
        self.rho = self.rho.float().to(dev)
        self.mask = torch.zeros(self.N, device=dev)
        self.mask[self.obs_op.idx] = 1.0
        self.paths = torch.tensor([1 if data.truth.shape[0] > 1 else 0])
        # per-env state
        self.path = torch.zeros(self.B, dtype=torch.long, device=dev)
        self.t = torch.zeros(self.B, dtype=torch.long, device=dev)  # current cycle (its forecast is Eb)
        self.t_end = torch.zeros(self.B, dtype=torch.long, device=dev)
        self.Eb = torch.zeros(self.B, self.M, self.N, device=dev)
        self.lam2 = torch.full((self.B,), self.agent_infl**2, device=dev)  # (B,) the agent's prior inflation squared
        self.alpha = torch.zeros(self.B, device=dev)  # (B,) the relaxation to prior spread (spread_adapt relax)
        self.xa_prev = torch.zeros_like(self.Eb)
        self.dxa = torch.zeros_like(self.Eb)
        self.window = torch.zeros(self.B, self.W, self.M, self.F, self.N, device=dev)
        self.ep_return = torch.zeros(self.B, device=dev)
        self.ep_len = torch.zeros(self.B, dtype=torch.long, device=dev)

    # ---------------------------------------------------------------------------------------------
    def norm(self, q: str, x):
        c, s = self.nc[q]
        return (x - c) / s

    def set_paths(self, paths) -> None:
        """The set of paths that reset draws from (the curriculum)."""
        self.paths = torch.as_tensor(list(paths), dtype=torch.long)

    def _features(self, ids: torch.Tensor) -> torch.Tensor:
        """Normalized features (n, M, F, N) of envs `ids` at their current cycle."""
        Eb = self.Eb[ids]  # (n, M, N)
        p, t = self.path[ids], self.t[ids]
        y = self.y[p, t]  # (n, p_obs)
        y_grid = torch.zeros(len(ids), self.N, device=self.device)
        y_grid[:, self.obs_op.idx] = y
        mean = Eb.mean(1, keepdim=True)  # (n, 1, N)
        A = Eb - mean  # (n, M, N) anomalies
        sd = Eb.std(1, keepdim=True)  # (n, 1, N)
        out, K, Sr = [], None, None
        for f in self.features:
            if f == "xb":
                v = self.norm("state", Eb)
            elif f == "y":
                v = (self.norm("obs", y_grid) * self.mask).unsqueeze(1).expand_as(Eb)
            elif f == "innov":
                v = self.norm("innovation", y_grid.unsqueeze(1) - Eb) * self.mask
            elif f == "mean":
                v = self.norm("state", mean).expand_as(Eb)
            elif f == "spread":
                v = self.norm("spread", sd).expand_as(Eb)
            elif f == "anom":
                v = self.norm("anomaly", A)
            elif f.startswith("corr"):  # correlation across members of x_j and x_{j+k} (periodic grid)
                k = int(f[4:])
                c = (A * A.roll(-k, -1)).sum(1, keepdim=True) / (self.M - 1)  # (n, 1, N)
                v = (c / (sd * sd.roll(-k, -1)).clamp_min(1e-12)).expand_as(Eb)
            elif (
                f == "kgsr"
            ):  # the square-root correction of the anomaly at j: K_jj + sqrt(1 - K_jj) - 1 (0 unobserved)
                K = self._gain_rows(A) if K is None else K
                kjj = (K[:, :, 0] * self.mask).clamp(0.0, 1.0)  # (n, N)
                v = ((kjj + (1 - kjj).sqrt() - 1) * self.sr_scale).unsqueeze(1).expand_as(Eb)
            elif f[:2] in ("kg", "sr"):  # row j of K (kg) or of S - I + K H (sr) at j + k, of the prior (no obs values)
                K = self._gain_rows(A) if K is None and f[:2] == "kg" else K  # (n, N, N): K[:, j, j + k mod N]
                Sr = self._gain_rows(A, root=True) if Sr is None and f[:2] == "sr" else Sr
                G, k, scale = (K, int(f[2:]), self.kg_scale) if f[:2] == "kg" else (Sr, int(f[2:]), self.sr_scale)
                keep = -((self.N - 1) // 2) <= k <= self.N // 2  # each column once: a wrapped offset repeats one
                v = G[:, :, k % self.N].unsqueeze(1).expand_as(Eb) * scale if keep else torch.zeros_like(Eb)
            elif f == "gain":  # scalar Kalman gain of the forecast spread at observed points
                v = (sd**2 / (sd**2 + self.r) * self.mask).expand_as(Eb)
            elif f == "xa_prev":
                v = self.norm("state", self.xa_prev[ids])
            else:  # dxa
                v = self.norm("increment", self.dxa[ids])
            out.append(v)
        if self.F > len(self.features):
            out.append(self.mask.expand_as(Eb))
        return torch.stack(out, 2).clamp(-self.bound, self.bound)  # (n, M, F, N)

    def _gain_rows(self, A: torch.Tensor, root: bool = False) -> torch.Tensor:
        """The ensemble Kalman gain (localized by rho, gain_radius) of anomalies A (n, M, N) as rows over offsets: G (n, N, N)
        with G[:, j, k] = K[j, column of the observation at grid point (j + k) mod N], 0 where that point is not observed;
        root: the rows of S - I + K H instead (S the square-root transform of the anomalies, filters.gain_and_root)."""
        n, M, N = A.shape
        KH, S = filters.gain_and_root(A, self.rho, self.obs_op.idx.to(A.device), self.r, root)
        full = S - torch.eye(N, device=A.device, dtype=A.dtype) + KH if root else KH
        j = torch.arange(N, device=A.device)
        cols = (j.view(N, 1) + j.view(1, N)) % N  # (N, N): column (j + k) mod N
        return full.gather(2, cols.expand(n, N, N))

    def _obs(self) -> torch.Tensor:
        return self.window.permute(0, 2, 1, 3, 4).reshape(self.B, self.M, self.C, self.N)  # (B, M, C, N)

    def _reset_ids(self, ids: torch.Tensor, start: torch.Tensor | None = None, path: torch.Tensor | None = None):
        """Start new episodes in envs `ids` at random cycles of random curriculum paths (or the given ones)."""
        n = len(ids)
        if n == 0:
            return
        if path is None:
            path = self.paths[torch.randint(len(self.paths), (n,), generator=self.gen)].to(self.device)
        if start is None:
            # training segments end before the last cycle, so the bootstrap observation exists
            start = torch.randint(max(1, self.T - self.L), (n,), generator=self.gen).to(self.device)
        self.path[ids], self.t[ids] = path, start
        self.t_end[ids] = torch.clamp(start + self.L, max=self.T)
        self.lam2[ids], self.alpha[ids] = self.agent_infl**2, 0.0
        self.Eb[ids] = self.prior(self.xb_enkf[path, start], self.y[path, start], ids)  # the stored EnKF background
        prev = torch.clamp(start - 1, min=0)
        self.xa_prev[ids] = torch.where((start > 0).view(-1, 1, 1), self.xa_enkf[path, prev], self.Eb[ids])
        self.dxa[ids] = 0.0
        self.ep_return[ids] = 0.0
        self.ep_len[ids] = 0
        f = self._features(ids)  # (n, M, F, N)
        self.window[ids] = f.unsqueeze(1).expand(-1, self.W, -1, -1, -1)  # window pre-filled with the first step

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self.gen.manual_seed(seed)
            self.rot_gen.manual_seed(seed + 2)
        self._reset_ids(torch.arange(self.B, device=self.device))
        return self._obs()

    def reset_to(self, path, start: int = 0, length: int | None = None) -> torch.Tensor:
        """Evaluation: all envs start on `path` (an int, or one path per env) at cycle `start`; episodes run
        `length` cycles (default: to the end of the path)."""
        ids = torch.arange(self.B, device=self.device)
        paths = torch.as_tensor(path, dtype=torch.long, device=self.device).expand(self.B).clone()
        L = self.L
        self.L = (self.T - start) if length is None else length
        self._reset_ids(ids, start=torch.full((self.B,), start, device=self.device), path=paths)
        self.L = L
        self.rot_gen.manual_seed(self.seed + 2)  # every evaluation sees the same rotations
        return self._obs()

    # ---------------------------------------------------------------------------------------------
    def prior(self, Eb: torch.Tensor, y: torch.Tensor | None = None, ids: torch.Tensor | None = None) -> torch.Tensor:
        """The agent's prior ensemble from the forecast Eb (n, M, N) of envs ids (default: all): its anomalies
        inflated by agent_inflation, or with inflation_adapt > 0 by each env's adaptive factor, which first moves
        inflation_adapt of the way (in lambda^2) towards the innovation estimate of the observations y (n, p) about to
        be assimilated, clipped to [1, inflation_adapt_max^2], of which inflation_adapt_scale of the excess over 1
        counts. The estimate uses the forecast and the observations only, as a filter would at analysis time. With
        spread_adapt relax the prior is the forecast itself and the estimate moves each env's relaxation alpha."""
        ids = slice(None) if ids is None else ids
        if self.relax:
            if y is not None:
                self.alpha[ids] = adapt_relaxation(self.alpha[ids], Eb, y, self.obs_op, self.r, self.adapt,
                                                   self.adapt_max2)  # fmt: skip
            return Eb
        if self.adapt == 0:
            return Eb if self.agent_infl == 1 else inflate(Eb, self.agent_infl)
        if y is None:  # no observation: the env's current factor
            return inflate(Eb, self.lam2[ids].sqrt())
        self.lam2[ids] = adapt_inflation(self.lam2[ids], Eb, y, self.obs_op, self.r, self.adapt, self.adapt_max2,
                                         self.adapt_scale)  # fmt: skip
        return inflate(Eb, self.lam2[ids].sqrt())

    def prior_as_fixed(self) -> torch.Tensor:
        """The current prior as agent_inflation would have made it (the teachers divide their inflation by it)."""
        if self.relax:
            return inflate(self.Eb, self.agent_infl)
        return self.Eb if self.adapt == 0 else inflate(self.Eb, self.agent_infl / self.lam2.sqrt())

    def analysis_from_action(self, action: torch.Tensor, Eb: torch.Tensor | None = None, ref=None,
                             relax: bool = True) -> torch.Tensor:  # fmt: skip
        """Unnormalize the action into the agent's analysis xa_rl (..., M, N) (the only unnormalization) of the
        prior Eb (default: the envs' current one); with relax its anomalies are relaxed towards the prior spread, grid
        point by grid point, by rtps and (spread_adapt relax, the envs' own prior only) each env's adaptive alpha; with
        ref (an action, the deterministic one) the relaxation of ref's analysis is applied to each member of this one."""
        own = Eb is None  # the envs' own prior: their adaptive relaxation applies
        Eb = self.Eb if own else Eb
        un = lambda a: Eb + a.clamp(-self.bound, self.bound) * self.nc["increment"][1]  # noqa: E731
        c, s = self.nc["state"]
        xa = un(action) if self.cfg.action == "increment" else action.clamp(-self.bound, self.bound) * s + c
        if relax and (self.cfg.rtps > 0 or (self.relax and own)):
            xr = None if ref is None or self.cfg.action != "increment" else un(ref)
            xa = filters.relax_to_prior_spread(xa, Eb, self.cfg.rtps + (self.alpha if self.relax and own else 0.0), xr)
        return xa

    def teacher(self) -> torch.Tensor:
        """Reward target (B, M, N) or (B, 1, N) for the current cycle."""
        p, t = self.path, self.t
        if self.cfg.reward_target == "online":  # the data filter (EAKF, or the LETKF with its localization)
            return self.teacher_an(self.prior_as_fixed(), self.y[p, t])
        if self.cfg.reward_target == "precomputed":
            return self.xa_enkf[p, t]
        return self.truth[p, t].unsqueeze(1)

    def reward(self, xa: torch.Tensor, target: torch.Tensor, xa_others: torch.Tensor | None = None):
        """Per-cell reward (B, M, N) and the user's whole-ensemble 1 - RMSE (B,), both in normalized space.

        xa (B, M, N) is scored cell by cell. If xa_others is given (the deterministic analysis), member i's
        ensemble terms (CRPS spread term, anchor mean) use xa_i with the other members at xa_others, so
        each cell-agent is scored against the others' deterministic play, not their exploration noise.
        With truth_weight w > 0 the score is (1 - w) * score(teacher) + w * score(truth)."""
        w = self.truth_weight if self.cfg.reward_target != "truth" else 0.0
        r, ens_r = self._reward(xa, target, xa_others)
        if w > 0:
            r_t, _ = self._reward(xa, self.truth[self.path, self.t].unsqueeze(1), xa_others)
            r = (1 - w) * r + w * r_t
        return r, ens_r

    def _reward(self, xa: torch.Tensor, target: torch.Tensor, xa_others: torch.Tensor | None = None):
        s = self.nc["state"][1]
        z, zt = xa / s, target / s  # differences of normalized states (centers cancel)
        zo = z if xa_others is None else xa_others / s
        M = z.shape[1]
        ens_rmse = ((zo - zt) ** 2).mean((1, 2)).sqrt()
        if self.cfg.agents == "per-member":  # the user's multi-agent reward: 1 - RMSE_i of member i over the grid
            r = (1.0 - ((z - zt) ** 2).mean(-1, keepdim=True).sqrt()).clamp(-1.0, 1.0)  # (B, M, 1)
            return r.expand_as(z), (1.0 - ens_rmse).clamp(-1.0, 1.0)
        if self.cfg.reward_form == "abs":
            score = (z - zt).abs()  # (B, M, N) (target broadcasts over members for truth)
        else:  # fair CRPS contribution of member i against the target ensemble (or the truth)
            to_target = (z.unsqueeze(2) - zt.unsqueeze(1)).abs().mean(2)  # (B, M, N)
            pair = (z.unsqueeze(2) - zo.unsqueeze(1)).abs()  # (B, M_i, M_j, N)
            pair = pair * (1.0 - torch.eye(M, device=z.device)).view(1, M, M, 1)  # j != i
            # member i moves both (i, j) and (j, i) of the pair sum: its marginal effect on the ensemble CRPS
            score = to_target - pair.sum(2) / (M - 1)
        mean_i = zo.mean(1, keepdim=True) + (z - zo) / M  # ensemble mean with member i's own analysis
        if self.cfg.spread_weight > 0 and zt.shape[1] > 1:
            # each member keeps the teacher member's distance from the ensemble mean (counters the shrinking
            # of anomalies that a member-wise error alone causes: regression to the mean)
            dist = (z - mean_i).abs()
            dist_t = (zt - zt.mean(1, keepdim=True)).abs()
            score = score + self.cfg.spread_weight * (dist - dist_t).abs()
        if self.cfg.anchor_weight > 0:
            w = self.cfg.anchor_weight
            anchor = (mean_i - self.xa_enkf[self.path, self.t].mean(1, keepdim=True) / s).abs()
            score = (1 - w) * score + w * anchor
        r = 1.0 - score.clamp(-2.0, 2.0)  # a CRPS contribution is negative where the member beats its spread
        if self.cfg.reward_grain == "member":
            r = r.mean(2, keepdim=True).expand_as(r)
        elif self.cfg.reward_grain == "ensemble":
            r = r.mean((1, 2), keepdim=True).expand_as(r)
        return r, (1.0 - ens_rmse).clamp(-1.0, 1.0)

    def step(self, action: torch.Tensor, mean_action: torch.Tensor | None = None) -> StepResult:
        """action (B, M, N) in normalized units. If mean_action is given (the policy's deterministic action)
        and explore_in_dynamics is off, the deterministic analysis is what gets integrated and the sampled
        action only enters the reward (see Config.explore_in_dynamics)."""
        p, t = self.path, self.t
        det = mean_action is not None and not self.cfg.explore_in_dynamics and self.scoring
        # spread_adapt relax: the relaxation follows the analysis, as a filter's RTPS; the agent is scored before it
        xa_sample = self.analysis_from_action(action, ref=mean_action if det else None, relax=not (det and self.relax))
        r_det = None
        if not self.scoring:
            xa = xa_sample
            r, ens_r = torch.zeros_like(xa), torch.zeros(self.B, device=self.device)
        elif det:
            target, xa = self.teacher(), self.analysis_from_action(mean_action, relax=not self.relax)
            r, ens_r = self.reward(xa_sample, target, xa_others=xa)
            r_det = self.reward(xa, target)[0]  # the deterministic analysis' own reward (self-critical baseline)
            xa = self.analysis_from_action(mean_action) if self.relax else xa  # relaxed: what is integrated
        else:
            xa = xa_sample
            r, ens_r = self.reward(xa, self.teacher())
        if self.cfg.rotate:  # mixes the members' anomalies; mean and covariance stay
            xa = filters.post_process(xa, self.Eb, rotate=True, generator=self.rot_gen)
        truth = self.truth[p, t]  # (B, N)
        rmse_truth = rmse(xa.mean(1), truth)
        rmse_enkf = rmse(xa.mean(1), self.xa_enkf[p, t].mean(1))
        member_rmse = rmse(xa, truth.unsqueeze(1))  # (B, M) each member against the truth
        ens_spread = spread(xa)
        # continuity: integrate the agent's analysis
        Eb_next = self.fc(xa)
        y_next = self.y[p, (t + 1).clamp(max=self.T - 1)]  # (B, p) the observations of the next analysis
        zn = self.norm("state", Eb_next)
        terminated = ~torch.isfinite(zn).all(-1).all(-1) | (zn.abs() > self.bound).any(-1).any(-1)
        self.dxa = xa - self.xa_prev
        self.xa_prev = xa
        self.Eb = torch.where(terminated.view(-1, 1, 1), self.Eb, self.prior(Eb_next, y_next))  # keep finite values
        self.t = self.t + 1
        truncated = (self.t >= self.t_end) & ~terminated
        self.ep_return += r.mean((1, 2))
        self.ep_len += 1
        done = terminated | truncated
        upd = ~terminated & (self.t < self.T)  # envs whose next cycle exists: shift the window
        if upd.any():
            ids = upd.nonzero().squeeze(1)
            self.window[ids] = torch.cat([self.window[ids, 1:], self._features(ids).unsqueeze(1)], 1)
        final_obs = self._obs().clone() if truncated.any() else None
        info = dict(
            ensemble_reward=ens_r, rmse_truth=rmse_truth, rmse_enkf=rmse_enkf, spread=ens_spread,
            episode_return=self.ep_return.clone(), episode_length=self.ep_len.clone(), final_obs=final_obs,
            path=p.clone(), reward_mean_action=r_det, member_rmse=member_rmse,
        )  # fmt: skip
        if done.any():
            self._reset_ids(done.nonzero().squeeze(1))
        return StepResult(self._obs(), r, terminated, truncated, info)

    # ---------------------------------------------------------------------------------------------
    STATE = ("path", "t", "t_end", "Eb", "lam2", "alpha", "xa_prev", "dxa", "window", "ep_return", "ep_len", "paths")

    def state_dict(self) -> dict:
        d = {k: getattr(self, k).clone().cpu() for k in self.STATE}
        d["gen"], d["rot_gen"] = self.gen.get_state(), self.rot_gen.get_state()
        return d

    def load_state_dict(self, d: dict) -> None:
        for k in self.STATE:
            if k not in d:  # a checkpoint from before the field existed (lam2: the fixed inflation)
                continue
            v = d[k]
            setattr(self, k, v.to(self.device) if k != "paths" else v)
        self.gen.set_state(d["gen"])
        if "rot_gen" in d:
            self.rot_gen.set_state(d["rot_gen"])


# ---------------------------------------------------------------------------------------------------
# A plain gymnasium view: one env, numpy in and out.
# ---------------------------------------------------------------------------------------------------
class EnKFGymEnv(gym.Env):
    """Single-path gymnasium.Env over the batched environment (num_envs = 1). Reward: mean per-cell reward;
    the per-cell rewards are in info["cell_reward"]."""

    metadata = {"render_modes": []}

    def __init__(self, cfg: Config, data: PathData, paths=None, episode_length: int | None = None):
        super().__init__()
        self.venv = EnKFVecEnv(cfg, data, 1, episode_length=episode_length)
        if paths is not None:
            self.venv.set_paths(paths)
        b = float(cfg.bound)
        shape = (self.venv.M, self.venv.C, self.venv.N)
        self.observation_space = gym.spaces.Box(-b, b, shape=shape, dtype=np.float32)
        self.action_space = gym.spaces.Box(-b, b, shape=(self.venv.M, self.venv.N), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        obs = self.venv.reset(None if seed is None else int(seed))  # a seed also restarts the rotations
        return obs[0].cpu().numpy().astype(np.float32), {}

    def step(self, action):
        a = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, self.venv.M, self.venv.N)
        res = self.venv.step(a)
        obs = res.info["final_obs"] if res.truncated[0] else res.obs
        if res.terminated[0]:
            obs = res.obs  # the env already reset; the pre-halt forecast was invalid
        info = {k: ((v[0].item() if v.ndim == 1 else v[0].cpu().numpy()) if isinstance(v, torch.Tensor) else v)
                for k, v in res.info.items() if k != "final_obs"}  # fmt: skip
        info["cell_reward"] = res.reward[0].cpu().numpy()
        return (obs[0].cpu().numpy().astype(np.float32), float(res.reward[0].mean()), bool(res.terminated[0]),
                bool(res.truncated[0]), info)  # fmt: skip


def make_env(config_path: str, data_dir: str | None = None, paths=None, **overrides) -> EnKFGymEnv:
    """A gymnasium.Env for one config (data generated if missing). Overrides are config fields."""
    from enkf.data import ensure_data

    cfg = load_config(config_path, overrides or None)
    data = ensure_data(cfg, data_dir)
    return EnKFGymEnv(cfg, data, paths=paths)


gym.register(id="EnKF-v0", entry_point="enkf.env:make_env")
