"""Generator scenarios the segmentation model was not built on (``lendseg generate --scenario NAME``).

The demo (scenario ``demo``, the default) is the portfolio the model was developed on. Every other scenario
differs from it in **structure**, not only in seed (docs/segmentation.md, "Scenarios"):

* 5-9 client archetypes (plus prospects) with a different mix and different profiles;
* >= 30 % of the clients drawn **outside** their archetype's typical industries (the demo: 8 %, partly
  inside): an off-industry client gets a division of any other GB/T 4754 section;
* one distinct small group of 1-2 % of the customers (prospects excluded);
* a different region / size spread; ``thin_file`` has >= 40 % of the customers without a bureau report;
* **planted defaults** (``defaults.py``: :class:`Defaults`, :func:`plant_defaults`): 5-8 % of the customers, of ANY
  archetype (lower bureau scores more often), first reach 90+ days past due inside the window (or up to 2 months
  after it) after 6-15 months of deterioration along one of three pathways - ``arrears`` (payment-led: late payments
  that grow), ``financial`` (balance-sheet-led: bureau score, utilisation, cash flow, inquiries, judgments; arrears
  only in the last 2 months) and ``abrupt`` (nothing to see until 2 months before). Written independently of the
  demo's ``deteriorating`` archetype (switched off here), from its own random stream.

A scenario is applied by swapping the generator's profile tables for the duration of one ``generate`` call
(:func:`applied`), so the demo's code path and its byte-identical output stay untouched. The scenarios
themselves are in ``scenario_specs.py``. Judge the model on seeds 101, 102 and 103 of every scenario; never tune
on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from dagster_project.tools.demo import profiles as g
from dagster_project.tools.demo.defaults import plant_defaults
from dagster_project.tools.demo.scenario_parts import ALL_DIVISIONS, Scenario
from dagster_project.tools.demo.scenario_specs import SCENARIOS

JUDGING_SEEDS: tuple[int, ...] = (101, 102, 103)
TUNING_SEEDS: tuple[int, ...] = (201, 202)  # the only scenario seeds ever used while developing the model

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
    """Swap the generator's archetype tables (``profiles``) for scenario ``name`` while the block runs (``demo``:
    no-op)."""
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
