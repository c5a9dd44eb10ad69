"""Fast unit tests of the pure segmentation functions (dagster_project/segmentation.py)."""

import numpy as np
import pandas as pd
import pytest

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import naming


def synthetic(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """client_features-like rows from four well separated groups (label in column `truth`)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 4, n)
    big = np.array([5e9, 2e7, 1e6, 1e8])[g]
    df = pd.DataFrame({
        "client_key": [f"{i:064x}" for i in range(n)],
        "annual_revenue": big * rng.lognormal(0, 0.2, n),
        "employee_count": big / 1e6 * rng.lognormal(0, 0.2, n),
        "total_assets": big * rng.lognormal(0, 0.2, n),
        "total_credit_limit": big / 3 * rng.lognormal(0, 0.2, n),
        "firm_age_months": np.array([300, 90, 18, 200])[g] * rng.lognormal(0, 0.1, n),
        "bureau_score": np.array([800, 700, 620, 560])[g] + rng.normal(0, 10, n),
        "debt_to_assets": np.array([0.4, 0.4, 0.5, 0.8])[g] + rng.normal(0, 0.03, n),
        "collateral_coverage": np.array([1.6, 0.8, 0.3, 0.9])[g],
        "inquiries_6m": np.array([1, 2, 3, 6])[g],
        "legal_judgments": np.array([0, 0, 0, 2])[g],
        "bureau_max_days_past_due_12m": np.array([0, 0, 0, 150])[g],
        "months_in_arrears_12m": np.array([0, 0, 0, 7])[g],
        "bureau_score_change_12m": np.array([0, 0, 0, -120])[g] + rng.normal(0, 3, n),
        "negative_cash_flow_share": np.array([0, 0, 0.5, 0.5])[g],
        "avg_utilisation_12m": np.array([0.3, 0.5, 0.8, 0.85])[g],
        "online_share_12m": np.array([0.1, 0.5, 0.9, 0.1])[g],
        "branch_share_12m": np.array([0.1, 0.2, 0.05, 0.2])[g],
        "relationship_manager_share_12m": np.array([0.8, 0.3, 0.05, 0.7])[g],
        "has_bureau_report": True,
        "technology_firm": g == 1,
        "industry_section": np.array(["C", "I", "F", "E"])[g],
        "industry_risk_class": np.array(["standard", "standard", "standard", "high"])[g],
        "rating_grade": np.array(["R1", "R4", "R6", "D"])[g],
        "credit_band": np.array(["prime", "near_prime", "subprime", "default"])[g],
        "firm_stage": np.array(["established", "growth", "startup", "established"])[g],
        "size_class": np.array(["large", "small", "micro", "medium"])[g],
        "truth": g,
    })
    # a few clients without a bureau report: bureau values missing, indicator set
    nob = rng.random(n) < 0.05
    df.loc[nob, ["bureau_score", "debt_to_assets", "bureau_score_change_12m"]] = np.nan
    df.loc[nob, "has_bureau_report"] = False
    return df


def test_pipeline_recovers_groups_and_is_reproducible() -> None:
    from sklearn.metrics import adjusted_rand_score

    df = synthetic()
    x = seg.prepare(df)
    assert list(x.columns) == list(seg.FEATURES)
    a = seg.build_pipeline(4).fit(x)
    b = seg.build_pipeline(4).fit(x)
    la, lb = a.predict(x), b.predict(x)
    assert (la == lb).all(), "same data + same config must give the same assignments"
    assert adjusted_rand_score(df.truth, la) > 0.95
    k, curve = seg.select_k(x, (2, 6), sample=400, quick_refits=3)
    assert list(curve.k) == [2, 3, 4, 5, 6] and k == 4
    assert {"silhouette", "davies_bouldin", "inertia"} <= set(curve.columns)


def test_missing_bureau_is_imputed_and_flagged() -> None:
    df = synthetic(200)
    x = seg.prepare(df)
    assert x[seg.INDICATOR].sum() == (~df.has_bureau_report).sum() > 0
    pipe = seg.build_pipeline(3).fit(x)
    z = pipe[:-1].transform(x)
    assert np.isfinite(z).all()


def test_confidence_is_relative_margin() -> None:
    d = np.array([[1.0, 4.0, 9.0], [2.0, 2.0, 5.0], [0.0, 3.0, 3.0], [6.0, 3.0, 1.0]])
    label, conf = seg.confidence(d)
    assert label.tolist() == [0, 0, 0, 2]
    assert conf.tolist() == pytest.approx([0.75, 0.0, 1.0, 1 - 1 / 3])


def test_hungarian_matching_keeps_ids_creates_and_retires() -> None:
    champion = np.array([7] * 50 + [8] * 30 + [9] * 20)
    # same partition, labels permuted
    chall = np.array([2] * 50 + [0] * 30 + [1] * 20)
    m = seg.match_segments(champion, chall, next_id=10)
    assert m.mapping == {2: 7, 0: 8, 1: 9} and not m.new and not m.retired
    # segment 9 vanishes (merged into 8), and a genuinely new cluster splits off 7
    chall2 = np.array([0] * 25 + [3] * 25 + [1] * 30 + [1] * 20)
    m2 = seg.match_segments(champion, chall2, next_id=10)
    assert m2.mapping[1] == 8 and m2.mapping[0] == 7 or m2.mapping[3] == 7
    assert m2.new == [10] and m2.retired == [9]
    assert set(m2.mapping.values()) == {7, 8, 10}


def test_jaccard_and_clusterboot_on_separated_groups() -> None:
    a = np.array([1, 1, 0, 0], dtype=bool)
    b = np.array([1, 0, 1, 0], dtype=bool)
    assert seg.jaccard(a, b) == pytest.approx(1 / 3)
    assert seg.jaccard(a, a) == 1.0
    df = synthetic(400)
    x = seg.prepare(df)
    labels = seg.build_pipeline(4).fit(x).predict(x)
    st = seg.clusterboot(x, labels, 4, refits=20)
    assert st.refits == 20 and len(st.jaccard) == 4
    assert min(st.jaccard.values()) > 0.95 and st.mean_ari > 0.95


def test_psi_conventions() -> None:
    assert seg.psi([10, 20, 30, 40], [10, 20, 30, 40]) == pytest.approx(0.0)
    e, a = np.array([0.25, 0.25, 0.25, 0.25]), np.array([0.1, 0.2, 0.3, 0.4])
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert seg.psi(e * 1000, a * 1000) == pytest.approx(expected)
    assert seg.psi_status(0.05) == "stable" and seg.psi_status(0.1) == "moderate"
    assert seg.psi_status(0.25) == "moderate" and seg.psi_status(0.26) == "significant"
    v = pd.Series([1.0, 2.0, 3.0, np.nan, 10.0])
    edges = seg.bin_edges(pd.Series(np.arange(100.0)))
    assert len(edges) == 9
    counts = seg.bin_counts(v, [1.5, 5.0])
    assert counts.tolist() == [1, 1, 2, 1]  # missing, <=1.5, (1.5, 5], > 5


def test_names_from_profiles() -> None:
    df = synthetic(800, seed=3)
    prof = naming.profile_segments(df, df.truth.to_numpy())
    names = {s: naming.name_segment(prof[prof.segment == s])[0] for s in range(4)}
    assert names[0] == "prime large manufacturers"
    assert names[1] == "near-prime small tech firms"
    assert names[2] == "high-risk micro service start-ups"
    assert names[3] == "stressed mid-sized contractors"
    desc = naming.name_segment(prof[prof.segment == 0])[1]
    assert "clients" in desc and "median bureau score" in desc
    assert naming.unique_names({1: "a", 2: "a", 3: "b"}, {"b"}) == {1: "a", 2: "a (segment 2)", 3: "b (segment 3)"}


def test_fingerprint_changes_with_data() -> None:
    df = synthetic(100)
    x = seg.prepare(df)
    assert seg.fingerprint(x) == seg.fingerprint(x.copy())
    y = x.copy()
    y.iloc[0, 0] += 1
    assert seg.fingerprint(y) != seg.fingerprint(x)
