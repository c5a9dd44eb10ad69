"""Generator scenarios the segmentation model was not built on (``lendseg generate --scenario NAME``).

The demo (scenario ``demo``, the default) is the portfolio the model was developed on. Every other scenario
differs from it in **structure**, not only in seed (docs/segmentation.md, "Scenarios"):

* 5-9 client archetypes (plus prospects) with a different mix and different profiles;
* >= 30 % of the clients drawn **outside** their archetype's typical industries (the demo: 8 %, partly
  inside): an off-industry client gets a division of any other GB/T 4754 section;
* one distinct small group of 1-2 % of the customers (prospects excluded);
* a different region / size spread; ``thin_file`` has >= 40 % of the customers without a bureau report;
* **planted defaults** (:class:`Defaults`, :func:`plant_defaults`): 5-8 % of the customers, of ANY archetype
  (lower bureau scores more often), first reach 90+ days past due inside the window (or up to 2 months after it)
  after 6-15 months of deterioration along one of three pathways - ``arrears`` (payment-led: late payments that
  grow), ``financial`` (balance-sheet-led: bureau score, utilisation, cash flow, inquiries, judgments; arrears
  only in the last 2 months) and ``abrupt`` (nothing to see until 2 months before). Written independently of the
  demo's ``deteriorating`` archetype (switched off here), from its own random stream.

A scenario is applied by swapping the generator's profile tables for the duration of one ``generate`` call
(:func:`applied`), so the demo's code path and its byte-identical output stay untouched. Judge the model on
seeds 101, 102 and 103 of every scenario; never tune on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from dagster_project.tools.demo import profiles as g
from dagster_project.tools.demo.population import Calendar, Population
from dagster_project.tools.demo.profiles import Profile, _divisions

JUDGING_SEEDS: tuple[int, ...] = (101, 102, 103)
TUNING_SEEDS: tuple[int, ...] = (201, 202)  # the only scenario seeds ever used while developing the model

# Every GB/T 4754-2017 division an off-industry client may get (sections A-S, without J finance: its SME
# size standard differs, and T international organisations).
ALL_DIVISIONS: tuple[str, ...] = (
    _divisions("A", 1, 5)
    + _divisions("B", 6, 12)
    + _divisions("C", 13, 43)
    + _divisions("D", 44, 46)
    + _divisions("E", 47, 50)
    + _divisions("F", 51, 52)
    + _divisions("G", 53, 60)
    + _divisions("H", 61, 62)
    + _divisions("I", 63, 65)
    + ("K70",)
    + _divisions("L", 71, 72)
    + _divisions("M", 73, 75)
    + _divisions("N", 76, 79)
    + _divisions("O", 80, 82)
    + ("P83",)
    + _divisions("Q", 84, 85)
    + _divisions("R", 86, 90)
    + _divisions("S", 91, 96)
)


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


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    profiles: dict[str, Profile]  # must contain "prospect"
    off_industry_share: float  # share of clients drawn outside their archetype's divisions
    small_group: str  # the distinct 1-2 % archetype
    province_weights: dict[int, float] | None = None  # None: the demo's spread
    defaults: Defaults = field(default_factory=lambda: Defaults(0.06, (0.40, 0.40, 0.20)))

    @property
    def archetypes(self) -> tuple[str, ...]:
        return tuple(a for a in self.profiles if a != "prospect")


def _p(
    weight: float,
    divisions: tuple[str, ...],
    employees: tuple[float, float],
    revenue: tuple[float, float],
    age: tuple[float, float],
    score: tuple[float, float],
    util: float,
    de: tuple[float, float],
    coverage: float,
    margin: float,
    products: dict[str, float],
    channels: tuple[float, float, float],
    bureau: float,
    inquiries: float = 1.5,
    judgments: float = 0.2,
    defaults: float = 0.05,
    a2r: float = 1.0,
    interactions: float = 2.0,
    adoption: dict[str, float] | None = None,
) -> Profile:
    return Profile(
        weight=weight,
        divisions=divisions,
        employees=employees,
        revenue=revenue,
        age_years=age,
        score=score,
        util_mean=util,
        assets_to_revenue=a2r,
        debt_to_equity=de,
        coverage=coverage,
        margin=margin,
        products=products,
        adoption=adoption or {},
        channels=channels,
        inquiries=inquiries,
        judgments=judgments,
        defaults=defaults,
        interactions=interactions,
        bureau_share=bureau,
    )


_PROSPECT = g.PROFILES["prospect"]

# Coastal manufacturing belt: Jiangsu, Zhejiang, Guangdong, Shandong, Fujian hold ~80 % of the clients.
_COASTAL = {32: 24.0, 33: 22.0, 44: 18.0, 37: 10.0, 35: 6.0, 31: 4.0, 11: 2.0, 42: 2.0, 51: 2.0, 61: 1.0}
# Central / western book: Sichuan, Chongqing, Henan, Hubei, Hunan, Shaanxi, Yunnan, Guizhou, Gansu, Xinjiang.
_INLAND = {
    51: 16.0,
    50: 12.0,
    41: 12.0,
    42: 10.0,
    43: 9.0,
    61: 9.0,
    53: 7.0,
    52: 6.0,
    62: 5.0,
    65: 5.0,
    45: 4.0,
    64: 2.0,
    63: 2.0,
    54: 1.0,
}

# Metropolitan book: Beijing and Shanghai hold half of the clients.
_METRO = {11: 25.0, 31: 25.0, 44: 15.0, 12: 8.0, 50: 7.0, 51: 6.0, 21: 5.0, 42: 5.0, 61: 4.0}

SCENARIOS: dict[str, Scenario] = {
    "coastal_industry": Scenario(
        "coastal_industry",
        "5 archetypes, manufacturing-heavy coastal book, large firms over-represented; small group: "
        "prime state-owned utilities (1.5 %).",
        {
            "heavy_industry": _p(
                0.30,
                _divisions("C", 25, 37),
                (800, 30000),
                (5e8, 5e10),
                (15, 45),
                (700, 860),
                0.35,
                (0.6, 1.4),
                1.5,
                0.09,
                {"term_loan": 0.9, "project_finance": 0.5, "equipment_leasing": 0.6},
                (0.15, 0.05, 0.80),
                0.97,
                inquiries=1.0,
                defaults=0.02,
                a2r=1.5,
                interactions=4.0,
            ),
            "component_supplier": _p(
                0.25,
                _divisions("C", 38, 43),
                (30, 400),
                (1e7, 2e8),
                (5, 20),
                (640, 760),
                0.60,
                (0.8, 2.0),
                0.8,
                0.06,
                {"revolving_credit": 0.8, "supply_chain_finance": 0.6},
                (0.40, 0.35, 0.25),
                0.90,
                inquiries=2.0,
                defaults=0.06,
            ),
            "export_trader": _p(
                0.20,
                _divisions("F", 51, 52) + ("G55", "G58"),
                (10, 200),
                (3e7, 8e8),
                (4, 25),
                (620, 780),
                0.75,
                (1.0, 2.5),
                0.6,
                0.04,
                {"trade_finance": 0.95, "revolving_credit": 0.5},
                (0.30, 0.55, 0.15),
                0.88,
                inquiries=3.0,
                a2r=0.5,
            ),
            "builder": _p(
                0.125,
                _divisions("E", 47, 50),
                (200, 8000),
                (1e8, 1e10),
                (8, 35),
                (560, 700),
                0.80,
                (2.5, 6.0),
                0.9,
                0.03,
                {"project_finance": 0.8, "term_loan": 0.6},
                (0.40, 0.05, 0.55),
                0.95,
                inquiries=5.0,
                judgments=1.8,
                defaults=0.35,
                a2r=2.2,
                interactions=3.0,
            ),
            "state_utility": _p(
                0.015,
                _divisions("D", 44, 46),
                (3000, 60000),
                (2e10, 2e11),
                (25, 60),
                (820, 900),
                0.15,
                (0.3, 0.7),
                2.5,
                0.15,
                {"project_finance": 1.0, "term_loan": 0.9},
                (0.05, 0.0, 0.95),
                1.0,
                inquiries=0.3,
                judgments=0.0,
                defaults=0.0,
                a2r=3.0,
                interactions=6.0,
            ),
            "prospect": _PROSPECT,
        },
        off_industry_share=0.35,
        small_group="state_utility",
        province_weights=_COASTAL,
        defaults=Defaults(0.05, (0.40, 0.45, 0.15)),
    ),
    "thin_file": Scenario(
        "thin_file",
        "6 archetypes of mostly small inland firms, 45 %+ of the customers without a bureau report; small "
        "group: agricultural cooperatives (1.8 %).",
        {
            "micro_retailer": _p(
                0.26,
                _divisions("F", 51, 52) + _divisions("H", 61, 62),
                (2, 30),
                (2e5, 5e6),
                (1, 12),
                (560, 690),
                0.70,
                (0.5, 2.0),
                0.3,
                0.03,
                {"revolving_credit": 0.9},
                (0.70, 0.25, 0.05),
                0.35,
                inquiries=3.0,
                interactions=1.5,
            ),
            "family_workshop": _p(
                0.20,
                _divisions("C", 13, 24),
                (10, 120),
                (2e6, 5e7),
                (8, 30),
                (600, 740),
                0.50,
                (0.6, 1.6),
                1.0,
                0.05,
                {"term_loan": 0.8, "equipment_leasing": 0.5},
                (0.75, 0.10, 0.15),
                0.45,
                inquiries=1.0,
            ),
            "logistics_sme": _p(
                0.16,
                _divisions("G", 53, 60),
                (20, 400),
                (1e7, 3e8),
                (4, 20),
                (620, 760),
                0.65,
                (1.0, 2.5),
                0.9,
                0.04,
                {"equipment_leasing": 0.8, "revolving_credit": 0.4},
                (0.45, 0.20, 0.35),
                0.55,
                inquiries=2.0,
            ),
            "young_tech": _p(
                0.12,
                _divisions("I", 63, 65) + _divisions("M", 73, 75),
                (5, 80),
                (5e5, 2e7),
                (0.5, 5),
                (580, 720),
                0.85,
                (0.2, 1.2),
                0.2,
                -0.02,
                {"ip_pledge_loan": 0.6, "startup_credit_loan": 0.5},
                (0.10, 0.85, 0.05),
                0.30,
                inquiries=4.0,
                defaults=0.12,
            ),
            "regional_developer": _p(
                0.10,
                ("K70",) + _divisions("E", 47, 48),
                (100, 3000),
                (2e8, 8e9),
                (10, 30),
                (560, 700),
                0.85,
                (3.0, 7.0),
                1.3,
                0.02,
                {"project_finance": 0.9, "term_loan": 0.7},
                (0.30, 0.05, 0.65),
                0.90,
                inquiries=5.0,
                judgments=2.0,
                defaults=0.4,
                a2r=3.0,
            ),
            "agri_coop": _p(
                0.018,
                _divisions("A", 1, 5),
                (30, 300),
                (5e6, 8e7),
                (10, 40),
                (640, 740),
                0.95,
                (0.8, 1.5),
                1.8,
                0.02,
                {"term_loan": 1.0, "supply_chain_finance": 0.8},
                (0.90, 0.0, 0.10),
                0.20,
                inquiries=0.5,
                judgments=0.0,
                a2r=2.5,
                interactions=0.5,
            ),
            "prospect": _PROSPECT,
        },
        off_industry_share=0.35,
        small_group="agri_coop",
        province_weights=_INLAND,
        defaults=Defaults(0.08, (0.50, 0.30, 0.20)),
    ),
    "diversified": Scenario(
        "diversified",
        "8 archetypes across services, health, education, real estate, mining and hospitality, a flatter mix, "
        "a Beijing/Shanghai-heavy book; small group: distressed miners (1.5 %).",
        {
            "hospital_group": _p(
                0.14,
                _divisions("Q", 84, 85),
                (300, 6000),
                (2e8, 5e9),
                (10, 40),
                (720, 850),
                0.30,
                (0.4, 1.0),
                1.4,
                0.08,
                {"term_loan": 0.8, "equipment_leasing": 0.6},
                (0.10, 0.10, 0.80),
                0.97,
                inquiries=0.8,
                defaults=0.01,
                a2r=1.6,
            ),
            "education": _p(
                0.12,
                ("P83",) + _divisions("R", 86, 88),
                (50, 1500),
                (2e7, 6e8),
                (5, 30),
                (680, 800),
                0.45,
                (0.5, 1.2),
                0.7,
                0.06,
                {"revolving_credit": 0.7, "term_loan": 0.4},
                (0.30, 0.50, 0.20),
                0.92,
            ),
            "real_estate": _p(
                0.14,
                ("K70",),
                (50, 4000),
                (1e8, 2e10),
                (5, 30),
                (580, 720),
                0.80,
                (3.0, 8.0),
                1.6,
                0.03,
                {"project_finance": 0.95, "term_loan": 0.5},
                (0.20, 0.05, 0.75),
                0.96,
                inquiries=4.5,
                judgments=1.5,
                defaults=0.3,
                a2r=4.0,
            ),
            "business_services": _p(
                0.16,
                _divisions("L", 71, 72) + _divisions("N", 76, 78),
                (10, 300),
                (3e6, 1e8),
                (3, 20),
                (630, 770),
                0.55,
                (0.6, 1.8),
                0.5,
                0.07,
                {"revolving_credit": 0.8},
                (0.25, 0.60, 0.15),
                0.85,
                inquiries=2.0,
            ),
            "hotel_chain": _p(
                0.10,
                _divisions("H", 61, 62),
                (100, 3000),
                (5e7, 2e9),
                (8, 30),
                (620, 760),
                0.60,
                (1.0, 2.5),
                1.1,
                0.05,
                {"term_loan": 0.7, "revolving_credit": 0.6},
                (0.50, 0.30, 0.20),
                0.92,
                inquiries=2.0,
            ),
            "engineering_firm": _p(
                0.12,
                _divisions("M", 73, 75) + _divisions("C", 34, 35),
                (40, 600),
                (1e7, 3e8),
                (6, 25),
                (660, 790),
                0.45,
                (0.5, 1.3),
                0.9,
                0.09,
                {"term_loan": 0.6, "ip_pledge_loan": 0.5},
                (0.20, 0.30, 0.50),
                0.93,
            ),
            "repair_services": _p(
                0.08,
                _divisions("O", 80, 82) + _divisions("S", 91, 92),
                (3, 60),
                (5e5, 1e7),
                (2, 15),
                (580, 700),
                0.75,
                (0.5, 2.0),
                0.3,
                0.03,
                {"revolving_credit": 0.8},
                (0.65, 0.30, 0.05),
                0.75,
                inquiries=2.5,
            ),
            "distressed_miner": _p(
                0.015,
                _divisions("B", 6, 10),
                (200, 3000),
                (1e8, 3e9),
                (10, 30),
                (480, 580),
                0.97,
                (4.0, 9.0),
                0.5,
                -0.05,
                {"term_loan": 1.0, "project_finance": 0.6},
                (0.30, 0.0, 0.70),
                1.0,
                inquiries=7.0,
                judgments=4.0,
                defaults=1.5,
                a2r=2.5,
            ),
            "prospect": _PROSPECT,
        },
        off_industry_share=0.35,
        small_group="distressed_miner",
        province_weights=_METRO,
        defaults=Defaults(0.06, (0.35, 0.45, 0.20)),
    ),
}
NAMES: tuple[str, ...] = ("demo", *SCENARIOS)

_PATCHED = (
    "PROFILES",
    "ARCHETYPES",
    "_A_STARTUP",
    "_A_DETERIORATING",
    "_A_PROSPECT",
    "_OFF_INDUSTRY_SHARE",
    "_OFF_INDUSTRY_POOL",
    "_PROVINCE_WEIGHTS",
    "_DEFAULTS",
)


@contextmanager
def applied(name: str) -> Iterator[Scenario | None]:
    """Swap the generator's archetype tables (``profiles``) for scenario ``name`` while the block runs (``demo``: no-op)."""
    if name == "demo":
        yield None
        return
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(NAMES)}")
    sc = SCENARIOS[name]
    saved = {a: getattr(g, a) for a in _PATCHED}
    arch = tuple(sc.profiles)
    try:
        g.PROFILES, g.ARCHETYPES = sc.profiles, arch
        g._A_STARTUP = arch.index("young_tech") if "young_tech" in arch else -1  # no startup credit for others
        g._A_DETERIORATING, g._A_PROSPECT = -1, arch.index("prospect")
        g._OFF_INDUSTRY_SHARE, g._OFF_INDUSTRY_POOL = sc.off_industry_share, ALL_DIVISIONS
        g._PROVINCE_WEIGHTS = sc.province_weights
        g._DEFAULTS = partial(plant_defaults, spec=sc.defaults)
        yield sc
    finally:
        for a, v in saved.items():
            setattr(g, a, v)


# ------------------------------------------------------------------------------------------------------------
# planted defaults (the generator calls the plan through its _DEFAULTS hook; the demo never does)
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
