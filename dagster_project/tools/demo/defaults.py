"""Planted defaults of the generator scenarios (``scenarios.py``): which customers default, when, and along which
pathway they deteriorate before; the generator calls the plan through its ``_DEFAULTS`` hook (``scenarios.applied``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dagster_project.tools.demo import profiles as g
from dagster_project.tools.demo.population import Calendar, Population

PATHWAYS: tuple[str, ...] = ("arrears", "financial", "abrupt")


@dataclass(frozen=True)
class Defaults:
    """Planted defaults of a scenario: ``share`` of the customers (prospects excluded) first reach 90+ dpd at a
    month drawn uniformly from month index 3 to 2 months after the window end, after a deterioration of
    ``duration`` months (uniform, inclusive) along a pathway drawn with ``mix`` (shares of :data:`PATHWAYS`)."""

    share: float
    mix: tuple[float, float, float]
    duration: tuple[int, int] = (6, 15)
    score_tilt: float = 100.0  # selection weight exp(-(base score - 700) / tilt): weaker clients default more


# ------------------------------------------------------------------------------------------------------------
# the plan (the generator calls it through its _DEFAULTS hook; the demo never does)
# ------------------------------------------------------------------------------------------------------------

_NONE, _ARREARS, _FINANCIAL, _ABRUPT = -1, 0, 1, 2
DEFAULT_STREAM = 90  # the plan's random stream: default_rng([seed, DEFAULT_STREAM]), never the generator's


class DefaultPlan:
    """Which customers default, when, and how they deteriorate before (arrays aligned with client number - 1).

    Pathways over the ``duration`` months before the first 90+ dpd month ``hit`` (progress p = 0 at the start of
    the decline, 1 at the hit):

    * ``arrears``: late payments with monthly probability 0.30 + 0.65 p of 1 to 29 + 60 p days (cured in between),
      bureau score down 15-60 points x p, a few more inquiries and judgments, utilisation drifting half-way
      towards 92-102 %;
    * ``financial``: bureau score down 80-220 points x p^1.5 (the decline accelerates), utilisation towards
      92-102 % (linear in p), operating cash flow negative (margin -1 to -8 %) once p >= 0.3, inquiries
      + Poisson(6 p), judgments + Poisson(1.5 p), debt/equity x (1 + p); no planted arrears before the last 2
      months;
    * ``abrupt``: nothing planted before the last 2 months.

    Every pathway: 2 months before the hit 30-59 dpd (abrupt: 1-29), 1 month before 60-89 (abrupt: 30-59), from
    the hit on min(90 + 30 k, 720) + 0-9 dpd (k months after the hit), utilisation at least 40 % from 2 months
    before (the balance is what is overdue), bureau ``defaults_5y`` + 1 and score - 150 from the hit on.
    """

    def __init__(self, seed: int, pop: Population, cal: Calendar, spec: Defaults) -> None:
        rng = np.random.default_rng([seed, DEFAULT_STREAM])
        self.rng, self.cal, self.spec, n, months = rng, cal, spec, pop.n, cal.months
        hit = rng.integers(3, months + 3, n)
        duration = rng.integers(spec.duration[0], spec.duration[1] + 1, n)
        start = hit - duration
        customers = pop.arch != g._A_PROSPECT
        eligible = customers & (pop.status == g.ST_ACTIVE) & (pop.onb_idx <= start)
        k = min(round(spec.share * int(customers.sum())), int(eligible.sum()))
        w = np.where(eligible, np.exp(-(pop.base_score - 700.0) / spec.score_tilt), 0.0)
        chosen = rng.choice(n, size=k, replace=False, p=w / w.sum()) if k else np.zeros(0, np.int64)
        path = np.full(n, _NONE, dtype=np.int8)
        path[chosen] = rng.choice(len(PATHWAYS), size=k, p=np.asarray(spec.mix) / sum(spec.mix))
        self.path, self.hit, self.start = path, np.where(path >= 0, hit, 10**6), np.where(path >= 0, start, 10**6)
        self.score_drop = np.where(
            path == _FINANCIAL, rng.uniform(80, 220, n), np.where(path == _ARREARS, rng.uniform(15, 60, n), 0.0)
        )
        self.util_top = rng.uniform(0.92, 1.02, n)
        self.neg_margin = -rng.uniform(0.01, 0.08, n)
        self.revenue = pop.revenue

    @property
    def defaulters(self) -> np.ndarray:
        return np.flatnonzero(self.path >= 0)

    def progress(self, t: int) -> np.ndarray:
        span = np.maximum(self.hit - self.start, 1)
        return np.where(self.path >= 0, np.clip((t - self.start) / span, 0.0, 1.0), 0.0)

    def arrears(self, t: int, dpd: np.ndarray) -> np.ndarray:
        rng, n = self.rng, len(dpd)
        k = t - self.hit
        p = self.progress(t)
        late = (self.path == _ARREARS) & (t >= self.start) & (k < -2) & (rng.random(n) < 0.30 + 0.65 * p)
        amount = 1 + (rng.random(n) * (29 + 60 * p)).astype(np.int64)
        out = np.where(late, np.minimum(amount, 89), dpd)
        abrupt = self.path == _ABRUPT
        out = np.where(k == -2, np.where(abrupt, rng.integers(1, 30, n), rng.integers(30, 60, n)), out)
        out = np.where(k == -1, np.where(abrupt, rng.integers(30, 60, n), rng.integers(60, 90, n)), out)
        out = np.where(k >= 0, np.minimum(90 + 30 * k, 720) + rng.integers(0, 10, n), out)
        return np.where(self.path >= 0, out, dpd)

    def utilisation(self, t: int, client: np.ndarray, util: np.ndarray) -> np.ndarray:
        path, p = self.path[client], self.progress(t)[client]
        r = np.where(path == _FINANCIAL, p, np.where(path == _ARREARS, 0.5 * p, 0.0))
        out = util * (1 - r) + self.util_top[client] * r
        out = np.where((path >= 0) & (t >= self.hit[client] - 2), np.maximum(out, 0.40), out)
        return np.where(path >= 0, out, util)

    def bureau(self, t: int, sel: np.ndarray, frame: pd.DataFrame) -> pd.DataFrame:
        rng = self.rng
        path, p, after = self.path[sel], self.progress(t)[sel], t >= self.hit[sel]
        fin, arr = path == _FINANCIAL, path == _ARREARS
        drop = np.where(fin, self.score_drop[sel] * p**1.5, self.score_drop[sel] * p) + np.where(after, 150, 0)
        f = frame.copy()
        f["bureau_score"] = np.clip(f.bureau_score.to_numpy() - np.round(drop), 300, 900).astype(np.int32)
        neg = fin & (p >= 0.3)
        f["operating_cash_flow"] = np.where(
            neg, np.round(self.revenue[sel] * self.neg_margin[sel], 2), f.operating_cash_flow.to_numpy()
        )
        f["inquiries_6m"] = (
            f.inquiries_6m.to_numpy() + rng.poisson(np.where(fin, 6 * p, np.where(arr, 2 * p, 0.0)))
        ).astype(np.int32)
        f["legal_judgments"] = (
            f.legal_judgments.to_numpy() + rng.poisson(np.where(fin, 1.5 * p, np.where(arr, 0.8 * p, 0.0)))
        ).astype(np.int32)
        de = f.debt_to_equity.to_numpy(dtype=float)
        f["debt_to_equity"] = np.where(fin, np.round(de * (1 + p), 3), de)
        f["defaults_5y"] = (f.defaults_5y.to_numpy() + after).astype(np.int32)
        return f

    def truth(self) -> pd.DataFrame:
        """The answer key: client_id, pathway, first month of the decline, first 90+ dpd month."""
        i = self.defaulters

        def month(idx: np.ndarray) -> list[str]:
            return [str(self.cal.month(int(x))) + "-01" for x in idx]

        return pd.DataFrame(
            {
                "client_id": [f"CL{c + 1:08d}" for c in i],
                "pathway": [PATHWAYS[int(x)] for x in self.path[i]],
                "decline_start_month": month(self.start[i]),
                "first_90_month": month(self.hit[i]),
            }
        )

    def write_truth(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.truth().to_csv(path, index=False)


def plant_defaults(seed: int, pop: Population, cal: Calendar, spec: Defaults) -> DefaultPlan:
    return DefaultPlan(seed, pop, cal, spec)
