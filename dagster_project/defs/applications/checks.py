"""Blocking checks on the application tables, as their users would ask for them.

Publishing waits for them and refuses when one fails:

* ``recommendations_only_eligible`` - every recommended product passes the catalogue and policy rules
  (recommend.eligibility_failures) for the client, and is not one the client already holds;
* ``warnings_of_known_clients`` - every early warning's client exists in marts.dim_client, and none is in default
  (marts.workout_clients: a client in default is the workout team's, not an early warning);
* ``policy_covers_every_segment`` - every segment of record (marts.client_segments.final_segment_id) has a
  marts.segment_policy row, every segment_policy row matches exactly one marts.dim_segment row on segment_id,
  and every client of dim_client has exactly one marts.client_policy row, with its segment of record.
"""

import dagster as dg
import duckdb

from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.applications.as_of import as_of_month
from dagster_project.defs.applications.keys import CLIENT_POLICY, RECS, SEG_POLICY, WARNINGS
from dagster_project.defs.applications.recommend_assets import catalogue, client_states, profile
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect


def ineligible_recommendations(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Recommendations the client is not eligible for or already holds (empty list = check passes)."""
    recs = con.execute("SELECT client_key, product_code FROM app.client_product_recommendations "
                       "WHERE product_code IS NOT NULL").df()  # null: NO_ELIGIBLE_PRODUCT rows
    if recs.empty:
        return []
    products = catalogue(con)
    states = client_states(con, as_of_month(con), live=True).set_index("client_key")
    bad = []
    for client_key, product_code in recs.itertuples(index=False):
        if product_code not in products or client_key not in states.index:
            bad.append({"client_key": client_key, "product_code": product_code, "problem": "unknown client or product"})
            continue
        row = states.loc[client_key]
        fails = rc.eligibility_failures(products[product_code], profile(row))
        if bool(row.get(f"held_{product_code}", False)):
            fails.append("ALREADY_HELD")
        if fails:
            bad.append({"client_key": client_key, "product_code": product_code, "problem": ",".join(fails)})
    return bad


def orphan_warnings(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM app.risk_early_warnings w WHERE NOT EXISTS "
                       "(SELECT 1 FROM marts.dim_client d WHERE d.client_key = w.client_key)").fetchone()[0]


def warnings_in_default(con: duckdb.DuckDBPyConnection) -> int:
    """Early-warning rows of clients in default (marts.workout_clients)."""
    return con.execute("SELECT count(*) FROM app.risk_early_warnings w WHERE w.client_key IN "
                       "(SELECT client_key FROM marts.workout_clients)").fetchone()[0]


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
    return {name: [r[0] for r in con.execute(f"{sql} LIMIT {int(sample)}").fetchall()]
            for name, sql in POLICY_GAPS_SQL.items()}


@dg.asset_check(asset=RECS, blocking=True, description="Every recommended product is one the client is eligible "
                "for (catalogue size/rating/risk-class/stage rules, high-risk floor) and does not hold yet.")
def recommendations_only_eligible(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        bad = ineligible_recommendations(con)
        n = con.execute("SELECT count(*) FROM app.client_product_recommendations").fetchone()[0]
    return dg.AssetCheckResult(passed=not bad, metadata={"recommendations": n, "ineligible": len(bad),
                                                         "sample": dg.MetadataValue.json(bad[:10])})


@dg.asset_check(asset=WARNINGS, blocking=True,
                description="Every early warning belongs to a client in marts.dim_client that is not in default "
                            "(marts.workout_clients).")
def warnings_of_known_clients(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        orphans = orphan_warnings(con)
        defaulted = warnings_in_default(con)
        n = con.execute("SELECT count(*) FROM app.risk_early_warnings").fetchone()[0]
    return dg.AssetCheckResult(passed=orphans == 0 and defaulted == 0, metadata={
        "warnings": n, "warnings_of_unknown_clients": orphans, "warnings_of_clients_in_default": defaulted})


@dg.asset_check(asset=SEG_POLICY, blocking=True, additional_deps=[CLIENT_POLICY],
                description="Every segment of record has a credit-policy row (segment_policy) matching exactly one "
                            "marts.dim_segment row, and every client exactly one client_policy row on its segment.")
def policy_covers_every_segment(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        gaps = policy_gaps(con)
    return dg.AssetCheckResult(passed=not any(gaps.values()), metadata={k: dg.MetadataValue.json(v) for k, v in gaps.items()})


application_checks = [recommendations_only_eligible, warnings_of_known_clients, policy_covers_every_segment]
