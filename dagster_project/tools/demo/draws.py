"""Small vectorised helpers of the demo generator: months, categorical and log-uniform draws, money."""

from __future__ import annotations

from datetime import date

import numpy as np


def _first_of_month(d: date) -> date:
    return d.replace(day=1)


def _month64(d: date) -> np.datetime64:
    return np.datetime64(f"{d.year:04d}-{d.month:02d}", "M")


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows need not be normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _loguniform(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _round_money(x: np.ndarray) -> np.ndarray:
    return np.round(x, 2)
