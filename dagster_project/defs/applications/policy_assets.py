"""Credit policy per segment and per client, as one Dagster multi-asset (group ``applications``).

Figures per segment in SQL, tracks by the rules in ``policy.py``.
"""

import dagster as dg
import pandas as pd

from dagster_project.defs.applications.keys import (CLIENT_POLICY, DIM_CLIENT, GROUP, MASTER_SCALE, RECS, SEG_POLICY,
                                                    SEGMENT_DEPS, USAGE_PROFILE, WARNINGS)
from dagster_project.defs.applications.policy import TRACK_TEXT, client_track, segment_track
from dagster_project.defs.applications.segments import segment_sql
from dagster_project.lib.metadata import chart_first, figure, md_table, png_markdown
from dagster_project.lib.resources import Warehouse
from dagster_project.defs.applications.store import write_app_table
from dagster_project.lib.tables import sql_literal
from dagster_project.lib.warehouse import connect


SEG_POLICY_COLUMNS = {
    "segment_id": "Segment (marts.client_segments final segment, or rule-based size_class x industry_risk_class).",
    "segment_name": "Readable segment name.",
    "segment_source": "marts.client_segments, ml.segment_assignments or rule_based.",
    "clients": "Clients in the segment (all lifecycle stages).",
    "customers": "Clients with a facility in the as-of month.",
    "exposure": "Sum of current credit limits (CNY) - committed exposure.",
    "outstanding": "Sum of current outstanding balances (CNY).",
    "rated_clients": "Clients with a rating grade (not unrated).",
    "mean_grade_order": "Mean rating grade_order of rated clients (1 = R1 .. 9 = D).",
    "average_rating_grade": "mean_grade_order rounded to the master-scale grade.",
    "pd_band": "PD band of average_rating_grade (rating_master_scale).",
    "mean_pd": "Mean PD (midpoint of each rated client's band).",
    "default_share": "Share of rated clients in grade D.",
    "arrears_rate": "Share of clients with usage having a month 30+ days past due in the last 12 months.",
    "high_risk_share": "Share of clients in `high` industry risk-class industries (B, D, E).",
    "open_critical_warnings": "Clients with an open critical early warning.",
    "approval_track": "standard, enhanced_review or restricted (rules in docs/applications.md).",
    "track_reason": "Pipe-separated reason codes of the track.",
    "recommended_products": "The 3 products most often in the segment's top-3 recommendations (pipe-separated).",
    "as_of_date": "The build's as-of date.",
}


CLIENT_POLICY_COLUMNS = {
    "client_key": "Pseudonymous client key.",
    "segment_id": "Segment of the client.",
    "segment_name": "Readable segment name.",
    "segment_track": "Approval track of the segment (marts.segment_policy).",
    "rating_grade": "dim_client.rating_grade.",
    "industry_risk_class": "dim_client.industry_risk_class.",
    "open_warning": "The client has an open warning-level early warning.",
    "open_critical_warning": "The client has an open critical early warning.",
    "approval_track": "Client approval track: standard, enhanced_review or restricted.",
    "track_reason": "Pipe-separated reason codes.",
    "track_reason_text": "The track in words.",
    "as_of_date": "The build's as-of date.",
}


def _policy_chart(pol: pd.DataFrame):
    fig, ax = figure(9, 4.5)
    top = pol.sort_values("exposure", ascending=False).head(15)
    colors = top.approval_track.map({"standard": "tab:green", "enhanced_review": "tab:orange", "restricted": "tab:red"})
    ax.barh(top.segment_name, top.exposure / 1e9, color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("exposure, CNY bn (green standard, orange enhanced review, red restricted)")
    ax.set_title("Credit policy: approval track of the 15 largest segments by exposure")
    ax.tick_params(axis="y", labelsize=7)
    return fig


@dg.multi_asset(
    specs=[dg.AssetSpec(SEG_POLICY, group_name=GROUP, kinds={"duckdb", "python"},
                        deps=[DIM_CLIENT, USAGE_PROFILE, MASTER_SCALE, RECS, WARNINGS, *SEGMENT_DEPS],
                        description="Per segment: size, exposure, average rating and PD band, arrears rate, "
                                    "high-risk share, approval track (standard / enhanced_review / restricted) "
                                    "by documented rules, recommended products."),
           dg.AssetSpec(CLIENT_POLICY, group_name=GROUP, kinds={"duckdb", "python"},
                        deps=[DIM_CLIENT, WARNINGS, *SEGMENT_DEPS],
                        description="Per client: approval track from its segment's track, its own rating and "
                                    "industry risk class and its open early warnings, with the reason.")],
    name="credit_policy")
def credit_policy(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Credit policy per segment and per client (marts.segment_policy, marts.client_policy)."""
    with connect(warehouse.settings) as con:
        seg_sql, seg_source = segment_sql(con)
        con.execute(f"CREATE OR REPLACE TEMP TABLE seg AS {seg_sql}")
        figures = con.execute("""
            WITH w AS (
                SELECT client_key, bool_or(severity = 'critical') AS crit, bool_or(severity IN ('warning', 'critical')) AS warn
                FROM app.risk_early_warnings WHERE status = 'open' GROUP BY client_key
            ), recs AS (
                SELECT segment_id, product_code, count(*) AS n FROM app.client_product_recommendations
                WHERE product_code IS NOT NULL GROUP BY ALL
            ), top_recs AS (
                SELECT segment_id, string_agg(product_code, '|' ORDER BY n DESC, product_code) AS recommended_products
                FROM (SELECT *, row_number() OVER (PARTITION BY segment_id ORDER BY n DESC, product_code) AS rk FROM recs)
                WHERE rk <= 3 GROUP BY segment_id
            )
            SELECT s.segment_id, any_value(s.segment_name) AS segment_name, any_value(s.segment_source) AS segment_source,
                count(*) AS clients, count(*) FILTER (WHERE d.current_credit_limit > 0) AS customers,
                sum(d.current_credit_limit) AS exposure, sum(d.current_outstanding) AS outstanding,
                count(d.rating_grade_order) AS rated_clients, avg(d.rating_grade_order) AS mean_grade_order,
                avg((d.pd_min + d.pd_max) / 2) AS mean_pd,
                coalesce(avg((d.rating_grade = 'D')::INT) FILTER (WHERE d.rating_grade_order IS NOT NULL), 0) AS default_share,
                coalesce(avg((u.months_30_plus_dpd_12m > 0)::INT), 0) AS arrears_rate,
                avg((d.industry_risk_class = 'high')::INT) AS high_risk_share,
                count(*) FILTER (WHERE w.crit) AS open_critical_warnings,
                any_value(t.recommended_products) AS recommended_products, any_value(d.as_of_date) AS as_of_date
            FROM seg AS s JOIN marts.dim_client AS d USING (client_key)
            LEFT JOIN marts.fct_client_usage_profile AS u USING (client_key)
            LEFT JOIN w USING (client_key) LEFT JOIN top_recs AS t USING (segment_id)
            GROUP BY s.segment_id ORDER BY s.segment_id""").df()
        tracks = [segment_track(r.default_share, r.mean_grade_order, r.arrears_rate, r.high_risk_share)
                  for r in figures.itertuples()]
        figures["approval_track"] = [t for t, _ in tracks]
        figures["track_reason"] = [why for _, why in tracks]
        figures["grade_round"] = figures.mean_grade_order.round().astype("Int64")
        con.register("fig_df", figures)
        clients = con.execute("""
            SELECT s.client_key, d.rating_grade, d.industry_risk_class,
                coalesce(bool_or(w.severity IN ('warning', 'critical')), false) AS open_warning,
                coalesce(bool_or(w.severity = 'critical'), false) AS open_critical
            FROM seg AS s JOIN marts.dim_client AS d USING (client_key)
            LEFT JOIN app.risk_early_warnings AS w ON w.client_key = s.client_key AND w.status = 'open'
            GROUP BY ALL ORDER BY s.client_key""").df()
        seg_track = dict(con.execute("SELECT s.client_key, f.approval_track FROM seg AS s JOIN fig_df AS f USING (segment_id)").fetchall())
        ct = [client_track(seg_track[r.client_key], r.rating_grade, r.industry_risk_class, bool(r.open_critical),
                           bool(r.open_warning)) for r in clients.itertuples()]
        clients["approval_track"] = [t for t, _ in ct]
        clients["track_reason"] = [why for _, why in ct]
        con.register("cli_df", clients)
        try:
            con.execute("BEGIN")
            n_seg = write_app_table(con, "segment_policy", """
                SELECT f.segment_id, f.segment_name, f.segment_source, f.clients::INTEGER AS clients,
                    f.customers::INTEGER AS customers, f.exposure::DOUBLE AS exposure, f.outstanding::DOUBLE AS outstanding,
                    f.rated_clients::INTEGER AS rated_clients, round(f.mean_grade_order, 3) AS mean_grade_order,
                    ms.rating_grade AS average_rating_grade, coalesce(dc.pd_band, 'unrated') AS pd_band,
                    f.mean_pd::DOUBLE AS mean_pd, f.default_share::DOUBLE AS default_share, f.arrears_rate::DOUBLE AS arrears_rate,
                    f.high_risk_share::DOUBLE AS high_risk_share, f.open_critical_warnings::INTEGER AS open_critical_warnings,
                    f.approval_track, f.track_reason, f.recommended_products, f.as_of_date
                FROM fig_df AS f
                LEFT JOIN reference.rating_master_scale AS ms ON ms.grade_order = f.grade_round
                LEFT JOIN (SELECT DISTINCT rating_grade, pd_band FROM marts.dim_client) AS dc ON dc.rating_grade = ms.rating_grade
                ORDER BY f.segment_id""",
                "Credit policy per segment: risk figures and approval track (docs/applications.md).", SEG_POLICY_COLUMNS)
            n_cli = write_app_table(con, "client_policy", f"""
                SELECT c.client_key, s.segment_id, s.segment_name, f.approval_track AS segment_track, c.rating_grade,
                    c.industry_risk_class, c.open_warning, c.open_critical AS open_critical_warning, c.approval_track,
                    c.track_reason,
                    CASE c.approval_track {" ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in TRACK_TEXT.items())} END
                        || ' (' || replace(lower(c.track_reason), '|', ', ') || ')' AS track_reason_text,
                    d.as_of_date
                FROM cli_df AS c JOIN seg AS s USING (client_key) JOIN fig_df AS f USING (segment_id)
                JOIN marts.dim_client AS d USING (client_key) ORDER BY c.client_key""",
                "Credit policy per client: approval track with its reason (docs/applications.md).", CLIENT_POLICY_COLUMNS)
            con.execute("COMMIT")
        finally:
            con.unregister("fig_df")
            con.unregister("cli_df")
        pol = con.execute("SELECT * FROM app.segment_policy").df()
        mix = con.execute("SELECT approval_track, count(*) AS clients FROM app.client_policy GROUP BY 1 ORDER BY 1").df()
    show = pol[["segment_name", "clients", "exposure", "average_rating_grade", "pd_band", "arrears_rate",
                "high_risk_share", "approval_track", "recommended_products"]].sort_values("exposure", ascending=False).head(20)
    show = show.assign(exposure=(show.exposure / 1e6).round(1).astype(str) + " m")
    yield dg.MaterializeResult(asset_key=SEG_POLICY, metadata=chart_first({
        "rows": n_seg, "segment_source": seg_source, "summary": md_table(show),
        "chart": png_markdown(_policy_chart(pol), "approval track by segment")}))
    fig, ax = figure(6, 3.5)
    ax.bar(mix.approval_track, mix.clients, color=["tab:orange", "tab:red", "tab:green"][:len(mix)])
    ax.set_title("Clients by approval track")
    yield dg.MaterializeResult(asset_key=CLIENT_POLICY, metadata=chart_first({
        "rows": n_cli, "summary": md_table(mix), "chart": png_markdown(fig, "clients by approval track")}))
