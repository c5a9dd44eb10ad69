"""What the Dagster UI shows for the segmentation model: charts first, then figures, wherever it was trained.

``segmentation_model`` is materialised by ``monthly_retrain`` - and, on the very first run, by the bootstrap
inside ``segment_scoring``, which logs the same materialisation and check evaluations for it so the model a
user looks for never reads "Never materialized". Charts are inline PNG markdown entries placed at the top
of the metadata (Dagster lists metadata in insertion order).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project.lib.metadata import md_png

MODEL_KEY = dg.AssetKey("segmentation_model")


def segments_md(meta: dict) -> str:
    df = pd.DataFrame(meta["segments"])[["segment_id", "name", "clients", "share", "jaccard", "inherited"]]
    return df.to_markdown(index=False, floatfmt=".3f")


def model_metadata(vdir: Path, meta: dict, version: str, trained_by: str) -> dict:
    """Metadata of a trained model version: profile chart and k curve first, then the figures."""
    curve = pd.DataFrame(meta["k_curve"]).to_markdown(index=False, floatfmt=".3f")
    return {
        "profile_chart": dg.MetadataValue.md(md_png((vdir / "profile.png").read_bytes(), "segment profiles")),
        "k_curve_chart": dg.MetadataValue.md(md_png((vdir / "k_curve.png").read_bytes(), "k curve") + "\n\n" + curve),
        "version": version, "trained_by": trained_by, "k": meta["k"], "silhouette": round(meta["silhouette"], 4),
        "davies_bouldin": round(meta["davies_bouldin"], 4),
        "stability_mean_ari": round(meta["stability"]["mean_ari"], 4),
        "training_rows": meta["training_rows"], "training_fingerprint": meta["training_fingerprint"],
        "matched_to": meta["matched_to"] or "none (first model)",
        "new_segments": dg.MetadataValue.json(meta["new_segments"]),
        "retired_segments": dg.MetadataValue.json(meta["retired_segments"]),
        "segments": dg.MetadataValue.md(segments_md(meta)),
        "model_path": dg.MetadataValue.path(str(vdir)),
    }


def check_metadata(c: dict) -> dict:
    return {k: (dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v) for k, v in c.items() if k != "passed"}


def bootstrap_events(vdir: Path, meta: dict, version: str) -> list:
    """Materialisation and check evaluations of ``segmentation_model`` for a model trained by the bootstrap."""
    events: list = [dg.AssetMaterialization(asset_key=MODEL_KEY, metadata=model_metadata(
        vdir, meta, version, "bootstrap in segment_scoring (first run without a champion)"))]
    for name, c in meta["checks"].items():
        events.append(dg.AssetCheckEvaluation(asset_key=MODEL_KEY, check_name=name, passed=bool(c["passed"]),
                                              severity=dg.AssetCheckSeverity.WARN,
                                              metadata=check_metadata(c)))
    return events
