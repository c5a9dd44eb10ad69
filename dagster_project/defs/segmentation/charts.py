"""Charts of the segmentation model: the k curve and segment profiles (stored with each version) and drift."""

import pandas as pd

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import naming
from dagster_project.defs.segmentation.features import FEATURE_BY_COLUMN, FEATURES
from dagster_project.defs.segmentation.reasons import ORDER_WORDS
from dagster_project.lib.metadata import figure, png_bytes


def k_curve_png(curve: pd.DataFrame, k: int) -> bytes:
    """How many segments: the weakest segment's stability per k (Hennig's bands shaded) and the silhouette."""
    fig, ax = figure(6.5, 3.4)
    ax.axhspan(seg.HIGHLY_STABLE, 1.0, color="tab:green", alpha=0.08, label=f"highly stable (>= {seg.HIGHLY_STABLE})")
    ax.axhspan(
        seg.JACCARD_FLOOR,
        seg.HIGHLY_STABLE,
        color="tab:olive",
        alpha=0.08,
        label=f"stable (>= {seg.JACCARD_FLOOR}, required)",
    )
    ax.plot(curve.k, curve.min_jaccard, "o-", color="tab:blue", label="weakest segment's stability (Jaccard)")
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    ax2.plot(curve.k, curve.silhouette, "s--", color="tab:orange", label="silhouette (separation)")
    ax.axvline(k, color="grey", lw=0.8)
    ax.set_xlabel("k asked of k-means (segments after dissolving groups under 2 %)")
    ax.set_ylabel("stability of the weakest segment")
    ax2.set_ylabel("silhouette")
    chosen = curve[curve.k == k]
    segs = int(chosen.segments.iloc[0]) if len(chosen) and "segments" in chosen else k
    ax.set_title(f"How many segments: chosen k = {k} ({segs} segments)", pad=28)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=6.5, frameon=False)
    return png_bytes(fig)


def profile_png(profile: pd.DataFrame, names: dict[int, str]) -> bytes:
    """Segments x features: colour = how far the segment sits from all clients (standard deviations for numeric
    features), each cell annotated with the segment's own value in its unit; labels in a banker's words."""
    num = profile[(profile.category == "") & profile.feature.isin(list(FEATURE_BY_COLUMN))]
    p = num.pivot(index="segment", columns="feature", values="difference")
    vals = num.pivot(index="segment", columns="feature", values="segment_value")
    order = [f.column for f in FEATURES if f.column in p.columns]
    p, vals = p[order], vals[order]
    fig, ax = figure(0.55 * len(order) + 4, 0.55 * len(p) + 3)
    im = ax.imshow(p.clip(-2, 2).to_numpy(dtype=float), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    for i in range(len(p)):
        for j, col in enumerate(order):
            ax.text(j, i, cell_text(FEATURE_BY_COLUMN[col].unit, vals.iloc[i, j]), ha="center", va="center", fontsize=5)
    ax.set_yticks(range(len(p)), [f"{s}: {names.get(int(s), '')}" for s in p.index], fontsize=7)
    ax.set_xticks(range(len(order)), [axis_label(c) for c in order], rotation=70, ha="right", fontsize=7)
    fig.colorbar(im, ax=ax, label="segment against all clients (standard deviations; red = higher)")
    ax.set_title("What sets each segment apart (cells: the segment's mean share or median value)")
    return png_bytes(fig)


UNIT_WORDS = {
    "share": "%",
    "cny": "CNY",
    "months": "months",
    "count": "number",
    "score": "points",
    "days": "days",
    "ratio": "ratio",
    "employees": "people",
    "grade": "R1-D",
    "size": "class",
    "tier": "tier",
}


def axis_label(column: str) -> str:
    f = FEATURE_BY_COLUMN[column]
    return f"{f.label} ({UNIT_WORDS.get(f.unit, f.unit)})"


def cell_text(unit: str, v: float) -> str:
    if v is None or v != v:
        return ""
    if unit == "share":
        return f"{100 * v:.0f}%"
    if unit == "cny":
        return naming.money(v)
    if unit == "ratio":
        return f"{v:.2f}"
    if unit == "grade":
        return ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "D"][max(0, min(int(round(v)) - 1, 8))]
    if unit in ORDER_WORDS:
        words = ORDER_WORDS[unit]
        return words[max(0, min(int(round(v)) - 1, len(words) - 1))]
    return f"{v:,.0f}"


def drift_png(drift: pd.DataFrame) -> bytes:
    """Horizontal bars of PSI per feature and for the segment mix, with the moderate/significant thresholds."""
    d = drift.sort_values("psi")
    colours = ["tab:red" if s == "significant" else "tab:orange" if s == "moderate" else "tab:green" for s in d.status]
    fig, ax = figure(7, 0.28 * len(d) + 1.4)
    labels = [
        "segment mix" if k == "segment_mix" else FEATURE_BY_COLUMN[f].label if f in FEATURE_BY_COLUMN else f
        for k, f in zip(d.kind, d.feature, strict=False)
    ]
    ax.barh(labels, d.psi, color=colours)
    for i, v in enumerate(d.psi):
        ax.text(float(v), i, f" {v:.3f}", va="center", fontsize=6)
    ax.axvline(seg.PSI_MODERATE, color="tab:orange", lw=0.8, ls="--", label=f"moderate {seg.PSI_MODERATE}")
    ax.axvline(seg.PSI_SIGNIFICANT, color="tab:red", lw=0.8, ls="--", label=f"significant {seg.PSI_SIGNIFICANT}")
    ax.set_xlabel("PSI against the champion's training data")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(0, max(seg.PSI_SIGNIFICANT * 1.3, float(d.psi.max()) * 1.1))
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title("Has the book moved since the model was trained? (PSI by feature)")
    return png_bytes(fig, dpi=80)
