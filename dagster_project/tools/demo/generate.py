"""Realistic demo-data generator for the lendseg landing zone (landing contract v1).

The generator plants seven client archetypes (see :data:`ARCHETYPES`) in a synthetic
corporate-lending portfolio and writes three landing sources, one file per delivery:

* ``clients/clients_<YYYYMM>.<ext>``                 -- one snapshot at ``end_month``
* ``credit_bureau/credit_bureau_<YYYYMM>.<ext>``     -- one file per quarter-end month
* ``product_usage/product_usage_<YYYYMM>.<ext>``     -- one file per month of the window

Everything is vectorised with numpy/pandas and driven by a single
``np.random.default_rng(seed)``, so a seed always reproduces byte-identical files.
Usage is simulated month by month (only per-account state is kept between months), so
memory stays bounded even for a million clients.  Files are written by DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

__all__ = [
    "ARCHETYPES",
    "BUREAU_COLUMNS",
    "CHANNELS",
    "CLIENT_COLUMNS",
    "PRODUCTS",
    "PROVINCE_CODES",
    "STATUSES",
    "USAGE_COLUMNS",
    "generate",
]

# --------------------------------------------------------------------------------------
# Contract constants
# --------------------------------------------------------------------------------------

CLIENT_COLUMNS: tuple[str, ...] = (
    "client_id", "legal_name", "registration_no", "contact_email", "contact_phone",
    "industry_code", "province_code", "registered_capital", "employee_count",
    "annual_revenue", "total_assets", "founded_date", "onboarding_date",
    "relationship_status", "updated_at",
)
BUREAU_COLUMNS: tuple[str, ...] = (
    "report_id", "client_id", "report_date", "bureau_score", "total_debt",
    "overdue_amount", "max_days_past_due_12m", "defaults_5y", "inquiries_6m",
    "collateral_value", "operating_cash_flow", "debt_service_12m", "current_ratio",
    "debt_to_equity", "legal_judgments",
)
USAGE_COLUMNS: tuple[str, ...] = (
    "snapshot_month", "account_id", "client_id", "product_code", "credit_limit",
    "outstanding_balance", "drawdown_amount", "repayment_amount", "days_past_due",
    "interaction_count", "channel",
)
PRODUCTS: tuple[str, ...] = (
    "term_loan", "revolving_credit", "project_finance", "trade_finance",
    "ip_pledge_loan", "equipment_leasing", "supply_chain_finance", "startup_credit_loan",
)
CHANNELS: tuple[str, ...] = ("branch", "online", "relationship_manager")
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

# --------------------------------------------------------------------------------------
# Geography (GB/T 2260) and naming vocabulary
# --------------------------------------------------------------------------------------

# province code -> (weight, [(city name, 2-digit prefecture code), ...])
_PROVINCES: dict[int, tuple[float, list[tuple[str, str]]]] = {
    11: (7.0, [("北京", "01")]),
    12: (2.5, [("天津", "01")]),
    13: (3.0, [("石家庄", "01"), ("唐山", "02"), ("保定", "06")]),
    14: (1.5, [("太原", "01"), ("大同", "02")]),
    15: (1.0, [("呼和浩特", "01"), ("包头", "02")]),
    21: (2.0, [("沈阳", "01"), ("大连", "02")]),
    22: (1.0, [("长春", "01"), ("吉林", "02")]),
    23: (1.0, [("哈尔滨", "01"), ("大庆", "06")]),
    31: (7.0, [("上海", "01")]),
    32: (11.0, [("南京", "01"), ("无锡", "02"), ("常州", "04"), ("苏州", "05")]),
    33: (10.0, [("杭州", "01"), ("宁波", "02"), ("温州", "03"), ("绍兴", "06")]),
    34: (2.5, [("合肥", "01"), ("芜湖", "02")]),
    35: (3.5, [("福州", "01"), ("厦门", "02"), ("泉州", "05")]),
    36: (1.5, [("南昌", "01"), ("赣州", "07")]),
    37: (7.0, [("济南", "01"), ("青岛", "02"), ("烟台", "06"), ("潍坊", "07")]),
    41: (3.0, [("郑州", "01"), ("洛阳", "03")]),
    42: (3.0, [("武汉", "01"), ("宜昌", "05"), ("襄阳", "06")]),
    43: (2.5, [("长沙", "01"), ("株洲", "02")]),
    44: (13.0, [("广州", "01"), ("深圳", "03"), ("珠海", "04"), ("佛山", "06"), ("东莞", "19")]),
    45: (1.5, [("南宁", "01"), ("柳州", "02")]),
    46: (0.8, [("海口", "01"), ("三亚", "02")]),
    50: (2.0, [("重庆", "01")]),
    51: (3.0, [("成都", "01"), ("绵阳", "07")]),
    52: (1.0, [("贵阳", "01"), ("遵义", "03")]),
    53: (1.0, [("昆明", "01"), ("曲靖", "03")]),
    54: (0.2, [("拉萨", "01")]),
    61: (2.0, [("西安", "01"), ("宝鸡", "03")]),
    62: (0.6, [("兰州", "01")]),
    63: (0.3, [("西宁", "01")]),
    64: (0.3, [("银川", "01")]),
    65: (0.8, [("乌鲁木齐", "01"), ("克拉玛依", "02")]),
}
PROVINCE_CODES: tuple[int, ...] = tuple(_PROVINCES)

_BRAND_FIRST = "华信恒瑞宏盛鑫泰博达中天金安嘉润德正远新创源隆兴海明祥凯辉宇"
_BRAND_SECOND = "信达通泰源盛丰成汇联科华美诚利合鼎力航峰晟锦益康邦博业腾智远"
_SECTION_WORDS: dict[str, tuple[str, ...]] = {
    "B": ("矿业", "煤业", "矿产开发", "能源"),
    "C": ("精密机械", "电子科技", "新材料", "汽车零部件", "化工", "纺织", "食品",
          "医药", "装备制造", "金属制品", "机电", "塑胶"),
    "D": ("电力", "燃气", "热力", "新能源", "水务"),
    "E": ("建设工程", "建筑工程", "市政工程", "建工", "路桥工程"),
    "F": ("商贸", "贸易", "供应链管理", "百货", "进出口"),
    "G": ("物流", "运输", "航运", "仓储"),
    "H": ("酒店管理", "餐饮管理", "餐饮"),
    "I": ("信息技术", "软件", "网络科技", "数据科技", "智能科技", "云计算"),
    "K": ("房地产开发", "置业", "物业管理"),
    "L": ("商务咨询", "融资租赁", "人力资源", "企业管理", "广告"),
    "M": ("生物科技", "技术服务", "检测技术", "工程设计", "新能源科技"),
    # sections only scenarios (scenarios.py) use
    "A": ("农业", "农业合作社", "林业", "畜牧"), "N": ("环境工程", "水利工程", "环保科技"),
    "O": ("家政服务", "维修服务"), "P": ("教育科技", "培训"), "Q": ("医疗", "医院管理", "健康管理"),
    "R": ("文化传媒", "体育", "影视"), "S": ("社会服务",),
}
_SUFFIXES = ("有限公司", "股份有限公司", "有限责任公司", "集团有限公司")
_SUFFIX_P_SMALL = np.array([0.75, 0.08, 0.17, 0.0])
_SUFFIX_P_LARGE = np.array([0.30, 0.40, 0.10, 0.20])
_EMAIL_PREFIXES = ("finance", "contact", "info", "treasury", "cfo", "admin")
_EMAIL_DOMAINS = ("example-corp.cn", "example.com.cn", "mail.example.cn")
_MOBILE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152,
                             155, 158, 159, 176, 177, 180, 181, 186, 187, 188, 189, 199])

# GB 32100-2015 unified social credit code alphabet and weights (3**i mod 31).
_USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)])
# GB 11714-1997 organisation code weights.
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])


def _divisions(section: str, lo: int, hi: int) -> tuple[str, ...]:
    """GB/T 4754-2017 division codes ``section`` + lo..hi, e.g. ``C13``..``C43``."""
    return tuple(f"{section}{d:02d}" for d in range(lo, hi + 1))


# --------------------------------------------------------------------------------------
# Archetype profiles
# --------------------------------------------------------------------------------------


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
_SERVICE_DIVS = (_divisions("F", 51, 52) + _divisions("G", 53, 60) + _divisions("H", 61, 62)
                 + ("K70",) + _divisions("L", 71, 72))
_RISKY_DIVS = _divisions("E", 47, 50) + _divisions("B", 6, 12) + _divisions("D", 44, 46)

PROFILES: dict[str, Profile] = {
    "large_manufacturer": Profile(
        weight=0.16, divisions=_divisions("C", 13, 43), employees=(1000, 20000),
        revenue=(4e8, 2e10), age_years=(10, 40), score=(720, 880), util_mean=0.30,
        assets_to_revenue=1.3, debt_to_equity=(0.4, 1.2), coverage=1.6, margin=0.10,
        products={"term_loan": 0.85, "project_finance": 0.45, "equipment_leasing": 0.55,
                  "trade_finance": 0.50, "revolving_credit": 0.25},
        adoption={"project_finance": 0.5, "trade_finance": 0.5},
        channels=(0.20, 0.08, 0.72), inquiries=1.0, judgments=0.1, defaults=0.02,
        interactions=4.0, bureau_share=0.97),
    "tech_sme": Profile(
        weight=0.15, divisions=_TECH_DIVS, employees=(20, 300), revenue=(5e6, 8e7),
        age_years=(3, 12), score=(620, 760), util_mean=0.50, assets_to_revenue=0.7,
        debt_to_equity=(0.3, 1.0), coverage=0.8, margin=0.08,
        products={"ip_pledge_loan": 0.70, "revolving_credit": 0.60, "term_loan": 0.15},
        adoption={"ip_pledge_loan": 0.6, "trade_finance": 0.4},
        channels=(0.20, 0.45, 0.35), inquiries=2.0, judgments=0.1, defaults=0.05,
        interactions=2.0, bureau_share=0.90),
    "startup": Profile(
        weight=0.14,
        divisions=(_divisions("I", 63, 65) + _divisions("M", 73, 75) + _divisions("F", 51, 52)
                   + _divisions("L", 71, 72) + ("C39", "C40")),
        employees=(3, 40), revenue=(3e5, 5e6), age_years=(0.35, 2.9), score=(560, 700),
        util_mean=0.80, assets_to_revenue=0.9, debt_to_equity=(0.2, 1.5), coverage=0.3,
        margin=0.0, products={"startup_credit_loan": 1.0, "ip_pledge_loan": 0.10},
        adoption={"ip_pledge_loan": 1.0}, channels=(0.15, 0.70, 0.15), inquiries=3.0,
        judgments=0.05, defaults=0.10, interactions=1.0, bureau_share=0.70),
    "mature_service": Profile(
        weight=0.16, divisions=_SERVICE_DIVS, employees=(50, 800), revenue=(2e7, 6e8),
        age_years=(8, 30), score=(660, 800), util_mean=0.50, assets_to_revenue=0.8,
        debt_to_equity=(0.6, 1.8), coverage=1.2, margin=0.07,
        products={"revolving_credit": 0.80, "trade_finance": 0.50,
                  "supply_chain_finance": 0.35, "term_loan": 0.25},
        adoption={"supply_chain_finance": 0.6, "trade_finance": 0.25, "equipment_leasing": 0.15},
        channels=(0.55, 0.20, 0.25), inquiries=1.5, judgments=0.2, defaults=0.05,
        interactions=2.0, bureau_share=0.92),
    "high_risk_industry": Profile(
        weight=0.12, divisions=_RISKY_DIVS, employees=(100, 5000), revenue=(5e7, 5e9),
        age_years=(5, 30), score=(560, 720), util_mean=0.70, assets_to_revenue=2.0,
        debt_to_equity=(2.0, 5.0), coverage=0.95, margin=0.05,
        products={"project_finance": 0.70, "term_loan": 0.70, "equipment_leasing": 0.50},
        adoption={"equipment_leasing": 0.6, "project_finance": 0.4},
        channels=(0.35, 0.10, 0.55), inquiries=4.0, judgments=1.2, defaults=0.30,
        interactions=3.0, bureau_share=0.95),
    "deteriorating": Profile(
        weight=0.09,
        divisions=(_divisions("C", 30, 36) + _divisions("F", 51, 52) + ("G54", "I64", "I65",
                                                                         "L72", "M75")),
        employees=(20, 800), revenue=(1e7, 3e8), age_years=(6, 25), score=(650, 770),
        util_mean=0.55, assets_to_revenue=0.9, debt_to_equity=(0.8, 1.6), coverage=1.0,
        margin=0.08,
        products={"revolving_credit": 0.85, "term_loan": 0.50, "trade_finance": 0.35,
                  "supply_chain_finance": 0.30},
        adoption={"revolving_credit": 1.0}, channels=(0.45, 0.20, 0.35), inquiries=2.0,
        judgments=0.2, defaults=0.05, interactions=2.0, bureau_share=0.97),
    "prospect": Profile(
        weight=0.18,
        divisions=_divisions("C", 13, 43) + _TECH_DIVS + _SERVICE_DIVS + _RISKY_DIVS,
        employees=(5, 3000), revenue=(1e6, 2e9), age_years=(1, 30), score=(580, 800),
        util_mean=0.0, assets_to_revenue=1.0, debt_to_equity=(0.3, 2.5), coverage=1.0,
        margin=0.06, channels=(0.40, 0.40, 0.20), inquiries=2.5, judgments=0.3,
        defaults=0.08, interactions=0.5, bureau_share=0.40),
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


# --------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------


def _first_of_month(d: date) -> date:
    return d.replace(day=1)


def _add_months(d: date, k: int) -> date:
    m = d.year * 12 + d.month - 1 + k
    return date(m // 12, m % 12 + 1, 1)


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


# --------------------------------------------------------------------------------------
# Population (client-level latent state)
# --------------------------------------------------------------------------------------


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
        return self.arch == _A_DETERIORATING

    def progress(self, t: int) -> np.ndarray:
        """Distress progress in [0, 1] at month ``t`` (0 for healthy clients)."""
        span = np.maximum(self.distress_hit - self.distress_start, 1)
        p = np.clip((t - self.distress_start) / span, 0.0, 1.0)
        return np.where(self.is_det, p, 0.0)

    def score(self, t: int) -> np.ndarray:
        return self.base_score - self.score_drop * self.progress(t) ** 1.2


def _draw_archetypes(rng: np.random.Generator, n: int) -> np.ndarray:
    w = _profile_array("weight")
    return rng.choice(len(ARCHETYPES), size=n, p=w / w.sum()).astype(np.int8)


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


def _dates(rng: np.random.Generator, arch: np.ndarray, cal: Calendar
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    prospect = arch == _A_PROSPECT
    onboarding = np.where(prospect, np.datetime64("NaT"), onboarding)
    onb_idx = np.where(prospect, 10**6, cal.index_of(np.where(prospect, ref, onboarding)))
    return founded, onboarding, onb_idx


def _statuses(rng: np.random.Generator, arch: np.ndarray, onb_idx: np.ndarray, months: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Relationship status, dormancy start, closure month and product adopters."""
    n = len(arch)
    status = np.full(n, ST_ACTIVE, dtype=np.int8)
    status[arch == _A_PROSPECT] = ST_PROSPECT
    eligible = (arch != _A_PROSPECT) & (arch != _A_DETERIORATING) & (onb_idx <= months - 7)
    r = rng.random(n)
    status[eligible & (r < 0.06)] = ST_DORMANT
    status[eligible & (r >= 0.06) & (r < 0.10)] = ST_CLOSED
    dormant_from = months - rng.integers(6, 11, n)
    dormant_from = np.clip(np.maximum(dormant_from, onb_idx + 1), None, months - 6)
    closed_at = np.maximum(rng.integers(-3, months - 1, n), onb_idx + 1)
    closed_at = np.where(status == ST_CLOSED, closed_at, 10**6)
    # ~31 % flagged; flagged clients without an eligible product do not adopt (~25 % of active).
    adopter = (status == ST_ACTIVE) & (arch != _A_DETERIORATING) & (rng.random(n) < 0.31)
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
    chan_p = np.array([PROFILES[a].channels for a in ARCHETYPES])
    primary_channel = _sample_rows(rng, chan_p[arch]).astype(np.int8)
    return {
        "base_score": base_score, "debt_to_equity": de, "coverage": coverage,
        "margin": margin, "current_ratio": current_ratio, "defaults": defaults,
        "has_bureau": has_bureau, "primary_channel": primary_channel,
    }


def _distress_parameters(rng: np.random.Generator, arch: np.ndarray, months: int
                         ) -> dict[str, np.ndarray]:
    """Timing of the deteriorating archetype: hit month (90+ dpd) and decline start."""
    n = len(arch)
    r = rng.random(n)
    hit = np.where(
        r < 0.62, rng.integers(months - 6, months, n),  # within the last 6 months
        np.where(r < 0.87, rng.integers(months - 12, months - 6, n),  # earlier
                 rng.integers(months, months + 3, n)))  # not yet at 90+ by end_month
    start = hit - rng.integers(9, 16, n)
    is_det = arch == _A_DETERIORATING
    return {
        "distress_hit": np.where(is_det, hit, 10**6),
        "distress_start": np.where(is_det, start, 10**6),
        "score_drop": np.where(is_det, rng.uniform(80, 250, n), 0.0),
        "util_top": rng.uniform(0.93, 1.02, n),
    }


def _make_population(rng: np.random.Generator, n: int, cal: Calendar) -> Population:
    arch = _draw_archetypes(rng, n)
    firm = _firmographics(rng, arch)
    weights = np.array([w for w, _ in _PROVINCES.values()]) if _PROVINCE_WEIGHTS is None else \
        np.array([_PROVINCE_WEIGHTS.get(p, 0.0) for p in _PROVINCES])
    province = rng.choice(np.array(PROVINCE_CODES), size=n, p=weights / weights.sum())
    founded, onboarding, onb_idx = _dates(rng, arch, cal)
    status, dormant_from, closed_at, adopter = _statuses(rng, arch, onb_idx, cal.months)
    return Population(
        arch=arch, province=province, founded=founded, onboarding=onboarding,
        onb_idx=onb_idx, status=status, dormant_from=dormant_from, closed_at=closed_at,
        adopter=adopter, **firm, **_risk_parameters(rng, arch),
        **_distress_parameters(rng, arch, cal.months),
    )


# --------------------------------------------------------------------------------------
# Client master data (PII strings)
# --------------------------------------------------------------------------------------


def _lookup(table: Mapping[Any, Sequence[str]], keys: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
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
    off_profile = rng.random(n) < _OFF_INDUSTRY_SHARE
    table: dict[int, list[str]] = {i: list(PROFILES[a].divisions) for i, a in enumerate(ARCHETYPES)}
    if _OFF_INDUSTRY_POOL is None:
        keys = np.where(off_profile, _A_PROSPECT, arch).astype(np.int64)
    else:
        k = len(ARCHETYPES)
        table |= {k + i: [d for d in _OFF_INDUSTRY_POOL if d[0] not in {x[0] for x in PROFILES[a].divisions}]
                  for i, a in enumerate(ARCHETYPES)}
        keys = np.where(off_profile, arch.astype(np.int64) + k, arch).astype(np.int64)
    divisions = _lookup(table, keys, rng)
    section = np.strings.slice(divisions, 0, 1)
    group = rng.integers(1, 10, n).astype(str)
    klass = rng.integers(1, 10, n).astype(str)
    level = rng.choice(4, size=n, p=[0.05, 0.25, 0.20, 0.50])
    with_group = np.strings.add(divisions, group)
    return np.where(level == 0, section,
                    np.where(level == 1, divisions,
                             np.where(level == 2, with_group, np.strings.add(with_group, klass))))


def _legal_names(rng: np.random.Generator, pop: Population, industry: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Unique Chinese company names and the prefecture code of the name's city."""
    n = pop.n
    code_table = {p: [f"{c}|{code}" for c, code in cities] for p, (_, cities) in _PROVINCES.items()}
    city_code = _lookup(code_table, pop.province, rng)
    parts = np.strings.partition(city_code, "|")
    city, prefecture = parts[0], parts[2]
    first = np.array(list(_BRAND_FIRST))[rng.integers(0, len(_BRAND_FIRST), n)]
    second_idx = rng.integers(0, len(_BRAND_SECOND), n)
    second = np.array(list(_BRAND_SECOND))[second_idx]
    second = np.where(second == first,
                      np.array(list(_BRAND_SECOND))[(second_idx + 1) % len(_BRAND_SECOND)], second)
    brand = np.strings.add(first, second)
    words = _lookup(_SECTION_WORDS, np.strings.slice(industry, 0, 1), rng)
    large = pop.employees >= 1000
    suffix_idx = np.where(large, _sample_rows(rng, np.tile(_SUFFIX_P_LARGE, (n, 1))),
                          _sample_rows(rng, np.tile(_SUFFIX_P_SMALL, (n, 1))))
    tail = np.strings.add(words, np.array(_SUFFIXES)[suffix_idx])
    head = np.strings.add(city, brand)
    names = np.strings.add(head, tail)
    dup = pd.Series(names).groupby(names, sort=False).cumcount().to_numpy()
    numbered = np.strings.add(np.strings.add(head, (dup + 1).astype(str)), tail)
    return np.where(dup > 0, numbered, names), prefecture


def _registration_numbers(rng: np.random.Generator, province: np.ndarray,
                          prefecture: np.ndarray) -> np.ndarray:
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
    org_check = 11 - (digits[:, 8:16] @ _ORG_WEIGHTS) % 11
    digits[:, 16] = np.where(org_check == 11, 0,
                             np.where(org_check == 10, _USCC_CHARSET.index("X"), org_check))
    check = (31 - (digits[:, :17] @ _USCC_WEIGHTS) % 31) % 31
    digits[:, 17] = check
    chars = np.array(list(_USCC_CHARSET))[digits]
    return np.ascontiguousarray(chars).view("<U18").ravel()


def _contacts(rng: np.random.Generator, n: int) -> dict[str, object]:
    has_email = rng.random(n) < 0.8
    prefix = np.where(has_email, rng.integers(0, len(_EMAIL_PREFIXES), n), -1)
    domain = np.where(has_email, rng.integers(0, len(_EMAIL_DOMAINS), n), -1)
    has_phone = rng.random(n) < 0.8
    phone = _MOBILE_PREFIXES[rng.integers(0, len(_MOBILE_PREFIXES), n)] * 10**8 \
        + rng.integers(0, 10**8, n)
    return {
        "email_prefix": pd.Categorical.from_codes(prefix, categories=list(_EMAIL_PREFIXES)),
        "email_domain": pd.Categorical.from_codes(domain, categories=list(_EMAIL_DOMAINS)),
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
    return pd.DataFrame({
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
    })


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


# --------------------------------------------------------------------------------------
# Accounts (client x product) and the monthly usage simulation
# --------------------------------------------------------------------------------------


@dataclass
class Accounts:
    client: np.ndarray  # 0-based client index
    product: np.ndarray
    open_idx: np.ndarray
    end_idx: np.ndarray  # exclusive
    limit: np.ndarray
    base_util: np.ndarray

    @property
    def n(self) -> int:
        return len(self.client)


def _plausible_products(arch: np.ndarray) -> np.ndarray:
    """(client x product) mask of products that may appear as off-profile noise.

    Startup credit loans stay reserved to young firms; startups never get project finance.
    """
    mask = np.ones((len(arch), len(PRODUCTS)), dtype=bool)
    mask[:, _PRODUCT_INDEX["startup_credit_loan"]] = False
    mask[arch == _A_STARTUP, _PRODUCT_INDEX["project_finance"]] = False
    return mask


# --------------------------------------------------------------------------------------
# Catalogue eligibility of planted adoptions (a bank only grants products a client is
# eligible for).  Mirrors dbt/seeds/product_catalogue.csv, rating_master_scale.csv,
# sme_size_thresholds.csv and industry_divisions.csv as far as the generator can know
# them (tests/test_generator.py checks the copies against the seeds).
# --------------------------------------------------------------------------------------

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
    "A": "agriculture", "B": "industry", "C": "industry", "D": "industry", "E": "construction",
    "G": "warehousing", "H": "accommodation", "I": "software_it", "L": "leasing_business_services",
    **{d: "agriculture" for d in _divisions("A", 1, 5)},
    **{d: "industry" for d in _divisions("B", 6, 12) + _divisions("C", 13, 43)
       + _divisions("D", 44, 46)},
    **{d: "construction" for d in _divisions("E", 47, 50)},
    "F51": "wholesale", "F52": "retail", "G53": "other_unlisted",
    **{d: "transport" for d in _divisions("G", 54, 58)},
    "G59": "warehousing", "G5910": "transport", "G60": "postal",
    "H61": "accommodation", "H62": "catering",
    "I63": "information_transmission", "I64": "information_transmission", "I65": "software_it",
    "K70": "other_unlisted", "K7010": "real_estate_development", "K7020": "property_management",
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


def _size_rank(industry: np.ndarray, employees: np.ndarray, revenue: np.ndarray,
               assets: np.ndarray) -> np.ndarray:
    """2011 SME size class rank (0 micro .. 3 large; -1 unknown), as int_clients_size_classified."""
    group = _sme_groups(industry)
    values = {"employees": employees, "revenue": revenue, "total_assets": assets}
    rank = np.full(len(group), -1, dtype=np.int64)
    for name, (ma, mb, ca, cb, mda, mdb, sa, sb) in _SME_GROUPS.items():
        sel = group == name
        a = values[ma]
        b = values[mb] if mb is not None else np.zeros(len(group))
        known = ~np.isnan(a) & (a >= 0) & ~np.isnan(b) & (b >= 0)
        lim_b = (lambda x: np.full(len(group), True)) if mb is None else (lambda x: b >= x)
        r = np.where((a >= ca) & lim_b(cb), 3,
                     np.where((a >= mda) & lim_b(mdb), 2, np.where((a >= sa) & lim_b(sb), 1, 0)))
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


def _eligible_products(pop: Population, cal: Calendar, industry: np.ndarray,
                       employees: np.ndarray, revenue: np.ndarray) -> np.ndarray:
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
    size = _size_rank(industry, employees.astype(float), revenue.astype(float),
                      pop.assets.astype(float))
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
    grade = np.where(sure, score_order,
                     np.where(maybe, np.maximum(score_order, _UNRATED_ORDER), _UNRATED_ORDER))
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


def _holdings(rng: np.random.Generator, pop: Population, eligible: np.ndarray | None = None
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
    hold_p[pop.arch == _A_PROSPECT] = 0.0
    held = rng.random((n, k)) < hold_p
    # New product for adopters, only among plausible products the client is eligible for:
    # archetype preference, ~25 % random (also when no preferred product is eligible).
    grantable = plausible if eligible is None else plausible & eligible
    pref = _profile_matrix("adoption")[pop.arch] * grantable
    pref = np.where(pref.sum(axis=1, keepdims=True) > 0, pref, grantable)
    target = np.where(rng.random(n) < 0.25, _sample_rows(rng, grantable.astype(float)),
                      _sample_rows(rng, pref))
    adopter = pop.adopter & grantable.any(axis=1)
    new = np.zeros((n, k), dtype=bool)
    new[adopter, target[adopter]] = True
    held &= ~new
    # Every customer (non-prospect) holds at least one pre-existing product.
    empty = ~held.any(axis=1) & (pop.arch != _A_PROSPECT)
    fallback = np.argmax(np.where(new, -1.0, hold_p + 1e-3), axis=1)
    held[empty, fallback[empty]] = True
    return held, new


def _make_accounts(rng: np.random.Generator, pop: Population, months: int,
                   eligible: np.ndarray | None = None) -> Accounts:
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
    open_idx = np.where(is_new, np.maximum(rng.integers(months - 6, months, len(client)), onb),
                        open_idx)
    dormant = pop.status[client] == ST_DORMANT
    open_idx = np.where(dormant, np.minimum(open_idx, pop.dormant_from[client] - 1), open_idx)
    end_idx = np.where(pop.status[client] == ST_CLOSED, pop.closed_at[client], 10**6)
    limit = pop.revenue[client] * _LIMIT_FACTOR[product] * rng.lognormal(0, 0.35, len(client))
    limit = np.maximum(np.round(limit, -4), 5e4)
    m = np.clip(_profile_array("util_mean")[pop.arch[client]], 0.05, 0.95)
    base_util = rng.beta(m * 12, (1 - m) * 12)
    return Accounts(client=client, product=product.astype(np.int8), open_idx=open_idx,
                    end_idx=end_idx, limit=limit, base_util=base_util)


class _Simulator:
    """Month-by-month simulation of arrears, balances and bureau reports."""

    DPD_MEMORY = 12

    def __init__(self, rng: np.random.Generator, pop: Population, acc: Accounts,
                 cal: Calendar) -> None:
        self.rng, self.pop, self.acc, self.cal = rng, pop, acc, cal
        self.dpd_buffer = np.zeros((pop.n, self.DPD_MEMORY), dtype=np.int16)
        self.client_dpd = np.zeros(pop.n, dtype=np.int64)
        self.ar = rng.normal(0, 0.08, acc.n)
        self.prev_balance = np.zeros(acc.n)
        self.report_counter = 0
        self.chan_cdf = np.cumsum(np.array([PROFILES[a].channels for a in ARCHETYPES]), axis=1)

    # -- client level ------------------------------------------------------------------

    def step_arrears(self, t: int) -> None:
        """Draw the client-level days past due for month ``t`` (all clients)."""
        pop, rng, n = self.pop, self.rng, self.pop.n
        p_event = 0.002 + 0.15 * _sigmoid((585.0 - pop.score(t)) / 28.0)
        event = rng.random(n) < p_event
        sev = rng.random(n)
        amount = np.where(sev < 0.45, rng.integers(1, 30, n),
                          np.where(sev < 0.88, rng.integers(30, 60, n), rng.integers(60, 90, n)))
        dpd = np.where(event, amount, 0)
        k = t - pop.distress_hit
        ramp = np.where(k == -3, rng.integers(0, 15, n),
                        np.minimum(90 + 30 * k, 720) + rng.integers(0, 10, n))
        self.client_dpd = np.where(pop.is_det, np.where(k < -3, 0, ramp), dpd)
        self.dpd_buffer[:, t % self.DPD_MEMORY] = self.client_dpd

    # -- product usage -----------------------------------------------------------------

    def _utilisation(self, t: int) -> np.ndarray:
        acc, pop, rng = self.acc, self.pop, self.rng
        self.ar = 0.75 * self.ar + rng.normal(0, 0.06, acc.n)
        util = np.clip(acc.base_util + self.ar, 0.0, 1.0)
        c = acc.client
        ramp = np.where(pop.is_det[c], np.clip((t - (pop.distress_hit[c] - 7)) / 4.0, 0, 1), 0.0)
        stressed = pop.util_top[c] + rng.normal(0, 0.012, acc.n)
        util = util * (1 - ramp) + np.clip(stressed, 0.0, 1.05) * ramp
        status = pop.status[c]
        util = np.where((status == ST_DORMANT) & (t >= pop.dormant_from[c]), 0.0, util)
        util = np.where((status == ST_CLOSED) & (t >= acc.end_idx - 1), 0.0, util)
        return util

    def usage_frame(self, t: int) -> pd.DataFrame:
        acc, pop, rng = self.acc, self.pop, self.rng
        if t == 0:  # balances carried in from before the window
            self.prev_balance = _round_money(acc.limit * acc.base_util)
        util = self._utilisation(t)
        active = np.flatnonzero((acc.open_idx <= t) & (t < acc.end_idx))
        c = acc.client[active]
        balance = _round_money(acc.limit[active] * util[active])
        prev = np.where(acc.open_idx[active] == t, 0.0, self.prev_balance[active])
        dpd = np.where(balance > 0, self.client_dpd[c], 0)
        repay = prev * _AMORTISATION[acc.product[active]] * np.where(dpd >= 30, 0.1, 1.0)
        draw = balance - prev + repay
        repay = _round_money(np.where(draw < 0, repay - draw, repay))
        draw = _round_money(np.maximum(draw, 0.0))
        self.prev_balance = np.where(acc.open_idx <= t, _round_money(acc.limit * util), 0.0)
        inactive = (pop.status[c] == ST_DORMANT) & (t >= pop.dormant_from[c])
        lam = _profile_array("interactions")[pop.arch[c]] * 0.6 * (1 + 2 * pop.progress(t)[c])
        interactions = rng.poisson(np.where(inactive, 0.05, lam))
        u = rng.random(len(active)) * self.chan_cdf[pop.arch[c], -1]
        drawn = np.minimum((u[:, None] >= self.chan_cdf[pop.arch[c]]).sum(axis=1), 2)
        channel = np.where(rng.random(len(active)) < 0.8, pop.primary_channel[c], drawn)
        return pd.DataFrame({
            "account_no": active.astype(np.int64) + 1,
            "client_no": c.astype(np.int64) + 1,
            "product_code": pd.Categorical.from_codes(acc.product[active],
                                                      categories=list(PRODUCTS)),
            "credit_limit": acc.limit[active],
            "outstanding_balance": balance,
            "drawdown_amount": draw,
            "repayment_amount": repay,
            "days_past_due": dpd.astype(np.int32),
            "interaction_count": interactions.astype(np.int32),
            "channel": pd.Categorical.from_codes(channel.astype(np.int8),
                                                 categories=list(CHANNELS)),
        })

    # -- credit bureau -----------------------------------------------------------------

    def bureau_frame(self, t: int) -> pd.DataFrame:
        pop, rng, cal = self.pop, self.rng, self.cal
        days_in_month = int((cal.month_end(t) - cal.month_start(t)).astype(np.int64)) + 1
        report_date = cal.month_start(t) + rng.integers(0, days_in_month, pop.n).astype(
            "timedelta64[D]")
        sel = np.flatnonzero(pop.has_bureau & (pop.founded <= report_date - np.timedelta64(180, "D")))
        m = len(sel)
        prog = pop.progress(t)[sel]
        arch = pop.arch[sel]
        score = np.clip(np.round(pop.score(t)[sel] + rng.normal(0, 12, m)), 300, 900)
        de = pop.debt_to_equity[sel] * (1 + 2.0 * prog) * rng.lognormal(0, 0.05, m)
        debt = pop.assets[sel] * de / (1 + de) * rng.lognormal(0, 0.08, m)
        dpd_now = self.client_dpd[sel]
        overdue = np.where(dpd_now > 0, debt * rng.uniform(0.01, 0.05, m) * (1 + dpd_now / 30), 0.0)
        margin = np.where(pop.is_det[sel],
                          pop.margin[sel] - (pop.margin[sel] + 0.12) * prog,
                          pop.margin[sel]) + rng.normal(0, 0.01, m)
        defaults = pop.defaults[sel] + (pop.is_det[sel] & (t >= pop.distress_hit[sel]))
        self.report_counter += m
        first_no = self.report_counter - m + 1
        return pd.DataFrame({
            "report_no": np.arange(first_no, first_no + m, dtype=np.int64),
            "client_no": sel.astype(np.int64) + 1,
            "report_date": report_date[sel],
            "bureau_score": score.astype(np.int32),
            "total_debt": _round_money(debt),
            "overdue_amount": _round_money(np.minimum(overdue, debt)),
            "max_days_past_due_12m": self.dpd_buffer[sel].max(axis=1).astype(np.int32),
            "defaults_5y": defaults.astype(np.int32),
            "inquiries_6m": rng.poisson(_profile_array("inquiries")[arch] + 5 * prog).astype(
                np.int32),
            "collateral_value": _round_money(debt * pop.coverage[sel] * rng.lognormal(0, 0.05, m)),
            "operating_cash_flow": _round_money(pop.revenue[sel] * margin),
            "debt_service_12m": np.where(rng.random(m) < 0.7,
                                         _round_money(debt * rng.uniform(0.12, 0.3, m)), np.nan),
            "current_ratio": np.where(rng.random(m) < 0.85,
                                      np.round(pop.current_ratio[sel] * (1 - 0.5 * prog), 3),
                                      np.nan),
            "debt_to_equity": np.where(rng.random(m) < 0.85, np.round(de, 3), np.nan),
            "legal_judgments": rng.poisson(_profile_array("judgments")[arch] + 2.5 * prog).astype(
                np.int32),
        })


_USAGE_SQL = """
SELECT DATE '{month}' AS snapshot_month, printf('AC%09d', account_no) AS account_id,
       printf('CL%08d', client_no) AS client_id,
       CAST(product_code AS VARCHAR) AS product_code,
       CAST(credit_limit AS DECIMAL(18,2)) AS credit_limit,
       CAST(outstanding_balance AS DECIMAL(18,2)) AS outstanding_balance,
       CAST(drawdown_amount AS DECIMAL(18,2)) AS drawdown_amount,
       CAST(repayment_amount AS DECIMAL(18,2)) AS repayment_amount,
       days_past_due, interaction_count, CAST(channel AS VARCHAR) AS channel
FROM df
"""

_BUREAU_SQL = """
SELECT printf('RP%010d', report_no) AS report_id, printf('CL%08d', client_no) AS client_id,
       CAST(report_date AS DATE) AS report_date, bureau_score,
       CAST(total_debt AS DECIMAL(18,2)) AS total_debt,
       CAST(overdue_amount AS DECIMAL(18,2)) AS overdue_amount,
       max_days_past_due_12m, defaults_5y, inquiries_6m,
       CAST(collateral_value AS DECIMAL(18,2)) AS collateral_value,
       CAST(operating_cash_flow AS DECIMAL(18,2)) AS operating_cash_flow,
       CAST(debt_service_12m AS DECIMAL(18,2)) AS debt_service_12m,
       CAST(current_ratio AS DECIMAL(12,3)) AS current_ratio,
       CAST(debt_to_equity AS DECIMAL(12,3)) AS debt_to_equity,
       legal_judgments
FROM df
"""


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


class _Writer:
    """Writes DataFrames through DuckDB as CSV (UTF-8, header) or Parquet."""

    def __init__(self, fmt: str) -> None:
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
        self.fmt = fmt
        self.con = duckdb.connect()

    @property
    def options(self) -> str:
        if self.fmt == "parquet":
            return "FORMAT parquet"
        return ("FORMAT csv, HEADER, DELIMITER ',', DATEFORMAT '%Y-%m-%d', "
                "TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S'")

    def write(self, df: pd.DataFrame, select_sql: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path).replace("'", "''")
        self.con.register("df", df)
        try:
            self.con.execute(f"COPY ({select_sql}) TO '{target}' ({self.options})")
        finally:
            self.con.unregister("df")
        return path

    def close(self) -> None:
        self.con.close()


def _write_truth(pop: Population, truth_path: Path) -> None:
    """``client_id,archetype`` answer key (kept outside the landing directory)."""
    df = pd.DataFrame({
        "client_no": np.arange(1, pop.n + 1, dtype=np.int64),
        "archetype": pd.Categorical.from_codes(pop.arch, categories=list(ARCHETYPES)),
    })
    csv = _Writer("csv")
    try:
        csv.write(df, "SELECT printf('CL%08d', client_no) AS client_id, "
                      "CAST(archetype AS VARCHAR) AS archetype FROM df", truth_path)
    finally:
        csv.close()


def _default_end_month() -> date:
    return _add_months(_first_of_month(date.today()), -1)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def generate(out_dir: Path, n_clients: int = 5000, months: int = 24, seed: int = 42,
             fmt: str = "csv", truth_path: Path | None = None, end_month: date | None = None,
             progress: bool = True, scenario: str = "demo") -> dict[str, list[Path]]:
    """Generate the demo landing data set and return the written files per source.

    ``end_month`` (normalised to the first of its month, default: previous month) is the
    last snapshot month; usage covers ``months`` months ending there, bureau reports come
    quarterly (one file per quarter-end month inside the window) and the client master is
    one snapshot named after ``end_month``.  ``truth_path`` optionally receives
    ``client_id,archetype``; it must lie outside ``out_dir``.  ``scenario`` (scenarios.py)
    swaps the archetype tables: ``demo`` (default) is the portfolio the model was built on.
    """
    from dagster_project.tools.demo.scenarios import applied

    with applied(scenario):
        return _generate(out_dir, n_clients, months, seed, fmt, truth_path, end_month, progress)


def _generate(out_dir: Path, n_clients: int, months: int, seed: int, fmt: str, truth_path: Path | None,
              end_month: date | None, progress: bool) -> dict[str, list[Path]]:
    if n_clients < 1 or months < 1:
        raise ValueError("n_clients and months must be positive")
    out_dir = Path(out_dir)
    if truth_path is not None and Path(truth_path).resolve().is_relative_to(out_dir.resolve()):
        raise ValueError("truth_path must not be inside out_dir")
    end = _first_of_month(end_month) if end_month is not None else _default_end_month()
    cal = Calendar(end_month=end, months=months)
    writer = _Writer(fmt)
    rng = np.random.default_rng(seed)
    files: dict[str, list[Path]] = {"clients": [], "credit_bureau": [], "product_usage": []}
    quarter_ends = [t for t in range(months) if cal.month(t).astype(object).month % 3 == 0]
    bar = tqdm(total=1 + months + len(quarter_ends), desc="lendseg generate", unit="file",
               disable=not progress)
    try:
        pop = _make_population(rng, n_clients, cal)
        clients = _client_frame(rng, pop, cal)
        eligible = _eligible_products(pop, cal, clients["industry_code"].to_numpy(dtype=str),
                                      clients["employee_count"].to_numpy(dtype=float),
                                      clients["annual_revenue"].to_numpy(dtype=float))
        accounts = _make_accounts(rng, pop, months, eligible)
        if truth_path is not None:
            _write_truth(pop, Path(truth_path))
        path = out_dir / "clients" / f"clients_{end:%Y%m}.{fmt}"
        files["clients"].append(writer.write(clients, _CLIENT_SQL, path))
        bar.update()
        del clients
        _simulate_and_write(_Simulator(rng, pop, accounts, cal), writer, out_dir, set(quarter_ends),
                            files, bar)
    finally:
        bar.close()
        writer.close()
    return files


def _simulate_and_write(sim: _Simulator, writer: _Writer, out_dir: Path, quarter_ends: set[int],
                        files: dict[str, list[Path]], bar: tqdm) -> None:
    """Run the monthly simulation (with a 12-month arrears warm-up) and write deliveries."""
    for t in range(-_Simulator.DPD_MEMORY, sim.cal.months):
        sim.step_arrears(t)
        if t < 0:
            continue
        month: date = sim.cal.month(t).astype(object)
        tag, ext = f"{month:%Y%m}", writer.fmt
        path = out_dir / "product_usage" / f"product_usage_{tag}.{ext}"
        sql = _USAGE_SQL.format(month=f"{month:%Y-%m-%d}")
        files["product_usage"].append(writer.write(sim.usage_frame(t), sql, path))
        bar.update()
        if t in quarter_ends:
            path = out_dir / "credit_bureau" / f"credit_bureau_{tag}.{ext}"
            files["credit_bureau"].append(writer.write(sim.bureau_frame(t), _BUREAU_SQL, path))
            bar.update()
