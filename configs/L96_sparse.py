"""L96_sparse: Lorenz-96, N=40, F=8, every 4th variable observed (10 observations), one analysis every 0.15
time units (3 RK4 steps of 0.05), R = I, 20 members (issue 13). The hard case of the learned-filter
literature: the unobserved points get information only through the ensemble's spatial covariances and time.

The stored EnKF paths (and the teacher) are the LETKF at inflation 1.05 with a Gaspari-Cohn half-width of 4 grid
points, close to the published grid-search optimum for this setup (DAPPER LETKF, N_ens 20: inflation 1.05,
radius 3; see README "Sparse observations"). The tuned values (inflation and radius, swept on a separate tuning
set) are in configs/tuned/L96_sparse.json, written by `python -m enkf.tuned` and `enkf.evaluate`.
"""

config = dict(
    model="lorenz96",
    N=40,
    F=8.0,
    N_ens=20,
    dtda=0.05,
    oda=0.15,
    obs_stride=4,
    obs_noise_var=1.0,
    data_filter="letkf",
    inflation=1.05,
    loc_radius=4.0,
    loc_radii="1,2,3,4,6,8",  # the tuning sweeps these half-widths with the inflations
    noise_strength=1.0,
    spinup_steps=200_000,
    burn_in=100,
)
