"""L96_standard: the literature benchmark (Sakov & Oke 2008; DAPPER mods/Lorenz96/sakov2008).

N=40, F=8, RK4 dt=0.05, observe every 0.05, H = I, R = I, 20 members. DAPPER lists
EnKF('Sqrt', N=20, infl=1.04) at analysis RMSE 0.20 for this setup (Bocquet 2015, fig. 3).
"""

config = dict(
    model="lorenz96",
    N=40,
    F=8.0,
    N_ens=20,
    dtda=0.05,
    oda=0.05,
    obs_noise_var=1.0,
    inflation=1.04,
    noise_strength=1.0,
    burn_in=100,
)
