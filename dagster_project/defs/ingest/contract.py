"""Landing-zone contract v1.1: the columns each source must deliver, their types and what is personal data.

v1.1 adds two optional product-usage columns (``term_months``, ``security_type``): a file may leave them out of its
header altogether (``Column.header_optional``), so every v1 file stays valid.

Documented for upstream teams in ``docs/landing_contract.md``. Pure data and pure functions only, so the
contract itself is unit-tested; ``validation.py`` and ``loading.py`` turn it into DuckDB SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

Pii = Literal["drop", "hmac"] | None

TODAY = "today"  # a range bound that is the run's date (end of that day; timestamps get one day's slack)


@dataclass(frozen=True)
class Range:
    """Plausible values of a column, inclusive. Numbers, or ISO dates / ``TODAY`` for DATE and TIMESTAMP."""

    lo: float | str
    hi: float | str
    basis: str  # why: the business source of the bound (docs/landing_contract.md, "Ranges")

    def bounds(self, type_: str, today: date) -> tuple[float | datetime, float | datetime]:
        """The bounds as GX takes them: numbers, or datetimes for DATE/TIMESTAMP columns."""
        if type_ not in ("DATE", "TIMESTAMP"):
            return float(self.lo), float(self.hi)

        def as_dt(v: float | str, upper: bool) -> datetime:
            if v == TODAY:
                day = today + timedelta(days=1) if type_ == "TIMESTAMP" else today  # time-zone slack
                return datetime.combine(day, time.max)
            return datetime.combine(date.fromisoformat(str(v)), time.max if upper else time.min)

        return as_dt(self.lo, False), as_dt(self.hi, True)


# --- Ranges from the business (sources in docs/landing_contract.md, "Ranges") -----------------------------------
# Largest Chinese corporates: ICBC's total assets at 2023-12-31 were CNY 44.7 trillion (ICBC 2023 annual report,
# the largest balance sheet of any company); State Grid's 2023 revenue was USD 546 bn ~ CNY 3.9 trillion (Fortune
# Global 500, 2024). No client's amount can exceed CNY 100 trillion (more than twice ICBC's balance sheet and about
# 80 % of China's 2023 GDP of CNY 126 trillion, NBS). dbt casts amounts to DECIMAL(28,6), which holds |x| < 1e22.
AMOUNT_CEILING_CNY = 1e14
AMOUNT = Range(0, AMOUNT_CEILING_CNY, "CNY, >= 0 and at most CNY 100 trillion (> 2 x ICBC's total assets)")
SIGNED_AMOUNT = Range(-AMOUNT_CEILING_CNY, AMOUNT_CEILING_CNY, "CNY, may be negative; |x| at most CNY 100 trillion")
RATIO = Range(-1e6, 1e6, "ratio; |x| at most 1,000,000 (a ratio beyond it means a near-zero denominator, i.e. noise)")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type the text must cast to: VARCHAR, BIGINT, DOUBLE, DATE, TIMESTAMP
    required: bool = False
    pii: Pii = None  # "drop": never read into DuckDB; "hmac": replaced by a keyed pseudonym
    range: Range | None = None  # every numeric and date column has one (tests/unit/ingest/test_contract.py)
    header_optional: bool = False  # v1.1 column: a delivery may omit it from its header (read as empty)

    @property
    def stored_name(self) -> str:
        """Name in the raw layer: ``client_id`` -> ``client_key``, ``account_id`` -> ``account_key``."""
        return self.name.removesuffix("_id") + "_key" if self.pii == "hmac" else self.name


@dataclass(frozen=True)
class Source:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # stored names identifying a row for upserts
    upsert: Literal["newest_updated_at", "replace_key"]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def kept(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.pii != "drop")


V, I, D, DT, TS = "VARCHAR", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP"  # noqa: E741 - type letters of the tables below

SOURCES: dict[str, Source] = {
    "clients": Source(
        name="clients",
        columns=(
            Column("client_id", V, required=True, pii="hmac"),
            Column("legal_name", V, pii="drop"),
            Column("registration_no", V, pii="drop"),
            Column("contact_email", V, pii="drop"),
            Column("contact_phone", V, pii="drop"),
            Column("industry_code", V),
            Column("province_code", V),
            Column("registered_capital", D, range=AMOUNT),
            Column(
                "employee_count",
                I,
                range=Range(
                    0,
                    10_000_000,
                    "headcount; the largest employers (Walmart 2.1 M, State Grid ~0.9 M) stay far below 10 M",
                ),
            ),
            Column("annual_revenue", D, range=AMOUNT),
            Column("total_assets", D, range=AMOUNT),
            Column(
                "founded_date",
                DT,
                range=Range(
                    "1600-01-01",
                    TODAY,
                    "not in the future; the oldest Chinese firms still trading date from the 1600s (Tongrentang 1669)",
                ),
            ),
            Column(
                "onboarding_date",
                DT,
                range=Range("1900-01-01", TODAY, "not in the future; no client relationship predates 1900"),
            ),
            Column("relationship_status", V),
            Column(
                "updated_at",
                TS,
                required=True,
                range=Range(
                    "1990-01-01",
                    TODAY,
                    "not in the future (one day of time-zone slack): a future updated_at wins every later upsert",
                ),
            ),
        ),
        key=("client_key",),
        upsert="newest_updated_at",
    ),
    "credit_bureau": Source(
        name="credit_bureau",
        columns=(
            Column("report_id", V, required=True),
            Column("client_id", V, required=True, pii="hmac"),
            Column(
                "report_date",
                DT,
                required=True,
                range=Range("1990-01-01", TODAY, "not in the future; no bureau reports before 1990"),
            ),
            Column("bureau_score", I, range=Range(300, 900, "the bureau's score scale, 300-900")),
            Column("total_debt", D, range=AMOUNT),
            Column("overdue_amount", D, range=AMOUNT),
            Column(
                "max_days_past_due_12m",
                I,
                range=Range(0, 36_500, "days; the worst days-past-due seen in 12 months, which can exceed 365"),
            ),
            Column(
                "defaults_5y",
                I,
                range=Range(
                    0, 1_000, "default events in 5 years; more than one every two days is not a record of one firm"
                ),
            ),
            Column(
                "inquiries_6m",
                I,
                range=Range(0, 10_000, "credit inquiries in 6 months (about 55 a day at the ceiling)"),
            ),
            Column("collateral_value", D, range=AMOUNT),
            Column("operating_cash_flow", D, range=SIGNED_AMOUNT),
            Column("debt_service_12m", D, range=AMOUNT),
            Column(
                "current_ratio", D, range=Range(0, 1e6, "current assets / current liabilities, >= 0; at most 1,000,000")
            ),
            Column("debt_to_equity", D, range=RATIO),
            Column("legal_judgments", I, range=Range(0, 100_000, "court judgments on record")),
        ),
        key=("report_id",),
        upsert="replace_key",
    ),
    "product_usage": Source(
        name="product_usage",
        columns=(
            Column(
                "snapshot_month",
                DT,
                required=True,
                range=Range("1990-01-01", TODAY, "not in the future; no snapshots before 1990"),
            ),
            Column("account_id", V, required=True, pii="hmac"),
            Column("client_id", V, required=True, pii="hmac"),
            Column("product_code", V, required=True),
            Column("credit_limit", D, range=AMOUNT),
            Column("outstanding_balance", D, range=AMOUNT),
            Column("drawdown_amount", D, range=AMOUNT),
            Column("repayment_amount", D, range=AMOUNT),
            Column("days_past_due", I, range=Range(0, 36_500, "days; at most 100 years (arrears of years exist)")),
            Column(
                "interaction_count",
                I,
                range=Range(0, 100_000, "contacts in one month (over 3,000 a day at the ceiling)"),
            ),
            Column("channel", V),
            # v1.1 facility terms, optional in the header (files without them stay valid)
            Column(
                "term_months",
                I,
                header_optional=True,
                range=Range(
                    1,
                    600,
                    "original term of the facility in months; 50 years covers the longest "
                    "project-finance and mortgage tenors",
                ),
            ),
            Column("security_type", V, header_optional=True),
        ),
        key=("account_key", "snapshot_month"),
        upsert="replace_key",
    ),
    # Segment review decisions (docs/segmentation.md): confirm the model's segment or override it.
    "review_decisions": Source(
        name="review_decisions",
        columns=(
            Column("client_id", V, required=True, pii="hmac"),
            Column("decision", V, required=True),
            Column(
                "segment_id",
                I,
                range=Range(1, 100_000, "segment ids start at 1; far fewer than 100,000 segments ever exist"),
            ),
            Column("reviewer", V, required=True),
            Column(
                "decided_at",
                TS,
                required=True,
                range=Range("2000-01-01", TODAY, "not in the future (one day of time-zone slack)"),
            ),
            Column("comment", V),
        ),
        key=("client_key", "decided_at"),
        upsert="replace_key",
    ),
}

PII_COLUMNS: dict[str, tuple[str, ...]] = {s.name: tuple(c.name for c in s.columns if c.pii) for s in SOURCES.values()}


def ranged_columns(source: Source) -> tuple[Column, ...]:
    """Kept columns with a plausible range (every non-text column)."""
    return tuple(c for c in source.kept if c.range is not None)


SECURITY_TYPES: tuple[str, ...] = ("unsecured", "guaranteed", "mortgage", "pledge")  # 担保方式: 信用 保证 抵押 质押


def missing_columns(source: Source, delivered: list[str]) -> list[str]:
    """Contract columns absent from a delivery's header (exact, case-sensitive names); v1.1's optional ones may be."""
    present = set(delivered)
    return [c.name for c in source.columns if c.name not in present and not c.header_optional]


def unexpected_columns(source: Source, delivered: list[str]) -> list[str]:
    known = {c.name for c in source.columns}
    return [c for c in delivered if c not in known]


def mask(value: str | None) -> str:
    """Masked sample of a delivered value for messages: its shape without its content ('1,234.5' -> '9,999.9')."""
    if value is None:
        return "NULL"
    return "".join("9" if ch.isdigit() else "x" if ch.isalpha() else ch for ch in value[:20])
