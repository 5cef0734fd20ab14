"""L96_1: Lorenz-96, N=20, F=5 (the user's canonical setup); full observation, R = 0.1 I, inflation 5."""

config = dict(
    model="lorenz96",
    N=20,
    F=5.0,
    N_ens=20,
    dtda=2.5e-3,
    oda=1.0,
    obs_noise_var=0.1,
    inflation=5.0,
    noise_strength=1.0,
    loc_radii="2,4,6,10,20",  # the LETKF half-widths the tuning sweeps (N = 20: 20 is close to global)
)
