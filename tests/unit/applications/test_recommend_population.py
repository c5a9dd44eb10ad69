"""The whole-population forms of the recommendation rules (SQL eligibility, arrays) agree with the per-client rules."""

import itertools
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.applications import recommend_population as rp
from dagster_project.defs.applications.eligibility import eligibility_sql, ineligible_recommendations_sql

SEED = Path(__file__).parents[3] / "dbt" / "seeds" / "product_catalogue.csv"

SIZES = ("micro", "small", "medium", "large", "unknown", None)
STAGES = ("startup", "growth", "established", "unknown", None)
RISKS = ("standard", "elevated", "high", "unknown", None)
GRADES = (*rc.GRADE_ORDER, "unrated", None)


def _catalogue(con: duckdb.DuckDBPyConnection) -> dict[str, rc.Product]:
    con.execute(f"CREATE TABLE catalogue AS SELECT * FROM read_csv('{SEED}', header = true, all_varchar = true)")
    con.execute("CREATE TABLE cat AS SELECT * REPLACE (secured::BOOLEAN AS secured) FROM catalogue")
    return {r["product_code"]: rc.Product.from_row(r) for r in con.execute("SELECT * FROM cat").df().to_dict("records")}


def _states(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    combos = list(itertools.product(SIZES, STAGES, RISKS, GRADES))
    df = pd.DataFrame(combos, columns=["size_class", "firm_stage", "industry_risk_class", "rating_grade"])
    df.insert(0, "client_key", [f"c{i:05d}" for i in range(len(df))])
    rng = np.random.default_rng(3)
    for p in rc.PRODUCTS:
        df[f"held_{p}"] = rng.random(len(df)) < 0.2
    df["pos"] = np.arange(len(df))
    con.register("states_df", df)
    con.execute("CREATE TABLE states AS SELECT * FROM states_df")
    return df


def _profile(r) -> rc.ClientProfile:
    return rc.ClientProfile(
        size_class=str(r.size_class),
        firm_stage=str(r.firm_stage),
        technology_firm=False,
        industry_risk_class=str(r.industry_risk_class),
        rating_grade=str(r.rating_grade),
    )


def test_sql_eligibility_gives_the_per_client_failures_for_every_combination() -> None:
    con = duckdb.connect()
    products = _catalogue(con)
    states = _states(con)
    got = {
        (ck, p): f
        for ck, p, f in con.execute(
            f"SELECT client_key, product_code, failures FROM ({eligibility_sql('states', 'cat')})"
        ).fetchall()
    }
    assert len(got) == len(states) * len(products)
    for r in states.itertuples():
        for code, product in products.items():
            assert got[(r.client_key, code)] == ",".join(rc.eligibility_failures(product, _profile(r))), (r, code)
    # every rule fires somewhere, so the comparison covered each branch
    fired = {c for f in got.values() for c in f.split(",") if c}
    assert fired == set(rc.ELIGIBILITY_TEXT)


def test_check_sql_names_ineligible_and_held_recommendations() -> None:
    con = duckdb.connect()
    _catalogue(con)
    states = _states(con)
    held = states[states.held_trade_finance].client_key.iat[0]
    default = states[(states.rating_grade == "D") & ~states.held_term_loan].client_key.iat[0]
    fine = states[
        (states.size_class == "large")
        & (states.firm_stage == "established")
        & (states.rating_grade == "R1")
        & (states.industry_risk_class == "standard")
        & ~states.held_project_finance
    ].client_key.iat[0]
    con.execute(f"""CREATE TABLE recs AS SELECT * FROM (VALUES ('{held}', 'trade_finance'), ('{default}', 'term_loan'),
        ('{fine}', 'project_finance'), ('nobody', 'term_loan'), ('{fine}', NULL)) t(client_key, product_code)""")
    sql = ineligible_recommendations_sql("recs", "SELECT * EXCLUDE (pos) FROM states").replace(
        "reference.product_catalogue", "cat"
    )
    rows = {(ck, p): why for ck, p, why in con.execute(sql).fetchall()}
    assert (fine, "project_finance") not in rows and len(rows) == 3
    assert "ALREADY_HELD" in rows[(held, "trade_finance")]
    assert "RATING_DEFAULT" in rows[(default, "term_loan")].split(",")
    assert rows[("nobody", "term_loan")] == "unknown client or product"


def _population(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "size_class": rng.choice(["micro", "small", "medium", "large", "unknown"], n),
            "firm_stage": rng.choice(["startup", "growth", "established"], n),
            "technology_firm": rng.random(n) < 0.3,
            "industry_risk_class": rng.choice(["standard", "elevated", "high"], n),
            "rating_grade": rng.choice([*rc.GRADE_ORDER, "unrated"], n),
            "industry_section": rng.choice(["C", "F", "J"], n),
        }
    )


def test_playbook_advisory_and_ranking_match_the_per_client_forms() -> None:
    clients = _population(400, seed=8)
    rng = np.random.default_rng(9)
    shares = rng.choice([0.0, 0.1, 0.2, 0.5], size=(len(clients), len(rc.PRODUCTS)))  # many exact ties
    pop = rng.random(len(rc.PRODUCTS))
    allowed = rng.random(shares.shape) < 0.6
    play = rp.playbook_matrix(clients)
    score = rp.scores(shares, play, pop)
    top = rp.top_n(score, allowed, rc.PRODUCTS)
    adv = rp.advisory_column(clients)
    for i, r in enumerate(clients.itertuples(index=False)):
        cp = rc.ClientProfile(**r._asdict())
        assert adv[i] == rc.advisory_recommended(cp)
        for j, p in enumerate(rc.PRODUCTS):
            assert play[i, j] == bool(rc.playbook_codes(p, cp))
            assert score[i, j] == rc.score(shares[i, j], play[i, j], pop[j])  # same floats
        expected = rc.rank_products(
            dict(zip(rc.PRODUCTS, score[i], strict=False)),
            held=set(),
            eligible={p for j, p in enumerate(rc.PRODUCTS) if allowed[i, j]},
        )
        assert [rc.PRODUCTS[j] for j in top[i] if j >= 0] == expected
    adopted = rng.random(shares.shape) < 0.1
    hits = rp.hits_at_n(top, adopted)
    assert hits.tolist() == [
        float(
            rc.hit_at_k([rc.PRODUCTS[j] for j in t if j >= 0], {p for j, p in enumerate(rc.PRODUCTS) if adopted[i, j]})
        )
        for i, t in enumerate(top)
    ]


def test_reason_columns_match_reason_codes_and_text() -> None:
    clients = _population(300, seed=4)
    rng = np.random.default_rng(5)
    share = rng.choice([0.0, 0.149, 0.15, 0.4999, 0.5, 0.125, 0.135, 0.62, 1.0], len(clients))
    pop = rng.choice([0.1, 0.3, 0.45], len(clients))
    product = rng.choice(list(rc.PRODUCTS), len(clients))
    secured = rng.random(len(clients)) < 0.5
    catalogue = {
        p: rc.Product(p, s, "micro", "R8", frozenset(), frozenset()) for p, s in ((p, True) for p in rc.PRODUCTS)
    }
    playbook = [np.isin(product, targets) & np.asarray(who(clients), dtype=bool) for _, targets, who in rc.PLAYBOOK]
    codes, texts = rp.reason_columns(
        share,
        pop,
        playbook,
        (clients.industry_risk_class == "high").to_numpy() & secured,
        ~clients.rating_grade.isin(list(rc.GRADE_ORDER)).to_numpy(),
    )
    for i, r in enumerate(clients.itertuples(index=False)):
        cp = rc.ClientProfile(**r._asdict())
        prod = (
            catalogue[product[i]]
            if secured[i]
            else rc.Product(product[i], False, "micro", "R8", frozenset(), frozenset())
        )
        expected = rc.reason_codes(prod, cp, float(share[i]), float(pop[i]))
        assert codes[i] == "|".join(expected)
        assert texts[i] == rc.reason_text(expected, float(share[i]))


def test_bootstrap_by_counts_has_the_spread_of_index_resampling() -> None:
    x = np.r_[np.ones(300), np.zeros(700)]
    _, lo, hi = rc.bootstrap_ci(x, n_boot=4000)
    means = x[np.random.default_rng(1).integers(0, x.size, size=(4000, x.size))].mean(axis=1)
    ilo, ihi = np.quantile(means, [0.025, 0.975])
    assert lo == pytest.approx(ilo, abs=0.006) and hi == pytest.approx(ihi, abs=0.006)


def test_a_block_larger_than_the_bound_is_searched_in_a_bounded_pool() -> None:
    x = np.random.default_rng(2).normal(size=(500, 3))
    members = rc.bounded(np.arange(500), 100)
    assert len(members) == 100 and members[0] == 0 and members[-1] == 499 and len(set(members)) == 100
    d, i = rc.nearest(x, x[:20], 5, max_pool=100)
    assert set(i.ravel()) <= set(members.tolist())
    assert d.shape == (20, 5) and np.all(np.diff(d, axis=1) >= 0)
