"""Pure parts of lendseg evaluate (dagster_project/tools/evaluate.py); the runs themselves: `lendseg evaluate
--smoke` in CI."""

from pathlib import Path

import numpy as np
import pandas as pd

from dagster_project.tools import evaluate as ev


def test_auc_by_ranks() -> None:
    assert ev.auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert ev.auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    assert ev.auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0


def test_out_of_time_split_uses_only_earlier_loans_for_rates() -> None:
    fy = pd.Series([2000] * 6 + [2001] * 4)
    seg = pd.Series(["a", "a", "a", "b", "b", "b", "a", "a", "b", "c"])
    y = pd.Series([1, 1, 0, 0, 0, 0, 1, 0, 0, 1]).astype(bool)
    assert ev.split_year(fy, 0.7) == 2000
    r = ev.out_of_time_auc(seg, y, fy, 2000, n_boot=50)
    # later loans scored a=2/3, a=2/3, b=0, c=prior 1/3 -> positives (a, c) above the negatives (a, b) mostly
    assert r["late_loans"] == 4 and 0.5 < r["auc"] <= 1.0 and r["lo"] <= r["auc"] <= r["hi"]


def test_plain_baseline_is_fixed_and_uses_sections() -> None:
    rng = np.random.default_rng(0)
    n = 300
    g = rng.integers(0, 3, n)
    f = pd.DataFrame(
        {
            "client_key": [f"k{i}" for i in range(n)],
            "x": g * 10 + rng.normal(0, 1, n),
            "y": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n)),
            "industry_section": np.array(["C", "F", "I"])[g],
        }
    )
    a, b = ev.plain_baseline(f, 3), ev.plain_baseline(f, 3)
    assert (a == b).all() and len(set(a)) == 3


def test_table_is_written_between_markers(tmp_path: Path) -> None:
    doc = tmp_path / "seg.md"
    doc.write_text(f"# x\n\n{ev.START}\nold\n{ev.END}\n\ntail\n")
    methods = {"plain baseline": 0.7, "gaussian mixture": 0.8, "gower k-medoids": 0.6, "rule segmentation": 0.3}
    rows = [ev.Row("thin_file", 101, 1800, True, 6, 0.91, 0.7, 0.88, 120, methods=methods, true_k=6)]
    sba = {
        m: {"auc": 0.7, "lo": 0.68, "hi": 0.72, "late_loans": 10, "segments": 6}
        for m in ("model", "rule segmentation", "plain baseline", "gaussian mixture", "gower k-medoids")
    } | {"_split": {"cut_fy": 2004, "loans": 20, "scored_clients": 15}, "_in_sample_auc": 0.75}
    sba["model"] = sba["model"] | {"auc": 0.8}
    ev.write_doc(ev.render(rows, sba, {"when": "2026-12-01", "clients": 2000, "months": 12}), doc)
    text = doc.read_text()
    assert "old" not in text and text.endswith("tail\n")
    assert "| thin_file | 101 | 1800 | yes | 6 (6) | 0.910 | 0.700 | 0.800 | 0.600 | 0.300 | 0.880 | 120 |" in text
    assert "| model | 6 | 0.800 | 0.680 - 0.720 |" in text
    # S = (ARI - baseline ARI) + (SBA AUC - rules' AUC): model 0.21 + 0.10, the baseline 0 + 0
    assert "model **+0.310**" in text and "plain baseline **+0.000**" in text and "gaussian mixture **+0.100**" in text
