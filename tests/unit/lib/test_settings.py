"""Settings tests may lower (refits, bootstrap resamples) keep their production defaults and rules."""

import pytest

from dagster_project.defs.segmentation.training import evaluate_checks
from dagster_project.lib.settings import load_settings


def _meta(refits: int, thresholds: dict) -> dict:
    return {
        "thresholds": {"min_segment_share": 0.02, "silhouette_floor": 0.2, "jaccard_floor": 0.6, **thresholds},
        "segments": [{"segment_id": 1, "share": 0.5}, {"segment_id": 2, "share": 0.5}],
        "min_segment_share": 0.5,
        "silhouette": 0.3,
        "stability": {"refits": refits, "mean_ari": 0.9, "jaccard": {"1": 0.9, "2": 0.9}},
    }


def test_production_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LENDSEG_SEG_MIN_REFITS", "LENDSEG_SEG_STABILITY_REFITS", "LENDSEG_EVAL_BOOTSTRAP"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert (s.seg_min_refits, s.seg_stability_refits, s.eval_bootstrap) == (20, 20, 2000)
    monkeypatch.setenv("LENDSEG_SEG_STABILITY_REFITS", "5")  # below the blocking minimum: raised to it
    assert load_settings().seg_stability_refits == 20


def test_tests_may_lower_refits_and_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENDSEG_SEG_MIN_REFITS", "4")
    monkeypatch.setenv("LENDSEG_SEG_STABILITY_REFITS", "4")
    monkeypatch.setenv("LENDSEG_EVAL_BOOTSTRAP", "200")
    s = load_settings()
    assert (s.seg_min_refits, s.seg_stability_refits, s.eval_bootstrap) == (4, 4, 200)


def test_the_blocking_refit_rule_is_the_one_the_model_was_trained_under() -> None:
    assert not evaluate_checks(_meta(19, {"min_refits": 20}))["stability_clusterboot"]["passed"]
    assert evaluate_checks(_meta(20, {"min_refits": 20}))["stability_clusterboot"]["passed"]
    assert evaluate_checks(_meta(4, {"min_refits": 4}))["stability_clusterboot"]["passed"]
    # a model stored by release 2749259 (no min_refits recorded) is held to the production rule
    assert not evaluate_checks(_meta(19, {}))["stability_clusterboot"]["passed"]
