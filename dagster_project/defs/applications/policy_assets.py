"""Credit policy per segment and per client, as one Dagster multi-asset (group ``applications``).

Figures per segment and every client's track in SQL; the segment tracks by ``policy.segment_tracks`` over the
(few) segment rows; the rules and the expected default rate are documented in ``policy.py`` and
docs/applications.md.
"""

import dagster as dg
import duckdb
import pandas as pd

from dagster_project.defs.applications import policy as pl
from dagster_project.defs.applications.keys import (
    CLIENT_POLICY,
    DIM_CLIENT,
    GROUP,
    MASTER_SCALE,
    RECS,
    SEG_POLICY,
    SEGMENT_DEPS,
    SEGMENT_DOCS,
    SEGMENT_OF_RECORD,
    USAGE_PROFILE,
    WARNINGS,
    WORKOUT,
)
from dagster_project.defs.applications.store import write_app_table
from dagster_project.lib.metadata import chart_first, figure, md_table, png_markdown
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.tables import sql_literal
from dagster_project.lib.warehouse import connect

EDR_DOC = (
    "share of the segment's rated clients that default within a year: clients in default count 1, performing "
    "rated clients (R1-R8) their master-scale PD (midpoint of the grade's band); pulled towards the book's rate "
    "by 20 pseudo-clients"
)

SEG_POLICY_COLUMNS = {
    **SEGMENT_DOCS,
    "clients": "Clients whose segment of record is the segment (all lifecycle stages).",
    "customers": "Clients with a facility in the as-of month.",
    "exposure": "Sum of current credit limits (CNY) - committed exposure.",
    "outstanding": "Sum of current outstanding balances (CNY).",
    "rated_clients": "Clients with a rating grade (not unrated; grade D included).",
    "mean_grade_order": "Mean rating grade_order of rated clients (1 = R1 .. 9 = D).",
    "average_rating_grade": "mean_grade_order rounded to the master-scale grade.",
    "pd_band": "PD band of average_rating_grade (rating_master_scale).",
    "mean_pd": "Mean PD (midpoint of each rated client's band; grade D counts as 1).",
    "default_share": "Share of rated clients in grade D (in default: marts.workout_clients).",
    "clients_in_default": "Clients of the segment in default (grade D, marts.workout_clients).",
    "arrears_rate": "Share of clients with usage having a month 30+ days past due in the last 12 months.",
    "high_risk_share": "Share of clients in `high` industry risk-class industries (B, D, E).",
    "open_critical_warnings": "Clients with an open critical early warning.",
    "rated_performing_clients": "Rated clients not in default (grades R1-R8): the evidence behind "
    "expected_default_rate.",
    "expected_default_rate": f"Expected default rate of the segment: {EDR_DOC} (docs/applications.md); null without "
    "any rated performing client in the book.",
    "relative_risk": "expected_default_rate / the book's expected default rate (mean PD of all performing rated "
    "clients).",
    "approval_track": "standard, enhanced_review or restricted, chosen from expected_default_rate (rules in "
    "docs/applications.md).",
    "track_reason": "Pipe-separated reason codes of the track (EDR multiple of the book, share cap).",
    "track_expected_default_rate": "Expected default rate of the segment's track: the same rate over the rated clients "
    "of every segment on the same approval_track (in default 1, performing their PD).",
    "recommended_products": "The 3 products most often in the segment's top-3 recommendations (pipe-separated).",
    "as_of_date": "The build's as-of date.",
}


CLIENT_POLICY_COLUMNS = {
    "client_key": "Pseudonymous client key.",
    **SEGMENT_DOCS,
    "segment_track": "Approval track of the segment (marts.segment_policy).",
    "rating_grade": "dim_client.rating_grade.",
    "industry_risk_class": "dim_client.industry_risk_class.",
    "in_default": "The client is in default (grade D): listed in marts.workout_clients, no early warning.",
    "open_warning": "The client has an open warning-level (or critical) early warning.",
    "open_critical_warning": "The client has an open critical early warning.",
    "expected_default_rate": "The client's expected default rate: its own master-scale PD (band midpoint) when rated "
    "R1-R8, else (unrated) its segment's expected_default_rate; null in default.",
    "approval_track": "Client approval track: standard, enhanced_review or restricted (rules in docs/applications.md).",
    "track_reason": "Pipe-separated reason codes: every rule that applies and gives this track.",
    "track_reason_text": "The track in words.",
    "as_of_date": "The build's as-of date.",
}

PD_MID = "CASE WHEN d.rating_grade_order BETWEEN 1 AND 8 THEN ((d.pd_min + d.pd_max) / 2)::DOUBLE END"


def book_figures(con: duckdb.DuckDBPyConnection) -> tuple[float | None, int]:
    """(the book's expected default rate - mean PD of performing rated clients, None without any -, all clients)."""
    rate, n = con.execute(f"SELECT avg({PD_MID}), count(*) FROM marts.dim_client AS d").fetchone()
    return (None if rate is None else float(rate)), int(n)


def segment_figures(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per segment of record (few rows): risk figures, EDR inputs, recommended products."""
    return con.execute(f"""
        WITH w AS (
            SELECT client_key, bool_or(severity = 'critical') AS crit FROM app.risk_early_warnings
            WHERE status = 'open' GROUP BY client_key
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
            coalesce(avg((d.rating_grade = 'D')::INT) FILTER (WHERE d.rating_grade_order IS NOT NULL), 0) AS
                default_share,
            count(*) FILTER (WHERE d.rating_grade = 'D') AS clients_in_default,
            coalesce(avg((u.months_30_plus_dpd_12m > 0)::INT), 0) AS arrears_rate,
            avg((d.industry_risk_class = 'high')::INT) AS high_risk_share,
            count(*) FILTER (WHERE w.crit) AS open_critical_warnings,
            count({PD_MID}) AS rated_performing_clients, coalesce(sum({PD_MID}), 0) AS pd_sum,
            any_value(t.recommended_products) AS recommended_products, any_value(d.as_of_date) AS as_of_date
        FROM ({SEGMENT_OF_RECORD}) AS s JOIN marts.dim_client AS d USING (client_key)
        LEFT JOIN marts.fct_client_usage_profile AS u USING (client_key)
        LEFT JOIN w USING (client_key) LEFT JOIN top_recs AS t USING (segment_id)
        GROUP BY s.segment_id ORDER BY s.segment_id""").df()


def with_tracks(figures: pd.DataFrame, book_rate: float | None, book_clients: int) -> pd.DataFrame:
    """The segment rows with expected_default_rate, relative_risk, approval_track, track_reason and the track's EDR."""
    f = figures.copy()
    f["expected_default_rate"] = [
        pl.expected_default_rate(float(s), int(n), int(d), book_rate)
        for s, n, d in zip(f.pd_sum, f.rated_performing_clients, f.clients_in_default, strict=False)
    ]
    f["relative_risk"] = [(e / book_rate) if e is not None and book_rate else None for e in f.expected_default_rate]
    tracks = pl.segment_tracks(
        [pl.SegmentRisk(int(r.segment_id), int(r.clients), r.expected_default_rate) for r in f.itertuples()],
        book_rate,
        book_clients,
    )
    f["approval_track"] = [tracks[int(i)][0] for i in f.segment_id]
    f["track_reason"] = [tracks[int(i)][1] for i in f.segment_id]
    pooled = f.groupby("approval_track")[["pd_sum", "rated_performing_clients", "clients_in_default"]].sum()
    rate = {
        t: ((r.pd_sum + r.clients_in_default) / (r.rated_performing_clients + r.clients_in_default))
        if (r.rated_performing_clients + r.clients_in_default) and book_rate is not None
        else None
        for t, r in pooled.iterrows()
    }
    f["track_expected_default_rate"] = f.approval_track.map(rate)
    f["grade_round"] = f.mean_grade_order.round().astype("Int64")
    return f


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
    specs=[
        dg.AssetSpec(
            SEG_POLICY,
            group_name=GROUP,
            kinds={"duckdb", "python"},
            deps=[DIM_CLIENT, USAGE_PROFILE, MASTER_SCALE, RECS, WARNINGS, *SEGMENT_DEPS],
            description="Per segment: size, exposure, rating, default share, expected default rate, "
            "approval track (standard / enhanced_review / restricted) chosen from the expected "
            "default rates with target shares, the track's expected default rate, "
            "recommended products.",
        ),
        dg.AssetSpec(
            CLIENT_POLICY,
            group_name=GROUP,
            kinds={"duckdb", "python"},
            deps=[DIM_CLIENT, WARNINGS, WORKOUT, *SEGMENT_DEPS],
            description="Per client: approval track from its segment's track, its own rating, default "
            "status and open early warnings, with the reasons and its expected default rate.",
        ),
    ],
    name="credit_policy",
)
def credit_policy(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Credit policy per segment and per client (marts.segment_policy, marts.client_policy)."""
    with connect(warehouse.settings) as con:
        book_rate, book_clients = book_figures(con)
        f = with_tracks(segment_figures(con), book_rate, book_clients)
        con.register("fig_df", f)
        text = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in pl.TRACK_TEXT.items())
        try:
            con.execute("BEGIN")
            n_seg = write_app_table(
                con,
                "segment_policy",
                """
                SELECT f.segment_id::BIGINT AS segment_id, f.segment_name, f.segment_source, f.clients::INTEGER AS
                    clients,
                    f.customers::INTEGER AS customers, f.exposure::DOUBLE AS exposure, f.outstanding::DOUBLE AS
                        outstanding,
                    f.rated_clients::INTEGER AS rated_clients, round(f.mean_grade_order, 3)::DOUBLE AS mean_grade_order,
                    ms.rating_grade AS average_rating_grade, coalesce(dc.pd_band, 'unrated') AS pd_band,
                    f.mean_pd::DOUBLE AS mean_pd, f.default_share::DOUBLE AS default_share,
                    f.clients_in_default::INTEGER AS clients_in_default, f.arrears_rate::DOUBLE AS arrears_rate,
                    f.high_risk_share::DOUBLE AS high_risk_share, f.open_critical_warnings::INTEGER AS
                        open_critical_warnings,
                    f.rated_performing_clients::INTEGER AS rated_performing_clients,
                    f.expected_default_rate::DOUBLE AS expected_default_rate, f.relative_risk::DOUBLE AS relative_risk,
                    f.approval_track, f.track_reason, f.track_expected_default_rate::DOUBLE AS
                        track_expected_default_rate,
                    f.recommended_products::VARCHAR AS recommended_products, f.as_of_date
                FROM fig_df AS f
                LEFT JOIN reference.rating_master_scale AS ms ON ms.grade_order = f.grade_round
                LEFT JOIN (SELECT DISTINCT rating_grade, pd_band FROM marts.dim_client) AS dc ON dc.rating_grade =
                    ms.rating_grade
                ORDER BY f.segment_id""",
                "Credit policy per segment: risk figures, expected default rate and approval track "
                "(docs/applications.md).",
                SEG_POLICY_COLUMNS,
            )
            n_cli = write_app_table(
                con,
                "client_policy",
                f"""
                WITH w AS (
                    SELECT client_key, bool_or(severity IN ('warning', 'critical')) AS warn, bool_or(severity =
                        'critical') AS crit
                    FROM app.risk_early_warnings WHERE status = 'open' GROUP BY client_key
                ), c AS (
                    SELECT s.client_key, s.segment_id, s.segment_name, s.segment_source, p.approval_track AS
                        segment_track,
                        d.rating_grade, d.industry_risk_class, d.rating_grade = 'D' AS in_default,
                        coalesce(w.warn, false) AS open_warning, coalesce(w.crit, false) AS open_critical_warning,
                        CASE WHEN d.rating_grade = 'D' THEN NULL ELSE coalesce({PD_MID}, p.expected_default_rate) END
                            AS expected_default_rate, d.as_of_date
                    FROM ({SEGMENT_OF_RECORD}) AS s JOIN marts.dim_client AS d USING (client_key)
                    JOIN app.segment_policy AS p USING (segment_id)
                    LEFT JOIN w USING (client_key)
                ), t AS (SELECT *, {pl.client_track_sql()} AS approval_track FROM c)
                SELECT client_key, segment_id, segment_name, segment_source, segment_track, rating_grade,
                    industry_risk_class,
                    in_default, open_warning, open_critical_warning, expected_default_rate::DOUBLE AS
                        expected_default_rate,
                    approval_track, {pl.client_reason_sql()} AS track_reason,
                    CASE approval_track {text} END || ' (' || replace(lower({pl.client_reason_sql()}), '|', ', ') || ')'
                        AS track_reason_text, as_of_date
                FROM t ORDER BY client_key""",
                "Credit policy per client: approval track with its reasons (docs/applications.md).",
                CLIENT_POLICY_COLUMNS,
            )
            con.execute("COMMIT")
        finally:
            con.unregister("fig_df")
        pol = con.execute("SELECT * FROM app.segment_policy").df()
        mix = con.execute(
            "SELECT approval_track, count(*) AS clients, round(count(*) / sum(count(*)) OVER (), 4) AS share, "
            "avg(expected_default_rate) AS expected_default_rate FROM app.client_policy "
            "GROUP BY 1 ORDER BY 4 NULLS FIRST"
        ).df()
    show = (
        pol[
            [
                "segment_name",
                "clients",
                "exposure",
                "expected_default_rate",
                "relative_risk",
                "default_share",
                "approval_track",
                "track_reason",
            ]
        ]
        .sort_values("expected_default_rate", ascending=False)
        .head(20)
    )
    show = show.assign(exposure=(show.exposure / 1e6).round(1).astype(str) + " m")
    yield dg.MaterializeResult(
        asset_key=SEG_POLICY,
        metadata=chart_first(
            {
                "rows": n_seg,
                "book_expected_default_rate": book_rate,
                "summary": md_table(show),
                "chart": png_markdown(_policy_chart(pol), "approval track by segment"),
            }
        ),
    )
    fig, ax = figure(6, 3.5)
    colors = {"standard": "tab:green", "enhanced_review": "tab:orange", "restricted": "tab:red"}
    ax.bar(mix.approval_track, mix.clients, color=[colors.get(t, "tab:gray") for t in mix.approval_track])
    ax.set_title("Clients by approval track")
    non_standard = float(mix.loc[mix.approval_track != "standard", "share"].sum())
    yield dg.MaterializeResult(
        asset_key=CLIENT_POLICY,
        metadata=chart_first(
            {
                "rows": n_cli,
                "share_enhanced_review_or_restricted": round(non_standard, 4),
                "summary": md_table(mix),
                "chart": png_markdown(fig, "clients by approval track"),
            }
        ),
    )
