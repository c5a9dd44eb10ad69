"""Row-level rules of each landing source, as Great Expectations 1.x expectation suites - one place per suite.

Each rule is declared once here as data (``Rule``) and turned into a GX expectation by :func:`build_suite`.
The validated frame holds the typed values plus, for every typed column, ``<column>__unparsed``: the
delivered text where it did not parse as the contract type (same parser as the load), so type rules are
GX expectations too. Row numbers come back through ``_row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dagster_project.defs.ingest.contract import SECURITY_TYPES, SOURCES, ranged_columns

PRODUCT_CODES = [
    "term_loan",
    "revolving_credit",
    "project_finance",
    "trade_finance",
    "ip_pledge_loan",
    "equipment_leasing",
    "supply_chain_finance",
    "startup_credit_loan",
]
PROVINCE_CODES = [
    "11",
    "12",
    "13",
    "14",
    "15",
    "21",
    "22",
    "23",
    "31",
    "32",
    "33",
    "34",
    "35",
    "36",
    "37",
    "41",
    "42",
    "43",
    "44",
    "45",
    "46",
    "50",
    "51",
    "52",
    "53",
    "54",
    "61",
    "62",
    "63",
    "64",
    "65",
]


@dataclass(frozen=True)
class Rule:
    name: str  # stable rule id shown in messages, quarantine and audit results
    expectation: str  # GX expectation class name
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str | None:
        col = self.kwargs.get("column") or self.kwargs.get("column_B")
        return col.removesuffix("__unparsed").removesuffix("_well_formed") if col else None


def _types(source: str) -> list[Rule]:
    return [
        Rule(f"type:{c.stored_name}", "ExpectColumnValuesToBeNull", {"column": f"{c.stored_name}__unparsed"})
        for c in SOURCES[source].kept
        if c.type != "VARCHAR"
    ]


def _required(source: str) -> list[Rule]:
    return [
        Rule(f"required:{c.stored_name}", "ExpectColumnValuesToNotBeNull", {"column": c.stored_name})
        for c in SOURCES[source].kept
        if c.required
    ]


def _ranges(source: str, today: date) -> list[Rule]:
    """``range:<col>`` for every numeric and date column, bounds from the contract (contract.Range)."""
    out = []
    for c in ranged_columns(SOURCES[source]):
        lo, hi = c.range.bounds(c.type, today)
        out.append(
            Rule(
                f"range:{c.stored_name}",
                "ExpectColumnValuesToBeBetween",
                {"column": c.stored_name, "min_value": lo, "max_value": hi},
            )
        )
    return out


def rules(source: str, today: date) -> list[Rule]:
    """The suite of a source. ``today`` bounds dates that cannot lie in the future."""
    common = _types(source) + _required(source) + _ranges(source, today)
    if source == "clients":
        return common + [
            # GX has no regex support for DuckDB: DuckDB evaluates the pattern [A-Ta-t]([0-9]{2,4})? into
            # industry_code_well_formed (validation.landing_query) and GX checks that column.
            Rule(
                "pattern:industry_code",
                "ExpectColumnValuesToBeInSet",
                {"column": "industry_code_well_formed", "value_set": [True]},
            ),
            Rule(
                "accepted:province_code",
                "ExpectColumnValuesToBeInSet",
                {"column": "province_code", "value_set": PROVINCE_CODES},
            ),
            Rule(
                "accepted:relationship_status",
                "ExpectColumnValuesToBeInSet",
                {"column": "relationship_status", "value_set": ["prospect", "active", "dormant", "closed"]},
            ),
            Rule(
                "date_order:founded_date<=onboarding_date",
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": "onboarding_date",
                    "column_B": "founded_date",
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
            ),
        ]
    if source == "credit_bureau":
        return common
    if source == "product_usage":
        return common + [
            Rule(
                "accepted:product_code",
                "ExpectColumnValuesToBeInSet",
                {"column": "product_code", "value_set": PRODUCT_CODES},
            ),
            Rule(
                "accepted:channel",
                "ExpectColumnValuesToBeInSet",
                {"column": "channel", "value_set": ["branch", "online", "relationship_manager"]},
            ),
            Rule(
                "first_of_month:snapshot_month",
                "ExpectColumnValuesToBeInSet",
                {"column": "snapshot_day", "value_set": [1]},
            ),
            Rule(
                "accepted:security_type",
                "ExpectColumnValuesToBeInSet",
                {"column": "security_type", "value_set": list(SECURITY_TYPES)},
            ),
        ]
    if source == "review_decisions":
        return common + [
            Rule(
                "accepted:decision",
                "ExpectColumnValuesToBeInSet",
                {"column": "decision", "value_set": ["confirm", "override"]},
            ),
            # an override names the segment it assigns; a confirm names none (or the confirmed one)
            Rule(
                "required_for_override:segment_id",
                "ExpectColumnValuesToBeInSet",
                {"column": "override_has_segment", "value_set": [True]},
            ),
        ]
    raise KeyError(source)


def client_features_rules() -> list[Rule]:
    """Suite ``client_features``: value rules of the model-ready feature table (uniqueness runs in SQL)."""
    between = {
        "bureau_score": (300, 900),
        "products_held": (0, 8),
        "product_breadth_ever": (0, 8),
        "current_utilisation": (0, 5),
        "overdue_ratio": (0, None),
        "total_credit_limit": (0, None),
        "months_in_arrears_12m": (0, 12),
        "employee_count": (0, None),
        "tenure_months": (0, None),
    }
    out = [Rule("required:client_key", "ExpectColumnValuesToNotBeNull", {"column": "client_key"})]
    out += [
        Rule(f"range:{c}", "ExpectColumnValuesToBeBetween", {"column": c, "min_value": lo, "max_value": hi})
        for c, (lo, hi) in between.items()
    ]
    out += [
        Rule(f"accepted:{c}", "ExpectColumnValuesToBeInSet", {"column": c, "value_set": v})
        for c, v in {
            "size_class": ["large", "medium", "small", "micro", "unknown"],
            "firm_stage": ["startup", "growth", "established", "unknown"],
            "industry_risk_class": [
                "standard",
                "elevated",
                "high",
                "unknown",
            ],  # unknown: no industry_code (dim_client)
            "value_tier": ["platinum", "gold", "silver", "bronze", "unranked"],
        }.items()
    ]
    return out


def build_suite(name: str, suite_rules: list[Rule]):
    """A GX ExpectationSuite from rules (GX imported lazily: it takes seconds)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name)
    for rule in suite_rules:
        suite.add_expectation(getattr(gxe, rule.expectation)(**rule.kwargs, meta={"rule": rule.name}))
    return suite
