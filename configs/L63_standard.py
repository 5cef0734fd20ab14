"""L63_standard: the literature benchmark (Sakov et al. 2012; DAPPER mods/Lorenz63/sakov2012).

dt=0.01, observe every 0.25, H = I, R = 2 I, 20 members. DAPPER lists EnKF('Sqrt', N=10, infl=1.02)
at analysis RMSE 0.60 and EnKF('PertObs', N=100, infl=1.01) at 0.56 for this setup.
"""

config = dict(
    model="lorenz63",
    N=3,
    N_ens=20,
    dtda=0.01,
    oda=0.25,
    obs_noise_var=2.0,
    inflation=1.02,
    noise_strength=1.0,
)
