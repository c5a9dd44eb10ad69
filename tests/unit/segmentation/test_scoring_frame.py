"""The one scoring function both engines call (scoring.score_frame) and the drift bins it emits."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import synthetic

from dagster_project.defs.segmentation import features as feat
from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation.scoring import ScoringTask, score_frame


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), max_size=60),
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=6, unique=True),
)
def test_bin_index_counts_are_bin_counts(values, edges):
    edges = sorted(edges)
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    assert np.bincount(seg.bin_index(v, edges), minlength=len(edges) + 2).tolist() == seg.bin_counts(v, edges).tolist()


def test_category_index_counts_are_category_counts():
    v = pd.Series(["technology", None, "services", "unseen", "technology"])
    cats = ["technology", "services", "<missing>"]
    assert (
        np.bincount(seg.category_index(v, cats), minlength=len(cats) + 1).tolist()
        == seg.category_counts(v, cats).tolist()
    )


def test_score_frame_is_row_wise_so_any_batching_gives_the_same_scores():
    frame = synthetic(300, seed=7)
    frame["industry_code"], frame["_size_class"], frame["_rating_grade"] = "C13", "small", "R3"
    x = feat.prepare(frame)
    scaler = feat.DimensionScaler().fit(x)
    z = scaler.transform(x)
    pipe = seg.build_pipeline(scaler, seg.fit_centers(z, 4))
    task = ScoringTask(
        lut=[11, 12, 13, 14],
        threshold=0.1,
        edges={"bureau_score": [600.0, 700.0, 800.0]},
        categories={"industry_section": ["C", "E", "F"]},
    )
    whole = score_frame(frame, pipe, task)
    batched = pd.concat([score_frame(frame.iloc[i : i + 37], pipe, task) for i in range(0, 300, 37)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, batched)
    assert set(whole.segment_id) <= {11, 12, 13, 14} and set(whole.runner_up_segment_id) <= {11, 12, 13, 14}
    assert (whole.segment_id != whole.runner_up_segment_id).all() and (whole.runner_up_margin >= 0).all()
    assert (whole.low_confidence == (whole.confidence < 0.1)).all()
    assert (whole._reason_1 >= 0).all(), "every model-scored client has at least one reason"
    assert (
        np.bincount(whole["_bin_bureau_score"], minlength=5).tolist()
        == seg.bin_counts(x["bureau_score"], [600.0, 700.0, 800.0]).tolist()
    )
    assert (
        np.bincount(whole["_cat_industry_section"], minlength=4).tolist()
        == seg.category_counts(x["industry_section"], ["C", "E", "F"]).tolist()
    )
