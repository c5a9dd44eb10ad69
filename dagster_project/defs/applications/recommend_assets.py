"""Product recommendations and their time-split evaluation, as Dagster assets (group ``applications``).

The rules (eligibility, playbook, scores, reason codes, bootstrap) are pure functions in ``recommend.py``;
here: client states from the as-of SQL, the neighbour propensities, the two published tables and their charts.
"""

from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.applications import evaluation_inputs as inputs
from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.applications import recommend_population as rp
from dagster_project.defs.applications.as_of import (
    EVAL_HORIZON_MONTHS,
    adoptions_sql,
    as_of_month,
    client_state_sql,
    evaluation_cutoff,
)
from dagster_project.defs.applications.eligibility import eligibility_sql, products_list
from dagster_project.defs.applications.keys import (
    AS_OF,
    AT_CUTOFF,
    CATALOGUE,
    DIM_CLIENT,
    GROUP,
    MASTER_SCALE,
    REC_EVAL,
    RECS,
    SEGMENT_DEPS,
    SEGMENT_DOCS,
    SEGMENT_OF_RECORD,
    STG_BUREAU,
    STG_USAGE,
)
from dagster_project.defs.applications.store import write_app_table
from dagster_project.lib.metadata import chart_first, figure, md_table, png_markdown
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.tables import sql_literal
from dagster_project.lib.warehouse import connect

N_BOOTSTRAP = 2000  # default of LENDSEG_EVAL_BOOTSTRAP (the asset reads the setting)
HOLDINGS_WEIGHT = 0.5  # weight of the product-holding columns in the neighbour distance
MODEL_VERSION = f"knn{rc.K_NEIGHBOURS}-playbook-v1"
NUMERIC_FEATURES = (
    "log_revenue",
    "log_employees",
    "log_assets",
    "firm_age_years",
    "bureau_score",
    "utilisation_12m",
    "online_share",
    "rm_share",
    "log_limit",
)


CATEGORICAL_FEATURES = ("industry_section", "size_class", "industry_risk_class", "firm_stage")
BLOCKED_ON = ("industry_section", "size_class", "firm_stage")  # the neighbour search's blocks, coarsest first
MIN_BLOCK = 50  # a block with fewer customers is searched at the next coarser level


def catalogue(con: duckdb.DuckDBPyConnection) -> dict[str, rc.Product]:
    rows = con.execute("SELECT * FROM reference.product_catalogue ORDER BY product_code").df().to_dict("records")
    return {r["product_code"]: rc.Product.from_row(r) for r in rows}


def propensities(states: pd.DataFrame, query: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """(peer shares for the query rows x products, popularity per product) from customers at the cutoff."""
    held = states[[f"held_{p}" for p in rc.PRODUCTS]].to_numpy().astype(float)
    pool = np.flatnonzero(states["is_customer"].to_numpy())
    popularity = {p: float(held[pool, i].mean()) if len(pool) else 0.0 for i, p in enumerate(rc.PRODUCTS)}
    dummies = pd.get_dummies(states[list(CATEGORICAL_FEATURES)].astype(str))
    cats = dummies.astype(float).to_numpy()
    # peers are searched within industry section, then size class, then firm stage (recommend.nearest)
    blocks = [
        [len(NUMERIC_FEATURES) + j for j, c in enumerate(dummies.columns) if c.startswith(f"{key}_")]
        for key in BLOCKED_ON
    ]
    x = np.hstack(
        [
            states[list(NUMERIC_FEATURES)].astype(float).to_numpy(),
            cats,
            states[["technology_firm"]].astype(float).to_numpy(),
            held,
        ]
    )
    xs = rc.standardise(x, x[pool] if len(pool) else x)
    xs[:, -len(rc.PRODUCTS) :] *= HOLDINGS_WEIGHT
    pos = np.full(len(states), -1)
    pos[pool] = np.arange(len(pool))
    shares = rc.peer_shares(xs[pool], held[pool], xs[query], pos[query], block_keys=blocks, min_block=MIN_BLOCK)
    return shares, popularity


def load_states(con: duckdb.DuckDBPyConnection, cutoff: date, live: bool) -> pd.DataFrame:
    """Client states as of ``cutoff`` (one row per client), kept as TEMP table ``rec_states`` for the SQL that follows.

    The states scan the usage history once; eligibility (:func:`eligible_matrix`) reads the temp table.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE rec_states AS SELECT *, (row_number() OVER (ORDER BY client_key)) - 1 "
        f"AS pos FROM ({client_state_sql(cutoff, live)}) ORDER BY client_key"
    )
    return con.execute("SELECT * EXCLUDE (pos) FROM rec_states ORDER BY pos").df()


def eligible_matrix(con: duckdb.DuckDBPyConnection, n_clients: int) -> np.ndarray:
    """(clients x products) booleans of ``rec_states``: the client passes every catalogue and policy rule
    (eligibility.eligibility_sql, one SQL pass; products missing from the catalogue are never eligible)."""
    pairs = con.execute(
        f"SELECT pos, product_pos FROM ({eligibility_sql('rec_states')}) "
        "WHERE failures = '' AND product_pos IS NOT NULL"
    ).fetchnumpy()
    out = np.zeros((n_clients, len(rc.PRODUCTS)), dtype=bool)
    out[pairs["pos"].astype(np.int64), pairs["product_pos"].astype(np.int64)] = True
    return out


def as_profiles(states: pd.DataFrame) -> pd.DataFrame:
    """The columns the rules read, typed as the per-client rules read them (a missing value reads as the text None)."""
    return pd.DataFrame(
        {
            "size_class": states.size_class.astype(str),
            "firm_stage": states.firm_stage.astype(str),
            "technology_firm": states.technology_firm.astype(bool),
            "industry_risk_class": states.industry_risk_class.astype(str),
            "rating_grade": states.rating_grade.astype(str),
            "industry_section": states.industry_section,
        }
    )


def recommend_frame(
    states: pd.DataFrame, query: np.ndarray, eligible: np.ndarray, products: dict[str, rc.Product]
) -> tuple[pd.DataFrame, dict[str, float], dict[str, np.ndarray]]:
    """Top-3 rows of the query clients, popularity, and the four rankings of the query clients (rows x 3 product
    columns, -1 = none: model/popularity x all not held/eligible) - every client at once, no loop per client."""
    shares, popularity = propensities(states, query)
    pop = np.array([popularity[p] for p in rc.PRODUCTS])
    cp = as_profiles(states.iloc[query]).reset_index(drop=True)
    held = states[[f"held_{p}" for p in rc.PRODUCTS]].to_numpy(dtype=bool)[query]
    elig = eligible[query]
    masks = rp.playbook_masks(cp)
    playbook = rp.playbook_matrix(cp, masks=masks)
    score = rp.scores(shares, playbook, pop)
    codes = list(rc.PRODUCTS)
    rankings = {
        "model_all": rp.top_n(score, ~held, codes),
        "model_eligible": rp.top_n(score, ~held & elig, codes),
        "popularity_all": rp.top_n(np.broadcast_to(pop, score.shape), ~held, codes),
        "popularity_eligible": rp.top_n(np.broadcast_to(pop, score.shape), ~held & elig, codes),
    }
    top = rankings["model_eligible"]
    row, rank = np.nonzero(top >= 0)
    col = top[row, rank]
    secured = np.array([products[p].secured if p in products else False for p in rc.PRODUCTS])
    share = shares[row, col]
    reason_codes, reason_text = rp.reason_columns(
        share,
        pop[col],
        [
            np.isin(col, [codes.index(p) for p in targets]) & mask[row]
            for (_, targets, _), mask in zip(rc.PLAYBOOK, masks, strict=False)
        ],
        (cp.industry_risk_class.to_numpy()[row] == "high") & secured[col],
        ~cp.rating_grade.isin(list(rc.GRADE_ORDER)).to_numpy()[row],
    )
    keys = states.client_key.to_numpy()[query]
    base = pd.DataFrame(
        {
            "client_key": keys,
            "advisory_recommended": rp.advisory_column(cp),
            "eligible_products": (elig & ~held).sum(axis=1),
            "rating_grade": cp.rating_grade.to_numpy(),
        }
    )
    recs = (
        base.iloc[row]
        .reset_index(drop=True)
        .assign(
            recommendation_rank=pd.array(rank + 1, dtype="Int64"),
            product_code=np.asarray(codes, dtype=object)[col],
            score=score[row, col],
            peer_share=share,
            playbook_fit=pd.array(playbook[row, col], dtype="boolean"),
            reason_codes=reason_codes,
            reason_text=reason_text,
        )
    )
    empty = (top < 0).all(axis=1)
    none = base[empty].assign(
        recommendation_rank=pd.array([None] * int(empty.sum()), dtype="Int64"),
        product_code="",
        score=np.nan,
        peer_share=np.nan,
        playbook_fit=pd.array([None] * int(empty.sum()), dtype="boolean"),
        reason_codes="NO_ELIGIBLE_PRODUCT",
        reason_text="No catalogue product the client does not hold passes the eligibility rules",
    )
    rows = pd.concat([recs, none], ignore_index=True) if len(none) else recs
    rows.loc[rows.recommendation_rank.isna(), "product_code"] = None  # NO_ELIGIBLE_PRODUCT rows name no product
    return rows, popularity, rankings


RECS_COLUMNS = {
    "client_key": "Pseudonymous client key (marts.dim_client).",
    **SEGMENT_DOCS,
    "lifecycle_stage": "dim_client.lifecycle_stage: recommendations cover active clients (new, growing, mature) "
    "and prospects.",
    "recommendation_rank": "1 = best of the client's top 3; null when no eligible product is left (reason_codes "
    "NO_ELIGIBLE_PRODUCT).",
    "product_code": "Recommended catalogue product (reference.product_catalogue), never one the client holds, "
    "always eligible.",
    "product_name_en": "English product name.",
    "score": "peer_share + 0.35 x playbook_fit + 0.05 x popularity (see docs/applications.md).",
    "peer_share": "Learned propensity: distance-weighted share of the 30 nearest customers (scikit-learn "
    "NearestNeighbors) holding the product.",
    "playbook_fit": "A playbook rule targets this product at the client (large manufacturer long-term, tech SME IP "
    "pledge, start-up credit).",
    "reason_codes": "Pipe-separated reason codes, strongest first (PEERS_HOLD_STRONG, PEERS_HOLD, PLAYBOOK_*, "
    "SECURED_FOR_HIGH_RISK_INDUSTRY, POPULAR_PRODUCT, UNRATED_ASSUMED_R6, NO_ELIGIBLE_PRODUCT).",
    "reason_text": "The reason codes as one sentence for the relationship manager.",
    "advisory_recommended": "Tailored financial advisory (a service) recommended: established, large or medium "
    "firm, not in default.",
    "eligible_products": "Catalogue products the client does not hold and is eligible for.",
    "rating_grade": "Rating grade used by the eligibility rules (dim_client; unrated assessed as R6).",
    "model_version": "Version of the recommendation model (neighbours + playbook weights).",
    "as_of_date": "The build's as-of date.",
}


REC_EVAL_COLUMNS = {
    "method": "model = learned propensity + playbook; popularity = most widely held products (baseline).",
    "candidate_set": "all_not_held = any product not held at the cutoff; eligible_only = also passing the "
    "catalogue rules (the published list).",
    "cutoff_month": "Features as of this month (data up to its end only).",
    "outcome_end_month": "Outcome window end: products first opened after cutoff_month up to this month.",
    "clients_evaluated": "Clients active in the cutoff month that opened at least one new product in the window.",
    "hits": "Evaluated clients with at least one adopted product among the top 3.",
    "hit_rate_at_3": "hits / clients_evaluated.",
    "ci_low": "Lower bound of the 95 % percentile bootstrap interval of hit_rate_at_3.",
    "ci_high": "Upper bound of the 95 % bootstrap interval.",
    "lift_vs_popularity": "hit_rate_at_3 minus the popularity baseline's on the same candidate set.",
    "lift_ci_low": "Lower bound of the 95 % paired bootstrap interval of the lift.",
    "lift_ci_high": "Upper bound of the paired bootstrap interval of the lift.",
    "n_bootstrap": "Bootstrap resamples (seeded, reproducible).",
    "adoptions_eligible_share": "Share of evaluated clients whose new product was eligible under the catalogue at "
    "the cutoff (ceiling of the eligible_only rows).",
    "meets_bar": "model rows: ci_low above the popularity baseline's hit_rate_at_3 on the same candidate set.",
    "model_version": "Version of the recommendation model.",
}


def _rec_chart(recs: pd.DataFrame):
    fig, ax = figure(10, 4.8)
    top = recs.dropna(subset=["product_code"])
    if top.empty:
        ax.text(0.5, 0.5, "no recommendations", ha="center")
        return fig
    segs = top.groupby("segment_name").size().sort_values(ascending=False).head(12).index
    mix = top[top.segment_name.isin(segs)].pivot_table(
        index="segment_name", columns="product_code", values="client_key", aggfunc="count", fill_value=0
    )
    mix = mix.loc[[s for s in segs if s in mix.index]]
    share = mix.div(mix.sum(axis=1), axis=0)
    share.plot.barh(stacked=True, ax=ax, colormap="tab10", width=0.8)
    ax.set_xlabel("share of top-3 recommendations")
    ax.set_ylabel("")
    ax.set_title("Recommendation mix by segment (12 largest)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


@dg.asset(
    key=RECS,
    group_name=GROUP,
    kinds={"duckdb", "scikitlearn", "python"},
    deps=[DIM_CLIENT, CATALOGUE, STG_USAGE, STG_BUREAU, AS_OF, MASTER_SCALE, *SEGMENT_DEPS],
)
def client_product_recommendations(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Top 3 catalogue products per active client and prospect, with score, rank and reason codes.

    Only products the client does not hold and is eligible for (catalogue size/rating/risk-class/stage rules
    and the high-risk floor: no unsecured product for a `high` risk-class industry below R3). Score = learned
    propensity (share of the 30 most similar customers holding the product, scikit-learn NearestNeighbors)
    + playbook boosts. Also flags tailored financial advisory for established firms.
    """
    with connect(warehouse.settings) as con:
        month = as_of_month(con)
        products = catalogue(con)
        states = load_states(con, month, live=True)
        eligible = eligible_matrix(con, len(states))
        query = np.flatnonzero(states["lifecycle_stage"].isin(["new", "growing", "mature", "prospect"]).to_numpy())
        df, popularity, _ = recommend_frame(states, query, eligible, products)
        con.register("recs_df", df)
        try:
            con.execute("BEGIN")
            n = write_app_table(
                con,
                "client_product_recommendations",
                f"""
                SELECT r.client_key, s.segment_id, s.segment_name, s.segment_source, d.lifecycle_stage,
                    r.recommendation_rank::INTEGER AS recommendation_rank, r.product_code, c.product_name_en,
                    round(r.score::DOUBLE, 4) AS score, round(r.peer_share::DOUBLE, 4) AS peer_share,
                    r.playbook_fit::BOOLEAN AS playbook_fit,
                    r.reason_codes, r.reason_text, r.advisory_recommended, r.eligible_products::INTEGER AS
                        eligible_products,
                    r.rating_grade, {sql_literal(MODEL_VERSION)} AS model_version, d.as_of_date
                FROM recs_df AS r
                JOIN marts.dim_client AS d USING (client_key)
                JOIN ({SEGMENT_OF_RECORD}) AS s USING (client_key)
                LEFT JOIN reference.product_catalogue AS c USING (product_code)
                ORDER BY r.client_key, r.recommendation_rank""",
                "Top 3 eligible catalogue products per active client and prospect (docs/applications.md).",
                RECS_COLUMNS,
            )
            con.execute("COMMIT")
        finally:
            con.unregister("recs_df")
        pub = con.execute("SELECT * FROM app.client_product_recommendations").df()
    clients = pub.client_key.nunique()
    mix = (
        pub.dropna(subset=["product_code"])
        .groupby("product_code")
        .agg(recommended=("client_key", "count"), first_choice=("recommendation_rank", lambda s: int((s == 1).sum())))
        .reset_index()
        .sort_values("recommended", ascending=False)
    )
    mix["popularity"] = mix.product_code.map(popularity).round(3)
    return dg.MaterializeResult(
        metadata=chart_first(
            {
                "rows": n,
                "clients": clients,
                "model_version": MODEL_VERSION,
                "advisory_recommended": int(pub.groupby("client_key").advisory_recommended.first().sum()),
                "clients_without_eligible_product": int((pub.reason_codes == "NO_ELIGIBLE_PRODUCT").sum()),
                "summary": md_table(mix),
                "chart": png_markdown(_rec_chart(pub), "recommendation mix by segment"),
            }
        )
    )


def evaluate_recommendations(
    con: duckdb.DuckDBPyConnection, horizon: int = EVAL_HORIZON_MONTHS, n_boot: int = N_BOOTSTRAP
) -> pd.DataFrame:
    """Time split: features as of ``horizon`` months before the last snapshot; outcome = products first opened after."""
    end = as_of_month(con)
    cutoff = evaluation_cutoff(con, end, horizon)
    products = catalogue(con)
    states = load_states(con, cutoff, live=False)
    eligible = eligible_matrix(con, len(states))
    adopt = con.execute(
        f"SELECT a.client_key, list_position({products_list()}, a.product_code) - 1 AS product_pos "
        f"FROM ({adoptions_sql(cutoff, end)}) AS a"
    ).df()
    adopters = states.client_key.isin(adopt.client_key).to_numpy()
    adopt = adopt[adopt.product_pos.notna()]
    pos = pd.Index(states.client_key).get_indexer(adopt.client_key)
    adopted = np.zeros((len(states), len(rc.PRODUCTS)), dtype=bool)
    adopted[pos[pos >= 0], adopt.product_pos.to_numpy()[pos >= 0].astype(np.int64)] = True
    query = np.flatnonzero(states["active_at_cutoff"].to_numpy(dtype=bool) & adopters)
    _, _, rankings = recommend_frame(states, query, eligible, products)
    hits = {k: rp.hits_at_n(top, adopted[query]) for k, top in rankings.items()}
    elig_share = float((adopted[query] & eligible[query]).any(axis=1).mean()) if len(query) else 0.0
    rows = []
    for cand in ("all_not_held", "eligible_only"):
        suffix = "all" if cand == "all_not_held" else "eligible"
        base = hits[f"popularity_{suffix}"]
        base_rate = float(base.mean()) if len(base) else float("nan")
        for method in ("model", "popularity"):
            h = hits[f"{method}_{suffix}"]
            est, lo, hi = rc.bootstrap_ci(h, n_boot)
            d_est, d_lo, d_hi = rc.paired_bootstrap_diff(h, base, n_boot)
            rows.append(
                {
                    "method": method,
                    "candidate_set": cand,
                    "cutoff_month": cutoff,
                    "outcome_end_month": end,
                    "clients_evaluated": int(len(h)),
                    "hits": int(h.sum()),
                    "hit_rate_at_3": est,
                    "ci_low": lo,
                    "ci_high": hi,
                    "lift_vs_popularity": d_est,
                    "lift_ci_low": d_lo,
                    "lift_ci_high": d_hi,
                    "n_bootstrap": n_boot,
                    "adoptions_eligible_share": elig_share,
                    "meets_bar": bool(method == "model" and len(h) > 0 and lo > base_rate),
                    "model_version": MODEL_VERSION,
                }
            )
    return pd.DataFrame(rows)


def _eval_chart(ev: pd.DataFrame):
    fig, ax = figure(8, 4)
    labels = [f"{r.method}\n{r.candidate_set}" for r in ev.itertuples()]
    y = ev.hit_rate_at_3.to_numpy()
    err = np.vstack([y - ev.ci_low.to_numpy(), ev.ci_high.to_numpy() - y])
    colors = ["tab:blue" if m == "model" else "tab:gray" for m in ev.method]
    ax.bar(labels, y, yerr=err, capsize=6, color=colors)
    ax.set_ylim(0, 1)
    ax.set_ylabel("hit rate at 3 (95 % bootstrap CI)")
    ax.set_title(
        f"Recommendations, time split: cutoff {ev.cutoff_month.iat[0]}, outcome to {ev.outcome_end_month.iat[0]}"
    )
    return fig


@dg.asset(
    key=REC_EVAL,
    group_name=GROUP,
    kinds={"duckdb", "scikitlearn", "python"},
    deps=[DIM_CLIENT, CATALOGUE, STG_USAGE, STG_BUREAU, AS_OF, AT_CUTOFF],
)
def recommendation_evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Time-split evaluation of the recommendations: hit rate at 3 vs a popularity baseline, bootstrap 95 % CIs.

    Features (holdings, usage) are recomputed in SQL from snapshots and bureau reports up to 6 months before the
    last snapshot, firm stage and rating grade at that cutoff come from dbt (int_clients_at_evaluation_cutoff);
    the outcome is the products first opened in those last 6 months.
    """
    with connect(warehouse.settings) as con:
        fp = inputs.fingerprint(con, {"n_bootstrap": warehouse.settings.eval_bootstrap, "model": MODEL_VERSION})
        last = inputs.last_run_if_unchanged(
            context, con, "recommendation_evaluation", fp, "app.recommendation_evaluation"
        )
        if last:
            context.log.info(f"inputs unchanged since run {last}: its evaluation stands (evaluation_inputs.py)")
            ev = con.execute("SELECT * FROM app.recommendation_evaluation").df()
        else:
            ev = evaluate_recommendations(con, n_boot=warehouse.settings.eval_bootstrap)
            inputs.store(
                con,
                "recommendation_evaluation",
                ev,
                "Time-split evaluation of product recommendations (hit rate at 3, bootstrap 95 % CI).",
                REC_EVAL_COLUMNS,
                fp,
                context.run_id,
            )
    model = ev[(ev.method == "model") & (ev.candidate_set == "all_not_held")].iloc[0]
    if not model.meets_bar:
        context.log.warning("recommendation model's lower bound is not above the popularity baseline")
    show = ev[
        [
            "method",
            "candidate_set",
            "clients_evaluated",
            "hits",
            "hit_rate_at_3",
            "ci_low",
            "ci_high",
            "lift_vs_popularity",
            "meets_bar",
        ]
    ]
    return dg.MaterializeResult(
        metadata=chart_first(
            {
                "cutoff_month": str(model.cutoff_month),
                "outcome_end_month": str(model.outcome_end_month),
                "clients_evaluated": int(model.clients_evaluated),
                "model_hit_rate_at_3": float(model.hit_rate_at_3),
                "model_ci_low": float(model.ci_low),
                "meets_bar": bool(model.meets_bar),
                "evaluated_in_run": last or context.run_id,
                "summary": md_table(show),
                "chart": png_markdown(_eval_chart(ev), "hit rate at 3"),
            }
        )
    )
