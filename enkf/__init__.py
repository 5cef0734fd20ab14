"""RL4DA EnKF package: filters, data generation, normalization, the RL environment, plots."""
