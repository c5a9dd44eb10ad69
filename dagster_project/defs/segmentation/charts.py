"""Charts of the segmentation model: the k curve and segment profiles (stored with each version) and drift."""

import pandas as pd

from dagster_project.defs.segmentation import model as seg
from dagster_project.lib.metadata import figure, png_bytes


def k_curve_png(curve: pd.DataFrame, k: int) -> bytes:
    fig, ax = figure(6, 3.2)
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
    return png_bytes(fig)


def profile_png(profile: pd.DataFrame, names: dict[int, str]) -> bytes:
    p = profile[profile.stat != "count"].pivot(index="segment", columns="feature", values="difference")
    p = p.clip(-2, 2)
    fig, ax = figure(11, 0.5 * len(p) + 2.5)
    im = ax.imshow(p.to_numpy(dtype=float), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_yticks(range(len(p)), [f"{s}: {names.get(int(s), '')}" for s in p.index], fontsize=7)
    ax.set_xticks(range(len(p.columns)), p.columns, rotation=70, ha="right", fontsize=7)
    fig.colorbar(im, ax=ax, label="segment vs population (IQR units / share points)")
    ax.set_title("Segment profiles against the population")
    return png_bytes(fig)


def drift_png(drift: pd.DataFrame) -> bytes:
    """Horizontal bars of PSI per feature and for the segment mix, with the moderate/significant thresholds."""
    d = drift.sort_values("psi")
    colours = ["tab:red" if s == "significant" else "tab:orange" if s == "moderate" else "tab:green" for s in d.status]
    fig, ax = figure(7, 0.28 * len(d) + 1.4)
    labels = [f"{f} (mix)" if k == "segment_mix" else f for k, f in zip(d.kind, d.feature)]
    ax.barh(labels, d.psi, color=colours)
    for i, v in enumerate(d.psi):
        ax.text(float(v), i, f" {v:.3f}", va="center", fontsize=6)
    ax.axvline(seg.PSI_MODERATE, color="tab:orange", lw=0.8, ls="--", label=f"moderate {seg.PSI_MODERATE}")
    ax.axvline(seg.PSI_SIGNIFICANT, color="tab:red", lw=0.8, ls="--", label=f"significant {seg.PSI_SIGNIFICANT}")
    ax.set_xlabel("PSI against the champion's training data")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(0, max(seg.PSI_SIGNIFICANT * 1.3, float(d.psi.max()) * 1.1))
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title("Drift (PSI) by feature")
    return png_bytes(fig, dpi=80)
