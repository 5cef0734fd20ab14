"""L63: Lorenz-63 (10, 28, 8/3), dt=0.01, observe every 1.0, full observation, R = 0.1 I, inflation 1.5."""

config = dict(
    model="lorenz63",
    N=3,
    N_ens=20,
    dtda=0.01,
    oda=1.0,
    obs_noise_var=0.1,
    inflation=1.5,
    noise_strength=1.0,
)
