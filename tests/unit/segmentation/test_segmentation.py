"""Fast unit tests of the pure segmentation functions (features.py, model.py, naming.py)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from synthetic import synthetic

from dagster_project.defs.segmentation import features as feat
from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import naming, selection


def space(df: pd.DataFrame) -> tuple[feat.DimensionScaler, np.ndarray, pd.DataFrame]:
    x = feat.prepare(df)
    scaler = feat.DimensionScaler().fit(x)
    return scaler, scaler.transform(x), x


def test_each_dimension_counts_with_its_weight() -> None:
    scaler, z, _ = space(synthetic(500))
    var = z.var(axis=0)
    for d in feat.DIMENSIONS:
        cols = [i for i, c in enumerate(scaler.columns_) if c[0] == d.name]
        assert var[cols].sum() == pytest.approx(d.weight, rel=1e-6), d.name
    assert np.isfinite(z).all()


def test_normal_scores_are_unit_free_and_tame_long_tails() -> None:
    grid = np.quantile(np.arange(1000.0), np.linspace(0, 1, feat.QUANTILES))
    s = feat.normal_scores(np.array([-5.0, 0.0, 499.5, 999.0, 1e12]), grid)
    assert s[2] == pytest.approx(0.0, abs=0.01)
    assert s[0] == s[1] < -2.5 and s[3] == s[4] > 2.5  # a value beyond the data cannot pull further than the edge
    # ties share their mid-rank: a feature that is 0 for 60 % of the clients maps them all to one score
    ties = np.quantile(np.r_[np.zeros(600), np.arange(1, 401.0)], np.linspace(0, 1, feat.QUANTILES))
    assert feat.normal_scores(np.array([0.0]), ties)[0] == pytest.approx(-0.524, abs=0.02)


def test_missing_values_and_unseen_categories() -> None:
    df = synthetic(300)
    scaler, _, _ = space(df)
    new = df.head(5).copy()
    new["bureau_score"] = np.nan
    new["industry_section"] = "T"  # never seen in training
    z = scaler.transform(feat.prepare(new))
    assert np.isfinite(z).all() and z.shape[1] == len(scaler.columns_)


def test_selection_recovers_groups_reproducibly_and_passes_its_own_checks() -> None:
    df = synthetic(700, seed=1)
    _, z, _ = space(df)
    a = selection.select_k(z, (3, 6), refits=20)
    b = selection.select_k(z, (3, 6), refits=20)
    la = seg.distances(z, a.centers).argmin(axis=1)
    assert (la == seg.distances(z, b.centers).argmin(axis=1)).all(), "same data, same model"
    assert len(a.centers) == 4 and adjusted_rand_score(df.truth, la) > 0.95
    assert min(a.stability.jaccard.values()) >= seg.JACCARD_FLOOR
    # the blocking check measures exactly what chose k: a clusterboot of the model with the same draws
    again = seg.clusterboot(z, a.centers, a.k, refits=20)
    assert again.jaccard == pytest.approx(a.stability.jaccard)
    assert set(a.curve.columns) >= {"k", "segments", "silhouette", "min_jaccard", "refits", "admissible"}


def test_a_small_distinct_group_is_dissolved_not_a_veto() -> None:
    rng = np.random.default_rng(0)
    blobs = np.r_[
        rng.normal(0, 0.3, (330, 2)),
        rng.normal((5, 0), 0.3, (330, 2)),
        rng.normal((0, 5), 0.3, (330, 2)),
        rng.normal((20, 20), 0.3, (10, 2)),
    ]
    centers = seg.fit_centers(blobs, 4)
    lab = seg.distances(blobs, centers).argmin(axis=1)
    assert len(centers) == 3, "the 1 % group does not become a segment under the 2 % share rule"
    assert np.bincount(lab).min() / len(lab) >= seg.MIN_SEGMENT_SHARE
    df = synthetic(800, seed=2, small_group=0.012)
    _, z, _ = space(df)
    sel = selection.select_k(z, (4, 6), refits=20)
    assert len(sel.centers) == 4 and min(sel.stability.jaccard.values()) >= seg.JACCARD_FLOOR
    big = df.truth < 4
    assert adjusted_rand_score(df.truth[big], seg.distances(z, sel.centers).argmin(axis=1)[big]) > 0.95


def test_training_sample_ignores_key_and_row_order() -> None:
    a = synthetic(400, seed=3, secret="key-a")
    b = synthetic(400, seed=3, secret="key-b").sample(frac=1.0, random_state=7)
    za, zb = space(a)[1], space(b)[1]
    ia, ib = seg.training_sample(za, size=150), seg.training_sample(zb, size=150)
    assert sorted(a.client_id.iloc[ia]) == sorted(b.client_id.iloc[ib])
    assert list(a.client_id.iloc[ia]) == list(b.client_id.iloc[ib]), "same order too: same k-means"


def test_confidence_is_relative_margin() -> None:
    d = np.array([[1.0, 4.0, 9.0], [2.0, 2.0, 5.0], [0.0, 3.0, 3.0], [6.0, 3.0, 1.0]])
    label, conf = seg.confidence(d)
    assert label.tolist() == [0, 0, 0, 2]
    assert conf.tolist() == pytest.approx([0.75, 0.0, 1.0, 1 - 1 / 3])


def test_hungarian_matching_keeps_ids_creates_and_retires() -> None:
    champion = np.array([7] * 50 + [8] * 30 + [9] * 20)
    chall = np.array([2] * 50 + [0] * 30 + [1] * 20)  # same partition, labels permuted
    m = seg.match_segments(champion, chall, next_id=10)
    assert m.mapping == {2: 7, 0: 8, 1: 9} and not m.new and not m.retired
    # segment 9 vanishes (merged into 8), and a genuinely new cluster splits off 7
    chall2 = np.array([0] * 25 + [3] * 25 + [1] * 30 + [1] * 20)
    m2 = seg.match_segments(champion, chall2, next_id=10)
    assert m2.mapping[1] == 8 and (m2.mapping[0] == 7 or m2.mapping[3] == 7)
    assert m2.new == [10] and m2.retired == [9]
    assert set(m2.mapping.values()) == {7, 8, 10}


def test_jaccard() -> None:
    a = np.array([1, 1, 0, 0], dtype=bool)
    b = np.array([1, 0, 1, 0], dtype=bool)
    assert seg.jaccard(a, b) == pytest.approx(1 / 3)
    assert seg.jaccard(a, a) == 1.0


def test_psi_conventions() -> None:
    assert seg.psi([10, 20, 30, 40], [10, 20, 30, 40]) == pytest.approx(0.0)
    e, a = np.array([0.25, 0.25, 0.25, 0.25]), np.array([0.1, 0.2, 0.3, 0.4])
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert seg.psi(e * 1000, a * 1000) == pytest.approx(expected)
    assert seg.psi_status(0.05) == "stable" and seg.psi_status(0.1) == "moderate"
    assert seg.psi_status(0.25) == "moderate" and seg.psi_status(0.26) == "significant"
    v = pd.Series([1.0, 2.0, 3.0, np.nan, 10.0])
    assert len(seg.bin_edges(pd.Series(np.arange(100.0)))) == 9
    assert seg.bin_counts(v, [1.5, 5.0]).tolist() == [1, 1, 2, 1]  # missing, <=1.5, (1.5, 5], > 5
    cats = pd.Series(["a", "b", "a", None, "z"])
    assert seg.category_counts(cats, ["a", "b"]).tolist() == [2, 1, 2]


def test_names_say_what_a_banker_needs_without_twins_or_repeated_words() -> None:
    df = synthetic(800, seed=3)
    scaler, _, x = space(df)
    prof = naming.profile_segments(x, scaler, df.truth.to_numpy(), df[list(naming.PROFILE_ONLY)])
    named = naming.name_segments(prof)
    names = {s: n for s, (n, _) in named.items()}
    # each group's own industry and product (planted in synthetic.GROUPS) is among its largest contrasts
    for s, (noun, product) in enumerate(
        [
            ("manufacturers", "term loans"),
            ("tech companies", "IP-pledge loans"),
            ("traders", "trade finance"),
            ("builders", "project finance"),
        ]
    ):
        assert noun in names[s] and product in names[s], names[s]
    assert len(set(names.values())) == 4
    for n in names.values():
        words = [w for w in n.replace("·", " ").replace("&", " ").split() if len(w) > 3]
        assert len(words) == len(set(words)), n
    desc = named[0][1]
    assert desc.count(";") == 2 and "(100 %)" in desc, desc  # three contrasts in an RM's words


def _profile(segments: dict[int, dict[tuple[str, str], float]], sizes: dict[int, int]) -> pd.DataFrame:
    """A hand-made profile (naming.COLUMNS): numeric features by their mean normal score, categories by share."""
    total = sum(sizes.values())
    rows = []
    for feature, category in {fc for attrs in segments.values() for fc in attrs}:
        pop = sum(segments[s].get((feature, category), 0.0) * sizes[s] for s in segments) / total
        for s, attrs in segments.items():
            v = attrs.get((feature, category), 0.0)
            rows.append(
                {
                    "segment": s,
                    "feature": feature,
                    "category": category,
                    "stat": "share" if category else "mean",
                    "segment_value": v if category else 0.5 + v / 4,
                    "population_value": pop if category else 0.5,
                    "difference": v - pop if category else v,
                }
            )
    rows += [
        {
            "segment": s,
            "feature": "clients",
            "category": "",
            "stat": "count",
            "segment_value": float(n),
            "population_value": float(total),
            "difference": n / total,
        }
        for s, n in sizes.items()
    ]
    return pd.DataFrame(rows)[naming.COLUMNS]


def test_a_word_most_segments_share_is_left_out_and_twins_get_their_next_contrast() -> None:
    # three of four segments are mostly small firms: the old rule (size class of >= 50 %) named each of them "small"
    small, large = ("size_class", "small"), ("size_class", "large")
    segs = {
        1: {small: 0.8, large: 0.1, ("industry_section", "C"): 0.7, ("avg_utilisation_12m", ""): 1.2},
        2: {small: 0.8, large: 0.1, ("industry_section", "F"): 0.7, ("secured_limit_share", ""): 1.0},
        3: {small: 0.8, large: 0.1, ("industry_section", "I"): 0.7, ("online_share_12m", ""): 1.1},
        4: {small: 0.1, large: 0.9, ("industry_section", "E"): 0.7, ("firm_age_months", ""): 0.9},
    }
    named = naming.name_segments(_profile(segs, {1: 300, 2: 300, 3: 300, 4: 100}))
    names = {s: n for s, (n, _) in named.items()}
    assert not any("small" in n for n in names.values()), names
    assert "large" in names[4] and "builders" in names[4] and "long-established" in names[4], names
    assert "manufacturers" in names[1] and "heavily drawn" in names[1], names
    assert "utilisation (12 m)" in named[1][1] and "pts above other segments" in named[1][1], named[1][1]
    # twins: the same industry, size and product, told apart by the next contrast of each (tenor / channel)
    twin = {("industry_section", "C"): 0.9, large: 0.9, ("limit_share_term_loan", ""): 1.5}
    segs = {
        1: twin | {("limit_weighted_term_months", ""): 0.6},
        2: twin | {("online_share_12m", ""): 0.6},
        3: {("industry_section", "F"): 0.9, small: 0.9},
        4: {("industry_section", "I"): 0.9, small: 0.9},
    }
    names = {s: n for s, (n, _) in naming.name_segments(_profile(segs, {s: 250 for s in segs})).items()}
    assert len(set(names.values())) == 4, names
    assert names[1] == "large manufacturers · term loans · long-tenor", names
    assert names[2] == "large manufacturers · term loans · online-served", names
    # a name already taken (an inherited segment's) is told apart the same way; no contrast left: the id
    table = naming.ct.contrast_table(_profile(segs, {s: 250 for s in segs}))
    assert naming.unique_names({1: names[3]}, {names[3]}, table) != {1: names[3]}
    assert naming.unique_names({1: "a", 2: "a", 3: "b"}, {"b"}) == {1: "a", 2: "a (segment 2)", 3: "b (segment 3)"}


def test_rating_range_and_contrast_words() -> None:
    from dagster_project.defs.segmentation import contrasts as ct

    assert ct.grade_range({"R2": 0.3, "R3": 0.3, "R7": 0.4}) == "R2-R3"
    assert ct.grade_range({"R5": 0.6, "R1": 0.4}) == "R5"
    assert ct.grade_range({}) == "unrated"
    assert ct.family("limit_share_term_loan") != ct.family("limit_share_trade_finance")
    assert ct.family("size_class") == ct.family("annual_revenue") == "size"


def test_fingerprint_changes_with_data() -> None:
    x = feat.prepare(synthetic(100))
    assert seg.fingerprint(x) == seg.fingerprint(x.copy())
    y = x.copy()
    y.iloc[0, 0] += 1
    assert seg.fingerprint(y) != seg.fingerprint(x)
