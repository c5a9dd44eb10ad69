"""The ``ml.*`` tables of the build database: Python-written projections of the model store plus the scoring state.

dbt never creates or drops anything in schema ``ml``, so ``full_rebuild`` keeps them; publishing copies them.
"""

import json
from pathlib import Path

import pandas as pd

from dagster_project.defs.segmentation import rules
from dagster_project.defs.segmentation.registry import catalog, load_meta, statuses
from dagster_project.lib.tables import write_comments


COMMENTS = {
    "model_registry": ("One row per trained segmentation model version (files in $LENDSEG_MODEL_DIR).", {
        "version": "Model version (m0001, m0002, ...); its files are in $LENDSEG_MODEL_DIR/<version>/.",
        "status": "champion (scores clients), challenger (trained, not promoted), retired (former champion) or rejected.",
        "status_changed_at": "UTC time of the latest status event.",
        "trained_at": "UTC training time.", "k": "Number of segments.",
        "training_fingerprint": "SHA-256 of the training frame (client keys + model features).",
        "silhouette": "Silhouette of the chosen k on the seeded sample.",
        "stability_mean_ari": "clusterboot: mean adjusted Rand index of the subsample refits vs the model.",
        "stability_min_jaccard": "clusterboot: lowest per-segment mean Jaccard.",
        "checks_passed": "All blocking training checks passed."}),
    "segment_catalog": ("Every segment id ever issued, with its name (kept across retrains) and status, and every "
                        "rule-based segment (negative ids, reference.rule_segments).", {
        "segment_id": "Stable segment id: positive for model segments, negative for rule segments (-(10 * size_rank + risk_rank)).",
        "segment_name": "Readable name generated from the profile when the id was created (rule segments: reference.rule_segments).",
        "description": "The segment's three largest contrasts against the other segments, in an RM's words, from the latest "
                       "model version containing the segment (rule segments: the rule).",
        "status": "active (a segment of the champion, or a rule segment: those are always active) or retired.",
        "retired_in_version": "Model version whose promotion retired the segment; null while active (VARCHAR)."}),
    "segment_profiles": ("Per model version, segment and feature: segment value vs all clients (mean share, median, or "
                         "share of a category).", {
        "category": "For a categorical feature the category ('' for numeric features).",
        "difference": "Numeric: the segment's mean normal score (standard deviations from all clients); categories: "
                      "segment share - all clients' share."}),
    "segment_assignments": ("Current segment of every scorable client under the champion model.", {
        "client_key": "Pseudonymous client key.", "segment_id": "Segment assigned by the champion model.",
        "confidence": "1 - d_nearest / d_second_nearest (distance to the nearest vs second-nearest centroid); 0 = on the boundary, 1 = on the centroid.",
        "low_confidence": "confidence below LENDSEG_SEG_REVIEW_CONFIDENCE (review queue).",
        "runner_up_segment_id": "The second-nearest segment (null for rule-based segments).",
        "runner_up_margin": "Distance to the runner-up's centroid minus distance to the client's own, in the model's "
                            "units (one standard deviation of a weight-1 dimension = 1); small = a near thing.",
        "reason_1": "The feature that most places the client in its segment rather than the runner-up, in an RM's "
                    "words: the client's value (segment, all clients); rule-based: the rule.",
        "reason_2": "The second reason (as reason_1); null when fewer features pull the client to its segment.",
        "reason_3": "The third reason (as reason_1).",
        "model_version": "Champion version that scored the client.", "as_of_date": "As-of date of the features.",
        "scored_at": "UTC time of scoring."}),
    "segment_assignment_snapshots": ("State: one snapshot of every client's segment per as-of date (a rescoring of the same as-of date replaces it); kept across runs and full rebuilds.", {}),
    "review_decision_context": ("State: per review decision, what the reviewer saw (the client's published snapshot "
                                "when the decision was first processed); decides when an override expires.", {}),
    "model_drift": ("PSI of every model feature and of the segment mix against the champion's training data, per as-of date.", {
        "psi": "Population stability index; < 0.10 stable, 0.10-0.25 moderate, > 0.25 significant.",
        "status": "stable, moderate or significant."}),
    "k_selection": ("Per model version, the k curve: segments, stability (clusterboot), silhouette and Davies-Bouldin "
                    "for every k tried.", {}),
    "model_stability": ("Per model version and segment: clusterboot mean Jaccard over the subsample refits.", {}),
}


ASSIGNMENT_COLUMNS = ("client_key VARCHAR, segment_id BIGINT, confidence DOUBLE, low_confidence BOOLEAN, "
                      "runner_up_segment_id BIGINT, runner_up_margin DOUBLE, reason_1 VARCHAR, reason_2 VARCHAR, "
                      "reason_3 VARCHAR, model_version VARCHAR, as_of_date DATE, scored_at TIMESTAMP")


# one column list whatever the model family of each version (earlier families' curves lack the stability columns)
K_SELECTION_COLUMNS = {"k": "Int64", "segments": "Int64", "silhouette": "float64", "davies_bouldin": "float64",
                       "inertia": "float64", "min_share": "float64", "min_jaccard": "float64", "refits": "Int64",
                       "admissible": "boolean", "model_version": "string", "chosen": "boolean"}
K_SELECTION_SQL = {"Int64": "BIGINT", "float64": "DOUBLE", "boolean": "BOOLEAN", "string": "VARCHAR"}
PROFILE_COLUMNS = ["segment_id", "feature", "category", "stat", "segment_value", "population_value", "difference",
                   "model_version"]


def comment_table(con, table: str) -> None:
    """The descriptions of ``ml.<table>`` (COMMENTS) as comments; a described column the table lacks is skipped."""
    desc, cols = COMMENTS.get(table, ("", {}))
    write_comments(con, f"ml.{table}", desc, cols, every_column=False)


def replace_ml_table(con, table: str, df: pd.DataFrame, empty_sql: str) -> None:
    if len(df):
        con.register("_df", df)
        con.execute(f"CREATE OR REPLACE TABLE ml.{table} AS SELECT * FROM _df")
        con.unregister("_df")
    else:
        con.execute(f"CREATE OR REPLACE TABLE ml.{table} ({empty_sql})")
    comment_table(con, table)


CATALOG_TYPES = {"segment_id": "BIGINT", "segment_name": "VARCHAR", "description": "VARCHAR", "status": "VARCHAR",
                 "created_in_version": "VARCHAR", "last_model_version": "VARCHAR", "retired_in_version": "VARCHAR"}


def write_catalog(con, rows: list[dict]) -> None:
    """ml.segment_catalog with its declared column types whatever the values (an all-null column stays VARCHAR)."""
    df = pd.DataFrame(rows, columns=list(CATALOG_TYPES)).astype(object)
    df = df.where(df.notna(), None)
    con.execute("CREATE OR REPLACE TABLE ml.segment_catalog (" + ", ".join(f"{c} {t}" for c, t in CATALOG_TYPES.items()) + ")")
    if len(df):
        con.register("_cat", df)
        con.execute("INSERT INTO ml.segment_catalog SELECT " + ", ".join(f"CAST({c} AS {t})" for c, t in CATALOG_TYPES.items())
                    + " FROM _cat")
        con.unregister("_cat")
    comment_table(con, "segment_catalog")


def sync_model_tables(con, mdir: Path) -> dict[str, int]:
    """(Re)write ml.model_registry, ml.segment_catalog, ml.segment_profiles, ml.k_selection, ml.model_stability."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    st = statuses(mdir)
    reg, prof, curves, stab = [], [], [], []
    for v in sorted(st):
        if not (mdir / v / "metadata.json").exists():
            continue
        m = load_meta(mdir, v)
        reg.append({"version": v, "status": st[v]["status"], "status_changed_at": st[v]["at"], "trained_at": m["trained_at"],
                    "training_rows": m["training_rows"], "training_fingerprint": m["training_fingerprint"],
                    "as_of_date": m["as_of_date"], "k": m["k"], "silhouette": m["silhouette"],
                    "davies_bouldin": m["davies_bouldin"], "min_segment_share": m["min_segment_share"],
                    "stability_mean_ari": m["stability"]["mean_ari"],
                    "stability_min_jaccard": min(m["stability"]["jaccard"].values()),
                    "checks_passed": all(c["passed"] for c in m["checks"].values()),
                    "matched_to": m["matched_to"], "new_segments": json.dumps(m["new_segments"]),
                    "retired_segments": json.dumps(m["retired_segments"]),
                    "library_versions": json.dumps(m["library_versions"]), "features": json.dumps(m["features"])})
        p = pd.DataFrame(json.loads((mdir / v / "profile.json").read_text())).rename(columns={"segment": "segment_id"})
        prof.append(p.assign(model_version=v))
        curves.append(pd.DataFrame(m["k_curve"]).assign(model_version=v, chosen=lambda d, k=m.get("k_requested", m["k"]): d.k == k))
        stab.append(pd.DataFrame([{"model_version": v, "segment_id": int(s), "mean_jaccard": j,
                                   "refits": m["stability"]["refits"]} for s, j in m["stability"]["jaccard"].items()]))
    for s in reg:
        s["trained_at"] = pd.Timestamp(s["trained_at"])
        s["status_changed_at"] = pd.Timestamp(s["status_changed_at"])
    reg_df = pd.DataFrame(reg)
    if len(reg_df):  # typed, also when every value is null (no column of type NULL): matched_to of a first model
        reg_df = reg_df.astype({"matched_to": "string", "as_of_date": "string"})
    replace_ml_table(con, "model_registry", reg_df, "version VARCHAR, status VARCHAR, status_changed_at TIMESTAMP, "
             "trained_at TIMESTAMP, k INTEGER, silhouette DOUBLE, checks_passed BOOLEAN")
    cat = catalog(mdir)
    write_catalog(con, rules.catalog_rows() + [{
        "segment_id": sid, "segment_name": e["name"], "description": e["description"], "status": e["status"],
        "created_in_version": e["created_in_version"], "last_model_version": e["last_model_version"],
        "retired_in_version": e["retired_in_version"]} for sid, e in sorted(cat.items())])
    prof = [p.assign(category=p["category"] if "category" in p else "")[PROFILE_COLUMNS] for p in prof]
    replace_ml_table(con, "segment_profiles", pd.concat(prof) if prof else pd.DataFrame(),
             "segment_id BIGINT, feature VARCHAR, category VARCHAR, stat VARCHAR, segment_value DOUBLE, "
             "population_value DOUBLE, difference DOUBLE, model_version VARCHAR")
    curves = [c.reindex(columns=list(K_SELECTION_COLUMNS)).astype(K_SELECTION_COLUMNS) for c in curves]
    replace_ml_table(con, "k_selection", pd.concat(curves) if curves else pd.DataFrame(),
                     ", ".join(f"{c} {K_SELECTION_SQL[t]}" for c, t in K_SELECTION_COLUMNS.items()))
    replace_ml_table(con, "model_stability", pd.concat(stab) if stab else pd.DataFrame(),
             "model_version VARCHAR, segment_id BIGINT, mean_jaccard DOUBLE, refits BIGINT")
    return {"versions": len(reg), "segments": len(cat)}


def ensure_state_tables(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute("CREATE TABLE IF NOT EXISTS ml.segment_assignment_snapshots (as_of_date DATE, client_key VARCHAR, "
                "segment_id BIGINT, confidence DOUBLE, model_version VARCHAR, size_class VARCHAR, "
                "rating_grade VARCHAR, industry_code VARCHAR, scored_at TIMESTAMP)")
    con.execute("CREATE TABLE IF NOT EXISTS ml.model_drift (as_of_date DATE, model_version VARCHAR, "
                "kind VARCHAR, feature VARCHAR, psi DOUBLE, status VARCHAR, scored_at TIMESTAMP)")
    con.execute(f"CREATE TABLE IF NOT EXISTS ml.segment_assignments ({ASSIGNMENT_COLUMNS})")
    for col, typ in (("runner_up_segment_id", "BIGINT"), ("runner_up_margin", "DOUBLE"), ("reason_1", "VARCHAR"),
                     ("reason_2", "VARCHAR"), ("reason_3", "VARCHAR")):  # build databases of earlier versions
        con.execute(f"ALTER TABLE ml.segment_assignments ADD COLUMN IF NOT EXISTS {col} {typ}")
    con.execute("CREATE TABLE IF NOT EXISTS ml.review_decision_context (client_key VARCHAR, decided_at TIMESTAMP, "
                "seen_as_of_date DATE, seen_segment_id BIGINT, seen_size_class VARCHAR, seen_rating_grade VARCHAR, "
                "seen_industry_code VARCHAR, recorded_at TIMESTAMP)")
    for t in ("segment_assignment_snapshots", "model_drift", "segment_assignments", "review_decision_context"):
        comment_table(con, t)
