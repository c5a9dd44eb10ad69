"""Segmentation model assets: training (challenger), checks, promotion, daily scoring, drift.

Groups: ``ml_training`` (segmentation_model -> blocking checks -> champion_model; monthly_retrain and on
demand) and ``ml`` (segment_scoring, every job; trains, checks and promotes a first model itself when no
champion exists yet - the bootstrap). The work is in ``training.py``, ``scoring.py``, ``tables.py`` and the
model store ``registry.py``; what the UI shows in ``views.py``.
"""

import dagster as dg

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import rules, views
from dagster_project.defs.segmentation.charts import drift_png
from dagster_project.defs.segmentation.registry import (
    append_event,
    champion,
    load_meta,
    model_dir,
    report_model_failure,
    statuses,
)
from dagster_project.defs.segmentation.scoring import score_all
from dagster_project.defs.segmentation.tables import sync_model_tables
from dagster_project.defs.segmentation.training import check_figures, promote, record_checks, train_version
from dagster_project.lib.metadata import md_png
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect


class K:
    """Asset keys (a class namespace: module-level AssetKey constants confuse module scanners)."""

    FEATURES = dg.AssetKey(["marts", "client_features"])
    DIM_CLIENT = dg.AssetKey(["marts", "dim_client"])
    ASSIGNMENTS = dg.AssetKey(["ml", "segment_assignments"])
    SNAPSHOTS = dg.AssetKey(["ml", "segment_assignment_snapshots"])
    DRIFT = dg.AssetKey(["ml", "model_drift"])
    REGISTRY = dg.AssetKey(["ml", "model_registry"])
    CATALOG = dg.AssetKey(["ml", "segment_catalog"])
    PROFILES = dg.AssetKey(["ml", "segment_profiles"])
    REVIEW_CONTEXT = dg.AssetKey(["ml", "review_decision_context"])
    RAW_REVIEW = dg.AssetKey(["raw_review_decisions"])


CHECK_DESCRIPTIONS = {
    "segment_min_share": f"Promotion check: every segment holds at least {seg.MIN_SEGMENT_SHARE:.0%} of the clients.",
    "silhouette_floor": "Promotion check: silhouette of the chosen k on the training sample is at least "
    "LENDSEG_SEG_SILHOUETTE_FLOOR.",
    "stability_clusterboot": f"Promotion check: clusterboot, >= 20 refits (LENDSEG_SEG_MIN_REFITS) on "
    f"{seg.BOOTSTRAP_FRACTION:.0%} subsamples; every segment's mean best-match Jaccard >= "
    f"{seg.JACCARD_FLOOR} (Hennig: stable); mean ARI reported.",
}


@dg.asset(
    group_name="ml_training",
    kinds={"python", "scikitlearn"},
    deps=[K.FEATURES],
    # ERROR severity, not blocking the run: a failing challenger is not promoted (champion_model decides), the
    # champion rescores and the run publishes; failures also go to the audit store and an alert.
    check_specs=[
        dg.AssetCheckSpec(n, asset="segmentation_model", blocking=False, description=d)
        for n, d in CHECK_DESCRIPTIONS.items()
    ],
    description="Trains a challenger segmentation model on the training sample of marts.client_features (up to "
    f"{seg.TRAINING_SAMPLE:,} clients drawn without reference to the key): every business dimension at "
    "its documented weight, k-means, k chosen within Hennig's stable band by clusterboot (the promotion "
    "check's own measure), segments matched to the champion's (Hungarian); stored as a new version in "
    "$LENDSEG_MODEL_DIR. Its checks decide promotion in champion_model.",
)
def segmentation_model(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    s = warehouse.settings
    t = train_version(s, context.run_id, context.log.info)
    meta = t.meta
    mdir = model_dir(s)
    with connect(s) as con:
        sync_model_tables(con, mdir)
    record_checks(s, context.run_id, meta, "segmentation_model")
    checks = [
        dg.AssetCheckResult(
            check_name=n,
            passed=bool(c["passed"]),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=views.check_metadata(c),
        )
        for n, c in meta["checks"].items()
    ]
    return dg.MaterializeResult(
        metadata={
            **views.model_metadata(mdir / t.version, meta, t.version, f"run {context.run_id}"),
        },
        check_results=checks,
    )


@dg.asset(
    group_name="ml_training",
    kinds={"python"},
    deps=[segmentation_model],
    description="Promotes the challenger trained in this run to champion (the former champion is retired) when "
    "every training check of segmentation_model passed; otherwise rejects it (the champion keeps "
    "scoring, the failure goes to the audit store, an alert and the run output).",
)
def champion_model(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    s = warehouse.settings
    mdir = model_dir(s)
    mine = [v for v, e in statuses(mdir).items() if e["status"] == "challenger" and e["run_id"] == context.run_id]
    if not mine:
        raise dg.Failure("no challenger trained in this run to promote", allow_retries=False)
    version = max(mine)
    old = champion(mdir)
    failed = [n for n, c in load_meta(mdir, version)["checks"].items() if not c["passed"]]
    if failed:
        cmeta = load_meta(mdir, version)
        append_event(mdir, version, "rejected", f"challenger: blocking checks failed {failed}", context.run_id)
        note = (
            f"challenger {version} failed blocking checks {check_figures(cmeta, failed)}; not promoted, "
            f"rescoring with {old or 'a bootstrap model'}"
        )
        report_model_failure(s, context.run_id, context.job_name, note)
        context.log.warning(note)
        with connect(s) as con:
            sync_model_tables(con, mdir)
        return dg.MaterializeResult(
            metadata={
                "champion": old or "none",
                "promoted": False,
                "rejected": version,
                "failed_checks": dg.MetadataValue.json(failed),
            }
        )
    meta = promote(s, version, context.run_id)
    with connect(s) as con:
        sync_model_tables(con, mdir)
    context.log.info(f"champion is now {version} (was {old or 'none'})")
    return dg.MaterializeResult(
        metadata={
            "champion": version,
            "previous_champion": old or "none",
            "promoted": True,
            "segments": dg.MetadataValue.md(views.segments_md(meta)),
        }
    )


@dg.multi_asset(
    group_name="ml",
    specs=[
        dg.AssetSpec(
            K.ASSIGNMENTS,
            deps=[K.FEATURES, K.DIM_CLIENT, "champion_model"],
            kinds={"python", "duckdb"},
            description="Current segment, confidence and model version of every scorable client.",
        ),
        dg.AssetSpec(
            K.SNAPSHOTS,
            deps=[K.FEATURES],
            kinds={"duckdb"},
            description="State: one snapshot of every client's segment per as-of date (history, migration, review).",
        ),
        dg.AssetSpec(
            K.DRIFT,
            deps=[K.FEATURES],
            kinds={"duckdb"},
            description="PSI of each feature and of the segment mix against the champion's training data.",
        ),
        dg.AssetSpec(
            K.REVIEW_CONTEXT,
            deps=[K.RAW_REVIEW],
            kinds={"duckdb"},
            description="State: what the reviewer saw for every review decision (override expiry).",
        ),
        dg.AssetSpec(K.REGISTRY, kinds={"duckdb"}, description="One row per model version with its status."),
        dg.AssetSpec(K.CATALOG, kinds={"duckdb"}, description="Every segment id with its stable name and status."),
        dg.AssetSpec(K.PROFILES, kinds={"duckdb"}, description="Segment profiles against the population, per version."),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "scoring_coverage",
            asset=K.ASSIGNMENTS,
            blocking=True,
            description="Every scorable client (marts.client_features) is scored exactly once.",
        ),
        dg.AssetCheckSpec(
            "champion_checks_passed",
            asset=K.ASSIGNMENTS,
            blocking=True,
            description="The scoring model passed every blocking training check (or the clients were "
            "scored by the documented rule-based fallback, which has no training checks).",
        ),
        dg.AssetCheckSpec(
            "model_segments_published",
            asset=K.ASSIGNMENTS,
            description="Warning: the clients were scored by a checked model, not the rule-based "
            "fallback (fails when the bootstrap model failed its checks; figures attached).",
        ),
        dg.AssetCheckSpec(
            "segment_mix_drift",
            asset=K.DRIFT,
            description="Warning: PSI of the segment mix against the champion's training data > 0.25 "
            "- a retrain (monthly_retrain) is recommended.",
        ),
    ],
)
def segment_scoring(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Scores every scorable client with the champion (bootstrapping one on the very first run)."""
    s = warehouse.settings
    sc = score_all(s, context.run_id, context.log.info, context.job_name)
    mdir = model_dir(s)
    fallback = sc.version == rules.RULES_VERSION
    meta = {"checks": {}} if fallback else load_meta(mdir, sc.version)
    if sc.bootstrap and not fallback:  # the model trained and promoted here: shown on its own assets (views.py)
        for event in views.bootstrap_events(mdir / sc.version, meta, sc.version, sc.bootstrap.get("replaces")):
            context.log_event(event)
    with connect(s, read_only=True) as con:
        n_feat, n_dist = con.execute(
            "SELECT count(*), count(DISTINCT client_key) FROM marts.client_features"
        ).fetchone()
        n_as, n_as_dist, nulls, missing = con.execute(
            "SELECT count(*), count(DISTINCT client_key), count(*) FILTER (WHERE segment_id IS NULL), "
            "(SELECT count(*) FROM marts.client_features f WHERE NOT EXISTS "
            "(SELECT 1 FROM ml.segment_assignments a WHERE a.client_key = f.client_key)) FROM ml.segment_assignments"
        ).fetchone()
    mix_psi = float(sc.drift.loc[sc.drift.kind == "segment_mix", "psi"].iloc[0]) if not fallback else 0.0
    mix_md = views.segment_mix_md(sc.mix, sc.clients, mdir)
    yield dg.MaterializeResult(
        asset_key=K.ASSIGNMENTS,
        metadata={
            "model_version": sc.version,
            "as_of_date": str(sc.as_of_date),
            "dagster/row_count": sc.clients,
            "low_confidence": sc.low_confidence,
            "review_threshold": s.seg_review_confidence,
            "bootstrap": dg.MetadataValue.json(sc.bootstrap or {"bootstrap": False}),
            "segment_mix": dg.MetadataValue.md(mix_md),
        },
    )
    yield dg.MaterializeResult(asset_key=K.SNAPSHOTS, metadata={"as_of_date": str(sc.as_of_date)})
    yield dg.MaterializeResult(
        asset_key=K.DRIFT,
        metadata={
            "drift_chart": dg.MetadataValue.md(md_png(drift_png(sc.drift), "PSI by feature")),
            "segment_mix_psi": round(mix_psi, 4),
            "drift": dg.MetadataValue.md(sc.drift.to_markdown(index=False, floatfmt=".4f")),
        },
    )
    for key in (K.REVIEW_CONTEXT, K.REGISTRY, K.CATALOG, K.PROFILES):
        yield dg.MaterializeResult(asset_key=key)
    yield dg.AssetCheckResult(
        asset_key=K.ASSIGNMENTS,
        check_name="scoring_coverage",
        passed=bool(n_as == n_as_dist == n_feat == n_dist and nulls == 0 and missing == 0),
        metadata={
            "scorable_clients": n_feat,
            "assignments": n_as,
            "distinct_clients": n_as_dist,
            "null_segments": nulls,
            "unscored_clients": missing,
        },
    )
    failed = [n for n, c in meta["checks"].items() if not c["passed"]]
    yield dg.AssetCheckResult(
        asset_key=K.ASSIGNMENTS,
        check_name="champion_checks_passed",
        passed=not failed,
        metadata={
            "model_version": sc.version,
            "failed": dg.MetadataValue.json(failed),
            "scoring": "rule_based fallback" if fallback else "model",
        },
    )
    boot_checks = (sc.bootstrap or {}).get("checks", {})
    yield dg.AssetCheckResult(
        asset_key=K.ASSIGNMENTS,
        check_name="model_segments_published",
        passed=not fallback,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "scoring": "rule_based fallback" if fallback else "model",
            "bootstrap_version": (sc.bootstrap or {}).get("version", "none"),
            "failed_checks": dg.MetadataValue.json({n: c for n, c in boot_checks.items() if not c["passed"]}),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=K.DRIFT,
        check_name="segment_mix_drift",
        passed=mix_psi <= seg.PSI_SIGNIFICANT,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "segment_mix_psi": round(mix_psi, 4),
            "threshold": seg.PSI_SIGNIFICANT,
            "recommendation": "retrain: run monthly_retrain" if mix_psi > seg.PSI_SIGNIFICANT else "none",
            "features_significant": dg.MetadataValue.json(
                sc.drift.loc[sc.drift.status == "significant", "feature"].tolist()
            ),
        },
    )


ml_assets = [segmentation_model, champion_model, segment_scoring]
