"""Model checks gate promotion, not publishing (issue 11, item 1), end to end through the CLI.

1. First run, the bootstrap model fails a blocking check (silhouette floor forced to 0.99): the run still
   publishes, with the documented rule-based segments; the failure is in the audit store, an alert and the
   run output; no champion exists.
2. Next run (normal floor) tries again: a model becomes champion and its segments are published.
3. monthly_retrain whose challenger fails: not promoted, the champion rescoring is published, failure recorded.
"""

import duckdb
import pandas as pd
import pytest
from conftest import Workspace, make_workspace

pytestmark = pytest.mark.e2e

FAIL = {"LENDSEG_SEG_SILHOUETTE_FLOOR": "0.99"}


def q(ws: Workspace, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("fallback"), clients=400, months=12, seed=11)


def test_failing_bootstrap_publishes_rule_segments_and_records_the_failure(ws: Workspace) -> None:
    proc = ws.lendseg("run", "--demo", timeout=1500, **FAIL)
    assert "succeeded" in proc.stdout and "model check failed: bootstrap model m0001 failed" in proc.stdout
    assert "silhouette_floor" in proc.stdout and "rule-based segments" in proc.stdout
    cs = q(
        ws,
        "SELECT segment_id, segment_name, segment_source, assignment_source, model_version, confidence, "
        "needs_review FROM marts.client_segments WHERE segment_id IS NOT NULL",
    )
    n_feat = q(ws, "SELECT count(*) AS n FROM marts.client_features").n[0]
    assert len(cs) == n_feat > 200
    assert (cs.segment_source == "rule_based").all() and (cs.assignment_source == "rule_based").all()
    assert (cs.segment_id < 0).all() and cs.segment_name.notna().all() and cs.confidence.isna().all()
    assert (cs.model_version == "rules-v1").all() and not cs.needs_review.any()
    assert (
        q(ws, "SELECT typeof(segment_id) AS t FROM marts.client_segments WHERE segment_id IS NOT NULL LIMIT 1").t[0]
        == "BIGINT"
    )  # today's column type
    dim = q(ws, "SELECT * FROM marts.dim_segment WHERE status = 'active'")
    n_dim = q(ws, "SELECT count(*) AS n FROM marts.dim_client").n[0]
    assert (dim.segment_id < 0).all() and dim.clients.sum() == n_dim  # every client, prospects too, rule-segmented
    every = q(
        ws,
        "SELECT count(*) AS n FROM marts.client_segments WHERE final_segment_id < 0 AND segment_source = 'rule_based'",
    )
    assert every.n[0] == n_dim
    reg = q(ws, "SELECT version, status FROM ml.model_registry")
    assert reg.to_dict("records") == [{"version": "m0001", "status": "rejected"}]
    dq = q(
        ws,
        "SELECT suite, rule, success, observed_value FROM audit.data_quality_results "
        "WHERE asset = 'segmentation_model'",
    )
    fail = dq[(dq.suite == "bootstrap") & (dq.rule == "silhouette_floor")]
    assert len(fail) == 1 and not fail.success.iloc[0] and "0.99" in fail.observed_value.iloc[0]
    checks = q(
        ws, "SELECT rule, success, severity FROM audit.data_quality_results WHERE asset = 'ml/segment_assignments'"
    )
    row = checks[checks.rule == "model_segments_published"]
    assert len(row) == 1 and not row.success.iloc[0] and row.severity.iloc[0] == "warning"
    assert checks[checks.rule.isin(["scoring_coverage", "champion_checks_passed"])].success.all()
    alerts = q(ws, "SELECT severity, error_summary, failed_steps FROM audit.pipeline_alerts")
    assert len(alerts) == 1 and alerts.severity[0] == "WARNING" and "silhouette_floor" in alerts.error_summary[0]


def test_next_run_tries_again_and_publishes_model_segments(ws: Workspace) -> None:
    proc = ws.lendseg("run", "--demo", timeout=1500)
    assert "model check failed" not in proc.stdout
    reg = q(ws, "SELECT version, status FROM ml.model_registry ORDER BY version")
    assert reg.to_dict("records") == [
        {"version": "m0001", "status": "rejected"},
        {"version": "m0002", "status": "champion"},
    ]
    cs = q(
        ws, "SELECT segment_id, segment_source, model_version FROM marts.client_segments WHERE segment_id IS NOT NULL"
    )
    assert (cs.segment_source == "model").all() and (cs.segment_id > 0).all() and (cs.model_version == "m0002").all()
    # rule segments stay listed and active: they hold the clients the model does not score (prospects)
    rules = q(ws, "SELECT status, retired_in_version, clients FROM marts.dim_segment WHERE segment_id < 0")
    assert (rules.status == "active").all() and rules.retired_in_version.isna().all()
    unscored = q(ws, "SELECT count(*) AS n FROM marts.client_segments WHERE segment_id IS NULL").n[0]
    assert rules.clients.sum() == unscored > 0


def test_failing_challenger_is_not_promoted_and_the_champion_rescoring_is_published(ws: Workspace) -> None:
    before = q(ws, "SELECT max(scored_at) AS t FROM ml.segment_assignments").t[0]
    proc = ws.lendseg("run", "--job", "monthly_retrain", "--demo", timeout=1500, **FAIL)
    assert "succeeded" in proc.stdout and "model check failed: challenger m0003 failed" in proc.stdout
    reg = q(ws, "SELECT version, status FROM ml.model_registry ORDER BY version")
    assert reg.to_dict("records") == [
        {"version": "m0001", "status": "rejected"},
        {"version": "m0002", "status": "champion"},
        {"version": "m0003", "status": "rejected"},
    ]
    a = q(ws, "SELECT DISTINCT model_version FROM ml.segment_assignments")
    assert a.model_version.tolist() == ["m0002"]
    dq = q(
        ws,
        "SELECT suite, rule, success FROM audit.data_quality_results WHERE asset = 'segmentation_model' "
        "AND suite = 'segmentation_model'",
    )
    assert not dq[dq.rule == "silhouette_floor"].success.iloc[0]
    alerts = q(ws, "SELECT error_summary FROM audit.pipeline_alerts ORDER BY alerted_at")
    assert len(alerts) == 2 and "challenger m0003" in alerts.error_summary.iloc[-1]
    assert q(ws, "SELECT max(scored_at) AS t FROM ml.segment_assignments").t[0] > before  # rescored and published
