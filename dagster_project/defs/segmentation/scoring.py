"""Daily scoring with the champion (bootstrapping one on the first run), the rule-based fallback, and drift."""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import rules
from dagster_project.defs.segmentation.registry import (append_event, utc_now, champion, load_meta, load_pipeline,
                                                        model_dir, report_model_failure)
from dagster_project.defs.segmentation.tables import comment_table, ensure_state_tables, sync_model_tables
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


def write_assignments(con, version: str, as_of, scored_at) -> None:
    """From ``ml._scoring`` (inside the caller's transaction): each new review decision's context, the current
    assignments and this as-of date's snapshot (a rescoring of the same date replaces it)."""
    # What each new review decision's reviewer saw: the client's latest snapshot BEFORE this scoring
    # (what was published when they decided), else this scoring's values. Recorded once per decision.
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' "
                   "AND table_name = 'review_decisions'").fetchone()[0]:
        con.execute(REVIEW_CONTEXT_SQL, [as_of, scored_at])
    con.execute("CREATE OR REPLACE TABLE ml.segment_assignments AS SELECT client_key, segment_id, confidence, "
                "low_confidence, ?::VARCHAR AS model_version, ?::DATE AS as_of_date, ?::TIMESTAMP AS scored_at "
                "FROM ml._scoring ORDER BY client_key", [version, as_of, scored_at])
    con.execute("DELETE FROM ml.segment_assignment_snapshots WHERE as_of_date = ?", [as_of])
    con.execute("INSERT INTO ml.segment_assignment_snapshots SELECT ?::DATE, client_key, segment_id, confidence, ?, "
                "size_class, rating_grade, industry_code, ?::TIMESTAMP FROM ml._scoring ORDER BY client_key",
                [as_of, version, scored_at])


@dataclass(frozen=True)
class ScoringTask:
    """What scoring a batch needs besides the pipeline: label -> segment id, review threshold, drift bins."""
    lut: list[int]
    threshold: float
    edges: dict[str, list[float]]
    categories: list[str]


def scoring_task(meta: dict, ref: dict, threshold: float) -> ScoringTask:
    """The task of a model version from its metadata.json and reference.json (the training distribution)."""
    lab_to_id = {int(k): int(v) for k, v in meta["label_to_segment"].items()}
    return ScoringTask(lut=[lab_to_id[i] for i in range(len(lab_to_id))], threshold=threshold,
                       edges={c: r["edges"] for c, r in ref["numeric"].items()},
                       categories=ref["categorical"]["industry_family"]["categories"])


def score_frame(chunk: pd.DataFrame, pipe, task: ScoringTask) -> pd.DataFrame:
    """One batch of client_features rows (with ``industry_code``, ``_size_class``, ``_rating_grade``) scored.

    The one scoring function of both engines (DuckDB chunks here, Spark's ``mapInPandas`` batches in
    spark_scoring.py): segment id and confidence, the review flag, the attributes a reviewer sees, and each
    model input's drift bin (``_bin_<feature>``, ``_family``) so that drift counts are a GROUP BY.
    """
    x = seg.prepare(chunk)
    label, conf = seg.confidence(pipe[-1].transform(pipe[:-1].transform(x)))
    out = pd.DataFrame({"client_key": chunk.client_key.to_numpy(), "segment_id": np.asarray(task.lut)[label],
                        "confidence": conf, "low_confidence": conf < task.threshold,
                        "size_class": chunk._size_class.to_numpy(), "rating_grade": chunk._rating_grade.to_numpy(),
                        "industry_code": chunk.industry_code.to_numpy()})
    for c, e in task.edges.items():
        out[f"_bin_{c}"] = seg.bin_index(x[c], e)
    out["_family"] = seg.category_index(x["industry_family"], task.categories)
    return out


def scoring_sql() -> str:
    """The rows scoring reads: every scorable client with the attributes its review context records."""
    return (feature_sql(", d.industry_code, f.size_class AS _size_class, f.rating_grade AS _rating_grade")
            + " JOIN marts.dim_client d ON d.client_key = f.client_key")


def scoring_table_sql(task: ScoringTask) -> str:
    """DDL of ``ml._scoring``: the columns of :func:`score_frame`, typed."""
    bins = "".join(f', "_bin_{c}" INTEGER' for c in task.edges)
    return ("CREATE OR REPLACE TABLE ml._scoring (client_key VARCHAR, segment_id BIGINT, confidence DOUBLE, "
            f"low_confidence BOOLEAN, size_class VARCHAR, rating_grade VARCHAR, industry_code VARCHAR{bins}, "
            "_family INTEGER)")


def score_in_duckdb(con, pipe, task: ScoringTask) -> None:
    """Score every client into ``ml._scoring``, CHUNK_ROWS at a time (keyset pagination: bounded memory)."""
    con.execute(scoring_table_sql(task))
    sql = scoring_sql() + " WHERE f.client_key > ? ORDER BY f.client_key LIMIT ?"
    last = ""
    while True:
        chunk = con.execute(sql, [last, CHUNK_ROWS]).df()
        if len(chunk) == 0:
            break
        con.register("_chunk", score_frame(chunk, pipe, task))
        con.execute("INSERT INTO ml._scoring SELECT * FROM _chunk")
        con.unregister("_chunk")
        last = str(chunk.client_key.iloc[-1])


def scoring_summary(con, task: ScoringTask):
    """Drift counts per model input, segment mix, clients scored and low-confidence clients of ``ml._scoring``."""
    def bins(col: str, size: int) -> np.ndarray:
        out = np.zeros(size, dtype=np.int64)
        for b, cnt in con.execute(f'SELECT "{col}", count(*) FROM ml._scoring GROUP BY 1').fetchall():
            out[int(b)] = cnt
        return out

    counts = {c: bins(f"_bin_{c}", len(e) + 2) for c, e in task.edges.items()}
    cat_counts = bins("_family", len(task.categories) + 1)
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
    if champion(mdir) is None:
        if log:
            log("no champion model yet: bootstrap - training an initial model, checking and promoting it")
        t = train_version(settings, run_id, log)
        failed = [n for n, c in t.meta["checks"].items() if not c["passed"]]
        boot = {"version": t.version, "checks": t.meta["checks"]}
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
        rows.append(("feature", "industry_family", seg.psi(ref["categorical"]["industry_family"]["counts"], cat_counts)))
        ids = sorted(set(mix) | {int(k) for k in ref["segment_mix"]})
        rows.append(("segment_mix", "segment_mix", seg.psi([ref["segment_mix"].get(str(i), 0) for i in ids],
                                                           [mix.get(i, 0) for i in ids])))
        drift = pd.DataFrame(rows, columns=["kind", "feature", "psi"])
        drift["status"] = drift.psi.map(seg.psi_status)
        con.execute("BEGIN TRANSACTION")
        try:
            write_assignments(con, version, as_of, scored_at)
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
        comment_table(con, "segment_assignments")
        sync_model_tables(con, mdir)
    return Scored(version, as_of, n, low, mix, drift, boot)


def score_rules(settings: Settings, run_id: str, boot: dict | None) -> Scored:
    """Fallback: every scorable client gets its rule segment (rule_segments.py), in one transaction."""
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
                        "NULL::DOUBLE AS confidence, false AS low_confidence, f.size_class, f.rating_grade, "
                        "d.industry_code FROM marts.client_features f "
                        "JOIN marts.dim_client d ON d.client_key = f.client_key")
            write_assignments(con, rules.RULES_VERSION, as_of, scored_at)
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
