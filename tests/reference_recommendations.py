"""The recommendations as they were made before issue 26: one client at a time, through the per-client rules.

Kept as the reference the whole-population implementation (recommend_assets.recommend_frame, eligibility.py) is
compared against on the same build (tests/e2e/test_applications_e2e.py): same rows, same rankings, same hits.
"""

from collections import defaultdict

import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.applications.as_of import adoptions_sql, as_of_month, client_state_sql, evaluation_cutoff
from dagster_project.defs.applications.recommend_assets import EVAL_HORIZON_MONTHS, catalogue, propensities


def profile(row) -> rc.ClientProfile:
    return rc.ClientProfile(
        size_class=str(row.size_class),
        firm_stage=str(row.firm_stage),
        technology_firm=bool(row.technology_firm),
        industry_risk_class=str(row.industry_risk_class),
        rating_grade=str(row.rating_grade),
        industry_section=row.industry_section,
        is_customer=bool(row.is_customer),
    )


def recommend_rows(
    states: pd.DataFrame, query: np.ndarray, products: dict[str, rc.Product]
) -> tuple[list[dict], dict[str, float], dict[int, dict[str, list[str]]]]:
    """Top-3 rows for the query clients + popularity + per-client rankings (model/popularity x all/eligible)."""
    shares, popularity = propensities(states, query)
    rows: list[dict] = []
    rankings: dict[int, dict[str, list[str]]] = {}
    for j, i in enumerate(query):
        r = states.iloc[i]
        cp = profile(r)
        held = {p for p in rc.PRODUCTS if r[f"held_{p}"]}
        eligible = {p for p in rc.PRODUCTS if p in products and rc.is_eligible(products[p], cp)}
        share = dict(zip(rc.PRODUCTS, shares[j], strict=False))
        scores = {p: rc.score(share[p], bool(rc.playbook_codes(p, cp)), popularity[p]) for p in rc.PRODUCTS}
        top = rc.rank_products(scores, held, eligible)
        rankings[int(i)] = {
            "model_all": rc.rank_products(scores, held),
            "model_eligible": top,
            "popularity_all": rc.popularity_ranking(popularity, held),
            "popularity_eligible": rc.popularity_ranking(popularity, held, eligible),
        }
        base = {
            "client_key": r.client_key,
            "advisory_recommended": rc.advisory_recommended(cp),
            "eligible_products": len(eligible - held),
            "rating_grade": cp.rating_grade,
        }
        if not top:
            rows.append(
                base
                | {
                    "recommendation_rank": None,
                    "product_code": None,
                    "score": None,
                    "peer_share": None,
                    "playbook_fit": None,
                    "reason_codes": "NO_ELIGIBLE_PRODUCT",
                    "reason_text": "No catalogue product the client does not hold passes the eligibility rules",
                }
            )
        for rank, p in enumerate(top, 1):
            codes = rc.reason_codes(products[p], cp, share[p], popularity[p])
            rows.append(
                base
                | {
                    "recommendation_rank": rank,
                    "product_code": p,
                    "score": round(float(scores[p]), 4),
                    "peer_share": round(float(share[p]), 4),
                    "playbook_fit": bool(rc.playbook_codes(p, cp)),
                    "reason_codes": "|".join(codes),
                    "reason_text": rc.reason_text(codes, share[p]),
                }
            )
    return rows, popularity, rankings


def live_recommendations(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """What the asset published before: the rows of every active client and prospect, one client at a time."""
    states = con.execute(client_state_sql(as_of_month(con), live=True)).df()
    query = np.flatnonzero(states["lifecycle_stage"].isin(["new", "growing", "mature", "prospect"]).to_numpy())
    rows, _, _ = recommend_rows(states, query, catalogue(con))
    return pd.DataFrame(rows)


def evaluation_hits(con: duckdb.DuckDBPyConnection) -> tuple[list[str], dict[str, np.ndarray], float]:
    """(evaluated client keys, hit per ranking, share of adoptions eligible at the cutoff), one client at a time."""
    end = as_of_month(con)
    cutoff = evaluation_cutoff(con, end, EVAL_HORIZON_MONTHS)
    products = catalogue(con)
    states = con.execute(client_state_sql(cutoff, live=False)).df()
    adopted: dict[str, set[str]] = defaultdict(set)
    for ck, p, _ in con.execute(adoptions_sql(cutoff, end)).fetchall():
        adopted[ck].add(p)
    query = np.flatnonzero((states["active_at_cutoff"] & states["client_key"].isin(list(adopted))).to_numpy())
    _, _, rankings = recommend_rows(states, query, products)
    hits = {
        k: np.array([rc.hit_at_k(rankings[int(i)][k], adopted[states.client_key.iat[i]]) for i in query], dtype=float)
        for k in ("model_all", "popularity_all", "model_eligible", "popularity_eligible")
    }
    elig_share = (
        float(
            np.mean(
                [
                    bool(
                        adopted[states.client_key.iat[i]]
                        & {p for p in rc.PRODUCTS if rc.is_eligible(products[p], profile(states.iloc[i]))}
                    )
                    for i in query
                ]
            )
        )
        if len(query)
        else 0.0
    )
    return [states.client_key.iat[i] for i in query], hits, elig_share
