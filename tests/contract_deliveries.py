"""Valid deliveries generated from the landing contract, and the mutations the property tests apply to them.

Rows are drawn from ``contract.SOURCES``: every ranged column within its ``Range`` (log-uniform amounts, the
bounds themselves now and then), dates within their window, codes from the suites' accepted sets and the
contract's industry-code pattern. Consistency rules a row must also meet (founded <= onboarding, first of the
month, bureau and usage rows of known clients) are respected, so an unmutated delivery is valid.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from scratch_warehouse import TODAY

from dagster_project.defs.ingest.contract import SOURCES, Column
from dagster_project.defs.ingest.contract import TODAY as TODAY_BOUND
from dagster_project.defs.ingest.suites import PRODUCT_CODES, PROVINCE_CODES

N_ROWS = 100  # one bad row = 1 % = LENDSEG_QUARANTINE_MAX_SHARE: quarantined, not rejected
CLEAR_ID_COLUMNS = ("client_id", "account_id", "legal_name", "registration_no", "contact_email", "contact_phone")
STATUSES = ["prospect", "active", "dormant", "closed"]
CHANNELS = ["branch", "online", "relationship_manager"]


def _bound(v, today: date) -> date:
    return today if v == TODAY_BOUND else date.fromisoformat(str(v))


def _number(rng: random.Random, c: Column) -> str:
    lo, hi = float(c.range.lo), float(c.range.hi)
    pick = rng.random()
    if pick < 0.05:
        x = lo
    elif pick < 0.10:
        x = hi
    elif c.type == "BIGINT":
        top = min(hi, lo + 10 ** rng.uniform(0, 6))
        x = rng.randint(int(lo), int(max(lo, top)))
    else:
        span = max(hi, abs(lo))
        x = 10 ** rng.uniform(-2, __import__("math").log10(span))
        x = min(max(-x if lo < 0 and rng.random() < 0.3 else x, lo), hi)
    return str(int(x)) if c.type == "BIGINT" else repr(round(x, 2) if abs(x) < 1e15 else x)


def _day(rng: random.Random, lo: date, hi: date) -> date:
    return lo + timedelta(days=rng.randint(0, max(0, (hi - lo).days)))


def _industry(rng: random.Random) -> str:
    return rng.choice("ABCDEFGHIJKLMNOPQRST") + "".join(
        rng.choice("0123456789") for _ in range(rng.choice([0, 2, 3, 4]))
    )


def valid_rows(source: str, seed: int, known_clients: list[str], n: int = N_ROWS) -> list[dict[str, str]]:
    """``n`` rows of ``source`` that satisfy the contract (``known_clients``: ids already in raw.clients)."""
    rng, src, rows = random.Random(seed), SOURCES[source], []
    for i in range(n):
        row: dict[str, str] = {}
        for c in src.columns:
            if c.range is not None and c.type in ("BIGINT", "DOUBLE"):
                row[c.name] = _number(rng, c) if (c.required or rng.random() > 0.05) else ""
            elif c.range is not None:
                d = _day(rng, _bound(c.range.lo, TODAY), _bound(c.range.hi, TODAY))
                row[c.name] = (
                    (datetime.combine(d, datetime.min.time()) + timedelta(seconds=rng.randint(0, 86399))).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    )
                    if c.type == "TIMESTAMP"
                    else d.isoformat()
                )
        if source == "clients":
            row |= {
                "client_id": f"CLP{seed:010d}{i:03d}",
                "legal_name": f"{rng.choice('甲乙丙丁')}{seed}{i}有限公司",
                "registration_no": f"91{seed % 10**8:08d}{i:08d}",
                "contact_email": f"p{seed}.{i}@corp.cn",
                "contact_phone": f"139{seed % 10**4:04d}{i:04d}",
                "industry_code": _industry(rng),
                "province_code": rng.choice(PROVINCE_CODES),
                "relationship_status": rng.choice(STATUSES),
            }
            if row["onboarding_date"] and row["founded_date"] and row["onboarding_date"] < row["founded_date"]:
                row["founded_date"], row["onboarding_date"] = row["onboarding_date"], row["founded_date"]
        elif source == "credit_bureau":
            row |= {"report_id": f"RPP{seed}-{i}", "client_id": rng.choice(known_clients)}
        elif source == "product_usage":
            row |= {
                "snapshot_month": row["snapshot_month"][:8] + "01",
                "account_id": f"ACP{seed:010d}{i:03d}",
                "client_id": rng.choice(known_clients),
                "product_code": rng.choice(PRODUCT_CODES),
                "channel": rng.choice(CHANNELS),
            }
        rows.append(row)
    return rows


def to_csv(header: list[str], rows: list[dict[str, str]], newline: str = "\n") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(h, "") for h in header])
    return buf.getvalue().encode("utf-8")


@dataclass
class Case:
    """A delivery and what it is allowed to do: ``bad_rows`` may be quarantined (1-based), nothing else."""

    source: str
    data: bytes
    kind: str
    bad_rows: set[int] = field(default_factory=set)
    must_quarantine: set[int] = field(default_factory=set)  # out-of-contract values: exactly these rows
    must_reject: str | None = None  # rule a rejection must name
    may_reject: bool = False
    orphans: int = 0
    clear_ids: set[str] = field(default_factory=set)


def clear_ids(rows: list[dict[str, str]]) -> set[str]:
    return {r[c] for r in rows for c in CLEAR_ID_COLUMNS if len(r.get(c, "")) >= 8}


def out_of_range(c: Column, rng: random.Random) -> str:
    """A value of the column's type outside its contract range (or not finite)."""
    if c.type in ("DATE", "TIMESTAMP"):
        d = rng.choice([date(1, 1, 1), date(1599, 12, 31), _bound(c.range.hi, TODAY) + timedelta(days=400)])
        return d.isoformat() + (" 00:00:00" if c.type == "TIMESTAMP" else "")
    lo, hi = float(c.range.lo), float(c.range.hi)
    options = [hi * 10 if hi > 0 else hi + 1, lo - 1 if lo >= 0 else lo * 10]
    if c.type == "DOUBLE":
        options += ["1e40", "-1e40", "inf", "-inf", "nan", "1.7e308"]
    v = rng.choice(options)
    return v if isinstance(v, str) else (str(int(v)) if c.type == "BIGINT" else repr(v))
