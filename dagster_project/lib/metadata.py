"""Dagster UI metadata: markdown tables, charts as inline PNGs (the one PNG-to-markdown), charts listed first."""

import base64
import io

import dagster as dg
import pandas as pd


def chart_first(metadata: dict) -> dict:
    """The same metadata with the chart entry first: the UI lists metadata in order, charts are seen first."""
    return {k: metadata[k] for k in sorted(metadata, key=lambda k: k != "chart")}


def figure(w: float = 9, h: float = 4.5):
    """(figure, axes) of a new matplotlib figure on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def png_bytes(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def md_png(png: bytes, alt: str) -> str:
    """PNG bytes as an inline markdown image (the Dagster UI renders it)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def png_markdown(fig, title: str) -> dg.MetadataValue:
    """A matplotlib figure as an inline PNG markdown metadata entry."""
    return dg.MetadataValue.md(md_png(png_bytes(fig), title))


def md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> dg.MetadataValue:
    if df.empty:
        return dg.MetadataValue.md("_no rows_")
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(format(v, floatfmt) if isinstance(v, float) else str(v) for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))
