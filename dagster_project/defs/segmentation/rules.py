"""Rule-based segments: the documented safety net when no checked model can score the clients.

When the bootstrap model (first run, no champion yet) fails a blocking training check, ``segment_scoring``
scores every scorable client with these rules instead of failing the run, so the checked warehouse is still
published (docs/segmentation.md, "Fallback"). The rule is the one ``applications.py`` already uses for
clients without a model segment: **size_class x industry_risk_class** of ``marts.dim_client``.

In ``ml.segment_assignments`` / ``marts.client_segments`` a rule segment keeps today's column types:

* ``segment_id`` (BIGINT) is **negative**: ``-(10 * size_rank + risk_rank)``, e.g. ``-13`` = large x high
  (model segment ids are positive, so the two never collide);
* ``confidence`` is null and ``low_confidence`` false (no distance to a centroid);
* ``model_version`` is :data:`RULES_VERSION`; ``marts.client_segments.segment_source`` = ``rule_based`` and
  ``assignment_source`` = ``rule_based``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd

RULES_VERSION = "rules-v1"
SIZE_CLASSES: tuple[str, ...] = ("large", "medium", "small", "micro", "unknown")          # rank 1..5
RISK_CLASSES: tuple[str, ...] = ("standard", "elevated", "high", "unknown")               # rank 1..4
SIZE_WORDS = {"large": "large", "medium": "mid-sized", "small": "small", "micro": "micro", "unknown": "unknown-size"}
LOG_FILE = "rule_fallback.jsonl"  # in $LENDSEG_MODEL_DIR: one line per run that scored with the rules


def rule_segment_id(size_class: str | None, risk_class: str | None) -> int:
    """Negative id of (size_class, industry_risk_class); unknown / null values map to the ``unknown`` rank."""
    s = SIZE_CLASSES.index(size_class) + 1 if size_class in SIZE_CLASSES else len(SIZE_CLASSES)
    r = RISK_CLASSES.index(risk_class) + 1 if risk_class in RISK_CLASSES else len(RISK_CLASSES)
    return -(10 * s + r)


def rule_segments() -> pd.DataFrame:
    """Every rule segment: segment_id, size_class, industry_risk_class, name, description."""
    rows = []
    for size in SIZE_CLASSES:
        for risk in RISK_CLASSES:
            rows.append({"segment_id": rule_segment_id(size, risk), "size_class": size, "industry_risk_class": risk,
                         "name": f"rule: {SIZE_WORDS[size]} firms, {risk} industry risk",
                         "description": f"Rule-based fallback segment: size class {size} (2011 SME standard) and "
                                        f"industry risk class {risk} (reference.industry_sections)."})
    return pd.DataFrame(rows)


def assign(frame: pd.DataFrame) -> pd.Series:
    """Rule segment id of every row of a frame with ``size_class`` and ``industry_risk_class``."""
    return pd.Series([rule_segment_id(s, r) for s, r in zip(frame["size_class"], frame["industry_risk_class"])],
                     index=frame.index, dtype="int64")


def sql_expr(size_col: str, risk_col: str) -> str:
    """SQL twin of :func:`rule_segment_id` (scores any number of clients inside DuckDB)."""
    size = " ".join(f"WHEN '{v}' THEN {i + 1}" for i, v in enumerate(SIZE_CLASSES))
    risk = " ".join(f"WHEN '{v}' THEN {i + 1}" for i, v in enumerate(RISK_CLASSES))
    return (f"-(10 * CASE {size_col} {size} ELSE {len(SIZE_CLASSES)} END "
            f"+ CASE {risk_col} {risk} ELSE {len(RISK_CLASSES)} END)")


def record_use(mdir: Path, run_id: str, at: datetime, reason: str) -> None:
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / LOG_FILE, "a") as f:
        f.write(json.dumps({"run_id": run_id, "at": at.isoformat(), "reason": reason}) + "\n")


def ever_used(mdir: Path) -> bool:
    return (mdir / LOG_FILE).exists()


def catalog_rows(champion: str | None) -> list[dict]:
    """Rows for ml.segment_catalog: active while no champion scores the clients, else retired by the champion."""
    return [{"segment_id": int(r.segment_id), "segment_name": r.name, "description": r.description,
             "status": "retired" if champion else "active", "created_in_version": RULES_VERSION,
             "last_model_version": RULES_VERSION, "retired_in_version": champion}
            for r in rule_segments().itertuples()]
