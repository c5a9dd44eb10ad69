"""What a generator scenario is made of (``Scenario``), the profile builder ``_p`` the scenario table
(``scenario_specs.py``) uses, the divisions an off-industry client may get and the
province spreads of the scenarios."""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster_project.tools.demo.defaults import Defaults
from dagster_project.tools.demo.profiles import Profile, _divisions

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
