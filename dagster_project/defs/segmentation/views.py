"""What the Dagster UI shows for the segmentation model: charts first, then figures, wherever it was trained.

``segmentation_model`` is materialised by ``monthly_retrain`` - and, on the very first run, by the bootstrap
inside ``segment_scoring``, which logs the same materialisation and check evaluations for it, and the
materialisation of ``champion_model`` when it promotes the model, so neither reads "Never materialized". Charts
are inline PNG markdown entries placed at the top of the metadata (Dagster lists metadata in insertion order).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project.lib.metadata import md_png

MODEL_KEY = dg.AssetKey("segmentation_model")
CHAMPION_KEY = dg.AssetKey("champion_model")


def segments_md(meta: dict) -> str:
    df = pd.DataFrame(meta["segments"])[["segment_id", "name", "clients", "share", "jaccard", "inherited"]]
    df = df.assign(share=(100 * df.share).round(1).astype(str) + " %", jaccard=df.jaccard.round(3))
    return df.rename(columns={"jaccard": "stability (Jaccard)"}).to_markdown(index=False)


def segment_mix_md(mix: dict[int, int], clients: int, mdir: Path) -> str:
    """Segment id, name, clients (integers) and share of the scored clients, as a markdown table."""
    from dagster_project.defs.segmentation.registry import catalog

    names = {sid: e.get("name", "") for sid, e in catalog(mdir).items()}
    rows = [
        {
            "segment_id": int(k),
            "segment": names.get(int(k), "rule-based segment" if int(k) < 0 else ""),
            "clients": f"{int(v):,}",
            "share": f"{100 * v / max(clients, 1):.1f} %",
        }
        for k, v in sorted(mix.items())
    ]
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "no clients scored"


def model_metadata(vdir: Path, meta: dict, version: str, trained_by: str) -> dict:
    """Metadata of a trained model version: profile chart and k curve first, then the figures."""
    cols = [
        c
        for c in ("k", "segments", "min_jaccard", "silhouette", "min_share", "refits", "admissible")
        if c in pd.DataFrame(meta["k_curve"]).columns
    ]
    curve = pd.DataFrame(meta["k_curve"])[cols].to_markdown(index=False, floatfmt=".3f")
    return {
        "profile_chart": dg.MetadataValue.md(md_png((vdir / "profile.png").read_bytes(), "segment profiles")),
        "k_curve_chart": dg.MetadataValue.md(md_png((vdir / "k_curve.png").read_bytes(), "k curve") + "\n\n" + curve),
        "version": version,
        "trained_by": trained_by,
        "k": meta["k"],
        "silhouette": round(meta["silhouette"], 4),
        "davies_bouldin": round(meta["davies_bouldin"], 4),
        "stability_mean_ari": round(meta["stability"]["mean_ari"], 4),
        "training_rows": meta["training_rows"],
        "training_fingerprint": meta["training_fingerprint"],
        "matched_to": meta["matched_to"] or "none (first model)",
        "new_segments": dg.MetadataValue.json(meta["new_segments"]),
        "retired_segments": dg.MetadataValue.json(meta["retired_segments"]),
        "segments": dg.MetadataValue.md(segments_md(meta)),
        "model_path": dg.MetadataValue.path(str(vdir)),
    }


def check_metadata(c: dict) -> dict:
    return {k: (dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v) for k, v in c.items() if k != "passed"}


def bootstrap_events(vdir: Path, meta: dict, version: str, replaces: str | None = None) -> list:
    """Materialisations of ``segmentation_model`` and ``champion_model`` and the model's check evaluations, for a
    model the bootstrap trained and promoted (first run without a champion, or the successor of an older family)."""
    by = (
        f"bootstrap in segment_scoring (successor of {replaces}, an earlier model family)"
        if replaces
        else "bootstrap in segment_scoring (first run without a champion)"
    )
    events: list = [dg.AssetMaterialization(asset_key=MODEL_KEY, metadata=model_metadata(vdir, meta, version, by))]
    for name, c in meta["checks"].items():
        events.append(
            dg.AssetCheckEvaluation(
                asset_key=MODEL_KEY,
                check_name=name,
                passed=bool(c["passed"]),
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=check_metadata(c),
            )
        )
    events.append(
        dg.AssetMaterialization(
            asset_key=CHAMPION_KEY,
            metadata={
                "champion": version,
                "previous_champion": replaces or "none",
                "promoted": True,
                "promoted_by": by,
                "segments": dg.MetadataValue.md(segments_md(meta)),
            },
        )
    )
    return events
