"""Rule-based segments: the segment of record of every client the model does not score, and the safety net.

The rule is **size_class x industry_risk_class** of ``marts.dim_client``. Its one definition is the dbt seed
``dbt/seeds/rule_segments.csv`` (``reference.rule_segments``): dbt's ``client_segments`` joins it for clients the
model does not score (prospects, clients without bureau report or usage), and this module loads the same file,
so Python and SQL cannot disagree (``tests/unit/segmentation/test_rule_segments.py``). Two uses here:

* when the bootstrap model (first run, no champion yet) fails a blocking training check, ``segment_scoring``
  scores every scorable client with these rules instead of failing the run, so the checked warehouse is still
  published (docs/segmentation.md, "Fallback");
* every rule segment is a row of ``ml.segment_catalog`` (hence ``marts.dim_segment``), always ``active``: rule
  segments hold the clients the model does not score whether or not a champion exists.

Column types are those of model segments:

* ``segment_id`` (BIGINT) is **negative**: ``-(10 * size_rank + risk_rank)``, e.g. ``-13`` = large x high
  (model segment ids are positive, so the two never collide); a class the seed does not list maps to ``unknown``;
* ``confidence`` is null and ``low_confidence`` false (no distance to a centroid);
* ``model_version`` is :data:`RULES_VERSION` when scoring used the rules; ``marts.client_segments.segment_source`` =
  ``rule_based``.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd

from dagster_project.lib.settings import DBT_PROJECT_DIR

RULES_VERSION = "rules-v1"
SEED = DBT_PROJECT_DIR / "seeds" / "rule_segments.csv"
UNKNOWN = "unknown"  # the class a value the seed does not list maps to (dbt's client_segments does the same)
LOG_FILE = "rule_fallback.jsonl"  # in $LENDSEG_MODEL_DIR: one line per run that scored with the rules


@lru_cache(maxsize=1)
def _seed() -> tuple[dict, ...]:
    with SEED.open(newline="", encoding="utf-8") as f:
        return tuple(
            {
                **r,
                "segment_id": int(r["segment_id"]),
                "size_rank": int(r["size_rank"]),
                "risk_rank": int(r["risk_rank"]),
            }
            for r in csv.DictReader(f)
        )


def _ranked(column: str, rank: str) -> tuple[str, ...]:
    return tuple(c for c, _ in sorted({(r[column], r[rank]) for r in _seed()}, key=lambda x: x[1]))


SIZE_CLASSES: tuple[str, ...] = _ranked("size_class", "size_rank")  # large .. unknown (rank 1..5)
RISK_CLASSES: tuple[str, ...] = _ranked("industry_risk_class", "risk_rank")  # standard .. unknown (rank 1..4)


def _key(size_class: str | None, risk_class: str | None) -> tuple[str, str]:
    return (
        size_class if size_class in SIZE_CLASSES else UNKNOWN,
        risk_class if risk_class in RISK_CLASSES else UNKNOWN,
    )


def rule_segment_id(size_class: str | None, risk_class: str | None) -> int:
    """Id of (size_class, industry_risk_class) from the seed; unknown / null values map to the ``unknown`` row."""
    ids = {(r["size_class"], r["industry_risk_class"]): r["segment_id"] for r in _seed()}
    return ids[_key(size_class, risk_class)]


def rule_segments() -> pd.DataFrame:
    """Every rule segment (the seed): segment_id, size_class, industry_risk_class, name, description."""
    return pd.DataFrame(
        [
            {
                "segment_id": r["segment_id"],
                "size_class": r["size_class"],
                "industry_risk_class": r["industry_risk_class"],
                "name": r["segment_name"],
                "description": r["description"],
            }
            for r in _seed()
        ]
    )


def assign(frame: pd.DataFrame) -> pd.Series:
    """Rule segment id of every row of a frame with ``size_class`` and ``industry_risk_class``."""
    return pd.Series(
        [rule_segment_id(s, r) for s, r in zip(frame["size_class"], frame["industry_risk_class"], strict=False)],
        index=frame.index,
        dtype="int64",
    )


def sql_expr(size_col: str, risk_col: str) -> str:
    """SQL twin of :func:`rule_segment_id`, built from the seed (scores any number of clients inside DuckDB)."""
    size = f"CASE WHEN {size_col} IN ({', '.join(repr(s) for s in SIZE_CLASSES)}) THEN {size_col} ELSE '{UNKNOWN}' END"
    risk = f"CASE WHEN {risk_col} IN ({', '.join(repr(s) for s in RISK_CLASSES)}) THEN {risk_col} ELSE '{UNKNOWN}' END"
    cases = " ".join(
        f"WHEN ({size}) = '{r['size_class']}' AND ({risk}) = '{r['industry_risk_class']}' THEN {r['segment_id']}"
        for r in _seed()
    )
    return f"(CASE {cases} END)"


def record_use(mdir: Path, run_id: str, at: datetime, reason: str) -> None:
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / LOG_FILE, "a") as f:
        f.write(json.dumps({"run_id": run_id, "at": at.isoformat(), "reason": reason}) + "\n")


def ever_used(mdir: Path) -> bool:
    return (mdir / LOG_FILE).exists()


def catalog_rows() -> list[dict]:
    """Rows for ml.segment_catalog: every rule segment, always active (the segment of record of unscored clients)."""
    return [
        {
            "segment_id": int(r.segment_id),
            "segment_name": r.name,
            "description": r.description,
            "status": "active",
            "created_in_version": RULES_VERSION,
            "last_model_version": RULES_VERSION,
            "retired_in_version": None,
        }
        for r in rule_segments().itertuples()
    ]
