"""The marketing plan per segment, as a Dagster asset (group ``applications``); rules in ``marketing.py``."""

import dagster as dg

from dagster_project.defs.applications.keys import (
    DIM_CLIENT,
    GROUP,
    RECS,
    SEG_MARKETING,
    SEG_POLICY,
    SEGMENT_DEPS,
    SEGMENT_DOCS,
    USAGE_PROFILE,
)
from dagster_project.defs.applications.marketing import contact_intensity
from dagster_project.defs.applications.store import write_app_table
from dagster_project.lib.metadata import chart_first, figure, md_table, png_markdown
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect

MARKETING_COLUMNS = {
    **SEGMENT_DOCS,
    "clients": "Clients in the segment.",
    "prospects": "Prospects in the segment.",
    "approval_track": "Segment approval track (marts.segment_policy).",
    "preferred_channel": "Most common primary channel of the segment's customers over 12 months (online for "
    "prospect-only segments of micro/small firms, else relationship_manager).",
    "contact_intensity": "high (monthly RM contact), medium (quarterly) or low (digital only) - rules in "
    "docs/applications.md.",
    "products_to_push": "Up to 3 products most often recommended in the segment (pipe-separated); empty for "
    "restricted segments.",
    "eligible_clients": "Active clients and prospects of the segment with one of products_to_push among their "
    "top-3 recommendations.",
    "advisory_clients": "Clients of the segment flagged for tailored financial advisory.",
    "platinum_gold_share": "Share of clients in value tiers platinum or gold.",
    "as_of_date": "The build's as-of date.",
}


@dg.asset(
    key=SEG_MARKETING,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    deps=[DIM_CLIENT, USAGE_PROFILE, RECS, SEG_POLICY, *SEGMENT_DEPS],
)
def segment_marketing(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Marketing plan per segment: preferred channel, contact intensity, products to push, eligible clients."""
    with connect(warehouse.settings) as con:
        df = con.execute("""
            WITH ch AS (
                SELECT r.segment_id, u.primary_channel_12m AS channel, count(*) AS n
                FROM app.client_product_recommendations AS r JOIN marts.fct_client_usage_profile AS u USING (client_key)
                WHERE u.primary_channel_12m IS NOT NULL AND r.recommendation_rank IS DISTINCT FROM 2
                    AND r.recommendation_rank IS DISTINCT FROM 3 GROUP BY ALL
            ), best AS (SELECT segment_id, arg_max(channel, n * 10 + (channel = 'relationship_manager')::INT) AS
                channel FROM ch GROUP BY 1),
            seg AS (
                SELECT p.segment_id, p.segment_name, p.segment_source, p.clients, p.approval_track,
                    p.recommended_products,
                    p.as_of_date FROM app.segment_policy AS p
            ), members AS (
                SELECT DISTINCT r.segment_id, r.client_key FROM app.client_product_recommendations AS r
            ), stats AS (
                SELECT m.segment_id, count(*) FILTER (WHERE d.lifecycle_stage = 'prospect') AS prospects,
                    avg((d.value_tier IN ('platinum', 'gold'))::INT) AS platinum_gold_share,
                    avg((d.size_class IN ('micro', 'small'))::INT) AS small_share
                FROM members AS m JOIN marts.dim_client AS d USING (client_key) GROUP BY 1
            ), adv AS (
                SELECT segment_id, count(DISTINCT client_key) FILTER (WHERE advisory_recommended) AS advisory_clients,
                    count(DISTINCT client_key) AS rec_clients
                FROM app.client_product_recommendations GROUP BY 1
            )
            SELECT s.*, coalesce(st.prospects, 0) AS prospects, coalesce(st.platinum_gold_share, 0) AS
                platinum_gold_share,
                coalesce(b.channel, CASE WHEN coalesce(st.small_share, 0) >= 0.5 THEN 'online' ELSE
                    'relationship_manager' END)
                    AS preferred_channel,
                coalesce(a.advisory_clients, 0) AS advisory_clients, coalesce(a.rec_clients, 0) AS rec_clients
            FROM seg AS s LEFT JOIN best AS b USING (segment_id) LEFT JOIN stats AS st USING (segment_id)
            LEFT JOIN adv AS a USING (segment_id) ORDER BY s.segment_id""").df()
        df["products_to_push"] = [
            ("" if t == "restricted" else (p or ""))
            for t, p in zip(df.approval_track, df.recommended_products, strict=False)
        ]
        con.register("mk_df", df)
        elig = dict(
            con.execute("""
            SELECT m.segment_id, count(DISTINCT r.client_key) FROM mk_df AS m
            JOIN app.client_product_recommendations AS r USING (segment_id)
            WHERE m.products_to_push <> '' AND list_contains(string_split(m.products_to_push, '|'), r.product_code)
            GROUP BY 1""").fetchall()
        )
        df["eligible_clients"] = df.segment_id.map(elig).fillna(0).astype(int)
        df["contact_intensity"] = [
            contact_intensity(t, pg, (e / rcn) if rcn else 0.0)
            for t, pg, e, rcn in zip(
                df.approval_track, df.platinum_gold_share, df.eligible_clients, df.rec_clients, strict=False
            )
        ]
        con.unregister("mk_df")
        con.register("mk_df", df)
        try:
            con.execute("BEGIN")
            n = write_app_table(
                con,
                "segment_marketing",
                """
                SELECT segment_id::BIGINT AS segment_id, segment_name, segment_source, clients::INTEGER AS clients,
                    prospects::INTEGER AS prospects,
                    approval_track, preferred_channel, contact_intensity, products_to_push,
                    eligible_clients::INTEGER AS eligible_clients, advisory_clients::INTEGER AS advisory_clients,
                    platinum_gold_share::DOUBLE AS platinum_gold_share, as_of_date
                FROM mk_df ORDER BY segment_id""",
                "Marketing plan per segment (docs/applications.md).",
                MARKETING_COLUMNS,
            )
            con.execute("COMMIT")
        finally:
            con.unregister("mk_df")
    fig, ax = figure(9, 4.5)
    top = df.sort_values("eligible_clients", ascending=False).head(15)
    colors = top.preferred_channel.map(
        {"online": "tab:blue", "branch": "tab:purple", "relationship_manager": "tab:green"}
    )
    ax.barh(top.segment_name, top.eligible_clients, color=colors.fillna("tab:gray"))
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("eligible clients for the pushed products (blue online, purple branch, green RM)")
    ax.set_title("Marketing: eligible clients and preferred channel by segment")
    show = (
        df[
            [
                "segment_name",
                "clients",
                "approval_track",
                "preferred_channel",
                "contact_intensity",
                "products_to_push",
                "eligible_clients",
            ]
        ]
        .sort_values("eligible_clients", ascending=False)
        .head(20)
    )
    return dg.MaterializeResult(
        metadata=chart_first({"rows": n, "summary": md_table(show), "chart": png_markdown(fig, "marketing by segment")})
    )
