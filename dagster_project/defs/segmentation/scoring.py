"""Daily scoring with the champion (bootstrapping one on the first run), the rule-based fallback, and drift."""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation import features as feat
from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import reasons
from dagster_project.defs.segmentation import rules
from dagster_project.defs.segmentation.registry import (append_event, utc_now, champion, load_meta, load_pipeline,
                                                        model_dir, report_model_failure)
from dagster_project.defs.segmentation.tables import (ASSIGNMENT_COLUMNS, comment_table, ensure_state_tables,
                                                      sync_model_tables)
from dagster_project.defs.segmentation.training import feature_sql, check_figures, promote, record_checks, train_version
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect


CHUNK_ROWS = 50_000  # clients per scoring chunk (bounded memory)
REVIEW_CONTEXT_SQL = """
    INSERT INTO ml.review_decision_context
    SELECT r.client_key, r.decided_at, coalesce(p.as_of_date, ?::DATE),
           coalesce(p.segment_id, n.segment_id), coalesce(p.size_class, n.size_class),
           coalesce(p.rating_grade, n.rating_grade), coalesce(p.industry_code, n.industry_code),
           ?::TIMESTAMP
    FROM raw.review_decisions r
    LEFT JOIN (SELECT * FROM ml.segment_assignment_snapshots
               QUALIFY row_number() OVER (PARTITION BY client_key ORDER BY as_of_date DESC) = 1) p
           ON p.client_key = r.client_key
    LEFT JOIN ml._scoring n ON n.client_key = r.client_key
    WHERE NOT EXISTS (SELECT 1 FROM ml.review_decision_context c
                      WHERE c.client_key = r.client_key AND c.decided_at = r.decided_at)"""


def write_assignments(con, version: str, as_of, scored_at, reason_sql: str) -> None:
    """From ``ml._scoring`` (inside the caller's transaction): each new review decision's context, the current
    assignments with their reasons (``reason_sql``: client_key, reason_1..3) and this as-of date's snapshot (a
    rescoring of the same date replaces it)."""
    # What each new review decision's reviewer saw: the client's latest snapshot BEFORE this scoring
    # (what was published when they decided), else this scoring's values. Recorded once per decision.
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' "
                   "AND table_name = 'review_decisions'").fetchone()[0]:
        con.execute(REVIEW_CONTEXT_SQL, [as_of, scored_at])
    con.execute(f"CREATE OR REPLACE TABLE ml.segment_assignments ({ASSIGNMENT_COLUMNS})")
    con.execute("INSERT INTO ml.segment_assignments SELECT s.client_key, s.segment_id, s.confidence, s.low_confidence, "
                "s.runner_up_segment_id, s.runner_up_margin, r.reason_1, r.reason_2, r.reason_3, ?::VARCHAR, ?::DATE, "
                f"?::TIMESTAMP FROM ml._scoring s LEFT JOIN ({reason_sql}) r USING (client_key) ORDER BY s.client_key",
                [version, as_of, scored_at])
    con.execute("DELETE FROM ml.segment_assignment_snapshots WHERE as_of_date = ?", [as_of])
    con.execute("INSERT INTO ml.segment_assignment_snapshots SELECT ?::DATE, client_key, segment_id, confidence, ?, "
                "size_class, rating_grade, industry_code, ?::TIMESTAMP FROM ml._scoring ORDER BY client_key",
                [as_of, version, scored_at])


RULE_REASON_SQL = ("SELECT client_key, 'rule segment: size class ' || coalesce(size_class, 'unknown') || ' x industry "
                   "risk class ' || coalesce(industry_risk_class, 'unknown') AS reason_1, NULL::VARCHAR AS reason_2, "
                   "NULL::VARCHAR AS reason_3 FROM ml._scoring")


def model_reason_sql(profile_table: str) -> str:
    """client_key, reason_1..3 of the model-scored clients of ``ml._scoring``: each reason code (an index into
    features.FEATURES) in an RM's words (reasons.reason_text_sql) with the segment's and all clients' values from
    ``profile_table`` (the champion's profile: segment, feature, category, segment_value, population_value)."""
    names = " ".join(f"WHEN {i} THEN '{f.column}'" for i, f in enumerate(feat.FEATURES))
    own = " ".join(f"WHEN {i} THEN coalesce(CAST(f.{f.column} AS VARCHAR), 'unknown')"
                   for i, f in enumerate(feat.FEATURES) if f.categorical)
    return f"""
        WITH codes AS (
            SELECT client_key, segment_id, unnest([1, 2, 3]) AS pos,
                   unnest([_reason_1, _reason_2, _reason_3]) AS code
            FROM ml._scoring
        ), texts AS (
            SELECT c.client_key, c.pos, {reasons.reason_text_sql('c.code')} AS txt
            FROM codes AS c
            JOIN marts.client_features AS f USING (client_key)
            LEFT JOIN {profile_table} AS p ON p.segment = c.segment_id AND p.category = ''
                 AND p.feature = CASE c.code {names} END
            LEFT JOIN {profile_table} AS pc ON pc.segment = c.segment_id AND pc.feature = CASE c.code {names} END
                 AND pc.category = CASE c.code {own} ELSE '' END
            WHERE c.code >= 0
        )
        SELECT client_key, max(txt) FILTER (WHERE pos = 1) AS reason_1, max(txt) FILTER (WHERE pos = 2) AS reason_2,
               max(txt) FILTER (WHERE pos = 3) AS reason_3
        FROM texts GROUP BY client_key"""


@dataclass(frozen=True)
class ScoringTask:
    """What scoring a batch needs besides the pipeline: label -> segment id, review threshold, drift bins."""
    lut: list[int]
    threshold: float
    edges: dict[str, list[float]]             # numeric feature -> inner decile edges of its training values
    categories: dict[str, list[str]]          # categorical feature -> its training categories


def scoring_task(meta: dict, ref: dict, threshold: float) -> ScoringTask:
    """The task of a model version from its metadata.json and reference.json (the training distribution)."""
    lab_to_id = {int(k): int(v) for k, v in meta["label_to_segment"].items()}
    return ScoringTask(lut=[lab_to_id[i] for i in range(len(lab_to_id))], threshold=threshold,
                       edges={c: r["edges"] for c, r in ref["numeric"].items()},
                       categories={c: r["categories"] for c, r in ref["categorical"].items()})


def score_columns(task: ScoringTask) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every column :func:`score_frame` returns, in order (Spark's schema is derived)."""
    return ([("client_key", "VARCHAR"), ("segment_id", "BIGINT"), ("confidence", "DOUBLE"),
             ("low_confidence", "BOOLEAN"), ("runner_up_segment_id", "BIGINT"), ("runner_up_margin", "DOUBLE"),
             ("_reason_1", "SMALLINT"), ("_reason_2", "SMALLINT"), ("_reason_3", "SMALLINT"),
             ("size_class", "VARCHAR"), ("rating_grade", "VARCHAR"), ("industry_code", "VARCHAR")]
            + [(f"_bin_{c}", "INTEGER") for c in task.edges] + [(f"_cat_{c}", "INTEGER") for c in task.categories])


def score_frame(chunk: pd.DataFrame, pipe, task: ScoringTask) -> pd.DataFrame:
    """One batch of client_features rows (with ``industry_code``, ``_size_class``, ``_rating_grade``) scored.

    The one scoring function of both engines (DuckDB chunks here, Spark's ``mapInPandas`` batches in
    spark_scoring.py): segment id and confidence, the runner-up segment and margin (distance to it minus distance
    to the client's own centroid, in the model's units), the three reason codes (reasons.py), the review flag,
    the attributes a reviewer sees, and each feature's drift bin so that drift counts are a GROUP BY.
    """
    x = feat.prepare(chunk)
    z = pipe[:-1].transform(x)
    centers = pipe[-1].cluster_centers_
    dist = seg.distances(z, centers)
    label, conf = seg.confidence(dist)
    order = np.argsort(dist, axis=1, kind="stable")
    runner = order[:, 1] if dist.shape[1] > 1 else label
    by_feature = reasons.feature_matrix(pipe[0])
    codes = reasons.reason_codes(reasons.contributions(z, centers, label, by_feature),
                                 reasons.versus_runner_up(z, centers, label, runner, by_feature))
    lut = np.asarray(task.lut)
    out = pd.DataFrame({"client_key": chunk.client_key.to_numpy(), "segment_id": lut[label],
                        "confidence": conf, "low_confidence": conf < task.threshold,
                        "runner_up_segment_id": lut[runner],
                        "runner_up_margin": np.take_along_axis(dist, runner[:, None], 1)[:, 0]
                        - np.take_along_axis(dist, label[:, None], 1)[:, 0],
                        "_reason_1": codes[:, 0], "_reason_2": codes[:, 1], "_reason_3": codes[:, 2],
                        "size_class": chunk._size_class.to_numpy(), "rating_grade": chunk._rating_grade.to_numpy(),
                        "industry_code": chunk.industry_code.to_numpy()})
    for c, e in task.edges.items():
        out[f"_bin_{c}"] = seg.bin_index(x[c], e)
    for c, cats in task.categories.items():
        out[f"_cat_{c}"] = seg.category_index(x[c], cats)
    return out[[c for c, _ in score_columns(task)]]


def scoring_sql() -> str:
    """The rows scoring reads: every scorable client with the attributes its review context records."""
    return (feature_sql(", d.industry_code, f.size_class AS _size_class, f.rating_grade AS _rating_grade")
            + " JOIN marts.dim_client d ON d.client_key = f.client_key")


def scoring_table_sql(task: ScoringTask) -> str:
    """DDL of ``ml._scoring``: the columns of :func:`score_frame`, typed."""
    cols = ", ".join(f'"{c}" {t}' for c, t in score_columns(task))
    return f"CREATE OR REPLACE TABLE ml._scoring ({cols})"


def score_in_duckdb(con, pipe, task: ScoringTask) -> None:
    """Score every client into ``ml._scoring``, CHUNK_ROWS at a time (bounded memory).

    The features are joined once, into a temp table numbered in client-key order; each page reads a range of those
    numbers (row groups outside it are skipped by their min/max), never the join again.
    """
    con.execute(scoring_table_sql(task))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _to_score AS SELECT *, row_number() OVER (ORDER BY client_key) AS _row "
                f"FROM ({scoring_sql()}) ORDER BY _row")
    try:
        (n,) = con.execute("SELECT count(*) FROM _to_score").fetchone()
        for start in range(0, n, CHUNK_ROWS):
            chunk = con.execute("SELECT * EXCLUDE (_row) FROM _to_score WHERE _row > ? AND _row <= ? ORDER BY _row",
                                [start, start + CHUNK_ROWS]).df()
            con.register("_chunk", score_frame(chunk, pipe, task))
            con.execute("INSERT INTO ml._scoring SELECT * FROM _chunk")
            con.unregister("_chunk")
    finally:
        con.execute("DROP TABLE IF EXISTS _to_score")


def scoring_summary(con, task: ScoringTask):
    """Drift counts per model feature, segment mix, clients scored and low-confidence clients of ``ml._scoring``."""
    def bins(col: str, size: int) -> np.ndarray:
        out = np.zeros(size, dtype=np.int64)
        for b, cnt in con.execute(f'SELECT "{col}", count(*) FROM ml._scoring GROUP BY 1').fetchall():
            out[int(b)] = cnt
        return out

    counts = {c: bins(f"_bin_{c}", len(e) + 2) for c, e in task.edges.items()}
    cat_counts = {c: bins(f"_cat_{c}", len(cats) + 1) for c, cats in task.categories.items()}
    mix = {int(s): int(c) for s, c in con.execute("SELECT segment_id, count(*) FROM ml._scoring GROUP BY 1").fetchall()}
    n, low = con.execute("SELECT count(*), count(*) FILTER (WHERE low_confidence) FROM ml._scoring").fetchone()
    return counts, cat_counts, mix, int(n), int(low)


@dataclass
class Scored:
    version: str
    as_of_date: Any
    clients: int
    low_confidence: int
    mix: dict[int, int]
    drift: pd.DataFrame
    bootstrap: dict | None


def score_all(settings: Settings, run_id: str, log=None, job_name: str = "") -> Scored:
    """Score every scorable client with the champion, chunk by chunk; bootstrap a champion if none exists."""
    mdir = model_dir(settings)
    boot = None
    current = champion(mdir)
    legacy = current is not None and load_meta(mdir, current).get("model_family") != seg.MODEL_FAMILY
    if current is None or legacy:
        if log:
            log(f"champion {current} was trained by an earlier model family: training its successor (segment ids kept "
                "by matching its assignments), checking and promoting it" if legacy else
                "no champion model yet: bootstrap - training an initial model, checking and promoting it")
        t = train_version(settings, run_id, log)
        failed = [n for n, c in t.meta["checks"].items() if not c["passed"]]
        boot = {"version": t.version, "checks": t.meta["checks"], "replaces": current}
        record_checks(settings, run_id, t.meta, "bootstrap")
        if failed:
            append_event(mdir, t.version, "rejected", f"bootstrap: blocking checks failed {failed}", run_id)
            note = (f"bootstrap model {t.version} failed blocking checks {check_figures(t.meta, failed)}; "
                    f"published rule-based segments ({rules.RULES_VERSION}); the next run trains again")
            report_model_failure(settings, run_id, job_name, note)
            if log:
                log(note)
            return score_rules(settings, run_id, boot)
        promote(settings, t.version, run_id)
    version = champion(mdir)
    meta = load_meta(mdir, version)
    pipe = load_pipeline(mdir, version)
    ref = json.loads((mdir / version / "reference.json").read_text())
    task = scoring_task(meta, ref, settings.seg_review_confidence)
    scored_at = utc_now()
    with connect(settings) as con:
        ensure_state_tables(con)
        as_of = con.execute("SELECT max(as_of_date) FROM marts.client_features").fetchone()[0]
        if settings.engine == "spark":  # every client scored on Spark (spark_scoring.py), read back here
            from dagster_project.defs.segmentation import spark_scoring

            files = spark_scoring.score(settings, version, task, log)
            con.execute(scoring_table_sql(task))
            con.execute(f"INSERT INTO ml._scoring BY NAME SELECT * FROM read_parquet({files})")
        else:
            score_in_duckdb(con, pipe, task)
        counts, cat_counts, mix, n, low = scoring_summary(con, task)
        rows = [("feature", c, seg.psi(ref["numeric"][c]["counts"], counts[c])) for c in counts]
        rows += [("feature", c, seg.psi(ref["categorical"][c]["counts"], cat_counts[c])) for c in cat_counts]
        ids = sorted(set(mix) | {int(k) for k in ref["segment_mix"]})
        rows.append(("segment_mix", "segment_mix", seg.psi([ref["segment_mix"].get(str(i), 0) for i in ids],
                                                           [mix.get(i, 0) for i in ids])))
        drift = pd.DataFrame(rows, columns=["kind", "feature", "psi"])
        drift["status"] = drift.psi.map(seg.psi_status)
        con.execute("BEGIN TRANSACTION")
        con.register("_profile", pd.DataFrame(json.loads((mdir / version / "profile.json").read_text())))
        try:
            write_assignments(con, version, as_of, scored_at, model_reason_sql("_profile"))
            con.execute("DELETE FROM ml.model_drift WHERE as_of_date = ? AND model_version = ?", [as_of, version])
            con.register("_drift", drift)
            con.execute("INSERT INTO ml.model_drift SELECT ?::DATE, ?, kind, feature, psi, status, ?::TIMESTAMP FROM _drift",
                        [as_of, version, scored_at])
            con.unregister("_drift")
            con.execute("DROP TABLE ml._scoring")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_profile")
        comment_table(con, "segment_assignments")
        sync_model_tables(con, mdir)
    return Scored(version, as_of, n, low, mix, drift, boot)


def score_rules(settings: Settings, run_id: str, boot: dict | None) -> Scored:
    """Fallback: every scorable client gets its rule segment (rules.py), in one transaction."""
    mdir = model_dir(settings)
    scored_at = utc_now()
    rules.record_use(mdir, run_id, scored_at, f"bootstrap {boot['version'] if boot else '?'} failed its checks")
    expr = rules.sql_expr("f.size_class", "f.industry_risk_class")
    with connect(settings) as con:
        ensure_state_tables(con)
        as_of = con.execute("SELECT max(as_of_date) FROM marts.client_features").fetchone()[0]
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE OR REPLACE TABLE ml._scoring AS SELECT f.client_key, ({expr})::BIGINT AS segment_id, "
                        "NULL::DOUBLE AS confidence, false AS low_confidence, NULL::BIGINT AS runner_up_segment_id, "
                        "NULL::DOUBLE AS runner_up_margin, f.size_class, f.rating_grade, f.industry_risk_class, "
                        "d.industry_code FROM marts.client_features f "
                        "JOIN marts.dim_client d ON d.client_key = f.client_key")
            write_assignments(con, rules.RULES_VERSION, as_of, scored_at, RULE_REASON_SQL)
            mix = dict(con.execute("SELECT segment_id, count(*) FROM ml._scoring GROUP BY 1 ORDER BY 1").fetchall())
            con.execute("DROP TABLE ml._scoring")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        comment_table(con, "segment_assignments")
        sync_model_tables(con, mdir)
    drift = pd.DataFrame(columns=["kind", "feature", "psi", "status"])
    return Scored(rules.RULES_VERSION, as_of, int(sum(mix.values())), 0, {int(k): int(v) for k, v in mix.items()},
                  drift, boot)
