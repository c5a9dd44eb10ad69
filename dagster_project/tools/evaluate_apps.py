"""``lendseg evaluate``, applications part: early warnings and recommendations judged off the home ground.

From the SAME pipeline run that evaluate.py does per scenario x seed (and the demo), the published warehouse is
read - no extra run, nothing refitted:

* ``marts.early_warning_method_comparison``: per method (expert rules / calibrated combined score) and level
  (watch / warning / critical) precision, recall, share flagged and median lead with bootstrap 95 % intervals, on
  the project's evaluation split (levels as of E = end - 6 months, outcome = first 90+ dpd in (E, end]; the
  calibration read no data after E, ``ew_calibration_assets.calibration_for_evaluation``);
* ``ml.early_warning_calibration``: which method the latest calibration put in force, and why (fallback reason);
* ``marts.recommendation_evaluation``: hit rate at 3 of the model vs the popularity baseline (time split, cutoff
  6 months before the last snapshot), bootstrap 95 % intervals, paired lift.

Every generator plants defaults (the demo: its ``deteriorating`` archetype; the scenarios: ``defaults.DefaultPlan``,
customers of any archetype). Where a case has no defaults in its evaluation window precision, recall and lead are
undefined; only the share of clients flagged - the RM's workload - is reported. The results go into
docs/applications.md between the markers below.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

DOC_NAME = "applications.md"
START, END = "<!-- evaluate-applications:start -->", "<!-- evaluate-applications:end -->"
HEADING = "## Evaluation off the home ground (`lendseg evaluate`)"
LEVELS = ("watch", "warning", "critical")
BAR = {"recall": 0.70, "precision": 0.30, "lead": 2.0}


@dataclass
class AppResult:
    case: str
    seed: int | None
    ok: bool = True
    note: str = ""
    calibration_version: str = ""
    method: str = ""  # method in force: score | expert
    reason: str = ""
    cutoff_month: str = ""
    clients: int = 0
    positives: int = 0
    ew: list[dict] = field(default_factory=list)  # one dict per method x level (comparison table rows)
    rec: list[dict] = field(default_factory=list)  # one dict per method x candidate set

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @staticmethod
    def from_json(text: str) -> AppResult:
        return AppResult(**json.loads(text))


# ------------------------------------------------------------------------------------------------ reading


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [{c: _plain(v) for c, v in zip(cols, r, strict=False)} for r in cur.fetchall()]


def _plain(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    return str(v)


def read_results(con: duckdb.DuckDBPyConnection, case: str, seed: int | None) -> AppResult:
    """The applications' figures of one published warehouse (opened read-only by the caller)."""
    ew = _rows(
        con,
        """
        SELECT method, in_force, calibration_version, flag_level, cutoff_month, clients, flagged, positives,
               true_positives, precision, precision_ci_low, precision_ci_high, recall, recall_ci_low, recall_ci_high,
               share_flagged, share_flagged_ci_low, share_flagged_ci_high, median_lead_months, lead_ci_low,
               lead_ci_high, meets_bar
        FROM marts.early_warning_method_comparison
        ORDER BY method, CASE flag_level WHEN 'watch' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END""",
    )
    cal = _rows(con, "SELECT version, method, reason FROM ml.early_warning_calibration ORDER BY version DESC LIMIT 1")
    rec = _rows(
        con,
        """
        SELECT method, candidate_set, clients_evaluated, hits, hit_rate_at_3, ci_low, ci_high, lift_vs_popularity,
               lift_ci_low, lift_ci_high, adoptions_eligible_share, meets_bar
        FROM marts.recommendation_evaluation ORDER BY candidate_set, method""",
    )
    in_force = [r for r in ew if r["in_force"]] or [r for r in ew if r["method"] == "expert"]
    first = in_force[0] if in_force else {}
    c = cal[0] if cal else {}
    return AppResult(
        case=case,
        seed=seed,
        calibration_version=c.get("version") or "",
        method=first.get("method") or c.get("method") or "",
        reason=c.get("reason") or "",
        cutoff_month=str(first.get("cutoff_month") or ""),
        clients=int(first.get("clients") or 0),
        positives=int(first.get("positives") or 0),
        ew=ew,
        rec=rec,
    )


def measure(root: Path, case: str, seed: int | None) -> AppResult:
    """Figures of the published warehouse under ``root``/data (a finished evaluate run)."""
    con = duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True)
    try:
        return read_results(con, case, seed)
    finally:
        con.close()


# ------------------------------------------------------------------------------------------------ pure parts


def in_force_levels(r: AppResult) -> dict[str, dict]:
    """{level: comparison row} of the method in force."""
    rows = [x for x in r.ew if x.get("method") == r.method] or [x for x in r.ew if x.get("in_force")]
    return {x["flag_level"]: x for x in rows}


def warning_bar(r: AppResult) -> str:
    """'met', 'not met: ...' or 'n/a: ...' for the issue's warning-level bar (recall >= 0.7 at precision >= 0.3,
    median lead >= 2 months) on the method in force."""
    if not r.ok:
        return "n/a: run failed"
    w = in_force_levels(r).get("warning")
    if w is None:
        return "n/a: no evaluation rows"
    if not w.get("positives"):
        return "n/a: no defaults planted (0 positives)"
    miss = []
    if (w.get("recall") or 0) < BAR["recall"]:
        miss.append(f"recall {w['recall']:.2f} < {BAR['recall']}")
    if (w.get("precision") or 0) < BAR["precision"]:
        miss.append(f"precision {w['precision']:.2f} < {BAR['precision']}")
    if (w.get("median_lead_months") or 0) < BAR["lead"]:
        miss.append(f"lead {w.get('median_lead_months')} < {BAR['lead']:g}")
    return "met" if not miss else "not met: " + ", ".join(miss)


def rec_summary(r: AppResult, candidate_set: str = "all_not_held") -> dict | None:
    """Model vs popularity on one candidate set: hit@3 with CI for both, paired lift with CI, bar."""
    by = {x["method"]: x for x in r.rec if x.get("candidate_set") == candidate_set}
    m, p = by.get("model"), by.get("popularity")
    if m is None or p is None:
        return None
    return {
        "clients": m["clients_evaluated"],
        "model": m["hit_rate_at_3"],
        "model_ci": (m["ci_low"], m["ci_high"]),
        "popularity": p["hit_rate_at_3"],
        "popularity_ci": (p["ci_low"], p["ci_high"]),
        "lift": m["lift_vs_popularity"],
        "lift_ci": (m["lift_ci_low"], m["lift_ci_high"]),
        "eligible_share": m.get("adoptions_eligible_share"),
        "meets_bar": bool(m["meets_bar"]),
    }


def _ci(v, lo, hi, fmt: str = "{:.3f}") -> str:
    if v is None:
        return "-"
    s = fmt.format(v)
    return s + (f" [{fmt.format(lo)}, {fmt.format(hi)}]" if lo is not None and hi is not None else "")


def _other(r: AppResult) -> str:
    """The method not in force at warning on the same split, e.g. ' (expert: precision 0.381, recall 0.824, ...)'."""
    x = next((x for x in r.ew if x.get("method") != r.method and x.get("flag_level") == "warning"), None)
    if x is None:
        return ""
    if not x.get("positives"):
        return f" ({x['method']}: share flagged {x['share_flagged']:.3f})"
    return (
        f" ({x['method']}: precision {x['precision']:.3f}, recall {x['recall']:.3f}, share flagged "
        f"{x['share_flagged']:.3f})"
    )


def _label(r: AppResult) -> str:
    return f"{r.case} {r.seed}" if r.seed is not None else r.case


def render(results: list[AppResult], meta: dict) -> str:
    """The markdown block (between START and END) for docs/applications.md."""
    out = [
        START,
        "",
        f"Measured by `lendseg evaluate` ({meta.get('when', '')}; {meta.get('sizes', '')}; first "
        "`daily_refresh` in a fresh data dir, figures read from the published warehouse: "
        "`marts.early_warning_method_comparison`, `ml.early_warning_calibration`, `marts.recommendation_evaluation`). "
        "Bootstrap 95 % intervals in square brackets (clients resampled, 1,000 times for warnings, 2,000 for "
        "recommendations, seeded).",
        "",
        "**Early warnings** (method in force; levels as of the evaluation cutoff E = end - 6 months, positive = "
        "first 90+ dpd in the 6 months after E; the calibration read no data after E). Bar at `warning`: recall "
        ">= 0.70, precision >= 0.30, median lead >= 2 months.",
        "",
        "| case | calibration (method in force) | level | clients | positives | flagged | share flagged | precision | "
        "recall | median lead (months) | warning bar |",
        "|---|---|---|---:|---:|---:|---|---|---|---|---|",
    ]
    for r in results:
        if not r.ok:
            out.append(f"| {_label(r)} | run failed | | | | | | | | | {r.note[:80]} |")
            continue
        lv = in_force_levels(r)
        for i, level in enumerate(LEVELS):
            x = lv.get(level)
            if x is None:
                continue
            none = not x.get("positives")
            cells = [
                _label(r) if i == 0 else "",
                f"{r.calibration_version} {r.method}" if i == 0 else "",
                level,
                str(x["clients"]),
                str(x["positives"]),
                str(x["flagged"]),
                _ci(x["share_flagged"], x["share_flagged_ci_low"], x["share_flagged_ci_high"]),
                "n/a" if none else _ci(x["precision"], x["precision_ci_low"], x["precision_ci_high"]),
                "n/a" if none else _ci(x["recall"], x["recall_ci_low"], x["recall_ci_high"]),
                "n/a"
                if none or x["median_lead_months"] is None
                else _ci(x["median_lead_months"], x["lead_ci_low"], x["lead_ci_high"], "{:g}"),
                warning_bar(r) if level == "warning" else "",
            ]
            out.append("| " + " | ".join(cells) + " |")
    reasons = [(r, r.reason) for r in results if r.ok and r.reason]
    if reasons:
        out += [
            "",
            "Calibration in force per case (`ml.early_warning_calibration.reason`; in brackets the other "
            "method at `warning` on the same split):",
            "",
        ]
        out += [f"* {_label(r)}: {r.calibration_version} `{r.method}` - {why}{_other(r)}" for r, why in reasons]
    out += [
        "",
        "**Recommendations** (time split: features 6 months before the last snapshot, outcome = products "
        "opened since; hit rate at 3 on all products not held; bar: the model's lower bound above popularity's "
        "estimate).",
        "",
        "| case | adopters evaluated | model hit@3 | popularity hit@3 | lift (paired CI) | eligible share | bar |",
        "|---|---:|---|---|---|---:|---|",
    ]
    for r in results:
        s = rec_summary(r) if r.ok else None
        if s is None:
            out.append(f"| {_label(r)} | - | - | - | - | - | n/a |")
            continue
        out.append(
            f"| {_label(r)} | {s['clients']} | {_ci(s['model'], *s['model_ci'])} | "
            f"{_ci(s['popularity'], *s['popularity_ci'])} | {_ci(s['lift'], *s['lift_ci'], '{:+.3f}')} | "
            f"{'-' if s['eligible_share'] is None else format(s['eligible_share'], '.2f')} | "
            f"{'met' if s['meets_bar'] else 'not met'} |"
        )
    out += ["", END]
    return "\n".join(out)


def save(result: AppResult, root: Path) -> None:
    (root / "applications_result.json").write_text(result.to_json())


def load(root: Path) -> AppResult | None:
    p = root / "applications_result.json"
    return AppResult.from_json(p.read_text()) if p.exists() else None
