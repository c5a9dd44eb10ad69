"""The one scoring function both engines call (scoring.score_frame) and the drift bins it emits."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation.scoring import ScoringTask, score_frame


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), max_size=60),
       st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=6, unique=True))
def test_bin_index_counts_are_bin_counts(values, edges):
    edges = sorted(edges)
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    assert np.bincount(seg.bin_index(v, edges), minlength=len(edges) + 2).tolist() == seg.bin_counts(v, edges).tolist()


def test_category_index_counts_are_category_counts():
    v = pd.Series(["technology", None, "services", "unseen", "technology"])
    cats = ["technology", "services", "<missing>"]
    assert np.bincount(seg.category_index(v, cats), minlength=len(cats) + 1).tolist() == \
        seg.category_counts(v, cats).tolist()


def _frame(n: int, rng) -> pd.DataFrame:
    f = pd.DataFrame({c: rng.lognormal(2, 1, n) for c in seg.NUMERIC})
    f.loc[::7, seg.NUMERIC[0]] = np.nan
    f["has_bureau_report"] = rng.random(n) > 0.2
    f["technology_firm"] = rng.random(n) > 0.8
    f["industry_section"] = rng.choice(list("CFGIK"), n)
    f["industry_risk_class"] = rng.choice(["high", "standard"], n)
    f["client_key"] = [f"k{i:04d}" for i in range(n)]
    f["industry_code"], f["_size_class"], f["_rating_grade"] = "C13", "small", "R3"
    return f


def test_score_frame_is_row_wise_so_any_batching_gives_the_same_scores():
    rng = np.random.default_rng(7)
    frame = _frame(300, rng)
    pipe = seg.build_pipeline(4).fit(seg.prepare(frame))
    task = ScoringTask(lut=[11, 12, 13, 14], threshold=0.1, edges={seg.NUMERIC[0]: [1.0, 5.0, 20.0]},
                       categories=["technology", "manufacturing", "services", "high_risk", "other"])
    whole = score_frame(frame, pipe, task)
    batched = pd.concat([score_frame(frame.iloc[i:i + 37], pipe, task) for i in range(0, 300, 37)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, batched)
    assert set(whole.segment_id) <= {11, 12, 13, 14}
    assert (whole.low_confidence == (whole.confidence < 0.1)).all()
    assert np.bincount(whole[f"_bin_{seg.NUMERIC[0]}"], minlength=5).tolist() == \
        seg.bin_counts(seg.prepare(frame)[seg.NUMERIC[0]], [1.0, 5.0, 20.0]).tolist()
