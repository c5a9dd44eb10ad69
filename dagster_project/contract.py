"""Landing-zone contract v1: the columns each source must deliver, their types and what is personal data.

Documented for upstream teams in ``docs/landing_contract.md``. Pure data and pure functions only, so the
contract itself is unit-tested; ``ingest.py`` turns it into DuckDB SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pii = Literal["drop", "hmac"] | None


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type the text must cast to: VARCHAR, BIGINT, DOUBLE, DATE, TIMESTAMP
    required: bool = False
    pii: Pii = None  # "drop": never read into DuckDB; "hmac": replaced by a keyed pseudonym

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


V, I, D, DT, TS = "VARCHAR", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP"

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
            Column("registered_capital", D),
            Column("employee_count", I),
            Column("annual_revenue", D),
            Column("total_assets", D),
            Column("founded_date", DT),
            Column("onboarding_date", DT),
            Column("relationship_status", V),
            Column("updated_at", TS, required=True),
        ),
        key=("client_key",),
        upsert="newest_updated_at",
    ),
    "credit_bureau": Source(
        name="credit_bureau",
        columns=(
            Column("report_id", V, required=True),
            Column("client_id", V, required=True, pii="hmac"),
            Column("report_date", DT, required=True),
            Column("bureau_score", I),
            Column("total_debt", D),
            Column("overdue_amount", D),
            Column("max_days_past_due_12m", I),
            Column("defaults_5y", I),
            Column("inquiries_6m", I),
            Column("collateral_value", D),
            Column("operating_cash_flow", D),
            Column("debt_service_12m", D),
            Column("current_ratio", D),
            Column("debt_to_equity", D),
            Column("legal_judgments", I),
        ),
        key=("report_id",),
        upsert="replace_key",
    ),
    "product_usage": Source(
        name="product_usage",
        columns=(
            Column("snapshot_month", DT, required=True),
            Column("account_id", V, required=True, pii="hmac"),
            Column("client_id", V, required=True, pii="hmac"),
            Column("product_code", V, required=True),
            Column("credit_limit", D),
            Column("outstanding_balance", D),
            Column("drawdown_amount", D),
            Column("repayment_amount", D),
            Column("days_past_due", I),
            Column("interaction_count", I),
            Column("channel", V),
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
            Column("segment_id", I),
            Column("reviewer", V, required=True),
            Column("decided_at", TS, required=True),
            Column("comment", V),
        ),
        key=("client_key", "decided_at"),
        upsert="replace_key",
    ),
}

PII_COLUMNS: dict[str, tuple[str, ...]] = {
    s.name: tuple(c.name for c in s.columns if c.pii) for s in SOURCES.values()
}


def missing_columns(source: Source, delivered: list[str]) -> list[str]:
    """Contract columns absent from a delivery's header (exact, case-sensitive names)."""
    present = set(delivered)
    return [c.name for c in source.columns if c.name not in present]


def unexpected_columns(source: Source, delivered: list[str]) -> list[str]:
    known = {c.name for c in source.columns}
    return [c for c in delivered if c not in known]


def mask(value: str | None) -> str:
    """Masked sample of a delivered value for messages: its shape without its content ('1,234.5' -> '9,999.9')."""
    if value is None:
        return "NULL"
    return "".join("9" if ch.isdigit() else "x" if ch.isalpha() else ch for ch in value[:20])
