"""A/B on one build: the per-client recommendations, their check and evaluation (before issue 26) against the
whole-population ones, each timed; usage: python scripts/ab_applications.py BUILD.duckdb [new|old|both].
(The early warnings' A/B is scripts/ab_early_warnings.py.)"""

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import duckdb
import numpy as np
import reference_recommendations as ref

from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.applications import recommend_assets as ra
from dagster_project.defs.applications.as_of import as_of_month, client_state_sql
from dagster_project.defs.applications.checks import ineligible_recommendations


def old_check(con):
    recs = con.execute(
        "SELECT client_key, product_code FROM app.client_product_recommendations WHERE product_code IS NOT NULL"
    ).df()
    products = ra.catalogue(con)
    states = con.execute(client_state_sql(as_of_month(con), live=True)).df().set_index("client_key")
    bad = []
    for client_key, product_code in recs.itertuples(index=False):
        row = states.loc[client_key]
        fails = rc.eligibility_failures(products[product_code], ref.profile(row))
        if bool(row.get(f"held_{product_code}", False)):
            fails.append("ALREADY_HELD")
        if fails:
            bad.append(client_key)
    return len(bad)


def old_boot(values, n_boot=2000, seed=20261126):
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return np.quantile(means, [0.025, 0.975])


con = duckdb.connect(sys.argv[1], read_only=True)
out = {}


def timed(name, f):
    t = time.perf_counter()
    r = f()
    out[name] = round(time.perf_counter() - t, 1)
    print(name, out[name], flush=True)
    return r


which = sys.argv[2] if len(sys.argv) > 2 else "both"
if which in ("new", "both"):

    def new_recs():
        st = ra.load_states(con, as_of_month(con), live=True)
        el = ra.eligible_matrix(con, len(st))
        q = np.flatnonzero(st["lifecycle_stage"].isin(["new", "growing", "mature", "prospect"]).to_numpy())
        return ra.recommend_frame(st, q, el, ra.catalogue(con))[0]

    new = timed("new_recommendations_s", new_recs)
    timed("new_check_s", lambda: ineligible_recommendations(con))
    timed("new_evaluation_s", lambda: ra.evaluate_recommendations(con, n_boot=2000))
if which in ("old", "both"):
    old = timed("old_recommendations_s", lambda: ref.live_recommendations(con))
    timed("old_check_s", lambda: old_check(con))

    def old_eval():
        keys, hits, es = ref.evaluation_hits(con)
        for k in ("model_all", "popularity_all", "model_eligible", "popularity_eligible"):
            old_boot(hits[k])
            old_boot(hits[k] - hits["popularity_all" if k.endswith("all") else "popularity_eligible"])

    timed("old_evaluation_s", old_eval)
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
