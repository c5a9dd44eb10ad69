"""The demo portfolio: contract columns, geography and naming vocabulary, industry divisions, the planted archetypes.

A scenario (``scenarios.applied``) swaps the archetype tables (``PROFILES``, ``ARCHETYPES``, the archetype
indexes, the off-industry and province settings) on this module while it generates; every other module of the
generator reads them as ``profiles.<NAME>`` at call time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dagster_project.tools.demo.identities import PROVINCES

CLIENT_COLUMNS: tuple[str, ...] = (
    "client_id",
    "legal_name",
    "registration_no",
    "contact_email",
    "contact_phone",
    "industry_code",
    "province_code",
    "registered_capital",
    "employee_count",
    "annual_revenue",
    "total_assets",
    "founded_date",
    "onboarding_date",
    "relationship_status",
    "updated_at",
)


BUREAU_COLUMNS: tuple[str, ...] = (
    "report_id",
    "client_id",
    "report_date",
    "bureau_score",
    "total_debt",
    "overdue_amount",
    "max_days_past_due_12m",
    "defaults_5y",
    "inquiries_6m",
    "collateral_value",
    "operating_cash_flow",
    "debt_service_12m",
    "current_ratio",
    "debt_to_equity",
    "legal_judgments",
)


USAGE_COLUMNS: tuple[str, ...] = (
    "snapshot_month",
    "account_id",
    "client_id",
    "product_code",
    "credit_limit",
    "outstanding_balance",
    "drawdown_amount",
    "repayment_amount",
    "days_past_due",
    "interaction_count",
    "channel",
    "term_months",
    "security_type",
)


PRODUCTS: tuple[str, ...] = (
    "term_loan",
    "revolving_credit",
    "project_finance",
    "trade_finance",
    "ip_pledge_loan",
    "equipment_leasing",
    "supply_chain_finance",
    "startup_credit_loan",
)


CHANNELS: tuple[str, ...] = ("branch", "online", "relationship_manager")


SECURITY_TYPES: tuple[str, ...] = ("unsecured", "guaranteed", "mortgage", "pledge")  # contract v1.1


# Contract v1.1 facility terms per product (catalogue order): the original terms (months) a facility of the product
# is written with (tenors follow the catalogue's tenor_class - short <= 1 year - and its descriptions), and how it is
# secured (担保方式): the share of the product's facilities a bank writes unsecured (信用) for an average borrower, and
# the collateral the product takes otherwise (抵押 mortgage on property or equipment, 质押 pledge of receivables,
# goods or IP). Whether a client borrows unsecured, or against a guarantee (保证) instead of collateral, follows its
# credit standing and size (accounts.facility_terms), as a bank's collateral policy does.
_TERMS: tuple[tuple[int, ...], ...] = (
    (36, 48, 60, 84, 120),  # term_loan
    (12,),  # revolving_credit
    (120, 144, 180, 240),  # project_finance
    (3, 6, 9, 12),  # trade_finance
    (12, 24, 36),  # ip_pledge_loan
    (36, 48, 60),  # equipment_leasing
    (3, 6, 12),  # supply_chain_finance
    (6, 12),  # startup_credit_loan
)
_UNSECURED_SHARE = np.array([0.45, 0.60, 0.0, 0.05, 0.0, 0.0, 0.05, 0.55])
_COLLATERAL = ("mortgage", "mortgage", "mortgage", "pledge", "pledge", "mortgage", "pledge", "guaranteed")


STATUSES: tuple[str, ...] = ("prospect", "active", "dormant", "closed")


ST_PROSPECT, ST_ACTIVE, ST_DORMANT, ST_CLOSED = range(4)


_PRODUCT_INDEX = {p: i for i, p in enumerate(PRODUCTS)}


_CHANNEL_INDEX = {c: i for i, c in enumerate(CHANNELS)}


# Scheduled monthly repayment as a share of the previous balance, per product.
_AMORTISATION = np.array([0.02, 0.10, 0.01, 0.20, 0.03, 0.025, 0.25, 0.05])


# Credit limit as a share of annual revenue, per product.
_LIMIT_FACTOR = np.array([0.25, 0.10, 0.40, 0.12, 0.15, 0.15, 0.08, 0.30])


# Probability of holding a product outside the archetype's typical mix.
_OFF_PROFILE_HOLDING = 0.05


# Share of firms outside their archetype's typical industries. Demo: 8 %, drawn from the prospect mix
# (partly inside); a scenario (scenarios.py) sets a pool of divisions and draws outside the archetype's own.
_OFF_INDUSTRY_SHARE = 0.08


_OFF_INDUSTRY_POOL: tuple[str, ...] | None = None


_PROVINCE_WEIGHTS: dict[int, float] | None = None  # scenario override of the province weights
# Scenario hook (scenarios.py, "planted defaults"): ``_DEFAULTS(seed, pop, cal)`` returns a plan with
# ``arrears`` / ``utilisation`` / ``bureau`` / ``write_truth``; None for the demo (its defaulters are the
# ``deteriorating`` archetype). The plan draws from its own random stream, never from the generator's.
_DEFAULTS: Any = None


PROVINCE_CODES: tuple[int, ...] = tuple(PROVINCES)


def _divisions(section: str, lo: int, hi: int) -> tuple[str, ...]:
    """GB/T 4754-2017 division codes ``section`` + lo..hi, e.g. ``C13``..``C43``."""
    return tuple(f"{section}{d:02d}" for d in range(lo, hi + 1))


@dataclass(frozen=True)
class Profile:
    """Generative parameters of one planted archetype."""

    weight: float
    divisions: tuple[str, ...]
    employees: tuple[float, float]
    revenue: tuple[float, float]
    age_years: tuple[float, float]
    score: tuple[float, float]
    util_mean: float
    assets_to_revenue: float
    debt_to_equity: tuple[float, float]
    coverage: float  # median collateral value / total debt
    margin: float  # median operating cash-flow margin
    products: dict[str, float] = field(default_factory=dict)  # holding probabilities
    # preferred new products; only catalogue-eligible ones are planted (see _eligible_products)
    adoption: dict[str, float] = field(default_factory=dict)
    channels: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    inquiries: float = 1.5
    judgments: float = 0.2
    defaults: float = 0.05
    interactions: float = 2.0
    bureau_share: float = 0.9


_TECH_DIVS = _divisions("I", 63, 65) + ("M73", "M75", "C39")


_SERVICE_DIVS = (
    _divisions("F", 51, 52) + _divisions("G", 53, 60) + _divisions("H", 61, 62) + ("K70",) + _divisions("L", 71, 72)
)


_RISKY_DIVS = _divisions("E", 47, 50) + _divisions("B", 6, 12) + _divisions("D", 44, 46)


PROFILES: dict[str, Profile] = {
    "large_manufacturer": Profile(
        weight=0.16,
        divisions=_divisions("C", 13, 43),
        employees=(1000, 20000),
        revenue=(4e8, 2e10),
        age_years=(10, 40),
        score=(720, 880),
        util_mean=0.30,
        assets_to_revenue=1.3,
        debt_to_equity=(0.4, 1.2),
        coverage=1.6,
        margin=0.10,
        products={
            "term_loan": 0.85,
            "project_finance": 0.45,
            "equipment_leasing": 0.55,
            "trade_finance": 0.50,
            "revolving_credit": 0.25,
        },
        adoption={"project_finance": 0.5, "trade_finance": 0.5},
        channels=(0.20, 0.08, 0.72),
        inquiries=1.0,
        judgments=0.1,
        defaults=0.02,
        interactions=4.0,
        bureau_share=0.97,
    ),
    "tech_sme": Profile(
        weight=0.15,
        divisions=_TECH_DIVS,
        employees=(20, 300),
        revenue=(5e6, 8e7),
        age_years=(3, 12),
        score=(620, 760),
        util_mean=0.50,
        assets_to_revenue=0.7,
        debt_to_equity=(0.3, 1.0),
        coverage=0.8,
        margin=0.08,
        products={"ip_pledge_loan": 0.70, "revolving_credit": 0.60, "term_loan": 0.15},
        adoption={"ip_pledge_loan": 0.6, "trade_finance": 0.4},
        channels=(0.20, 0.45, 0.35),
        inquiries=2.0,
        judgments=0.1,
        defaults=0.05,
        interactions=2.0,
        bureau_share=0.90,
    ),
    "startup": Profile(
        weight=0.14,
        divisions=(
            _divisions("I", 63, 65)
            + _divisions("M", 73, 75)
            + _divisions("F", 51, 52)
            + _divisions("L", 71, 72)
            + ("C39", "C40")
        ),
        employees=(3, 40),
        revenue=(3e5, 5e6),
        age_years=(0.35, 2.9),
        score=(560, 700),
        util_mean=0.80,
        assets_to_revenue=0.9,
        debt_to_equity=(0.2, 1.5),
        coverage=0.3,
        margin=0.0,
        products={"startup_credit_loan": 1.0, "ip_pledge_loan": 0.10},
        adoption={"ip_pledge_loan": 1.0},
        channels=(0.15, 0.70, 0.15),
        inquiries=3.0,
        judgments=0.05,
        defaults=0.10,
        interactions=1.0,
        bureau_share=0.70,
    ),
    "mature_service": Profile(
        weight=0.16,
        divisions=_SERVICE_DIVS,
        employees=(50, 800),
        revenue=(2e7, 6e8),
        age_years=(8, 30),
        score=(660, 800),
        util_mean=0.50,
        assets_to_revenue=0.8,
        debt_to_equity=(0.6, 1.8),
        coverage=1.2,
        margin=0.07,
        products={"revolving_credit": 0.80, "trade_finance": 0.50, "supply_chain_finance": 0.35, "term_loan": 0.25},
        adoption={"supply_chain_finance": 0.6, "trade_finance": 0.25, "equipment_leasing": 0.15},
        channels=(0.55, 0.20, 0.25),
        inquiries=1.5,
        judgments=0.2,
        defaults=0.05,
        interactions=2.0,
        bureau_share=0.92,
    ),
    "high_risk_industry": Profile(
        weight=0.12,
        divisions=_RISKY_DIVS,
        employees=(100, 5000),
        revenue=(5e7, 5e9),
        age_years=(5, 30),
        score=(560, 720),
        util_mean=0.70,
        assets_to_revenue=2.0,
        debt_to_equity=(2.0, 5.0),
        coverage=0.95,
        margin=0.05,
        products={"project_finance": 0.70, "term_loan": 0.70, "equipment_leasing": 0.50},
        adoption={"equipment_leasing": 0.6, "project_finance": 0.4},
        channels=(0.35, 0.10, 0.55),
        inquiries=4.0,
        judgments=1.2,
        defaults=0.30,
        interactions=3.0,
        bureau_share=0.95,
    ),
    "deteriorating": Profile(
        weight=0.09,
        divisions=(_divisions("C", 30, 36) + _divisions("F", 51, 52) + ("G54", "I64", "I65", "L72", "M75")),
        employees=(20, 800),
        revenue=(1e7, 3e8),
        age_years=(6, 25),
        score=(650, 770),
        util_mean=0.55,
        assets_to_revenue=0.9,
        debt_to_equity=(0.8, 1.6),
        coverage=1.0,
        margin=0.08,
        products={"revolving_credit": 0.85, "term_loan": 0.50, "trade_finance": 0.35, "supply_chain_finance": 0.30},
        adoption={"revolving_credit": 1.0},
        channels=(0.45, 0.20, 0.35),
        inquiries=2.0,
        judgments=0.2,
        defaults=0.05,
        interactions=2.0,
        bureau_share=0.97,
    ),
    "prospect": Profile(
        weight=0.18,
        divisions=_divisions("C", 13, 43) + _TECH_DIVS + _SERVICE_DIVS + _RISKY_DIVS,
        employees=(5, 3000),
        revenue=(1e6, 2e9),
        age_years=(1, 30),
        score=(580, 800),
        util_mean=0.0,
        assets_to_revenue=1.0,
        debt_to_equity=(0.3, 2.5),
        coverage=1.0,
        margin=0.06,
        channels=(0.40, 0.40, 0.20),
        inquiries=2.5,
        judgments=0.3,
        defaults=0.08,
        interactions=0.5,
        bureau_share=0.40,
    ),
}


ARCHETYPES: tuple[str, ...] = tuple(PROFILES)


_A_STARTUP = ARCHETYPES.index("startup")


_A_DETERIORATING = ARCHETYPES.index("deteriorating")


_A_PROSPECT = ARCHETYPES.index("prospect")


def _profile_array(attr: str) -> np.ndarray:
    """Stack one scalar/tuple profile attribute into an array indexed by archetype."""
    return np.array([getattr(PROFILES[a], attr) for a in ARCHETYPES], dtype=float)


def _profile_bounds(attr: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) arrays indexed by archetype from a ``tuple[float, float]`` attribute."""
    pairs = np.array([getattr(PROFILES[a], attr) for a in ARCHETYPES], dtype=float)
    return pairs[:, 0], pairs[:, 1]


def _profile_matrix(attr: str) -> np.ndarray:
    """(archetype x product) matrix from a ``dict[product, float]`` profile attribute."""
    mat = np.zeros((len(ARCHETYPES), len(PRODUCTS)))
    for i, a in enumerate(ARCHETYPES):
        for prod, p in getattr(PROFILES[a], attr).items():
            mat[i, _PRODUCT_INDEX[prod]] = p
    return mat
