"""Blocking checks on the application tables, as their users would ask for them.

Publishing waits for them and refuses when one fails:

* ``recommendations_only_eligible`` - every recommended product passes the catalogue and policy rules
  (eligibility.eligibility_sql, the SQL form of recommend.eligibility_failures) for the client, and is not one the
  client already holds;
* ``warnings_of_known_clients`` - every early warning's client exists in marts.dim_client, and none is in default
  (marts.workout_clients: a client in default is the workout team's, not an early warning);
* ``policy_covers_every_segment`` - every segment of record (marts.client_segments.final_segment_id) has a
  marts.segment_policy row, every segment_policy row matches exactly one marts.dim_segment row on segment_id,
  and every client of dim_client has exactly one marts.client_policy row, with its segment of record.
"""

import dagster as dg
import duckdb

from dagster_project.defs.applications.as_of import as_of_month, client_state_sql
from dagster_project.defs.applications.eligibility import ineligible_recommendations_sql
from dagster_project.defs.applications.keys import CLIENT_POLICY, RECS, SEG_POLICY, WARNINGS
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect


def ineligible_recommendations(con: duckdb.DuckDBPyConnection, sample: int = 10) -> tuple[int, list[dict]]:
    """(count, first ``sample``) of recommendations the client is not eligible for or already holds (0: passes).

    One SQL anti-join of the published recommendations against the eligibility relation
    (eligibility.ineligible_recommendations_sql) - the rules the recommendations were made with, as of the build.
    """
    sql = ineligible_recommendations_sql(
        "app.client_product_recommendations", client_state_sql(as_of_month(con), live=True)
    )
    n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    rows = con.execute(f"{sql} LIMIT {int(sample)}").fetchall() if n else []
    return n, [{"client_key": ck, "product_code": p, "problem": why} for ck, p, why in rows]


def orphan_warnings(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        "SELECT count(*) FROM app.risk_early_warnings w WHERE NOT EXISTS "
        "(SELECT 1 FROM marts.dim_client d WHERE d.client_key = w.client_key)"
    ).fetchone()[0]


def warnings_in_default(con: duckdb.DuckDBPyConnection) -> int:
    """Early-warning rows of clients in default (marts.workout_clients)."""
    return con.execute(
        "SELECT count(*) FROM app.risk_early_warnings w WHERE w.client_key IN "
        "(SELECT client_key FROM marts.workout_clients)"
    ).fetchone()[0]


POLICY_GAPS_SQL = {
    "segments_without_policy": """
        SELECT DISTINCT s.final_segment_id FROM marts.client_segments s
        WHERE s.final_segment_id NOT IN (SELECT segment_id FROM app.segment_policy) ORDER BY 1""",
    "policy_rows_without_one_dim_segment_row": """
        SELECT p.segment_id FROM app.segment_policy p LEFT JOIN marts.dim_segment g ON g.segment_id = p.segment_id
        GROUP BY p.segment_id HAVING count(g.segment_id) <> 1 ORDER BY 1""",
    "clients_without_one_policy_row": """
        SELECT d.client_key FROM marts.dim_client d LEFT JOIN app.client_policy p USING (client_key)
        GROUP BY d.client_key HAVING count(p.client_key) <> 1 ORDER BY 1""",
    "clients_not_on_their_segment_of_record": """
        SELECT p.client_key FROM app.client_policy p JOIN marts.client_segments s USING (client_key)
        WHERE p.segment_id IS DISTINCT FROM s.final_segment_id ORDER BY 1""",
}


def policy_gaps(con: duckdb.DuckDBPyConnection, sample: int = 20) -> dict[str, list]:
    """Each gap's offending segment ids / client keys (first ``sample``; every list empty = the check passes)."""
    return {
        name: [r[0] for r in con.execute(f"{sql} LIMIT {int(sample)}").fetchall()]
        for name, sql in POLICY_GAPS_SQL.items()
    }


@dg.asset_check(
    asset=RECS,
    blocking=True,
    description="Every recommended product is one the client is eligible "
    "for (catalogue size/rating/risk-class/stage rules, high-risk floor) and does not hold yet.",
)
def recommendations_only_eligible(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        bad, sample = ineligible_recommendations(con)
        n = con.execute("SELECT count(*) FROM app.client_product_recommendations").fetchone()[0]
    return dg.AssetCheckResult(
        passed=bad == 0, metadata={"recommendations": n, "ineligible": bad, "sample": dg.MetadataValue.json(sample)}
    )


@dg.asset_check(
    asset=WARNINGS,
    blocking=True,
    description="Every early warning belongs to a client in marts.dim_client that is not in default "
    "(marts.workout_clients).",
)
def warnings_of_known_clients(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        orphans = orphan_warnings(con)
        defaulted = warnings_in_default(con)
        n = con.execute("SELECT count(*) FROM app.risk_early_warnings").fetchone()[0]
    return dg.AssetCheckResult(
        passed=orphans == 0 and defaulted == 0,
        metadata={"warnings": n, "warnings_of_unknown_clients": orphans, "warnings_of_clients_in_default": defaulted},
    )


@dg.asset_check(
    asset=SEG_POLICY,
    blocking=True,
    additional_deps=[CLIENT_POLICY],
    description="Every segment of record has a credit-policy row (segment_policy) matching exactly one "
    "marts.dim_segment row, and every client exactly one client_policy row on its segment.",
)
def policy_covers_every_segment(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        gaps = policy_gaps(con)
    return dg.AssetCheckResult(
        passed=not any(gaps.values()), metadata={k: dg.MetadataValue.json(v) for k, v in gaps.items()}
    )


application_checks = [recommendations_only_eligible, warnings_of_known_clients, policy_covers_every_segment]
