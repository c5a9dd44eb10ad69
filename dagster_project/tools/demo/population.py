"""The client population: latent state per client (archetype, firmographics, dates, risk) and the client file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from dagster_project.tools.demo import identities as ident
from dagster_project.tools.demo import profiles as pf
from dagster_project.tools.demo.draws import _loguniform, _month64, _round_money, _sample_rows
from dagster_project.tools.demo.profiles import (
    PROVINCE_CODES,
    ST_ACTIVE,
    ST_CLOSED,
    ST_DORMANT,
    ST_PROSPECT,
    STATUSES,
    _profile_array,
    _profile_bounds,
)


@dataclass
class Calendar:
    """Month window: index 0 = first month, ``months - 1`` = ``end_month``."""

    end_month: date
    months: int

    @property
    def start(self) -> np.datetime64:
        return _month64(self.end_month) - (self.months - 1)

    def month(self, t: int) -> np.datetime64:
        return self.start + t

    def month_start(self, t: int) -> np.datetime64:
        return self.month(t).astype("datetime64[D]")

    def month_end(self, t: int) -> np.datetime64:
        return (self.month(t) + 1).astype("datetime64[D]") - 1

    def index_of(self, days: np.ndarray) -> np.ndarray:
        """Month index of datetime64[D] values."""
        return (days.astype("datetime64[M]") - self.start).astype(np.int64)


@dataclass
class Population:
    """Latent per-client attributes; arrays are aligned with client number - 1."""

    arch: np.ndarray
    employees: np.ndarray
    revenue: np.ndarray
    assets: np.ndarray
    capital: np.ndarray
    province: np.ndarray
    founded: np.ndarray  # datetime64[D]
    onboarding: np.ndarray  # datetime64[D], NaT for prospects
    onb_idx: np.ndarray  # month index of onboarding (huge for prospects)
    status: np.ndarray
    dormant_from: np.ndarray  # month index from which dormant clients are inactive
    closed_at: np.ndarray  # month index at which closed clients' accounts end
    adopter: np.ndarray
    has_bureau: np.ndarray
    base_score: np.ndarray
    debt_to_equity: np.ndarray
    coverage: np.ndarray
    margin: np.ndarray
    current_ratio: np.ndarray
    defaults: np.ndarray
    primary_channel: np.ndarray
    distress_start: np.ndarray  # deteriorating: month the decline starts
    distress_hit: np.ndarray  # deteriorating: month dpd first reaches 90+
    score_drop: np.ndarray
    util_top: np.ndarray

    @property
    def n(self) -> int:
        return len(self.arch)

    @property
    def is_det(self) -> np.ndarray:
        return self.arch == pf._A_DETERIORATING

    def progress(self, t: int) -> np.ndarray:
        """Distress progress in [0, 1] at month ``t`` (0 for healthy clients)."""
        span = np.maximum(self.distress_hit - self.distress_start, 1)
        p = np.clip((t - self.distress_start) / span, 0.0, 1.0)
        return np.where(self.is_det, p, 0.0)

    def score(self, t: int) -> np.ndarray:
        return self.base_score - self.score_drop * self.progress(t) ** 1.2


def _draw_archetypes(rng: np.random.Generator, n: int) -> np.ndarray:
    w = _profile_array("weight")
    return rng.choice(len(pf.ARCHETYPES), size=n, p=w / w.sum()).astype(np.int8)


def _firmographics(rng: np.random.Generator, arch: np.ndarray) -> dict[str, np.ndarray]:
    """Size, revenue, assets, capital: revenue rises with headcount (log-linear + noise)."""
    emp_lo, emp_hi = _profile_bounds("employees")
    rev_lo, rev_hi = _profile_bounds("revenue")
    elo, ehi, rlo, rhi = emp_lo[arch], emp_hi[arch], rev_lo[arch], rev_hi[arch]
    core = _loguniform(rng, elo, ehi)
    pos = (np.log(core) - np.log(elo)) / (np.log(ehi) - np.log(elo))
    # Headcount reported with noise around the size class (realistic overlap).
    employees = np.maximum(np.round(core * rng.lognormal(0, 0.25, len(arch))), 1)
    log_rev = np.log(rlo) + pos * (np.log(rhi) - np.log(rlo)) + rng.normal(0, 0.35, len(arch))
    revenue = np.exp(np.clip(log_rev, np.log(rlo), np.log(rhi)))
    assets = revenue * _profile_array("assets_to_revenue")[arch] * rng.lognormal(0, 0.3, len(arch))
    capital = np.maximum(np.round(assets * rng.uniform(0.05, 0.4, len(arch)), -4), 1e4)
    return {
        "employees": employees,
        "revenue": _round_money(revenue),
        "assets": _round_money(assets),
        "capital": capital,
    }


def _dates(rng: np.random.Generator, arch: np.ndarray, cal: Calendar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Founded date, onboarding date (NaT for prospects) and onboarding month index."""
    n = len(arch)
    ref = cal.month_start(cal.months - 1)
    age_lo, age_hi = _profile_bounds("age_years")
    age_days = (rng.uniform(age_lo[arch], age_hi[arch]) * 365.25).astype(np.int64)
    founded = ref - age_days.astype("timedelta64[D]")
    # Onboard before the last 6 months unless the firm is too young for that.
    latest = np.full(n, cal.month_start(cal.months - 7))
    latest = np.where(latest - founded < np.timedelta64(60, "D"), ref, latest)
    span = np.maximum((latest - founded).astype(np.int64), 0)
    frac = rng.uniform(0.02, 1.0, n)
    onboarding = founded + (frac * span).astype(np.int64).astype("timedelta64[D]")
    prospect = arch == pf._A_PROSPECT
    onboarding = np.where(prospect, np.datetime64("NaT"), onboarding)
    onb_idx = np.where(prospect, 10**6, cal.index_of(np.where(prospect, ref, onboarding)))
    return founded, onboarding, onb_idx


def _statuses(
    rng: np.random.Generator, arch: np.ndarray, onb_idx: np.ndarray, months: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Relationship status, dormancy start, closure month and product adopters."""
    n = len(arch)
    status = np.full(n, ST_ACTIVE, dtype=np.int8)
    status[arch == pf._A_PROSPECT] = ST_PROSPECT
    eligible = (arch != pf._A_PROSPECT) & (arch != pf._A_DETERIORATING) & (onb_idx <= months - 7)
    r = rng.random(n)
    status[eligible & (r < 0.06)] = ST_DORMANT
    status[eligible & (r >= 0.06) & (r < 0.10)] = ST_CLOSED
    dormant_from = months - rng.integers(6, 11, n)
    dormant_from = np.clip(np.maximum(dormant_from, onb_idx + 1), None, months - 6)
    closed_at = np.maximum(rng.integers(-3, months - 1, n), onb_idx + 1)
    closed_at = np.where(status == ST_CLOSED, closed_at, 10**6)
    # ~31 % flagged; flagged clients without an eligible product do not adopt (~25 % of active).
    adopter = (status == ST_ACTIVE) & (arch != pf._A_DETERIORATING) & (rng.random(n) < 0.31)
    return status, dormant_from, closed_at, adopter


def _risk_parameters(rng: np.random.Generator, arch: np.ndarray) -> dict[str, np.ndarray]:
    n = len(arch)
    s_lo, s_hi = _profile_bounds("score")
    d_lo, d_hi = _profile_bounds("debt_to_equity")
    base_score = rng.uniform(s_lo[arch], s_hi[arch])
    de = rng.uniform(d_lo[arch], d_hi[arch])
    coverage = _profile_array("coverage")[arch] * rng.lognormal(0, 0.25, n)
    margin = _profile_array("margin")[arch] + rng.normal(0, 0.03, n)
    current_ratio = np.where(de > 2, 1.0, 1.5) * rng.lognormal(0, 0.25, n)
    defaults = rng.poisson(_profile_array("defaults")[arch])
    has_bureau = rng.random(n) < _profile_array("bureau_share")[arch]
    chan_p = np.array([pf.PROFILES[a].channels for a in pf.ARCHETYPES])
    primary_channel = _sample_rows(rng, chan_p[arch]).astype(np.int8)
    return {
        "base_score": base_score,
        "debt_to_equity": de,
        "coverage": coverage,
        "margin": margin,
        "current_ratio": current_ratio,
        "defaults": defaults,
        "has_bureau": has_bureau,
        "primary_channel": primary_channel,
    }


def _distress_parameters(rng: np.random.Generator, arch: np.ndarray, months: int) -> dict[str, np.ndarray]:
    """Timing of the deteriorating archetype: hit month (90+ dpd) and decline start."""
    n = len(arch)
    r = rng.random(n)
    hit = np.where(
        r < 0.62,
        rng.integers(months - 6, months, n),  # within the last 6 months
        np.where(
            r < 0.87,
            rng.integers(months - 12, months - 6, n),  # earlier
            rng.integers(months, months + 3, n),
        ),
    )  # not yet at 90+ by end_month
    start = hit - rng.integers(9, 16, n)
    is_det = arch == pf._A_DETERIORATING
    return {
        "distress_hit": np.where(is_det, hit, 10**6),
        "distress_start": np.where(is_det, start, 10**6),
        "score_drop": np.where(is_det, rng.uniform(80, 250, n), 0.0),
        "util_top": rng.uniform(0.93, 1.02, n),
    }


def _make_population(rng: np.random.Generator, n: int, cal: Calendar) -> Population:
    arch = _draw_archetypes(rng, n)
    firm = _firmographics(rng, arch)
    weights = (
        np.array([w for w, _ in ident.PROVINCES.values()])
        if pf._PROVINCE_WEIGHTS is None
        else np.array([pf._PROVINCE_WEIGHTS.get(p, 0.0) for p in ident.PROVINCES])
    )
    province = rng.choice(np.array(PROVINCE_CODES), size=n, p=weights / weights.sum())
    founded, onboarding, onb_idx = _dates(rng, arch, cal)
    status, dormant_from, closed_at, adopter = _statuses(rng, arch, onb_idx, cal.months)
    return Population(
        arch=arch,
        province=province,
        founded=founded,
        onboarding=onboarding,
        onb_idx=onb_idx,
        status=status,
        dormant_from=dormant_from,
        closed_at=closed_at,
        adopter=adopter,
        **firm,
        **_risk_parameters(rng, arch),
        **_distress_parameters(rng, arch, cal.months),
    )


def _lookup(table: Mapping[Any, Sequence[str]], keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pick a random entry of ``table[key]`` for each key (vectorised via offsets)."""
    key_list = list(table)
    flat = np.array([v for k in key_list for v in table[k]])
    counts = np.array([len(table[k]) for k in key_list])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = pd.Index(key_list).get_indexer(keys)
    pick = offsets[pos] + (rng.random(len(keys)) * counts[pos]).astype(np.int64)
    return flat[pick]


def _industry_codes(rng: np.random.Generator, arch: np.ndarray) -> np.ndarray:
    """GB/T 4754-2017 codes: bare section (5 %), division, group or class level."""
    n = len(arch)
    # ~8 % of firms sit outside their archetype's typical industries (noise); scenarios: more, and truly outside.
    off_profile = rng.random(n) < pf._OFF_INDUSTRY_SHARE
    table: dict[int, list[str]] = {i: list(pf.PROFILES[a].divisions) for i, a in enumerate(pf.ARCHETYPES)}
    if pf._OFF_INDUSTRY_POOL is None:
        keys = np.where(off_profile, pf._A_PROSPECT, arch).astype(np.int64)
    else:
        k = len(pf.ARCHETYPES)
        table |= {
            k + i: [d for d in pf._OFF_INDUSTRY_POOL if d[0] not in {x[0] for x in pf.PROFILES[a].divisions}]
            for i, a in enumerate(pf.ARCHETYPES)
        }
        keys = np.where(off_profile, arch.astype(np.int64) + k, arch).astype(np.int64)
    divisions = _lookup(table, keys, rng)
    section = np.strings.slice(divisions, 0, 1)
    group = rng.integers(1, 10, n).astype(str)
    klass = rng.integers(1, 10, n).astype(str)
    level = rng.choice(4, size=n, p=[0.05, 0.25, 0.20, 0.50])
    with_group = np.strings.add(divisions, group)
    return np.where(
        level == 0,
        section,
        np.where(level == 1, divisions, np.where(level == 2, with_group, np.strings.add(with_group, klass))),
    )


def _legal_names(rng: np.random.Generator, pop: Population, industry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique Chinese company names and the prefecture code of the name's city."""
    n = pop.n
    code_table = {p: [f"{c}|{code}" for c, code in cities] for p, (_, cities) in ident.PROVINCES.items()}
    city_code = _lookup(code_table, pop.province, rng)
    parts = np.strings.partition(city_code, "|")
    city, prefecture = parts[0], parts[2]
    first = np.array(list(ident.BRAND_FIRST))[rng.integers(0, len(ident.BRAND_FIRST), n)]
    second_idx = rng.integers(0, len(ident.BRAND_SECOND), n)
    second = np.array(list(ident.BRAND_SECOND))[second_idx]
    second = np.where(
        second == first, np.array(list(ident.BRAND_SECOND))[(second_idx + 1) % len(ident.BRAND_SECOND)], second
    )
    brand = np.strings.add(first, second)
    words = _lookup(ident.SECTION_WORDS, np.strings.slice(industry, 0, 1), rng)
    large = pop.employees >= 1000
    suffix_idx = np.where(
        large,
        _sample_rows(rng, np.tile(ident.SUFFIX_P_LARGE, (n, 1))),
        _sample_rows(rng, np.tile(ident.SUFFIX_P_SMALL, (n, 1))),
    )
    tail = np.strings.add(words, np.array(ident.SUFFIXES)[suffix_idx])
    head = np.strings.add(city, brand)
    names = np.strings.add(head, tail)
    dup = pd.Series(names).groupby(names, sort=False).cumcount().to_numpy()
    numbered = np.strings.add(np.strings.add(head, (dup + 1).astype(str)), tail)
    return np.where(dup > 0, numbered, names), prefecture


def _registration_numbers(rng: np.random.Generator, province: np.ndarray, prefecture: np.ndarray) -> np.ndarray:
    """18-char unified social credit codes with valid GB 11714 / GB 32100 check chars."""
    n = len(province)
    municipality = np.isin(province, (11, 12, 31, 50))
    district = rng.integers(1, 20, n)
    region = province * 10000 + prefecture.astype(np.int64) * 100 + district
    region = np.where(municipality, province * 10000 + 100 + district, region)
    # Organisation code body: an affine permutation of a shuffled index -> unique.
    body = (rng.permutation(n).astype(np.int64) * 7_654_321 + int(rng.integers(0, 10**8))) % 10**8
    digits = np.empty((n, 18), dtype=np.int64)
    digits[:, 0], digits[:, 1] = 9, 1
    for j in range(6):  # column loops only (fixed width), never over rows
        digits[:, 2 + j] = region // 10 ** (5 - j) % 10
    for j in range(8):
        digits[:, 8 + j] = body // 10 ** (7 - j) % 10
    org_check = 11 - (digits[:, 8:16] @ ident.ORG_WEIGHTS) % 11
    digits[:, 16] = np.where(org_check == 11, 0, np.where(org_check == 10, ident.USCC_CHARSET.index("X"), org_check))
    check = (31 - (digits[:, :17] @ ident.USCC_WEIGHTS) % 31) % 31
    digits[:, 17] = check
    chars = np.array(list(ident.USCC_CHARSET))[digits]
    return np.ascontiguousarray(chars).view("<U18").ravel()


def _contacts(rng: np.random.Generator, n: int) -> dict[str, object]:
    has_email = rng.random(n) < 0.8
    prefix = np.where(has_email, rng.integers(0, len(ident.EMAIL_PREFIXES), n), -1)
    domain = np.where(has_email, rng.integers(0, len(ident.EMAIL_DOMAINS), n), -1)
    has_phone = rng.random(n) < 0.8
    phone = ident.MOBILE_PREFIXES[rng.integers(0, len(ident.MOBILE_PREFIXES), n)] * 10**8 + rng.integers(0, 10**8, n)
    return {
        "email_prefix": pd.Categorical.from_codes(prefix, categories=list(ident.EMAIL_PREFIXES)),
        "email_domain": pd.Categorical.from_codes(domain, categories=list(ident.EMAIL_DOMAINS)),
        "phone": np.where(has_phone, phone, 0),
    }


def _client_frame(rng: np.random.Generator, pop: Population, cal: Calendar) -> pd.DataFrame:
    n = pop.n
    industry = _industry_codes(rng, pop.arch)
    names, prefecture = _legal_names(rng, pop, industry)
    registration = _registration_numbers(rng, pop.province, prefecture)
    employees = np.where(rng.random(n) < 0.012, np.nan, pop.employees)
    revenue = np.where(rng.random(n) < 0.012, np.nan, pop.revenue)
    # updated_at: within the last year, never before founding/onboarding.
    month_end_s = (cal.month_end(cal.months - 1) + 1).astype("datetime64[s]") - 1
    updated = month_end_s - rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")
    floor = np.where(np.isnat(pop.onboarding), pop.founded, pop.onboarding).astype("datetime64[s]")
    updated = np.maximum(updated, floor + rng.integers(0, 86400, n).astype("timedelta64[s]"))
    updated = np.minimum(updated, month_end_s)
    return pd.DataFrame(
        {
            "client_no": np.arange(1, n + 1, dtype=np.int64),
            "legal_name": names.astype(object),
            "registration_no": registration.astype(object),
            **_contacts(rng, n),
            "industry_code": industry.astype(object),
            "province_code": pop.province.astype(str).astype(object),
            "registered_capital": pop.capital,
            "employee_count": employees,
            "annual_revenue": revenue,
            "total_assets": pop.assets,
            "founded_date": pop.founded,
            "onboarding_date": pop.onboarding,
            "relationship_status": pd.Categorical.from_codes(pop.status, categories=list(STATUSES)),
            "updated_at": updated,
        }
    )


_CLIENT_SQL = """
SELECT printf('CL%08d', client_no) AS client_id, legal_name, registration_no,
       CASE WHEN email_prefix IS NOT NULL
            THEN printf('%s.%07d@%s', email_prefix, client_no, email_domain) END AS contact_email,
       CASE WHEN phone > 0 THEN CAST(phone AS VARCHAR) END AS contact_phone,
       industry_code, province_code,
       CAST(registered_capital AS DECIMAL(18,2)) AS registered_capital,
       CAST(employee_count AS BIGINT) AS employee_count,
       CAST(annual_revenue AS DECIMAL(18,2)) AS annual_revenue,
       CAST(total_assets AS DECIMAL(18,2)) AS total_assets,
       CAST(founded_date AS DATE) AS founded_date,
       CAST(onboarding_date AS DATE) AS onboarding_date,
       CAST(relationship_status AS VARCHAR) AS relationship_status,
       CAST(updated_at AS TIMESTAMP) AS updated_at
FROM df
"""
