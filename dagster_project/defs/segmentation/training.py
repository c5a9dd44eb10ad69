"""Training a challenger, its blocking checks, and promotion to champion (no Dagster here)."""

import json
import os
import platform
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import naming
from dagster_project.defs.segmentation.charts import k_curve_png, profile_png
from dagster_project.defs.segmentation.registry import (append_event, next_version, utc_now, write_json, catalog,
                                                        champion, load_meta, load_pipeline, model_dir)
from dagster_project.lib import audit
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect


TRAINING_CHECKS = ("segment_min_share", "silhouette_floor", "stability_clusterboot")


def feature_sql(extra: str = "") -> str:
    cols = ", ".join(f"f.{c}" for c in dict.fromkeys((*seg.SOURCE_COLUMNS, *naming.PROFILE_COLUMNS)))
    return f"SELECT f.client_key, {cols}{extra} FROM marts.client_features f"


def read_training_frame(con) -> pd.DataFrame:
    """Every scorable client, sorted by client_key (reproducible input order)."""
    return con.execute(feature_sql() + " ORDER BY f.client_key").df()


@dataclass
class Trained:
    version: str
    meta: dict


def train_version(settings: Settings, run_id: str, log=None, frame: pd.DataFrame | None = None,
                  refits: int | None = None) -> Trained:
    """Fit a challenger on every scorable client and store it as a new version (status challenger)."""
    import joblib
    import scipy
    import sklearn

    mdir = model_dir(settings)
    mdir.mkdir(parents=True, exist_ok=True)
    if frame is None:
        with connect(settings, read_only=True) as con:
            frame = read_training_frame(con)
    frame = frame.sort_values("client_key", kind="stable").reset_index(drop=True)
    if len(frame) < 50:
        raise ValueError(f"only {len(frame)} scorable clients in marts.client_features: too few to train")
    x = seg.prepare(frame)
    fp = seg.fingerprint(pd.concat([frame[["client_key"]], x], axis=1))
    k, curve = seg.select_k(x)
    if log:
        log(f"k curve: {curve.round(3).to_dict('records')}; chosen k = {k}")
    pipe = seg.build_pipeline(k).fit(x)
    k_requested, k = k, int(pipe[-1].n_clusters)
    labels, conf = seg.confidence(pipe[-1].transform(pipe[:-1].transform(x)))
    stab = seg.clusterboot(x, labels, k_requested, refits=refits or settings.seg_stability_refits)
    # stable ids: match to the champion's segments on the same clients
    champ = champion(mdir)
    cat = catalog(mdir)
    next_id = max(cat, default=0) + 1
    if champ:
        cmeta = load_meta(mdir, champ)
        cpipe = load_pipeline(mdir, champ)
        lab_to_id = {int(k_): int(v) for k_, v in cmeta["label_to_segment"].items()}
        cids = np.array([lab_to_id[int(v)] for v in cpipe.predict(x)])
        m = seg.match_segments(cids, labels, next_id)
    else:
        m = seg.Matching({int(c): next_id + i for i, c in enumerate(sorted(set(labels)))}, {},
                         [next_id + i for i in range(len(set(labels)))], [], {int(c): 0.0 for c in set(labels)})
    ids = np.array([m.mapping[int(v)] for v in labels])
    profile = naming.profile_segments(frame, ids)
    generated = {sid: naming.name_segment(profile[profile.segment == sid]) for sid in sorted(set(ids))}
    names = {sid: cat[sid]["name"] for sid in m.kept.values() if sid in cat}
    taken = set(names.values())
    new_names = naming.unique_names({sid: generated[sid][0] for sid in generated if sid not in names}, taken)
    names |= new_names
    shares = pd.Series(ids).value_counts(normalize=True).sort_index()
    sil = float(curve.loc[curve.k == k_requested, "silhouette"].iloc[0])
    inv = {v: k_ for k_, v in m.mapping.items()}
    segments = [{"segment_id": int(sid), "label": int(inv[sid]), "name": names[sid],
                 "description": generated[sid][1], "clients": int((ids == sid).sum()), "share": float(shares[sid]),
                 "jaccard": stab.jaccard[int(inv[sid])], "inherited": sid in m.kept.values(),
                 "match_jaccard": m.jaccard[int(inv[sid])]} for sid in sorted(set(ids))]
    ref = {"numeric": {}, "categorical": {}, "segment_mix": {}}
    for c in seg.NUMERIC:
        edges = seg.bin_edges(x[c])
        ref["numeric"][c] = {"edges": edges, "counts": seg.bin_counts(x[c], edges).tolist()}
    cats = sorted(x["industry_family"].unique().tolist())
    ref["categorical"]["industry_family"] = {"categories": cats,
                                             "counts": seg.category_counts(x["industry_family"], cats).tolist()}
    ref["segment_mix"] = {str(s["segment_id"]): s["clients"] for s in segments}
    version = next_version(mdir)
    vdir = mdir / version
    tmpdir = mdir / f".{version}.writing"
    tmpdir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipe, tmpdir / "pipeline.joblib")
    meta = {
        "version": version, "trained_at": utc_now().isoformat(), "run_id": run_id, "training_rows": len(frame),
        "training_fingerprint": fp, "as_of_date": str(frame["as_of_date"].max()) if "as_of_date" in frame else None,
        "features": list(seg.FEATURES), "feature_groups": [g.__dict__ for g in seg.FEATURE_GROUPS],
        "categorical_weight": seg.CATEGORICAL_WEIGHT, "indicator_weight": seg.INDICATOR_WEIGHT,
        "estimator": "KMeans(n_init=10)", "seed": seg.SEED, "k": k, "k_range": list(seg.K_RANGE),
        "k_curve": curve.to_dict("records"), "silhouette": sil,
        "davies_bouldin": float(curve.loc[curve.k == k_requested, "davies_bouldin"].iloc[0]),
        "k_requested": k_requested,
        "stability": {"refits": stab.refits, "fraction": seg.BOOTSTRAP_FRACTION, "mean_ari": stab.mean_ari,
                      "jaccard": {str(m.mapping[c]): j for c, j in stab.jaccard.items()}},
        "min_segment_share": float(shares.min()), "segments": segments,
        "label_to_segment": {str(k_): v for k_, v in m.mapping.items()},
        "matched_to": champ, "retired_segments": m.retired, "new_segments": m.new,
        "thresholds": {"min_segment_share": seg.MIN_SEGMENT_SHARE, "silhouette_floor": settings.seg_silhouette_floor,
                       "min_refits": settings.seg_min_refits,
                       "jaccard_floor": seg.JACCARD_FLOOR},
        "library_versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                             "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
                             "joblib": joblib.__version__},
        "confidence": "1 - d_nearest / d_second_nearest centroid distance in the preprocessed space",
    }
    meta["checks"] = evaluate_checks(meta)
    write_json(tmpdir / "reference.json", ref)
    write_json(tmpdir / "profile.json", profile.to_dict("records"))
    (tmpdir / "k_curve.png").write_bytes(k_curve_png(curve, k_requested))
    (tmpdir / "profile.png").write_bytes(profile_png(profile, names))
    write_json(tmpdir / "metadata.json", meta)
    os.replace(tmpdir, vdir)
    append_event(mdir, version, "challenger", f"trained on {len(frame)} clients, k={k}", run_id)
    return Trained(version, meta)


def evaluate_checks(meta: dict) -> dict[str, dict]:
    """The blocking training checks from a version's metadata: {name: {passed, figures...}}."""
    th = meta["thresholds"]
    small = [s["segment_id"] for s in meta["segments"] if s["share"] < th["min_segment_share"]]
    unstable = {sid: round(j, 3) for sid, j in meta["stability"]["jaccard"].items() if j < th["jaccard_floor"]}
    return {
        "segment_min_share": {"passed": not small, "smallest_share": round(meta["min_segment_share"], 4),
                              "floor": th["min_segment_share"], "too_small": small},
        "silhouette_floor": {"passed": meta["silhouette"] >= th["silhouette_floor"],
                             "silhouette": round(meta["silhouette"], 4), "floor": th["silhouette_floor"]},
        "stability_clusterboot": {"passed": not unstable and meta["stability"]["refits"] >= th.get("min_refits", 20),
                                  "refits": meta["stability"]["refits"],
                                  "mean_ari": round(meta["stability"]["mean_ari"], 4),
                                  "min_jaccard": round(min(meta["stability"]["jaccard"].values()), 4),
                                  "floor": th["jaccard_floor"], "unstable": unstable},
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
        entry |= {"name": entry.get("name") or s["name"], "description": s["description"], "status": "active",
                  "last_model_version": version, "retired_in_version": None}
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
    audit.append_rows(settings.audit_dir, audit.DQ_RESULTS, [
        audit.dq_result(run_id, "segmentation_model", suite, name, bool(c["passed"]), "error", checked_at=now,
                        observed_value=json.dumps({k: v for k, v in c.items() if k != "passed"})[:500])
        for name, c in meta["checks"].items()])
