"""Segmentation model assets: training (challenger), checks, promotion, daily scoring, drift.

State lives in ``$LENDSEG_MODEL_DIR`` (default ``$LENDSEG_DATA_DIR/models``), never in dbt's hands:

* ``<version>/`` per trained model: ``pipeline.joblib``, ``metadata.json``, ``reference.json`` (training
  distributions for PSI), ``profile.json``, ``k_curve.png``, ``profile.png``. Every version is kept.
* ``registry.jsonl``: append-only status events (challenger, champion, retired, rejected).
* ``catalog.json``: every segment id ever issued with its name, description and status.

The ``ml.*`` tables in the build database are Python-written projections of these files plus the
scoring state (``ml.segment_assignment_snapshots``, one snapshot per as-of date); dbt never creates or
drops anything in schema ``ml``, so ``full_rebuild`` keeps them. Publishing copies ``ml.*``.

Groups: ``ml_training`` (segmentation_model -> blocking checks -> champion_model; monthly_retrain and on
demand) and ``ml`` (segment_scoring, every job; trains, checks and promotes a first model itself when no
champion exists yet - the bootstrap).
"""


import base64
import io
import json
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from dagster_project.lib import audit
from dagster_project.defs.segmentation import views
from dagster_project.defs.segmentation import rules
from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.operations.alerts import alert_dir, build_alert, write_alert
from dagster_project.lib.settings import Settings
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


CHUNK_ROWS = 50_000  # clients per scoring chunk (bounded memory)
TRAINING_CHECKS = ("segment_min_share", "silhouette_floor", "stability_clusterboot")


# ------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------

def model_dir(settings: Settings) -> Path:
    value = os.environ.get("LENDSEG_MODEL_DIR")
    return Path(value).expanduser().resolve() if value else settings.data_dir / "models"


def review_threshold() -> float:
    """Clients scored with confidence below this go to the review queue (LENDSEG_SEG_REVIEW_CONFIDENCE)."""
    return float(os.environ.get("LENDSEG_SEG_REVIEW_CONFIDENCE", "0.1"))


def stability_refits() -> int:
    """clusterboot subsample refits (LENDSEG_SEG_STABILITY_REFITS, at least 20)."""
    return max(20, int(os.environ.get("LENDSEG_SEG_STABILITY_REFITS", "20")))


def silhouette_floor() -> float:
    """Blocking silhouette floor of a trained model (LENDSEG_SEG_SILHOUETTE_FLOOR, default seg.SILHOUETTE_FLOOR)."""
    return float(os.environ.get("LENDSEG_SEG_SILHOUETTE_FLOOR", str(seg.SILHOUETTE_FLOOR)))


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


# ------------------------------------------------------------------------------------------------
# Model store: registry events, catalog, versions
# ------------------------------------------------------------------------------------------------

def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def registry_events(mdir: Path) -> list[dict]:
    path = mdir / "registry.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _append_event(mdir: Path, version: str, status: str, reason: str, run_id: str) -> None:
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / "registry.jsonl", "a") as f:
        f.write(json.dumps({"version": version, "status": status, "at": _now().isoformat(), "reason": reason,
                            "run_id": run_id}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def statuses(mdir: Path) -> dict[str, dict]:
    """Current status event of every version (the last event wins)."""
    out: dict[str, dict] = {}
    for e in registry_events(mdir):
        out[e["version"]] = e
    return out


def champion(mdir: Path) -> str | None:
    champs = [v for v, e in statuses(mdir).items() if e["status"] == "champion"]
    return max(champs) if champs else None


def load_meta(mdir: Path, version: str) -> dict:
    return json.loads((mdir / version / "metadata.json").read_text())


def load_pipeline(mdir: Path, version: str):
    import joblib

    return joblib.load(mdir / version / "pipeline.joblib")


def catalog(mdir: Path) -> dict[int, dict]:
    path = mdir / "catalog.json"
    return {int(k): v for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def _next_version(mdir: Path) -> str:
    nums = [int(p.name[1:]) for p in mdir.glob("m[0-9][0-9][0-9][0-9]*") if p.is_dir() and p.name[1:].isdigit()]
    return f"m{(max(nums) + 1) if nums else 1:04d}"


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------

def _feature_sql(extra: str = "") -> str:
    cols = ", ".join(f"f.{c}" for c in dict.fromkeys((*seg.SOURCE_COLUMNS, *seg.PROFILE_COLUMNS)))
    return f"SELECT f.client_key, {cols}{extra} FROM marts.client_features f"


def read_training_frame(con) -> pd.DataFrame:
    """Every scorable client, sorted by client_key (reproducible input order)."""
    return con.execute(_feature_sql() + " ORDER BY f.client_key").df()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def k_curve_png(curve: pd.DataFrame, k: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(curve.k, curve.silhouette, "o-", label="silhouette (higher is better)")
    ax2 = ax.twinx()
    ax2.plot(curve.k, curve.davies_bouldin, "s--", color="tab:orange", label="Davies-Bouldin (lower is better)")
    ax.axvline(k, color="grey", lw=0.8)
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    ax2.set_ylabel("Davies-Bouldin")
    ax.set_title(f"k selection (chosen k = {k})", pad=20)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    # between the title and the plot: clear of the data and of both axis labels
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=7, frameon=False)
    return _png(fig)


def profile_png(profile: pd.DataFrame, names: dict[int, str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = profile[profile.stat != "count"].pivot(index="segment", columns="feature", values="difference")
    p = p.clip(-2, 2)
    fig, ax = plt.subplots(figsize=(11, 0.5 * len(p) + 2.5))
    im = ax.imshow(p.to_numpy(dtype=float), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_yticks(range(len(p)), [f"{s}: {names.get(int(s), '')}" for s in p.index], fontsize=7)
    ax.set_xticks(range(len(p.columns)), p.columns, rotation=70, ha="right", fontsize=7)
    fig.colorbar(im, ax=ax, label="segment vs population (IQR units / share points)")
    ax.set_title("Segment profiles against the population")
    return _png(fig)


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
    stab = seg.clusterboot(x, labels, k_requested, refits=refits or stability_refits())
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
    profile = seg.profile_segments(frame, ids)
    generated = {sid: seg.name_segment(profile[profile.segment == sid]) for sid in sorted(set(ids))}
    names = {sid: cat[sid]["name"] for sid in m.kept.values() if sid in cat}
    taken = set(names.values())
    new_names = seg.unique_names({sid: generated[sid][0] for sid in generated if sid not in names}, taken)
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
    version = _next_version(mdir)
    vdir = mdir / version
    tmpdir = mdir / f".{version}.writing"
    tmpdir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipe, tmpdir / "pipeline.joblib")
    meta = {
        "version": version, "trained_at": _now().isoformat(), "run_id": run_id, "training_rows": len(frame),
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
        "thresholds": {"min_segment_share": seg.MIN_SEGMENT_SHARE, "silhouette_floor": silhouette_floor(),
                       "jaccard_floor": seg.JACCARD_FLOOR},
        "library_versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                             "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
                             "joblib": joblib.__version__},
        "confidence": "1 - d_nearest / d_second_nearest centroid distance in the preprocessed space",
    }
    meta["checks"] = evaluate_checks(meta)
    _write_json(tmpdir / "reference.json", ref)
    _write_json(tmpdir / "profile.json", profile.to_dict("records"))
    (tmpdir / "k_curve.png").write_bytes(k_curve_png(curve, k_requested))
    (tmpdir / "profile.png").write_bytes(profile_png(profile, names))
    _write_json(tmpdir / "metadata.json", meta)
    os.replace(tmpdir, vdir)
    _append_event(mdir, version, "challenger", f"trained on {len(frame)} clients, k={k}", run_id)
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
        "stability_clusterboot": {"passed": not unstable and meta["stability"]["refits"] >= 20,
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
    _write_json(mdir / "catalog.json", {str(k): v for k, v in sorted(cat.items())})
    if old and old != version:
        _append_event(mdir, old, "retired", f"replaced by {version}", run_id)
    _append_event(mdir, version, "champion", f"promoted (previous champion: {old or 'none'})", run_id)
    return meta


# ------------------------------------------------------------------------------------------------
# ml.* tables: projections of the model store
# ------------------------------------------------------------------------------------------------

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
    "segment_catalog": ("Every segment id ever issued, with its name (kept across retrains) and status.", {
        "segment_id": "Stable segment id.", "segment_name": "Readable name generated from the profile when the id was created.",
        "description": "Profile summary from the latest model version containing the segment.",
        "status": "active (in the champion) or retired."}),
    "segment_profiles": ("Per model version, segment and feature: segment value vs population (medians or shares).", {
        "difference": "Numeric: (segment median - population median) / population IQR; shares: segment - population share."}),
    "segment_assignments": ("Current segment of every scorable client under the champion model.", {
        "client_key": "Pseudonymous client key.", "segment_id": "Segment assigned by the champion model.",
        "confidence": "1 - d_nearest / d_second_nearest (distance to the nearest vs second-nearest centroid); 0 = on the boundary, 1 = on the centroid.",
        "low_confidence": "confidence below LENDSEG_SEG_REVIEW_CONFIDENCE (review queue).",
        "model_version": "Champion version that scored the client.", "as_of_date": "As-of date of the features.",
        "scored_at": "UTC time of scoring."}),
    "segment_assignment_snapshots": ("State: one snapshot of every client's segment per as-of date (a rescoring of the same as-of date replaces it); kept across runs and full rebuilds.", {}),
    "review_decision_context": ("State: per review decision, what the reviewer saw (the client's published snapshot "
                                "when the decision was first processed); decides when an override expires.", {}),
    "model_drift": ("PSI of every model feature and of the segment mix against the champion's training data, per as-of date.", {
        "psi": "Population stability index; < 0.10 stable, 0.10-0.25 moderate, > 0.25 significant.",
        "status": "stable, moderate or significant."}),
    "k_selection": ("Per model version, the k curve: silhouette and Davies-Bouldin for every k tried.", {}),
    "model_stability": ("Per model version and segment: clusterboot mean Jaccard over the subsample refits.", {}),
}


def _comment(con, table: str) -> None:
    desc, cols = COMMENTS.get(table, ("", {}))
    if desc:
        con.execute(f"COMMENT ON TABLE ml.{table} IS '{desc.replace(chr(39), chr(39) * 2)}'")
    for col, text in cols.items():
        try:
            con.execute(f"COMMENT ON COLUMN ml.{table}.{col} IS '{text.replace(chr(39), chr(39) * 2)}'")
        except Exception:  # noqa: BLE001 - a column a table does not have
            pass


def _replace(con, table: str, df: pd.DataFrame, empty_sql: str) -> None:
    if len(df):
        con.register("_df", df)
        con.execute(f"CREATE OR REPLACE TABLE ml.{table} AS SELECT * FROM _df")
        con.unregister("_df")
    else:
        con.execute(f"CREATE OR REPLACE TABLE ml.{table} ({empty_sql})")
    _comment(con, table)


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
    _replace(con, "model_registry", pd.DataFrame(reg), "version VARCHAR, status VARCHAR, status_changed_at TIMESTAMP, "
             "trained_at TIMESTAMP, k INTEGER, silhouette DOUBLE, checks_passed BOOLEAN")
    cat = catalog(mdir)
    rule_rows = rules.catalog_rows(champion(mdir)) if rules.ever_used(mdir) else []
    _replace(con, "segment_catalog", pd.DataFrame(rule_rows + [{
        "segment_id": sid, "segment_name": e["name"], "description": e["description"], "status": e["status"],
        "created_in_version": e["created_in_version"], "last_model_version": e["last_model_version"],
        "retired_in_version": e["retired_in_version"]} for sid, e in sorted(cat.items())]),
        "segment_id BIGINT, segment_name VARCHAR, description VARCHAR, status VARCHAR, created_in_version VARCHAR, "
        "last_model_version VARCHAR, retired_in_version VARCHAR")
    _replace(con, "segment_profiles", pd.concat(prof) if prof else pd.DataFrame(),
             "segment_id BIGINT, feature VARCHAR, stat VARCHAR, segment_value DOUBLE, population_value DOUBLE, "
             "difference DOUBLE, model_version VARCHAR")
    _replace(con, "k_selection", pd.concat(curves) if curves else pd.DataFrame(),
             "k BIGINT, silhouette DOUBLE, davies_bouldin DOUBLE, inertia DOUBLE, model_version VARCHAR, chosen BOOLEAN")
    _replace(con, "model_stability", pd.concat(stab) if stab else pd.DataFrame(),
             "model_version VARCHAR, segment_id BIGINT, mean_jaccard DOUBLE, refits BIGINT")
    return {"versions": len(reg), "segments": len(cat)}


def ensure_state_tables(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute("CREATE TABLE IF NOT EXISTS ml.segment_assignment_snapshots (as_of_date DATE, client_key VARCHAR, "
                "segment_id BIGINT, confidence DOUBLE, model_version VARCHAR, size_class VARCHAR, "
                "rating_grade VARCHAR, industry_code VARCHAR, scored_at TIMESTAMP)")
    con.execute("CREATE TABLE IF NOT EXISTS ml.model_drift (as_of_date DATE, model_version VARCHAR, "
                "kind VARCHAR, feature VARCHAR, psi DOUBLE, status VARCHAR, scored_at TIMESTAMP)")
    con.execute("CREATE TABLE IF NOT EXISTS ml.segment_assignments (client_key VARCHAR, segment_id BIGINT, "
                "confidence DOUBLE, low_confidence BOOLEAN, model_version VARCHAR, as_of_date DATE, scored_at TIMESTAMP)")
    con.execute("CREATE TABLE IF NOT EXISTS ml.review_decision_context (client_key VARCHAR, decided_at TIMESTAMP, "
                "seen_as_of_date DATE, seen_segment_id BIGINT, seen_size_class VARCHAR, seen_rating_grade VARCHAR, "
                "seen_industry_code VARCHAR, recorded_at TIMESTAMP)")
    for t in ("segment_assignment_snapshots", "model_drift", "segment_assignments", "review_decision_context"):
        _comment(con, t)


# ------------------------------------------------------------------------------------------------
# Scoring and drift
# ------------------------------------------------------------------------------------------------

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
        _record_checks(settings, run_id, t.meta, "bootstrap")
        if failed:
            _append_event(mdir, t.version, "rejected", f"bootstrap: blocking checks failed {failed}", run_id)
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
    lab_to_id = {int(k): int(v) for k, v in meta["label_to_segment"].items()}
    lut = np.array([lab_to_id[i] for i in range(len(lab_to_id))])
    thr = review_threshold()
    scored_at = _now()
    counts = {c: np.zeros(len(r["counts"]), dtype=np.int64) for c, r in ref["numeric"].items()}
    cat_counts = np.zeros(len(ref["categorical"]["industry_family"]["counts"]), dtype=np.int64)
    mix: dict[int, int] = {}
    n = low = 0
    with connect(settings) as con:
        ensure_state_tables(con)
        con.execute("CREATE OR REPLACE TABLE ml._scoring (client_key VARCHAR, segment_id BIGINT, confidence DOUBLE, "
                    "low_confidence BOOLEAN, size_class VARCHAR, rating_grade VARCHAR, industry_code VARCHAR)")
        as_of = con.execute("SELECT max(as_of_date) FROM marts.client_features").fetchone()[0]
        sql = (_feature_sql(", d.industry_code, f.size_class AS _size_class, f.rating_grade AS _rating_grade")
               + " JOIN marts.dim_client d ON d.client_key = f.client_key WHERE f.client_key > ? "
               "ORDER BY f.client_key LIMIT ?")
        last = ""
        while True:  # keyset pagination: at most CHUNK_ROWS clients in memory at a time
            chunk = con.execute(sql, [last, CHUNK_ROWS]).df()
            if len(chunk) == 0:
                break
            last = str(chunk.client_key.iloc[-1])
            x = seg.prepare(chunk)
            label, conf = seg.confidence(pipe[-1].transform(pipe[:-1].transform(x)))
            sid = lut[label]
            for c in counts:
                counts[c] += seg.bin_counts(x[c], ref["numeric"][c]["edges"])
            cat_counts += seg.category_counts(x["industry_family"], ref["categorical"]["industry_family"]["categories"])
            for s, cnt in zip(*np.unique(sid, return_counts=True)):
                mix[int(s)] = mix.get(int(s), 0) + int(cnt)
            out = pd.DataFrame({"client_key": chunk.client_key, "segment_id": sid, "confidence": conf,
                                "low_confidence": conf < thr, "size_class": chunk._size_class,
                                "rating_grade": chunk._rating_grade, "industry_code": chunk.industry_code})
            con.register("_chunk", out)
            con.execute("INSERT INTO ml._scoring SELECT * FROM _chunk")
            con.unregister("_chunk")
            n += len(out)
            low += int(out.low_confidence.sum())
        rows = [("feature", c, seg.psi(ref["numeric"][c]["counts"], counts[c])) for c in counts]
        rows.append(("feature", "industry_family", seg.psi(ref["categorical"]["industry_family"]["counts"], cat_counts)))
        ids = sorted(set(mix) | {int(k) for k in ref["segment_mix"]})
        rows.append(("segment_mix", "segment_mix", seg.psi([ref["segment_mix"].get(str(i), 0) for i in ids],
                                                           [mix.get(i, 0) for i in ids])))
        drift = pd.DataFrame(rows, columns=["kind", "feature", "psi"])
        drift["status"] = drift.psi.map(seg.psi_status)
        con.execute("BEGIN TRANSACTION")
        try:
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
        _comment(con, "segment_assignments")
        sync_model_tables(con, mdir)
    return Scored(version, as_of, n, low, mix, drift, boot)


def score_rules(settings: Settings, run_id: str, boot: dict | None) -> Scored:
    """Fallback: every scorable client gets its rule segment (rule_segments.py), in one transaction."""
    mdir = model_dir(settings)
    scored_at = _now()
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
            if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' "
                           "AND table_name = 'review_decisions'").fetchone()[0]:
                con.execute(REVIEW_CONTEXT_SQL, [as_of, scored_at])
            con.execute("CREATE OR REPLACE TABLE ml.segment_assignments AS SELECT client_key, segment_id, confidence, "
                        "low_confidence, ?::VARCHAR AS model_version, ?::DATE AS as_of_date, ?::TIMESTAMP AS scored_at "
                        "FROM ml._scoring ORDER BY client_key", [rules.RULES_VERSION, as_of, scored_at])
            con.execute("DELETE FROM ml.segment_assignment_snapshots WHERE as_of_date = ?", [as_of])
            con.execute("INSERT INTO ml.segment_assignment_snapshots SELECT ?::DATE, client_key, segment_id, confidence, ?, "
                        "size_class, rating_grade, industry_code, ?::TIMESTAMP FROM ml._scoring ORDER BY client_key",
                        [as_of, rules.RULES_VERSION, scored_at])
            mix = dict(con.execute("SELECT segment_id, count(*) FROM ml._scoring GROUP BY 1 ORDER BY 1").fetchall())
            con.execute("DROP TABLE ml._scoring")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        _comment(con, "segment_assignments")
        sync_model_tables(con, mdir)
    drift = pd.DataFrame(columns=["kind", "feature", "psi", "status"])
    return Scored(rules.RULES_VERSION, as_of, int(sum(mix.values())), 0, {int(k): int(v) for k, v in mix.items()},
                  drift, boot)


def check_figures(meta: dict, failed: list[str]) -> str:
    """'name (figure=value, ...)' for each failed check: what the run output and the alert say."""
    parts = []
    for name in failed:
        c = meta["checks"][name]
        figs = ", ".join(f"{k}={v}" for k, v in c.items() if k != "passed" and not isinstance(v, (dict, list)))
        parts.append(f"{name} ({figs})")
    return "; ".join(parts)


def run_notes(settings: Settings, run_id: str) -> list[str]:
    """Model notes of one run (bootstrap fallback, rejected challenger), for the `lendseg run` output."""
    path = model_dir(settings) / "run_notes.jsonl"
    if not path.exists():
        return []
    return [e["note"] for e in map(json.loads, path.read_text().splitlines()) if e.get("run_id") == run_id]


def report_model_failure(settings: Settings, run_id: str, job_name: str, note: str) -> None:
    """A failed model check that did not stop the run: run note (CLI output) + pipeline alert (WARNING)."""
    mdir = model_dir(settings)
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / "run_notes.jsonl", "a") as f:
        f.write(json.dumps({"run_id": run_id, "at": _now().isoformat(), "note": note}) + "\n")
    record = build_alert(job_name or "?", run_id, ["segmentation_model"], "", severity="WARNING")
    record["error_summary"] = note if len(note) <= 300 else note[:297] + "..."  # model figures only, no client data
    write_alert(record, alert_dir(settings.data_dir))


def _record_checks(settings: Settings, run_id: str, meta: dict, suite: str) -> None:
    now = _now()
    audit.append_rows(settings.audit_dir, audit.DQ_RESULTS, [
        {"run_id": run_id, "asset": "segmentation_model", "suite": suite, "rule": name, "column_name": None,
         "source_file": None, "checksum": None, "success": bool(c["passed"]), "unexpected_count": None,
         "element_count": None, "observed_value": json.dumps({k: v for k, v in c.items() if k != "passed"})[:500],
         "severity": "error", "checked_at": now} for name, c in meta["checks"].items()])


# ------------------------------------------------------------------------------------------------
# Dagster assets and checks
# ------------------------------------------------------------------------------------------------

def _md_png(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _segments_md(meta: dict) -> str:
    df = pd.DataFrame(meta["segments"])[["segment_id", "name", "clients", "share", "jaccard", "inherited"]]
    return df.to_markdown(index=False, floatfmt=".3f")


CHECK_DESCRIPTIONS = {
    "segment_min_share": f"Every segment holds at least {seg.MIN_SEGMENT_SHARE:.0%} of the clients.",
    "silhouette_floor": f"Silhouette of the chosen k (seeded sample) is at least {seg.SILHOUETTE_FLOOR}.",
    "stability_clusterboot": f"clusterboot: >= 20 refits on {seg.BOOTSTRAP_FRACTION:.0%} subsamples; every segment's "
                             f"mean best-match Jaccard >= {seg.JACCARD_FLOOR}; mean ARI reported.",
}


@dg.asset(
    group_name="ml_training",
    kinds={"python", "scikitlearn"},
    deps=[K.FEATURES],
    # Not blocking: a failing challenger is not promoted (champion_model decides), but the run still rescores
    # with the champion and publishes; failures are WARN-severity results, in the audit store and an alert.
    check_specs=[dg.AssetCheckSpec(n, asset="segmentation_model", blocking=False, description=d)
                 for n, d in CHECK_DESCRIPTIONS.items()],
    description="Trains a challenger segmentation model (ColumnTransformer + KMeans, k by silhouette in 4-10) on "
                "every scorable client of marts.client_features, matches its segments to the champion's (Hungarian), "
                "stores it as a new version in $LENDSEG_MODEL_DIR. Blocking checks gate promotion.",
)
def segmentation_model(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    s = warehouse.settings
    t = train_version(s, context.run_id, context.log.info)
    meta = t.meta
    mdir = model_dir(s)
    with connect(s) as con:
        sync_model_tables(con, mdir)
    _record_checks(s, context.run_id, meta, "segmentation_model")
    checks = [dg.AssetCheckResult(check_name=n, passed=bool(c["passed"]), severity=dg.AssetCheckSeverity.WARN,
                                  metadata=views.check_metadata(c))
              for n, c in meta["checks"].items()]
    return dg.MaterializeResult(metadata={
        **views.model_metadata(mdir / t.version, meta, t.version, f"run {context.run_id}"),
    }, check_results=checks)


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
        _append_event(mdir, version, "rejected", f"challenger: blocking checks failed {failed}", context.run_id)
        note = (f"challenger {version} failed blocking checks {check_figures(cmeta, failed)}; not promoted, "
                f"rescoring with {old or 'a bootstrap model'}")
        report_model_failure(s, context.run_id, context.job_name, note)
        context.log.warning(note)
        with connect(s) as con:
            sync_model_tables(con, mdir)
        return dg.MaterializeResult(metadata={"champion": old or "none", "promoted": False, "rejected": version,
                                              "failed_checks": dg.MetadataValue.json(failed)})
    meta = promote(s, version, context.run_id)
    with connect(s) as con:
        sync_model_tables(con, mdir)
    context.log.info(f"champion is now {version} (was {old or 'none'})")
    return dg.MaterializeResult(metadata={"champion": version, "previous_champion": old or "none", "promoted": True,
                                          "segments": dg.MetadataValue.md(_segments_md(meta))})


@dg.multi_asset(
    group_name="ml",
    specs=[
        dg.AssetSpec(K.ASSIGNMENTS, deps=[K.FEATURES, K.DIM_CLIENT, "champion_model"], kinds={"python", "duckdb"},
                     description="Current segment, confidence and model version of every scorable client."),
        dg.AssetSpec(K.SNAPSHOTS, deps=[K.FEATURES], kinds={"duckdb"},
                     description="State: one snapshot of every client's segment per as-of date (history, migration, review)."),
        dg.AssetSpec(K.DRIFT, deps=[K.FEATURES], kinds={"duckdb"},
                     description="PSI of each feature and of the segment mix against the champion's training data."),
        dg.AssetSpec(K.REVIEW_CONTEXT, deps=[K.RAW_REVIEW], kinds={"duckdb"},
                     description="State: what the reviewer saw for every review decision (override expiry)."),
        dg.AssetSpec(K.REGISTRY, kinds={"duckdb"}, description="One row per model version with its status."),
        dg.AssetSpec(K.CATALOG, kinds={"duckdb"}, description="Every segment id with its stable name and status."),
        dg.AssetSpec(K.PROFILES, kinds={"duckdb"}, description="Segment profiles against the population, per version."),
    ],
    check_specs=[
        dg.AssetCheckSpec("scoring_coverage", asset=K.ASSIGNMENTS, blocking=True,
                          description="Every scorable client (marts.client_features) is scored exactly once."),
        dg.AssetCheckSpec("champion_checks_passed", asset=K.ASSIGNMENTS, blocking=True,
                          description="The scoring model passed every blocking training check (or the clients were "
                                      "scored by the documented rule-based fallback, which has no training checks)."),
        dg.AssetCheckSpec("model_segments_published", asset=K.ASSIGNMENTS,
                          description="Warning: the clients were scored by a checked model, not the rule-based "
                                      "fallback (fails when the bootstrap model failed its checks; figures attached)."),
        dg.AssetCheckSpec("segment_mix_drift", asset=K.DRIFT,
                          description="Warning: PSI of the segment mix against the champion's training data > 0.25 "
                                      "- a retrain (monthly_retrain) is recommended."),
    ],
)
def segment_scoring(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Scores every scorable client with the champion (bootstrapping one on the very first run)."""
    s = warehouse.settings
    sc = score_all(s, context.run_id, context.log.info, context.job_name)
    mdir = model_dir(s)
    fallback = sc.version == rules.RULES_VERSION
    meta = {"checks": {}} if fallback else load_meta(mdir, sc.version)
    if sc.bootstrap and not fallback:  # the model trained here is segmentation_model's: show it there (ml_views.py)
        for event in views.bootstrap_events(mdir / sc.version, meta, sc.version):
            context.log_event(event)
    with connect(s, read_only=True) as con:
        n_feat, n_dist = con.execute("SELECT count(*), count(DISTINCT client_key) FROM marts.client_features").fetchone()
        n_as, n_as_dist, nulls, missing = con.execute(
            "SELECT count(*), count(DISTINCT client_key), count(*) FILTER (WHERE segment_id IS NULL), "
            "(SELECT count(*) FROM marts.client_features f WHERE NOT EXISTS "
            "(SELECT 1 FROM ml.segment_assignments a WHERE a.client_key = f.client_key)) FROM ml.segment_assignments").fetchone()
    mix_psi = float(sc.drift.loc[sc.drift.kind == "segment_mix", "psi"].iloc[0]) if not fallback else 0.0
    mix_md = pd.DataFrame([{"segment_id": k, "clients": v, "share": v / max(sc.clients, 1)} for k, v in sorted(sc.mix.items())])
    yield dg.MaterializeResult(asset_key=K.ASSIGNMENTS, metadata={
        "model_version": sc.version, "as_of_date": str(sc.as_of_date), "dagster/row_count": sc.clients,
        "low_confidence": sc.low_confidence, "review_threshold": review_threshold(),
        "bootstrap": dg.MetadataValue.json(sc.bootstrap or {"bootstrap": False}),
        "segment_mix": dg.MetadataValue.md(mix_md.to_markdown(index=False, floatfmt=".3f"))})
    yield dg.MaterializeResult(asset_key=K.SNAPSHOTS, metadata={"as_of_date": str(sc.as_of_date)})
    yield dg.MaterializeResult(asset_key=K.DRIFT, metadata={
        "drift_chart": dg.MetadataValue.md(views.md_png(views.drift_png(sc.drift), "PSI by feature")),
        "segment_mix_psi": round(mix_psi, 4),
        "drift": dg.MetadataValue.md(sc.drift.to_markdown(index=False, floatfmt=".4f"))})
    for key in (K.REVIEW_CONTEXT, K.REGISTRY, K.CATALOG, K.PROFILES):
        yield dg.MaterializeResult(asset_key=key)
    yield dg.AssetCheckResult(asset_key=K.ASSIGNMENTS, check_name="scoring_coverage",
                              passed=bool(n_as == n_as_dist == n_feat == n_dist and nulls == 0 and missing == 0),
                              metadata={"scorable_clients": n_feat, "assignments": n_as, "distinct_clients": n_as_dist,
                                        "null_segments": nulls, "unscored_clients": missing})
    failed = [n for n, c in meta["checks"].items() if not c["passed"]]
    yield dg.AssetCheckResult(asset_key=K.ASSIGNMENTS, check_name="champion_checks_passed", passed=not failed,
                              metadata={"model_version": sc.version, "failed": dg.MetadataValue.json(failed),
                                        "scoring": "rule_based fallback" if fallback else "model"})
    boot_checks = (sc.bootstrap or {}).get("checks", {})
    yield dg.AssetCheckResult(asset_key=K.ASSIGNMENTS, check_name="model_segments_published", passed=not fallback,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"scoring": "rule_based fallback" if fallback else "model",
                                        "bootstrap_version": (sc.bootstrap or {}).get("version", "none"),
                                        "failed_checks": dg.MetadataValue.json(
                                            {n: c for n, c in boot_checks.items() if not c["passed"]})})
    yield dg.AssetCheckResult(asset_key=K.DRIFT, check_name="segment_mix_drift", passed=mix_psi <= seg.PSI_SIGNIFICANT,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"segment_mix_psi": round(mix_psi, 4), "threshold": seg.PSI_SIGNIFICANT,
                                        "recommendation": "retrain: run monthly_retrain" if mix_psi > seg.PSI_SIGNIFICANT
                                        else "none",
                                        "features_significant": dg.MetadataValue.json(
                                            sc.drift.loc[sc.drift.status == "significant", "feature"].tolist())})


ml_assets = [segmentation_model, champion_model, segment_scoring]
