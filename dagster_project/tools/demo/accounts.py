"""Accounts: which catalogue products a client holds, within the catalogue's eligibility rules."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dagster_project.tools.demo import profiles as pf
from dagster_project.tools.demo.draws import _sample_rows
from dagster_project.tools.demo.population import Calendar, Population
from dagster_project.tools.demo.profiles import (
    _LIMIT_FACTOR,
    _OFF_PROFILE_HOLDING,
    _PRODUCT_INDEX,
    PRODUCTS,
    ST_CLOSED,
    ST_DORMANT,
    _divisions,
    _profile_array,
    _profile_matrix,
)


@dataclass
class Accounts:
    client: np.ndarray  # 0-based client index
    product: np.ndarray
    open_idx: np.ndarray
    end_idx: np.ndarray  # exclusive
    limit: np.ndarray
    base_util: np.ndarray
    term_months: np.ndarray | None = None  # contract v1.1 facility terms (facility_terms), per account
    security: np.ndarray | None = None  # index into profiles.SECURITY_TYPES

    @property
    def n(self) -> int:
        return len(self.client)


def _plausible_products(arch: np.ndarray) -> np.ndarray:
    """(client x product) mask of products that may appear as off-profile noise.

    Startup credit loans stay reserved to young firms; startups never get project finance.
    """
    mask = np.ones((len(arch), len(PRODUCTS)), dtype=bool)
    mask[:, _PRODUCT_INDEX["startup_credit_loan"]] = False
    mask[arch == pf._A_STARTUP, _PRODUCT_INDEX["project_finance"]] = False
    return mask


_SIZE_CLASSES: tuple[str, ...] = ("micro", "small", "medium", "large")  # rank 0..3


_GRADES: tuple[str, ...] = ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8")  # order 1..8


_STAGES: tuple[str, ...] = ("startup", "growth", "established")


# product -> (min_size_class, excluded_risk_classes, min_rating_grade, firm_stages_served, secured)
_CATALOGUE: dict[str, tuple[str, tuple[str, ...], str, tuple[str, ...], bool]] = {
    "term_loan": ("large", (), "R3", ("established",), False),
    "revolving_credit": ("medium", ("high",), "R4", ("growth", "established"), False),
    "project_finance": ("large", (), "R4", ("established",), True),
    "trade_finance": ("small", (), "R5", ("growth", "established"), True),
    "ip_pledge_loan": ("micro", (), "R6", ("startup", "growth"), True),
    "equipment_leasing": ("small", (), "R5", ("growth", "established"), True),
    "supply_chain_finance": ("micro", (), "R6", ("growth", "established"), True),
    "startup_credit_loan": ("micro", ("high",), "R6", ("startup",), False),
}


_HIGH_RISK_SECTIONS: tuple[str, ...] = ("B", "D", "E")


_HIGH_RISK_FLOOR = 3  # R3: floor grade for unsecured products in high risk-class industries


_UNRATED_ORDER = 6  # unrated clients are assessed as R6


_SCORE_MIN = np.array([850, 800, 750, 700, 650, 600, 550, 300])  # R1..R8 lower bounds


# Bureau scores carry report noise (sd 12) the generator draws later: grade conservatively.
_SCORE_MARGIN = 15.0


# 2011 SME standard: group -> (measure_a, measure_b, sme_ceiling a/b, medium_min a/b, small_min a/b)
_SME_GROUPS: dict[str, tuple[str, str | None, float, float, float, float, float, float]] = {
    "agriculture": ("revenue", None, 2e8, np.nan, 5e6, np.nan, 5e5, np.nan),
    "industry": ("employees", "revenue", 1000, 4e8, 300, 2e7, 20, 3e6),
    "construction": ("revenue", "total_assets", 8e8, 8e8, 6e7, 5e7, 3e6, 3e6),
    "wholesale": ("employees", "revenue", 200, 4e8, 20, 5e7, 5, 1e7),
    "retail": ("employees", "revenue", 300, 2e8, 50, 5e6, 10, 1e6),
    "transport": ("employees", "revenue", 1000, 3e8, 300, 3e7, 20, 2e6),
    "warehousing": ("employees", "revenue", 200, 3e8, 100, 1e7, 20, 1e6),
    "postal": ("employees", "revenue", 1000, 3e8, 300, 2e7, 20, 1e6),
    "accommodation": ("employees", "revenue", 300, 1e8, 100, 2e7, 10, 1e6),
    "catering": ("employees", "revenue", 300, 1e8, 100, 2e7, 10, 1e6),
    "information_transmission": ("employees", "revenue", 2000, 1e9, 100, 1e7, 10, 1e6),
    "software_it": ("employees", "revenue", 300, 1e8, 100, 1e7, 10, 5e5),
    "real_estate_development": ("revenue", "total_assets", 2e9, 1e8, 1e7, 5e7, 1e6, 2e7),
    "property_management": ("employees", "revenue", 1000, 5e7, 300, 1e7, 100, 5e6),
    "leasing_business_services": ("employees", "total_assets", 300, 1.2e9, 100, 8e7, 10, 1e6),
    "other_unlisted": ("employees", None, 300, np.nan, 100, np.nan, 10, np.nan),
}


# Longest-prefix placement of GB/T 4754-2017 codes into SME groups (seed industry_divisions).
_GROUP_PREFIXES: dict[str, str] = {
    **{s: "other_unlisted" for s in "FJKMNOPQRST"},
    "A": "agriculture",
    "B": "industry",
    "C": "industry",
    "D": "industry",
    "E": "construction",
    "G": "warehousing",
    "H": "accommodation",
    "I": "software_it",
    "L": "leasing_business_services",
    **{d: "agriculture" for d in _divisions("A", 1, 5)},
    **{d: "industry" for d in _divisions("B", 6, 12) + _divisions("C", 13, 43) + _divisions("D", 44, 46)},
    **{d: "construction" for d in _divisions("E", 47, 50)},
    "F51": "wholesale",
    "F52": "retail",
    "G53": "other_unlisted",
    **{d: "transport" for d in _divisions("G", 54, 58)},
    "G59": "warehousing",
    "G5910": "transport",
    "G60": "postal",
    "H61": "accommodation",
    "H62": "catering",
    "I63": "information_transmission",
    "I64": "information_transmission",
    "I65": "software_it",
    "K70": "other_unlisted",
    "K7010": "real_estate_development",
    "K7020": "property_management",
    **{d: "leasing_business_services" for d in _divisions("L", 71, 72)},
}


def _sme_groups(industry: np.ndarray) -> np.ndarray:
    """SME-standard group of each industry code by longest matching prefix ('' = none)."""
    codes = pd.Series(np.asarray(industry, dtype=str))
    group = pd.Series("", index=codes.index, dtype=object)
    for width in (1, 3, 5):  # section, division, class (longer prefixes win)
        hit = codes.str.slice(0, width).map(_GROUP_PREFIXES)
        group = hit.where(hit.notna() & (codes.str.len() >= width), group)
    return group.to_numpy(dtype=str)


def _size_rank(industry: np.ndarray, employees: np.ndarray, revenue: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """2011 SME size class rank (0 micro .. 3 large; -1 unknown), as int_clients_size_classified."""
    group = _sme_groups(industry)
    values = {"employees": employees, "revenue": revenue, "total_assets": assets}
    rank = np.full(len(group), -1, dtype=np.int64)
    for name, (ma, mb, ca, cb, mda, mdb, sa, sb) in _SME_GROUPS.items():
        sel = group == name
        a = values[ma]
        b = values[mb] if mb is not None else np.zeros(len(group))
        known = ~np.isnan(a) & (a >= 0) & ~np.isnan(b) & (b >= 0)
        lim_b = (lambda x: np.full(len(group), True)) if mb is None else (lambda x: b >= x)  # noqa: B023 - called in this iteration
        r = np.where(
            (a >= ca) & lim_b(cb), 3, np.where((a >= mda) & lim_b(mdb), 2, np.where((a >= sa) & lim_b(sb), 1, 0))
        )
        rank = np.where(sel & known, r, rank)
    # Financial firms (section J) fall under the 2015 standard: size unknown.
    return np.where(np.strings.slice(np.asarray(industry, dtype=str), 0, 1) == "J", -1, rank)


def _firm_stage(founded: np.ndarray, cal: Calendar, t: int) -> np.ndarray:
    """Firm stage index (0 startup, 1 growth, 2 established; -1 not founded) at the end of month t."""
    last = cal.month_end(t)
    fm = founded.astype("datetime64[M]")
    day = (founded - fm.astype("datetime64[D]")).astype(np.int64)
    last_day = int((last - last.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64))
    age = (cal.month(t) - fm).astype(np.int64) - (day > last_day)
    return np.where(founded > last, -1, np.where(age < 36, 0, np.where(age < 120, 1, 2)))


def _eligible_products(
    pop: Population, cal: Calendar, industry: np.ndarray, employees: np.ndarray, revenue: np.ndarray
) -> np.ndarray:
    """(client x product) catalogue eligibility of a product opened in the last 6 months.

    What the warehouse will see: size class from the CRM firmographics (missing measures ->
    unknown -> micro-min products only); firm stage served both at the 6-month cutoff of the
    time-split evaluation (young firms founded later count as start-ups) and at end_month;
    rating grade of the latest bureau report on or before the cutoff (base score minus a noise
    margin; no report -> unrated, assessed as R6; possibly no report -> the worse of both);
    high risk class (sections B, D, E) excluded where the catalogue says so and no unsecured
    product below R3.  Deteriorating clients never adopt, so the default override is ignored.
    """
    k = len(PRODUCTS)
    cut = max(cal.months - 7, 0)
    size = _size_rank(industry, employees.astype(float), revenue.astype(float), pop.assets.astype(float))
    stage_cut = np.maximum(_firm_stage(pop.founded, cal, cut), 0)
    stage_end = _firm_stage(pop.founded, cal, cal.months - 1)
    score_order = 1 + (pop.base_score - _SCORE_MARGIN < _SCORE_MIN[:, None]).sum(axis=0)
    score_order = np.minimum(score_order, 8)
    quarters = [t for t in range(cut + 1) if cal.month(t).astype(object).month % 3 == 0]
    if quarters:
        q = quarters[-1]
        sure = pop.has_bureau & (pop.founded <= cal.month_start(q) - np.timedelta64(180, "D"))
        maybe = pop.has_bureau & (pop.founded <= cal.month_end(q) - np.timedelta64(180, "D"))
    else:
        sure = maybe = np.zeros(pop.n, dtype=bool)
    grade = np.where(sure, score_order, np.where(maybe, np.maximum(score_order, _UNRATED_ORDER), _UNRATED_ORDER))
    high = np.isin(np.strings.slice(np.asarray(industry, dtype=str), 0, 1), _HIGH_RISK_SECTIONS)
    ok = np.zeros((pop.n, k), dtype=bool)
    for j, prod in enumerate(PRODUCTS):  # column loop over the 8 products, never over rows
        min_size, excluded, min_grade, stages, secured = _CATALOGUE[prod]
        min_rank = _SIZE_CLASSES.index(min_size)
        size_ok = (size >= min_rank) | ((size < 0) & (min_rank == 0))
        served = np.array([s in stages for s in _STAGES])
        col = size_ok & (grade <= _GRADES.index(min_grade) + 1)
        col &= served[stage_cut] & (stage_end >= 0) & served[np.maximum(stage_end, 0)]
        if "high" in excluded:
            col &= ~high
        if not secured:
            col &= ~high | (grade <= _HIGH_RISK_FLOOR)
        ok[:, j] = col
    return ok


def _holdings(
    rng: np.random.Generator, pop: Population, eligible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (client x product) holdings before the window end and new-product flags.

    ``eligible`` (client x product, see :func:`_eligible_products`) restricts planted new
    products to the catalogue eligibility; adopters without an eligible product do not adopt.
    """
    n, k = pop.n, len(PRODUCTS)
    plausible = _plausible_products(pop.arch)
    hold_p = _profile_matrix("products")[pop.arch]
    # Occasional off-profile products; prospects hold nothing.
    hold_p = np.maximum(hold_p, np.where(plausible, _OFF_PROFILE_HOLDING, 0.0))
    hold_p[pop.arch == pf._A_PROSPECT] = 0.0
    held = rng.random((n, k)) < hold_p
    # New product for adopters, only among plausible products the client is eligible for:
    # archetype preference, ~25 % random (also when no preferred product is eligible).
    grantable = plausible if eligible is None else plausible & eligible
    pref = _profile_matrix("adoption")[pop.arch] * grantable
    pref = np.where(pref.sum(axis=1, keepdims=True) > 0, pref, grantable)
    target = np.where(rng.random(n) < 0.25, _sample_rows(rng, grantable.astype(float)), _sample_rows(rng, pref))
    adopter = pop.adopter & grantable.any(axis=1)
    new = np.zeros((n, k), dtype=bool)
    new[adopter, target[adopter]] = True
    held &= ~new
    # Every customer (non-prospect) holds at least one pre-existing product.
    empty = ~held.any(axis=1) & (pop.arch != pf._A_PROSPECT)
    fallback = np.argmax(np.where(new, -1.0, hold_p + 1e-3), axis=1)
    held[empty, fallback[empty]] = True
    return held, new


def _make_accounts(
    rng: np.random.Generator, pop: Population, months: int, eligible: np.ndarray | None = None
) -> Accounts:
    held, new = _holdings(rng, pop, eligible)
    client, product = np.nonzero(held | new)
    is_new = new[client, product]
    onb = pop.onb_idx[client]
    # Pre-existing accounts open between onboarding and 7 months before end_month.
    upper = np.where(onb <= months - 7, months - 7, onb)
    offset = (rng.random(len(client)) * (upper - onb + 1)).astype(np.int64)
    first = np.full(pop.n, np.iinfo(np.int64).max)
    np.minimum.at(first, client[~is_new], offset[~is_new])
    open_idx = onb + offset - np.where(is_new, 0, first[client])
    open_idx = np.where(is_new, np.maximum(rng.integers(months - 6, months, len(client)), onb), open_idx)
    dormant = pop.status[client] == ST_DORMANT
    open_idx = np.where(dormant, np.minimum(open_idx, pop.dormant_from[client] - 1), open_idx)
    end_idx = np.where(pop.status[client] == ST_CLOSED, pop.closed_at[client], 10**6)
    limit = pop.revenue[client] * _LIMIT_FACTOR[product] * rng.lognormal(0, 0.35, len(client))
    limit = np.maximum(np.round(limit, -4), 5e4)
    m = np.clip(_profile_array("util_mean")[pop.arch[client]], 0.05, 0.95)
    base_util = rng.beta(m * 12, (1 - m) * 12)
    return Accounts(
        client=client,
        product=product.astype(np.int8),
        open_idx=open_idx,
        end_idx=end_idx,
        limit=limit,
        base_util=base_util,
    )


def facility_terms(seed: int, acc: Accounts, employees: np.ndarray, base_score: np.ndarray) -> Accounts:
    """The account's original term and security type (contract v1.1), from their own random stream.

    Drawn from ``default_rng([seed, 1])`` so every other value of the data set is what it was before v1.1. Term: one
    of the product's usual tenors (profiles._TERMS). Security, as a bank's collateral policy decides it: a client's
    standing (bureau-score level and size, plus its own noise) is one number for all its accounts; a product that
    may be unsecured is written unsecured for the stronger clients (profiles._UNSECURED_SHARE of an average one),
    else against the product's collateral (profiles._COLLATERAL) - or a guarantee, the weaker the client the likelier.
    """
    rng = np.random.default_rng([seed, 1])
    n = len(employees)
    size = np.log10(np.nan_to_num(np.asarray(employees, dtype=float), nan=50.0).clip(1, None))
    standing = (np.asarray(base_score, dtype=float) - 680.0) / 60.0 + (size - 2.0) / 1.5 + rng.normal(0, 0.6, n)
    u_unsecured, u_guarantee = rng.random(n), rng.random(n)
    s = standing[acc.client]
    prod = acc.product.astype(np.int64)
    share = pf._UNSECURED_SHARE[prod]
    logit = np.log(np.clip(share, 1e-6, None) / np.clip(1 - share, 1e-6, None))
    unsecured = (share > 0) & (u_unsecured[acc.client] < 1 / (1 + np.exp(-(logit + 1.5 * s))))
    guaranteed = u_guarantee[acc.client] < 1 / (1 + np.exp(1.5 + 1.5 * s))
    collateral = np.array([pf.SECURITY_TYPES.index(c) for c in pf._COLLATERAL])[prod]
    security = np.where(unsecured, 0, np.where(guaranteed, pf.SECURITY_TYPES.index("guaranteed"), collateral))
    acc.term_months, acc.security = _pick_terms(rng, acc.product), security.astype(np.int8)
    return acc


def _pick_terms(rng: np.random.Generator, product: np.ndarray) -> np.ndarray:
    """One of each product's tenors, uniformly (vectorised over accounts)."""
    sizes = np.array([len(t) for t in pf._TERMS])
    table = np.zeros((len(pf._TERMS), sizes.max()), dtype=np.int64)
    for i, t in enumerate(pf._TERMS):
        table[i, : len(t)] = t
    prod = product.astype(np.int64)
    return table[prod, (rng.random(len(prod)) * sizes[prod]).astype(np.int64)]
