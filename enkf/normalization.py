"""Normalization: each physical quantity q maps to (q - center) / scale, so the data lie in about [-1, 1];
the RL spaces are bounded at [-3, 3] to leave room for extremes. Fitted on the generated paths with robust
quantiles (0.1% and 99.9%) so one early transient does not squash everything else; saved as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enkf.io import write_json

QUANTILE = 0.999
SIGNED = ("state", "obs")  # quantities with a physical offset; the rest are centred at 0
SAMPLE = 1_000_000


@dataclass(frozen=True)
class Stat:
    center: float
    scale: float


class Normalizer:
    """Per-quantity affine maps. normalize(name, x) = (x - center) / scale; denormalize inverts it."""

    def __init__(self, stats: dict[str, Stat]):
        self.stats = dict(stats)

    @classmethod
    def fit(cls, arrays: dict[str, np.ndarray], seed: int = 0) -> Normalizer:
        rng = np.random.default_rng(seed)
        stats = {}
        for name, a in arrays.items():
            a = np.asarray(a, dtype=np.float64).ravel()
            a = a[np.isfinite(a)]
            if a.size > SAMPLE:
                a = a[rng.integers(0, a.size, SAMPLE)]
            if name in SIGNED:
                lo, hi = np.quantile(a, [1 - QUANTILE, QUANTILE])
                center, scale = (hi + lo) / 2, (hi - lo) / 2
            else:
                center, scale = 0.0, float(np.quantile(np.abs(a), QUANTILE))
            stats[name] = Stat(float(center), float(max(scale, 1e-8)))
        return cls(stats)

    def normalize(self, name: str, x):
        s = self.stats[name]
        return (x - s.center) / s.scale

    def denormalize(self, name: str, x):
        s = self.stats[name]
        return x * s.scale + s.center

    def scale(self, name: str) -> float:
        return self.stats[name].scale

    def to_dict(self) -> dict:
        return {k: {"center": v.center, "scale": v.scale} for k, v in self.stats.items()}

    def save(self, path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls({k: Stat(float(v["center"]), float(v["scale"])) for k, v in d.items()})

    @classmethod
    def load(cls, path) -> Normalizer:
        return cls.from_dict(json.loads(Path(path).read_text()))
