"""Pure parts of the applications part of lendseg evaluate (dagster_project/tools/evaluate_apps.py): reading the
published
tables, the bar, the rendered table. No pipeline run (the runs themselves: `lendseg evaluate`)."""

from pathlib import Path

import duckdb
import pytest

from dagster_project.tools import evaluate as ev
from dagster_project.tools import evaluate_apps as apps

CMP_COLS = (
    "method VARCHAR, in_force BOOLEAN, calibration_version VARCHAR, flag_level VARCHAR, cutoff_month DATE, "
    "outcome_end_month DATE, clients INTEGER, flagged INTEGER, positives INTEGER, true_positives INTEGER, "
    "precision DOUBLE, precision_ci_low DOUBLE, precision_ci_high DOUBLE, recall DOUBLE, recall_ci_low DOUBLE, "
    "recall_ci_high DOUBLE, share_flagged DOUBLE, share_flagged_ci_low DOUBLE, share_flagged_ci_high DOUBLE, "
    "median_lead_months DOUBLE, lead_ci_low DOUBLE, lead_ci_high DOUBLE, meets_bar BOOLEAN"
)


def _warehouse(positives: int, warning_precision: float = 0.5) -> duckdb.DuckDBPyConnection:
    """A minimal published warehouse with the three tables evaluate_apps reads."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA ml")
    con.execute(f"CREATE TABLE marts.early_warning_method_comparison ({CMP_COLS})")
    rows = []
    for method, force in (("expert", False), ("score", True)):
        for level, prec, rec, share in (
            ("watch", 0.1, 0.99, 0.5),
            ("warning", warning_precision, 0.8, 0.1),
            ("critical", 0.9, 0.5, 0.03),
        ):
            tp = int(round(rec * positives))
            rows.append(
                (
                    method,
                    force,
                    "c0001",
                    level,
                    "2026-04-01",
                    "2026-10-01",
                    1000,
                    int(share * 1000),
                    positives,
                    tp,
                    prec if positives else 0.0,
                    prec - 0.05,
                    prec + 0.05,
                    rec if positives else 0.0,
                    rec - 0.1,
                    rec + 0.1,
                    share,
                    share - 0.01,
                    share + 0.01,
                    7.0 if positives else None,
                    6.0 if positives else None,
                    8.0 if positives else None,
                    bool(positives),
                )
            )
    con.executemany(f"INSERT INTO marts.early_warning_method_comparison VALUES ({', '.join(['?'] * 23)})", rows)
    con.execute("CREATE TABLE ml.early_warning_calibration (version VARCHAR, method VARCHAR, reason VARCHAR)")
    con.execute("INSERT INTO ml.early_warning_calibration VALUES ('c0001', 'score', 'combined score wins')")
    con.execute(
        "CREATE TABLE marts.recommendation_evaluation (method VARCHAR, candidate_set VARCHAR, "
        "clients_evaluated INTEGER, hits INTEGER, hit_rate_at_3 DOUBLE, ci_low DOUBLE, ci_high DOUBLE, "
        "lift_vs_popularity DOUBLE, lift_ci_low DOUBLE, lift_ci_high DOUBLE, adoptions_eligible_share DOUBLE, "
        "meets_bar BOOLEAN)"
    )
    con.execute(
        "INSERT INTO marts.recommendation_evaluation VALUES "
        "('model', 'all_not_held', 400, 320, 0.80, 0.76, 0.84, 0.15, 0.11, 0.19, 0.6, true), "
        "('popularity', 'all_not_held', 400, 260, 0.65, 0.60, 0.70, NULL, NULL, NULL, 0.6, NULL), "
        "('model', 'eligible_only', 400, 200, 0.50, 0.45, 0.55, 0.02, 0.0, 0.04, 0.6, false), "
        "('popularity', 'eligible_only', 400, 192, 0.48, 0.43, 0.53, NULL, NULL, NULL, 0.6, NULL)"
    )
    return con


def test_reads_the_method_in_force_and_the_bar_is_met() -> None:
    r = apps.read_results(_warehouse(positives=50), "demo", 7)
    assert (r.method, r.calibration_version, r.clients, r.positives) == ("score", "c0001", 1000, 50)
    lv = apps.in_force_levels(r)
    assert set(lv) == {"watch", "warning", "critical"} and lv["warning"]["method"] == "score"
    assert apps.warning_bar(r) == "met"


def test_bar_names_what_misses_and_no_defaults_is_not_applicable() -> None:
    low = apps.read_results(_warehouse(positives=50, warning_precision=0.21), "x", 201)
    assert apps.warning_bar(low) == "not met: precision 0.21 < 0.3"
    none = apps.read_results(_warehouse(positives=0), "thin_file", 101)
    assert apps.warning_bar(none).startswith("n/a: no defaults planted")
    assert apps.warning_bar(apps.AppResult("x", 1, ok=False)) == "n/a: run failed"


def test_recommendation_summary_is_model_vs_popularity_on_one_candidate_set() -> None:
    r = apps.read_results(_warehouse(positives=5), "coastal_industry", 101)
    s = apps.rec_summary(r)
    assert s["model"] == pytest.approx(0.80) and s["popularity"] == pytest.approx(0.65)
    assert s["lift_ci"] == (pytest.approx(0.11), pytest.approx(0.19)) and s["meets_bar"] is True
    assert apps.rec_summary(r, "eligible_only")["meets_bar"] is False
    assert apps.rec_summary(apps.AppResult("x", 1)) is None


def test_render_and_write_between_markers(tmp_path: Path) -> None:
    results = [
        apps.read_results(_warehouse(positives=50), "demo", 7),
        apps.read_results(_warehouse(positives=0), "thin_file", 101),
        apps.AppResult("diversified", 101, ok=False, note="run failed: boom"),
    ]
    block = apps.render(results, {"when": "2026-12-01", "sizes": "demo: 3000 clients x 18 months"})
    assert block.startswith(apps.START) and block.endswith(apps.END)
    assert (
        "|  |  | warning | 1000 | 50 | 100 | 0.100 [0.090, 0.110] | 0.500 [0.450, 0.550] | 0.800 [0.700, 0.900] | "
        "7 [6, 8] | met |"
    ) in block
    assert (
        "| thin_file 101 | c0001 score | watch | 1000 | 0 | 500 | 0.500 [0.490, 0.510] | n/a | n/a | n/a |  |" in block
    )
    assert "| warning | 1000 | 0 | 100 | 0.100 [0.090, 0.110] | n/a | n/a | n/a | n/a: no defaults planted" in block
    assert "| diversified 101 | run failed |" in block
    assert (
        "* demo 7: c0001 `score` - combined score wins (expert: precision 0.500, recall 0.800, share flagged 0.100)"
        in block
    )
    assert (
        "| demo 7 | 400 | 0.800 [0.760, 0.840] | 0.650 [0.600, 0.700] | +0.150 [+0.110, +0.190] | 0.60 | met |" in block
    )
    doc = tmp_path / "applications.md"
    doc.write_text("# Applications\n\ntext\n")
    ev.write_doc(block, doc, apps.START, apps.END, apps.HEADING)
    ev.write_doc(block.replace("| met |", "| again |"), doc, apps.START, apps.END, apps.HEADING)
    text = doc.read_text()
    assert text.count(apps.START) == 1 and text.count(apps.HEADING) == 1 and "| again |" in text


def test_result_round_trip_and_case_plan(tmp_path: Path) -> None:
    r = apps.read_results(_warehouse(positives=3), "demo", 7)
    apps.save(r, tmp_path)
    assert apps.load(tmp_path) == r and apps.load(tmp_path / "missing") is None
    cases = ev.plan_cases(["coastal_industry", "thin_file", "demo"], [101, 102], 1500, 12, [7], 3000, 18)
    assert cases[0] == ev.Case("demo", 7, 3000, 18)
    assert [(c.name, c.seed) for c in cases[1:]] == [
        ("coastal_industry", 101),
        ("thin_file", 101),
        ("coastal_industry", 102),
        ("thin_file", 102),
    ]
