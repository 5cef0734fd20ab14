"""L96_N40: Lorenz-96, N=40, F=5 (L96_1 on a twice larger grid; a transfer target); full observation,
R = 0.1 I, inflation 5."""

config = dict(
    model="lorenz96",
    N=40,
    F=5.0,
    N_ens=20,
    dtda=2.5e-3,
    oda=1.0,
    obs_noise_var=0.1,
    inflation=5.0,
    noise_strength=1.0,
)
