"""Training a challenger, its blocking checks, and promotion to champion (no Dagster here)."""

import json
import os
import platform
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation import credit_state, naming, selection
from dagster_project.defs.segmentation import features as feat
from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation.charts import k_curve_png, profile_png
from dagster_project.defs.segmentation.registry import (
    append_event,
    catalog,
    champion,
    load_meta,
    model_dir,
    next_version,
    utc_now,
    write_json,
)
from dagster_project.lib import audit
from dagster_project.lib.settings import Settings, env_value
from dagster_project.lib.warehouse import connect

TRAINING_CHECKS = ("segment_min_share", "silhouette_floor", "stability_clusterboot")
SAMPLE_SALT = env_value("LENDSEG_SEG_SAMPLE_SALT")  # the fixed seed of the key-free training sample (default -v1)


def read_columns() -> tuple[str, ...]:
    """client_features columns training, scoring and profiles read (besides client_key)."""
    return tuple(dict.fromkeys((*feat.SOURCE_COLUMNS, *naming.PROFILE_COLUMNS)))


def feature_sql(extra: str = "") -> str:
    cols = ", ".join(f"f.{c}" for c in read_columns())
    return f"SELECT f.client_key, {cols}{extra} FROM marts.client_features f"


def sample_sql(size: int, performing_only: bool = False) -> str:
    """The training sample, drawn without reference to client_key or row order: every scorable client ordered by an
    MD5 of its feature values and a fixed salt (the same features give the same place under any key), at most
    ``size`` of them; exact ties (identical feature rows) are ordered by those values. Clients in default are trained
    on (credit_state.py, the decision of issue 34); ``performing_only``: without them, for the measurement only
    (scripts/default_population.py)."""
    cols = [f"f.{c}" for c in read_columns()]
    # numbers rounded to 4 decimals first: a float's last digits (threads summing in another order) must not move a
    # client
    text = ", ".join(f"coalesce(CAST({_rounded(c)} AS VARCHAR), '~')" for c in cols)
    where = f" WHERE {credit_state.performing_sql()}" if performing_only else ""
    return (
        feature_sql()
        + where
        + f" ORDER BY md5(concat_ws('|', '{SAMPLE_SALT}', {text})), "
        + ", ".join(f"{c} NULLS FIRST" for c in cols)
        + f" LIMIT {int(size)}"
    )


def _rounded(col: str) -> str:
    """``col`` rounded to 4 decimals when it is a number."""
    categorical = (
        {f.column for f in feat.FEATURES if f.categorical}
        | set(naming.PROFILE_COLUMNS)
        | {"rating_grade", "size_class", "value_tier", "has_bureau_report", "has_usage"}
    )
    return col if col.split(".")[-1] in categorical else f"round(CAST({col} AS DOUBLE), 4)"


def read_training_frame(con, size: int = seg.TRAINING_SAMPLE) -> pd.DataFrame:
    """The training sample (all scorable clients up to ``size``), in its key-free order."""
    return con.execute(sample_sql(size)).df()


@dataclass
class Trained:
    version: str
    meta: dict


def model_space(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, feat.DimensionScaler]:
    """The training frame in the model's space, in the order it is fitted in: (frame, prepared x, z, scaler).

    Fitted in the order of the clients' values (not of the sample query): k-means' seeded start then cannot move
    because one value differs in its last digits (dbt's parallel sums) or the rows arrive in another order."""
    frame = frame.reset_index(drop=True)
    x = feat.prepare(frame)
    scaler = feat.DimensionScaler().fit(x)
    z = scaler.transform(x)
    order = seg.key_free_order(z)
    return frame.iloc[order].reset_index(drop=True), x.iloc[order].reset_index(drop=True), z[order], scaler


def champion_assignments(con, version: str | None) -> dict[str, int]:
    """client_key -> segment id under the champion (its current ml.segment_assignments), for stable ids."""
    if (
        version is None
        or not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ml' AND table_name = 'segment_assignments'"
        ).fetchone()[0]
    ):
        return {}
    return dict(
        con.execute(
            "SELECT client_key, segment_id FROM ml.segment_assignments WHERE model_version = ?", [version]
        ).fetchall()
    )


def train_version(
    settings: Settings, run_id: str, log=None, frame: pd.DataFrame | None = None, refits: int | None = None
) -> Trained:
    """Fit a challenger on the training sample and store it as a new version (status challenger).

    ``frame``: rows of client_features to train on instead of the sample read from the build database (tests).
    """
    import joblib
    import scipy
    import sklearn

    mdir = model_dir(settings)
    mdir.mkdir(parents=True, exist_ok=True)
    champ = champion(mdir)
    with connect(settings, read_only=True) as con:
        if frame is None:
            frame = read_training_frame(con)
        champ_ids = champion_assignments(con, champ)
        as_of = con.execute("SELECT max(as_of_date) FROM marts.client_features").fetchall()[0][0]
    frame = frame.reset_index(drop=True)
    if len(frame) < 50:
        raise ValueError(f"only {len(frame)} scorable clients in marts.client_features: too few to train")
    frame, x, z, scaler = model_space(frame)
    fp = seg.fingerprint(pd.concat([frame[["client_key"]], x], axis=1))
    sel = selection.select_k(z, refits=refits or settings.seg_stability_refits, log=log)
    labels, _ = seg.confidence(seg.distances(z, sel.centers))
    # stable ids: match to the champion's segments on the same clients (its current assignments)
    cat = catalog(mdir)
    next_id = max(cat, default=0) + 1
    known = frame.client_key.map(champ_ids)
    if champ and known.notna().any():
        m = seg.match_segments(known[known.notna()].to_numpy(dtype=np.int64), labels[known.notna().to_numpy()], next_id)
        for c in sorted(set(labels) - set(m.mapping)):  # a cluster none of whose clients the champion scored
            m.mapping[int(c)] = max([next_id - 1, *m.mapping.values()]) + 1
            m.new.append(m.mapping[int(c)])
            m.jaccard[int(c)] = 0.0
    else:
        m = seg.Matching(
            {int(c): next_id + i for i, c in enumerate(range(len(sel.centers)))},
            {},
            [next_id + i for i in range(len(sel.centers))],
            [],
            {c: 0.0 for c in range(len(sel.centers))},
        )
    ids = np.array([m.mapping[int(v)] for v in labels])
    profile = naming.profile_segments(x, scaler, ids, frame[list(naming.PROFILE_ONLY)])
    generated = naming.name_segments(profile)
    # a kept id keeps its name - unless the champion is of an earlier model family or naming rules (older names)
    champ_meta = load_meta(mdir, champ) if champ else {}
    same_family = (
        bool(champ)
        and champ_meta.get("model_family") == seg.MODEL_FAMILY
        and champ_meta.get("naming_rules") == naming.RULES
    )
    names = {sid: cat[sid]["name"] for sid in m.kept.values() if sid in cat} if same_family else {}
    new_names = naming.unique_names(
        {sid: generated[sid][0] for sid in generated if sid not in names},
        set(names.values()),
        naming.ct.contrast_table(profile),
    )
    names |= new_names
    shares = pd.Series(ids).value_counts(normalize=True).sort_index()
    inv = {v: k_ for k_, v in m.mapping.items()}
    segments = [
        {
            "segment_id": int(sid),
            "label": int(inv[sid]),
            "name": names[sid],
            "description": generated[sid][1],
            "clients": int((ids == sid).sum()),
            "share": float(shares[sid]),
            "jaccard": sel.stability.jaccard[int(inv[sid])],
            "inherited": sid in m.kept.values(),
            "match_jaccard": m.jaccard[int(inv[sid])],
        }
        for sid in sorted(set(ids))
    ]
    ref = drift_reference(x, segments)
    chosen = sel.curve[sel.curve.k == sel.k].iloc[0]
    version = next_version(mdir)
    vdir = mdir / version
    tmpdir = mdir / f".{version}.writing"
    tmpdir.mkdir(parents=True, exist_ok=True)
    joblib.dump(seg.build_pipeline(scaler, sel.centers), tmpdir / "pipeline.joblib")
    meta = {
        "version": version,
        "model_family": seg.MODEL_FAMILY,
        "naming_rules": naming.RULES,
        "trained_at": utc_now().isoformat(),
        "run_id": run_id,
        "training_rows": len(frame),
        "training_sample": seg.TRAINING_SAMPLE,
        "training_fingerprint": fp,
        "as_of_date": str(as_of) if as_of is not None else None,
        "features": [f.column for f in feat.FEATURES],
        "dimensions": [
            {"name": d.name, "label": d.label, "weight": d.weight, "features": [f.column for f in d.features]}
            for d in feat.DIMENSIONS
        ],
        "estimator": f"k-means (k-means++, {seg.RESTARTS} restarts), clusters under {seg.MIN_SEGMENT_SHARE:.0%} "
        "dissolved",
        "seed": seg.SEED,
        "k": len(sel.centers),
        "k_requested": sel.k,
        "k_range": list(seg.K_RANGE),
        "k_curve": curve_records(sel.curve),
        "silhouette": sel.silhouette,
        "davies_bouldin": float(chosen.davies_bouldin),
        "stability": {
            "refits": sel.stability.refits,
            "fraction": seg.BOOTSTRAP_FRACTION,
            "mean_ari": sel.stability.mean_ari,
            "jaccard": {str(m.mapping[c]): j for c, j in sel.stability.jaccard.items()},
        },
        "min_segment_share": float(shares.min()),
        "segments": segments,
        "label_to_segment": {str(k_): v for k_, v in m.mapping.items()},
        "matched_to": champ,
        "retired_segments": m.retired,
        "new_segments": m.new,
        "renamed": not same_family,
        "thresholds": {
            "min_segment_share": seg.MIN_SEGMENT_SHARE,
            "silhouette_floor": settings.seg_silhouette_floor,
            "min_refits": settings.seg_min_refits,
            "jaccard_floor": seg.JACCARD_FLOOR,
        },
        "library_versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
            "joblib": joblib.__version__,
        },
        "confidence": "1 - d_nearest / d_second_nearest centroid distance in the model's space",
    }
    meta["checks"] = evaluate_checks(meta)
    write_json(tmpdir / "reference.json", ref)
    write_json(tmpdir / "profile.json", profile.to_dict("records"))
    (tmpdir / "k_curve.png").write_bytes(k_curve_png(sel.curve, sel.k))
    (tmpdir / "profile.png").write_bytes(profile_png(profile, names))
    write_json(tmpdir / "metadata.json", meta)
    os.replace(tmpdir, vdir)
    append_event(mdir, version, "challenger", f"trained on {len(frame)} clients, k={len(sel.centers)}", run_id)
    return Trained(version, meta)


def curve_records(curve: pd.DataFrame) -> list[dict]:
    """The k curve as JSON records: a stability not measured (no refit needed for the choice) is null."""
    return [
        {c: None if isinstance(v, float) and np.isnan(v) else v for c, v in r.items()} for r in curve.to_dict("records")
    ]


def drift_reference(x: pd.DataFrame, segments: list[dict]) -> dict:
    """Training distributions for PSI: deciles of every numeric feature, categories of every categorical one."""
    ref: dict = {"numeric": {}, "categorical": {}, "segment_mix": {}}
    for f in feat.FEATURES:
        if f.categorical:
            cats = sorted(x[f.column].astype(str).unique().tolist())
            ref["categorical"][f.column] = {
                "categories": cats,
                "counts": seg.category_counts(x[f.column], cats).tolist(),
            }
        else:
            edges = seg.bin_edges(x[f.column])
            ref["numeric"][f.column] = {"edges": edges, "counts": seg.bin_counts(x[f.column], edges).tolist()}
    ref["segment_mix"] = {str(s["segment_id"]): s["clients"] for s in segments}
    return ref


def evaluate_checks(meta: dict) -> dict[str, dict]:
    """The blocking training checks from a version's metadata: {name: {passed, figures...}}."""
    th = meta["thresholds"]
    small = [s["segment_id"] for s in meta["segments"] if s["share"] < th["min_segment_share"]]
    unstable = {sid: round(j, 3) for sid, j in meta["stability"]["jaccard"].items() if j < th["jaccard_floor"]}
    return {
        "segment_min_share": {
            "passed": not small,
            "smallest_share": round(meta["min_segment_share"], 4),
            "floor": th["min_segment_share"],
            "too_small": small,
        },
        "silhouette_floor": {
            "passed": meta["silhouette"] >= th["silhouette_floor"],
            "silhouette": round(meta["silhouette"], 4),
            "floor": th["silhouette_floor"],
        },
        "stability_clusterboot": {
            "passed": not unstable and meta["stability"]["refits"] >= th.get("min_refits", 20),
            "refits": meta["stability"]["refits"],
            "mean_ari": round(meta["stability"]["mean_ari"], 4),
            "min_jaccard": round(min(meta["stability"]["jaccard"].values()), 4),
            "floor": th["jaccard_floor"],
            "unstable": unstable,
        },
    }


def promote(settings: Settings, version: str, run_id: str) -> dict:
    """Make ``version`` the champion: old champion retired, catalog updated (new ids, retired ids)."""
    mdir = model_dir(settings)
    meta = load_meta(mdir, version)
    failed = [n for n, c in meta["checks"].items() if not c["passed"]]
    if failed:
        raise ValueError(f"{version} failed blocking checks {failed}; not promoted")
    old = champion(mdir)
    cat = catalog(mdir)
    for s in meta["segments"]:
        entry = cat.get(s["segment_id"], {"segment_id": s["segment_id"], "created_in_version": version})
        entry |= {
            "name": s["name"] if meta.get("renamed") else entry.get("name") or s["name"],
            "description": s["description"],
            "status": "active",
            "last_model_version": version,
            "retired_in_version": None,
        }
        cat[s["segment_id"]] = entry
    active = {s["segment_id"] for s in meta["segments"]}
    for sid, entry in cat.items():
        if sid not in active and entry["status"] == "active":
            entry |= {"status": "retired", "retired_in_version": version}
    write_json(mdir / "catalog.json", {str(k): v for k, v in sorted(cat.items())})
    if old and old != version:
        append_event(mdir, old, "retired", f"replaced by {version}", run_id)
    append_event(mdir, version, "champion", f"promoted (previous champion: {old or 'none'})", run_id)
    return meta


def check_figures(meta: dict, failed: list[str]) -> str:
    """'name (figure=value, ...)' for each failed check: what the run output and the alert say."""
    parts = []
    for name in failed:
        c = meta["checks"][name]
        figs = ", ".join(f"{k}={v}" for k, v in c.items() if k != "passed" and not isinstance(v, (dict, list)))
        parts.append(f"{name} ({figs})")
    return "; ".join(parts)


def record_checks(settings: Settings, run_id: str, meta: dict, suite: str) -> None:
    """The training checks of a version as rows of the audit store's data-quality results."""
    now = utc_now()
    audit.append_rows(
        settings.audit_dir,
        audit.DQ_RESULTS,
        [
            audit.dq_result(
                run_id,
                "segmentation_model",
                suite,
                name,
                bool(c["passed"]),
                "error",
                checked_at=now,
                observed_value=json.dumps({k: v for k, v in c.items() if k != "passed"})[:500],
            )
            for name, c in meta["checks"].items()
        ],
    )
