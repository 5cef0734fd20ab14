"""The global config: every parameter of an experiment, with its default, allowed range and meaning.

An experiment file `configs/<name>.py` defines `config = dict(field=value, ...)` with only the fields that
differ from these defaults. `load_config(path, overrides)` reads it, applies command-line overrides, checks
every field (unknown names, types, ranges, cross-field rules) and returns a frozen `Config`. Any problem
raises `ConfigError` with one line naming the file and the field; entry points print it and exit 2.
No module may change a Config after loading: it is frozen.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOGS_ROOT = Path(os.environ.get("RL4DA_LOGS") or REPO_ROOT / "logs")
"""Where data, runs and reports go (logs/ in the repository; the environment variable RL4DA_LOGS moves it)."""


class ConfigError(ValueError):
    """A bad config file, field or value; the message is one line meant for the user."""


def _f(default, lo=None, hi=None, choices=None):
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True)
class Config:
    # ---- experiment -------------------------------------------------------------------------------
    name: str = ""
    """Experiment name; logs go to logs/<name>/. Empty: the config file's stem (e.g. L96_1)."""
    seed: int = _f(0, 0, 2**31 - 1)
    """Seed of a training run (weights, exploration, episode starts). Changing it keeps the data."""
    data_seed: int = _f(0, 0, 2**31 - 1)
    """Seed of the data: spin-up, start points, initial ensembles and observation noise."""
    # ---- model --------------------------------------------------------------------------------------
    model: str = _f("lorenz96", choices=("lorenz96", "lorenz63", "ks"))
    """Dynamical model: Lorenz-96, Lorenz-63, or ks (Kuramoto-Sivashinsky, u_t = -u u_x - u_xx - u_xxxx on a
    periodic domain of length ks_length, pseudo-spectral, ETDRK4 steps of dtda: models/ks.py)."""
    N: int = _f(40, 3, 4096)
    """State dimension (grid points). Lorenz-63 requires 3; Lorenz-96 needs at least 4; ks an even N >= 8 (the
    number of grid points of its periodic domain, spacing ks_length / N)."""
    F: float = _f(8.0, -100.0, 100.0)
    """Lorenz-96 forcing."""
    ks_length: float = _f(32 * math.pi, 1.0, 1e5)
    """Kuramoto-Sivashinsky domain length L (the domain is [0, L), periodic); default 32 pi = 100.53 (DAPPER's
    KS model, Kassam & Trefethen 2005): chaotic, largest Lyapunov exponent ~0.09 per time unit."""
    l63_sigma: float = _f(10.0, 0.0, 1000.0)
    """Lorenz-63 sigma."""
    l63_rho: float = _f(28.0, 0.0, 1000.0)
    """Lorenz-63 rho."""
    l63_beta: float = _f(8.0 / 3.0, 0.0, 1000.0)
    """Lorenz-63 beta."""
    dtda: float = _f(2.5e-3, 1e-6, 1.0)
    """RK4 step (model time units); for ks the ETDRK4 step."""
    oda: float = _f(1.0, 1e-6, 100.0)
    """Time between observations (model time units); must be a whole multiple of dtda."""
    # ---- observations and filter ---------------------------------------------------------------------
    obs_stride: int = _f(1, 1, 4096)
    """Observe every k-th grid point (1: H = I, full observation)."""
    obs_noise_var: float = _f(0.1, 1e-8, 1e4)
    """Observation error variance r (R = r I)."""
    N_ens: int = _f(20, 2, 4096)
    """Ensemble size."""
    inflation: float = _f(5.0, 1.0, 100.0)
    """Multiplicative prior inflation of forecast anomalies: xb_mean + inflation * (xb - xb_mean)."""
    noise_strength: float = _f(1.0, 0.0, 100.0)
    """Initial ensemble = truth + noise_strength * N(0, 1)."""
    data_filter: str = _f("eakf", choices=("eakf", "etkf", "pertobs", "letkf"))
    """Filter that makes the stored EnKF paths (the teacher): serial EAKF (Anderson 2001) by default."""
    teacher_inflation: float = _f(0.0, 0.0, 100.0)
    """Inflation of the online EAKF teacher (reward_target online), separate from the data's `inflation`.
    0 (default): the tuned value for this config and N_ens, read from configs/tuned/<name>.json (written by
    `python -m enkf.tuned` and `enkf.evaluate`; tuned and written on first use if missing or stale)."""
    loc_radius: float = _f(4.0, 0.1, 1e6)
    """LETKF Gaspari-Cohn half-width in grid points (correlations vanish at 2 * loc_radius)."""
    loc_radii: str = ""
    """Comma list of LETKF half-widths that the tuning sweeps together with the inflation (the tuned LETKF is the
    best pair); empty (default): the tuning keeps loc_radius."""
    # ---- data ---------------------------------------------------------------------------------------
    spinup_steps: int = _f(1_000_000, 10, 100_000_000)
    """RK4 steps of the single truth spin-up; start points are drawn from its later half."""
    num_paths: int = _f(100, 1, 100_000)
    """Number of EnKF paths (path 0: evaluation; 1..: training)."""
    path_length: int = _f(1000, 2, 1_000_000)
    """Assimilation cycles per path."""
    burn_in: int = _f(100, 0, 1_000_000)
    """Cycles excluded from time-mean RMSE (must be < path_length)."""
    verify_max_ratio: float = _f(0.9, 0.0, 1.0)
    """A path passes verification when analysis RMSE <= verify_max_ratio * forecast RMSE."""
    compile: bool = True
    """torch.compile the RK4 forecast (about 5x faster; ~10 s one-off compile per batch shape)."""
    # ---- RL environment (spec §6, §6a in docs/design.md) --------------------------------------------
    episode_length: int = _f(100, 1, 1_000_000)
    """Training episode length in cycles: segments starting at random cycles of the curriculum's paths,
    from the stored EnKF background (truncated at the end, with value bootstrap). Evaluation always runs
    the whole of path 0."""
    temporal_window: int = _f(3, 1, 64)
    """Number of past steps of features stacked into each observation."""
    features: str = "xb,y,innov,mean,spread,anom,corr1,corr2,gain,kg-8,kg-7,kg-6,kg-5,kg-4,kg-3,kg-2,kg-1,kg0,kg1,kg2,kg3,kg4,kg5,kg6,kg7,kg8,sr-8,sr-7,sr-6,sr-5,sr-4,sr-3,sr-2,sr-1,sr0,sr1,sr2,sr3,sr4,sr5,sr6,sr7,sr8"
    """Comma list of per-cell input features: xb, y, innov (y - H xb_i), mean, spread, anom (xb_i - mean),
    xa_prev (previous analysis of the member), dxa (its change); ensemble context from xb and y alone:
    corr1 ... corr16 (correlation across members of x_j with x_{j+k}, periodic; k < N), gain (s_j^2 / (s_j^2 + r) at
    observed points, s_j the forecast spread); kg-16 ... kg16: row j of the ensemble Kalman gain of the agent's own prior,
    K = P H^T (H P H^T + R)^-1 (P the prior's covariance), at the observation of grid point j + k (0 where j + k is not
    observed, and 0 for an offset outside -(N - 1) // 2 ... N // 2, which would repeat a column on a small grid; periodic),
    times the innovation scale over the increment scale (so that sum_k kg_k(j) innov_i(j + k) is the
    normalized increment K d_i): the multivariate form of gain, from the prior and R alone (no observation values);
    kgsr: K_jj + sqrt(1 - K_jj) - 1 at observed points (0 elsewhere), in increment units per normalized anomaly: what a
    square-root filter adds back to the anomaly that the gain shrank (with gain_gate: a gate on kgsr * anom_i), one variable
    at a time; sr-16 ... sr16: its multivariate form, row j of S - I + K H at grid point j + k (S the symmetric square-root
    transform of the prior's anomalies, S P S^T = (I - K H) P, localized as kg; enkf.filters.gain_and_root), in the same
    units: with gain_gate, sum_k sr_k(j) anom_i(j + k) added to the gain's K d_i makes the untrained analysis the ETKF's.
    The default has kg-8 ... kg8 and sr-8 ... sr8 (until 2026-12-07: kgsr instead of the sr rows; agent files keep their
    list). The user's original list: xa_prev,xb,dxa,y."""
    agent_inflation: float = _f(0.0, 0.0, 100.0)
    """Multiplicative inflation of the agent's forecast anomalies before it sees them (a filter's prior
    inflation, applied to the agent's own ensemble every cycle). 1 = none; 0 = the teacher's inflation."""
    inflation_adapt: float = _f(0.05, 0.0, 1.0)
    """Adaptive prior inflation of the agent's forecast ensemble: each cycle, per env, the inflation factor squared moves
    this fraction of the way to what the innovations ask for, (d.d - tr R) / tr(H P H^T) with d = y - H mean(xb)
    (Desroziers et al. 2005; Miyoshi 2011), clipped to [1, inflation_adapt_max^2]; it starts at agent_inflation with
    each episode. Computed from the forecast and the observations only. 0 = the fixed agent_inflation."""
    inflation_adapt_max: float = _f(3.0, 1.0, 100.0)
    """Upper bound of the adaptive inflation factor."""
    inflation_adapt_scale: float = _f(1.0, 0.0, 1.0)
    """How much of the innovation estimate the adaptive inflation follows: it moves towards 1 + s (estimate - 1). The
    estimate calibrates the spread, which for the RMSE can over-inflate (L96_2: factor 1.28 where the best filter needs
    about 1.0). 1 (default, the recipe): the whole estimate. 0: chosen when training starts (enkf.gain.
    choose_inflation_scale), after gain_radius: of 1 and 0.5, the one whose untrained gain-gated analysis has the lowest
    worst-path RMSE on training paths 1-4. Not the default: the choice helps L96_2 and L96_3 a little and lets the
    Lorenz-63 agent collapse in training (docs/results.md, 2026-12-06)."""
    spread_adapt: str = _f("auto", choices=("prior", "relax", "auto"))
    """Where the adaptive spread control (inflation_adapt > 0) acts. prior: the agent's prior is inflated by the adaptive
    factor above. relax: the prior is not inflated; the agent's analysis is relaxed towards the prior spread (RTPS) by a
    factor alpha per env that starts at 0 with each episode and moves each cycle by inflation_adapt * ln(estimate), the
    same innovation estimate, within [0, 1] (enkf.filters.adapt_relaxation); in training the agent is scored on its
    analysis before the relaxation, which then acts as a filter's RTPS does. auto (default, the recipe): chosen when
    training starts (enkf.gain.choose_spread_adapt), after gain_radius: the one whose untrained gain-gated analysis has
    the lower worst-path RMSE on training paths 1-4 (a tie: prior); an agent keeps its choice. It picks relax on L96_2,
    L96_sparse and KS, prior on L96_1, L96_3 and L63. L96_2, 12 minutes, held-out: 1.125x the best filter with relax,
    1.226x with prior (docs/results.md, 2026-12-06, night). An agent file from before the field loads with prior."""
    rtps: float = _f(0.0, 0.0, 1.0)
    """Relaxation to prior spread (Whitaker & Hamill 2012) applied to the agent's analysis per grid point:
    anomalies scaled by 1 + rtps (sigma_b - sigma_a) / sigma_a (0 = off)."""
    rotate: bool = True
    """Random rotation of the agent's analysis anomalies each cycle, after the relaxation (what the best classical filters
    do, enkf.filters.random_rotation): a random orthogonal mix of the members that keeps the ensemble mean and the
    sample covariance, so only which member carries which anomaly changes. Applied in the environment to what is
    integrated (the agent is scored before it); evaluation reseeds its stream on every reset_to. True (default since
    2026-12-07, the recipe): without it the agent's ensemble keeps its members' identities, as an unrotated ETKF does,
    which costs that filter 10-13% on the dense configs (docs/results.md). An agent file from before the field loads
    with False."""
    action: str = _f("increment", choices=("increment", "absolute"))
    """increment: xa = xb + denorm_increment(a) (zero action keeps the forecast); absolute: xa = denorm_state(a)."""
    bound: float = _f(3.0, 1.0, 100.0)
    """Observations and actions are clipped to [-bound, bound] in normalized units."""
    reward_target: str = _f("truth", choices=("online", "precomputed", "truth"))
    """What the agent's analysis is scored against: online = EAKF analysis of the agent's own forecast
    ensemble with the same observation and inflation; precomputed = the stored EnKF analysis of the path;
    truth = the true state."""
    truth_weight: float = _f(0.0, 0.0, 1.0)
    """reward_target online/precomputed: score = (1 - w) * score vs the teacher + w * score vs the truth
    (the truth is known in training only, never at evaluation). 0 = teacher only; 1 = truth only."""
    truth_ramp: float = _f(0.0, 0.0, 1.0)
    """Curriculum from teacher to truth: w grows linearly from 0 to truth_weight over this fraction of the
    training budget (steps or --max-minutes, as the learning-rate schedule); 0 = w constant."""
    reward_form: str = _f("crps", choices=("abs", "crps"))
    """abs: member-wise 1 - |xa_i - target_i|; crps: per cell 1 - (fair CRPS contribution of member i against
    the target ensemble), which rewards matching the target's distribution, not member identities."""
    reward_grain: str = _f("cell", choices=("cell", "member", "ensemble"))
    """Who gets a reward (and a PPO ratio): each (member, grid point) cell, each member, or the whole
    ensemble (one scalar: the user's original)."""
    explore_in_dynamics: bool = False
    """True: the sampled (noisy) analysis is integrated, as in textbook RL. False (default): the policy's mean
    analysis is integrated and the sampled one is only scored, each cell against the other members'
    deterministic analyses. Exploration noise in the dynamics acts as additive inflation that evaluation
    (mean action) does not have; measured on L96_1 it made the deterministic ensemble collapse."""
    advantage: str = _f("self_critical", choices=("self_critical", "gae"))
    """self_critical: per-cell advantage = reward of the sampled analysis - reward of the mean analysis
    (Rennie et al. 2017's greedy baseline). Exact when exploration stays out of the dynamics, since then the
    future does not depend on the sample; no critic is needed. gae: GAE(gamma, lambda) with the critic."""
    spread_weight: float = _f(0.0, 0.0, 100.0)
    """Weight of a per-cell spread term | |xa_i - mean(xa)| - |target_i - mean(target)| | (ensemble targets
    only): each member keeps the teacher member's distance from the mean, against regression to the mean."""
    anchor_weight: float = _f(0.0, 0.0, 1.0)
    """Weight of a mean anchor in the reward: |ensemble mean of xa - stored EnKF mean| (normalized), which a
    collapsed ensemble cannot satisfy (spec §6a in docs/design.md)."""
    agents: str = _f("single", choices=("single", "per-member"))
    """single: the reward and PPO ratio per `reward_grain` (default: one per cell). per-member: the user's
    multi-agent variant, N_ens agents with shared weights; agent i controls member i, gets reward
    1 - RMSE_i (its member against the target member over the grid, normalized), one PPO ratio (the joint
    log-probability of its N outputs) and one value. With policy = global each agent is an MLP + LSTM over its
    own member's (C, N) observation (the user's network); with policy = local the conv trunk is kept."""
    imitation_fraction: float = _f(0.0, 0.0, 1.0)
    """Supervised warm start: the first this fraction of the training budget (steps or --max-minutes) imitates the
    best tuned filter (configs/tuned/) by regression: the agent's analysis of its own forecast ensemble against the
    filter's analysis of the same forecast (DAgger: the agent's analyses are integrated, the teacher's instead with a
    probability falling from 1 to 0 over the first half of the warm start), through the LSTM over each rollout. PPO against reward_target follows. The filter's analysis is a target, never an input."""
    # ---- policy -------------------------------------------------------------------------------------
    policy: str = _f("auto", choices=("auto", "local", "dense", "global"))
    """auto (default): local for the periodic grids (Lorenz-96, Kuramoto-Sivashinsky), dense for Lorenz-63 (resolved
    when the config is loaded). local: circular convolutions over the grid shared by members and grid points,
    LSTM per cell; dense: per member an MLP over its whole state (weights shared by members, member pooling and gates as local),
    LSTM per member: for small non-periodic states (Lorenz-63); global: one MLP + LSTM over the whole ensemble
    state (the user's original)."""
    hidden: int = _f(32, 1, 4096)
    """Conv channels (local) or MLP width (global)."""
    kernel: int = _f(5, 1, 63)
    """Circular conv kernel size (odd)."""
    lstm_hidden: int = _f(16, 0, 4096)
    """LSTM hidden size per cell (local) or for the whole state (global); 0 = no LSTM."""
    lstm_layers: int = _f(1, 1, 8)
    """LSTM layers."""
    member_mix: bool = True
    """Local policy: after the first conv layer, the mean over members of every channel is appended to each
    member's channels (a DeepSets pooling layer), so each cell sees ensemble-wide statistics; weight-shared,
    independent of N and N_ens."""
    anomaly_gate: bool = True
    """Local policy: mean increment a_i + b_i * anom_i (a, b from the network, anom_i the member's normalized
    forecast anomaly), so anomaly scaling is built in. Applies when 'anom' is among the features."""
    innovation_gate: bool = True
    """Local policy: add c_i * innov_i to the increment (c from the network, innov_i = y - H xb_i normalized), so
    a gain times the innovation is one multiplication. Applies when 'innov' is among the features."""
    innovation_reach: int = _f(0, 0, 64)
    """Local policy with innovation_gate: the increment at j also adds c_jk * innov_i(j + k) for 0 < |k| <= reach
    (c from the network): a local gain row over the neighbours' innovations, so points without an observation
    can take in the observations around them (sparse observations: use about obs_stride). 0 = own point only."""
    gain_radius: float = _f(0.0, 0.0, 1e6)
    """Gaspari-Cohn half-width (grid points) that localizes the prior covariance of the kg/kgsr features:
    K = (rho o P) H^T (H (rho o P) H^T + R)^-1, as the LETKF localizes (20 members cannot estimate far correlations).
    0 (default): chosen when training starts (enkf.env.choose_gain_radius): of the config's loc_radii (or loc_radius)
    and none, the one whose untrained gain-gated analysis has the lowest RMSE on training paths 1-4 (never path 0
    or a held-out truth); kept with the agent. 1e6: none."""
    gain_gate: bool = True
    """Local policy with innovation_gate and kg features: the increment at j also adds g_jk * kg_k(j) * innov_i(j + k) for
    every kg_k feature (g from the network): the prior's own Kalman gain row times the member's innovations is one
    multiplication, as the innovation gate does for a scalar gain; with kgsr and anom among the features also
    g_j * kgsr(j) * anom_i(j), the square-root correction of the anomaly. The gain gate starts at 1 (the head's bias): an
    untrained agent applies its prior's Kalman gain to each member's innovation, and PPO refines that. Local and dense
    policies."""
    init_action_std: float = _f(0.05, 1e-4, 3.0)
    """Initial Gaussian exploration std (normalized action units); log-std is learned."""
    min_action_std: float = _f(0.005, 1e-6, 1.0)
    """Lower clamp of the action std."""
    max_action_std: float = _f(1.0, 1e-4, 3.0)
    """Upper clamp of the action std."""
    # ---- PPO (spec §7 in docs/design.md) -------------------------------------------------------------
    total_timesteps: int = _f(2_000_000, 1, 10**11)
    """Total environment steps (cycles summed over envs)."""
    num_envs: int = _f(64, 1, 65536)
    """Parallel environments (one path each)."""
    num_steps: int = _f(16, 1, 100_000)
    """Rollout length per env per update."""
    learning_rate: float = _f(1e-3, 1e-8, 1.0)
    """Adam learning rate."""
    anneal_lr: bool = True
    """Linearly anneal the learning rate to 0 over total_timesteps."""
    gamma: float = _f(0.9, 0.0, 1.0)
    """Discount factor."""
    gae_lambda: float = _f(0.9, 0.0, 1.0)
    """GAE lambda."""
    num_minibatches: int = _f(4, 1, 65536)
    """Minibatches per epoch (split over envs, so sequences stay whole); must divide num_envs."""
    update_epochs: int = _f(2, 1, 100)
    """PPO epochs per update."""
    norm_adv: bool = True
    """Normalize advantages per minibatch."""
    clip_coef: float = _f(0.2, 0.0, 10.0)
    """PPO clip coefficient."""
    clip_vloss: bool = True
    """Clipped value loss."""
    ent_coef: float = _f(0.0, 0.0, 10.0)
    """Entropy bonus coefficient."""
    vf_coef: float = _f(0.5, 0.0, 100.0)
    """Value loss coefficient."""
    max_grad_norm: float = _f(0.5, 0.0, 1e6)
    """Gradient clipping norm."""
    target_kl: float = _f(0.0, 0.0, 100.0)
    """Stop the epoch loop early when approx KL exceeds this (0 = off)."""
    update_members: int = _f(5, 0, 4096)
    """Members per minibatch in the PPO update (0 = all). The local policy treats members as independent
    sequences of one shared network, so a random subset is an unbiased, cheaper sample (cell/member grain)."""
    rollout_pool: bool = True
    """With member_mix: the update takes each step's member pool (the mean over all members of the first layer) from
    the rollout, so only the update_members acting members pass through the first layer (about 1.6x the env steps
    per second on L96_sparse); that pool is the rollout's weights' (exact in the update's first minibatch, then behind
    by the steps taken since). False: the pool over all members again in every minibatch (before 2026-12-07, night)."""
    mix_sizes: str = ""
    """Also train at these ensemble sizes (a comma list, each in [2, N_ens)): iterations take N_ens and each of them in
    turn, each size with its own envs (the stored ensembles cut to that many members; gain_radius chosen again for
    it, as the evaluation at fewer members does), buffers and LSTM state. Empty: N_ens only. Tried with 10 on L96_2
    (2026-12-07): worse at 10 members than training at N_ens alone (docs/results.md)."""
    norm_value: bool = True
    """Normalize value targets with a running mean/std."""
    # ---- curriculum, evaluation, checkpoints ---------------------------------------------------------
    curriculum: bool = True
    """Start with 1 training path; add one after ceil(100 / n_paths) completed episodes on the current set."""
    curriculum_episodes: int = _f(100, 1, 1_000_000)
    """The 100 in ceil(100 / n_paths)."""
    eval_interval: int = _f(100_000, 0, 10**11)
    """Evaluate on path 0 (whole path, deterministic policy) every this many env steps (0 = only at the end)."""
    checkpoint_interval: int = _f(50_000, 0, 10**11)
    """Write a checkpoint every this many env steps (0 = only at the end and on a signal)."""
    torch_threads: int = _f(0, 0, 256)
    """torch intra-op threads (0 = torch's default)."""

    # ---------------------------------------------------------------------------------------------------
    @property
    def steps_per_cycle(self) -> int:
        return int(round(self.oda / self.dtda))

    @property
    def model_params(self) -> dict:
        if self.model == "lorenz96":
            return {"F": self.F}
        if self.model == "ks":
            return {"L": self.ks_length}
        return {"sigma": self.l63_sigma, "rho": self.l63_rho, "beta": self.l63_beta}

    @property
    def periodic(self) -> bool:
        """A periodic grid (Lorenz-96, Kuramoto-Sivashinsky): the LETKF's distances wrap around, and the local
        (circular conv) policy suits it."""
        return self.model in ("lorenz96", "ks")

    @property
    def feature_list(self) -> list[str]:
        return [f.strip() for f in self.features.split(",")]

    @property
    def loc_radius_list(self) -> list[float]:
        """The LETKF half-widths the tuning sweeps (loc_radii, or loc_radius alone)."""
        return [float(x) for x in self.loc_radii.split(",") if x.strip()] or [self.loc_radius]

    @property
    def mix_size_list(self) -> list[int]:
        """The extra ensemble sizes a run trains at in turn (mix_sizes; empty: N_ens alone)."""
        return [int(x) for x in self.mix_sizes.split(",") if x.strip()]

    @property
    def obs_idx(self) -> list[int]:
        return list(range(0, self.N, self.obs_stride))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self, fields: tuple[str, ...]) -> str:
        sub = {k: getattr(self, k) for k in fields}
        return hashlib.sha256(json.dumps(sub, sort_keys=True).encode()).hexdigest()[:16]


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# what a checkpoint saved before a field existed used: loading fills these in, so an old agent runs as it was trained
LEGACY = {
    "inflation_adapt": 0.0,
    "gain_gate": False,
    "gain_radius": 1e6,
    "inflation_adapt_scale": 1.0,
    "spread_adapt": "prior",
    "rotate": False,
    "rollout_pool": False,
    "mix_sizes": "",
}


def _check_value(name: str, value, source: str):
    """Type- and range-check one value; returns it converted (int -> float where a float is wanted)."""
    f = FIELDS[name]
    typ = f.type if isinstance(f.type, str) else f.type.__name__
    where = f"{source}: field '{name}'"
    if typ == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} must be true or false (bool)")
        return value
    if typ == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} = {value!r} must be an integer")
    elif typ == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} = {value!r} must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where} = {value!r} must be finite")
    elif typ == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r} must be a string")
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{where} = {value!r} is not one of {', '.join(map(repr, meta['choices']))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and not (lo <= value <= hi):
        raise ConfigError(f"{where} = {value!r} is out of range [{lo:g}, {hi:g}]")
    return value


def _cross_check(cfg: Config, source: str):
    def bad(field_name, msg):
        raise ConfigError(f"{source}: field '{field_name}' {msg}")

    if cfg.model == "lorenz63" and cfg.N != 3:
        bad("N", f"= {cfg.N}: Lorenz-63 has exactly 3 variables (set N = 3)")
    if cfg.model == "lorenz96" and cfg.N < 4:
        bad("N", f"= {cfg.N}: Lorenz-96 needs N >= 4")
    if cfg.model == "ks" and (cfg.N < 8 or cfg.N % 2):
        bad("N", f"= {cfg.N}: Kuramoto-Sivashinsky (pseudo-spectral) needs an even N >= 8")
    ratio = cfg.oda / cfg.dtda
    if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio) or round(ratio) < 1:
        bad("oda", f"= {cfg.oda:g} is not a whole multiple of dtda = {cfg.dtda:g}")
    if cfg.obs_stride > cfg.N:
        bad("obs_stride", f"= {cfg.obs_stride} exceeds N = {cfg.N}")
    if cfg.burn_in >= cfg.path_length:
        bad("burn_in", f"= {cfg.burn_in} must be < path_length = {cfg.path_length}")
    allowed = ("xb", "y", "innov", "mean", "spread", "anom", "xa_prev", "dxa",
               "gain", *(f"corr{k}" for k in range(1, 17)), *(f"kg{k}" for k in range(-16, 17)), "kgsr",
               *(f"sr{k}" for k in range(-16, 17)))  # fmt: skip
    feats = [f.strip() for f in cfg.features.split(",")]
    for f in feats:
        if f not in allowed:
            bad(
                "features",
                f"has unknown feature {f!r} (allowed: {', '.join(allowed[:9])}, corr1 ... corr16, kg-16 ... kg16, kgsr, sr-16 ... sr16)",
            )
        if f.startswith("corr") and int(f[4:]) >= cfg.N:
            bad("features", f"has {f!r}: the correlation distance must be < N = {cfg.N}")
    if len(set(feats)) != len(feats) or not feats:
        bad("features", f"= {cfg.features!r} must list distinct features")
    try:
        radii = [float(x) for x in cfg.loc_radii.split(",") if x.strip()]
    except ValueError:
        radii = [-1.0]
    if any(not (0.1 <= r <= 1e6) for r in radii):
        bad("loc_radii", f"= {cfg.loc_radii!r} must be a comma list of half-widths in [0.1, 1e6]")
    try:
        sizes = cfg.mix_size_list
    except ValueError:
        sizes = [0]
    if any(not (2 <= m < cfg.N_ens) for m in sizes) or len(set(sizes)) != len(sizes):
        bad("mix_sizes", f"= {cfg.mix_sizes!r} must be a comma list of distinct ensemble sizes in [2, N_ens = {cfg.N_ens})")  # fmt: skip
    if cfg.num_envs % cfg.num_minibatches:
        bad("num_minibatches", f"= {cfg.num_minibatches} must divide num_envs = {cfg.num_envs}")
    if cfg.kernel % 2 == 0:
        bad("kernel", f"= {cfg.kernel} must be odd")
    if cfg.episode_length > cfg.path_length:
        bad("episode_length", f"= {cfg.episode_length} exceeds path_length = {cfg.path_length}")
    if cfg.advantage == "self_critical" and cfg.explore_in_dynamics:
        bad("advantage", "= 'self_critical' needs explore_in_dynamics = False (the sample must not change the future)")
    if cfg.agents == "per-member" and cfg.reward_grain != "cell":
        bad("agents", "= 'per-member' sets its own reward (1 - RMSE_i per member, reward_form is not used); "
            "leave reward_grain = 'cell'")  # fmt: skip
    if cfg.truth_weight > 0 and cfg.reward_target == "truth":
        bad("truth_weight", "> 0 mixes the truth into a teacher target; with reward_target = 'truth' leave it 0")
    if cfg.obs_stride > 1 and cfg.periodic and cfg.policy == "local":
        # every grid point must see at least one observation: the conv trunk's half-width (two layers) or the
        # innovation reach must reach the nearest observed point, (obs_stride - 1) // 2 ... obs_stride // 2 away
        half = 2 * (cfg.kernel // 2)
        need = cfg.obs_stride // 2
        if max(half, cfg.innovation_reach if cfg.innovation_gate else 0) < need:
            bad("kernel", f"= {cfg.kernel}: the policy sees {half} points to each side, but with obs_stride = "
                f"{cfg.obs_stride} some points have no observation within {need}; use kernel >= {2 * (-(-need // 2)) + 1} "
                f"or innovation_reach >= {need}")  # fmt: skip
    if cfg.min_action_std > cfg.max_action_std:
        bad("min_action_std", f"= {cfg.min_action_std:g} exceeds max_action_std = {cfg.max_action_std:g}")
    if cfg.num_paths > cfg.spinup_steps - cfg.spinup_steps // 2:
        bad("num_paths", f"= {cfg.num_paths} exceeds the later half of the spin-up ({cfg.spinup_steps} steps)")


def make_config(values: dict, source: str, base: Config | None = None) -> Config:
    """Check `values` (field -> value) and return a Config built on `base` (default: the global defaults)."""
    checked = {}
    for k, v in values.items():
        if k not in FIELDS:
            near = difflib.get_close_matches(k, FIELDS, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ConfigError(f"{source}: unknown field '{k}'{hint}")
        checked[k] = _check_value(k, v, source)
    cfg = dataclasses.replace(base or Config(), **checked)
    if cfg.policy == "auto":  # the policy that suits the state: periodic grid -> local convs; 3 variables -> dense
        cfg = dataclasses.replace(cfg, policy="local" if cfg.periodic else "dense")
    _cross_check(cfg, source)
    return cfg


def read_config_file(path: str | Path) -> dict:
    """Run a config file and return its `config` dict (the fields it overrides)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        ns = runpy.run_path(str(p))
    except Exception as e:  # the user's file failed to run: say where, in one line
        raise ConfigError(f"{path}: could not be executed: {type(e).__name__}: {e}") from None
    if "config" not in ns:
        raise ConfigError(f"{path}: defines no 'config' (expected config = dict(field=value, ...))")
    values = ns["config"]
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'config' must be a dict of field=value, got {type(values).__name__}")
    values = dict(values)
    values.setdefault("name", p.stem)
    return values


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Load a config file, then apply `overrides` (e.g. from the command line); everything is checked."""
    values = read_config_file(path)
    cfg = make_config(values, str(path))
    if overrides:
        cfg = make_config(overrides, f"{path} (command-line override)", base=cfg)
    return cfg
