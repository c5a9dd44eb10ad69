"""Blocking checks on the application tables, as their users would ask for them.

Publishing waits for them and refuses when one fails:

* ``recommendations_only_eligible`` - every recommended product passes the catalogue and policy rules
  (recommend.eligibility_failures) for the client, and is not one the client already holds;
* ``warnings_of_known_clients`` - every early warning's client exists in marts.dim_client;
* ``policy_covers_every_segment`` - every segment (of the clients in client_policy, and every active model
  segment in marts.dim_segment when the model segments are used) has a marts.segment_policy row, and
  every client of dim_client has exactly one marts.client_policy row.
"""

import dagster as dg
import duckdb

from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.applications.as_of import as_of_month
from dagster_project.defs.applications.keys import CLIENT_POLICY, RECS, SEG_POLICY, WARNINGS
from dagster_project.defs.applications.recommend_assets import catalogue, client_states, profile
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.tables import exists
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


def policy_gaps(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Segments without a segment_policy row and clients without exactly one client_policy row."""
    pol = {str(r[0]) for r in con.execute("SELECT DISTINCT segment_id FROM app.segment_policy").fetchall()}
    used = {str(r[0]) for r in con.execute("SELECT DISTINCT segment_id FROM app.client_policy "
                                           "WHERE segment_id IS NOT NULL").fetchall()}
    sources = {r[0] for r in con.execute("SELECT DISTINCT segment_source FROM app.segment_policy").fetchall()}
    active: set[str] = set()
    if "model" in sources and exists(con, "marts", "dim_segment"):
        active = {str(r[0]) for r in con.execute("SELECT segment_id FROM marts.dim_segment WHERE status = 'active'").fetchall()}
    clients = con.execute("SELECT count(*) FROM marts.dim_client d WHERE (SELECT count(*) FROM app.client_policy p "
                          "WHERE p.client_key = d.client_key) <> 1").fetchone()[0]
    return {"segments_without_policy": sorted((used | active) - pol), "clients_without_one_policy_row": [clients] if clients else []}


@dg.asset_check(asset=RECS, blocking=True, description="Every recommended product is one the client is eligible "
                "for (catalogue size/rating/risk-class/stage rules, high-risk floor) and does not hold yet.")
def recommendations_only_eligible(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        bad = ineligible_recommendations(con)
        n = con.execute("SELECT count(*) FROM app.client_product_recommendations").fetchone()[0]
    return dg.AssetCheckResult(passed=not bad, metadata={"recommendations": n, "ineligible": len(bad),
                                                         "sample": dg.MetadataValue.json(bad[:10])})


@dg.asset_check(asset=WARNINGS, blocking=True,
                description="Every early warning belongs to a client in marts.dim_client.")
def warnings_of_known_clients(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        orphans = orphan_warnings(con)
        n = con.execute("SELECT count(*) FROM app.risk_early_warnings").fetchone()[0]
    return dg.AssetCheckResult(passed=orphans == 0, metadata={"warnings": n, "warnings_of_unknown_clients": orphans})


@dg.asset_check(asset=SEG_POLICY, blocking=True, additional_deps=[CLIENT_POLICY],
                description="Every segment has a credit-policy row (segment_policy) and every client exactly one "
                            "client_policy row.")
def policy_covers_every_segment(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        gaps = policy_gaps(con)
    return dg.AssetCheckResult(passed=not any(gaps.values()), metadata={k: dg.MetadataValue.json(v) for k, v in gaps.items()})


application_checks = [recommendations_only_eligible, warnings_of_known_clients, policy_covers_every_segment]
