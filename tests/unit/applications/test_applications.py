"""Unit tests of the business-application rules (pure functions: recommend.py, early_warning.py, policy rules)."""

import numpy as np
import pytest

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import policy as pl
from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.applications.marketing import contact_intensity

CATALOGUE = {
    "term_loan": rc.Product("term_loan", False, "large", "R3", frozenset(), frozenset({"established"})),
    "revolving_credit": rc.Product(
        "revolving_credit", False, "medium", "R4", frozenset({"high"}), frozenset({"growth", "established"})
    ),
    "project_finance": rc.Product("project_finance", True, "large", "R4", frozenset(), frozenset({"established"})),
    "ip_pledge_loan": rc.Product("ip_pledge_loan", True, "micro", "R6", frozenset(), frozenset({"startup", "growth"})),
    "startup_credit_loan": rc.Product(
        "startup_credit_loan", False, "micro", "R6", frozenset({"high"}), frozenset({"startup"})
    ),
    "equipment_leasing": rc.Product(
        "equipment_leasing", True, "small", "R5", frozenset(), frozenset({"growth", "established"})
    ),
}


def client(**kw) -> rc.ClientProfile:
    base = dict(
        size_class="large",
        firm_stage="established",
        technology_firm=False,
        industry_risk_class="standard",
        rating_grade="R2",
        industry_section="C",
    )
    return rc.ClientProfile(**(base | kw))


# ---- eligibility ----------------------------------------------------------------------------------------


def test_large_established_manufacturer_is_eligible_for_long_term_credit() -> None:
    assert rc.eligibility_failures(CATALOGUE["term_loan"], client()) == []


@pytest.mark.parametrize(
    "kw, code",
    [
        ({"size_class": "medium"}, "SIZE_BELOW_MIN"),
        ({"size_class": "unknown"}, "SIZE_UNKNOWN"),
        ({"rating_grade": "R4"}, "RATING_BELOW_MIN"),
        ({"rating_grade": "D"}, "RATING_DEFAULT"),
        ({"firm_stage": "growth"}, "STAGE_NOT_SERVED"),
    ],
)
def test_each_catalogue_rule_blocks_term_loan(kw, code) -> None:
    assert code in rc.eligibility_failures(CATALOGUE["term_loan"], client(**kw))


def test_high_risk_floor_blocks_unsecured_below_r3_but_not_secured() -> None:
    high = client(industry_risk_class="high", rating_grade="R4", size_class="medium", firm_stage="growth")
    rev = rc.eligibility_failures(CATALOGUE["revolving_credit"], high)
    assert "RISK_CLASS_EXCLUDED" in rev and "HIGH_RISK_FLOOR" in rev
    assert rc.is_eligible(CATALOGUE["equipment_leasing"], high)  # secured: the floor does not apply
    assert rc.is_eligible(CATALOGUE["term_loan"], client(industry_risk_class="high", rating_grade="R3"))
    assert "HIGH_RISK_FLOOR" in rc.eligibility_failures(
        CATALOGUE["term_loan"], client(industry_risk_class="high", rating_grade="R5")
    )


def test_unrated_clients_are_assessed_as_r6() -> None:
    startup = client(size_class="micro", firm_stage="startup", rating_grade="unrated", technology_firm=True)
    assert rc.is_eligible(CATALOGUE["startup_credit_loan"], startup)
    assert "RATING_BELOW_MIN" in rc.eligibility_failures(CATALOGUE["equipment_leasing"], client(rating_grade="unrated"))


def test_product_from_catalogue_row_parses_pipes_and_empty_exclusions() -> None:
    p = rc.Product.from_row(
        {
            "product_code": "x",
            "secured": True,
            "min_size_class": "small",
            "min_rating_grade": "R5",
            "excluded_risk_classes": None,
            "firm_stages_served": "growth|established",
        }
    )
    assert p.excluded_risk_classes == frozenset() and p.firm_stages_served == {"growth", "established"}


# ---- playbook, advisory and reason codes ---------------------------------------------------------------------


def test_playbook_targets() -> None:
    assert rc.playbook_codes("project_finance", client()) == ["PLAYBOOK_LARGE_MANUFACTURER_LONG_TERM"]
    assert rc.playbook_codes("project_finance", client(industry_section="G")) == []
    tech = client(size_class="small", technology_firm=True, firm_stage="growth", industry_section="I")
    assert rc.playbook_codes("ip_pledge_loan", tech) == ["PLAYBOOK_TECH_SME_IP_PLEDGE"]
    assert rc.playbook_codes("ip_pledge_loan", client(technology_firm=True)) == []  # large: not an SME
    assert rc.playbook_codes("startup_credit_loan", client(firm_stage="startup")) == ["PLAYBOOK_STARTUP_CREDIT"]


def test_advisory_for_established_large_or_medium_not_in_default() -> None:
    assert rc.advisory_recommended(client())
    assert rc.advisory_recommended(client(size_class="medium"))
    assert not rc.advisory_recommended(client(firm_stage="growth"))
    assert not rc.advisory_recommended(client(size_class="small"))
    assert not rc.advisory_recommended(client(rating_grade="D"))


def test_reason_codes_and_text_are_readable() -> None:
    codes = rc.reason_codes(CATALOGUE["project_finance"], client(), peer_share=0.62, popularity=0.2)
    assert codes == ["PEERS_HOLD_STRONG", "PLAYBOOK_LARGE_MANUFACTURER_LONG_TERM"]
    text = rc.reason_text(codes, 0.62)
    assert text.startswith("Held by 62% of the 30 most similar clients") and "large manufacturers" in text
    weak = rc.reason_codes(
        CATALOGUE["equipment_leasing"],
        client(industry_risk_class="high", rating_grade="unrated"),
        peer_share=0.05,
        popularity=0.4,
    )
    assert weak == ["SECURED_FOR_HIGH_RISK_INDUSTRY", "POPULAR_PRODUCT", "UNRATED_ASSUMED_R6"]
    assert all(c in rc.REASON_TEXT for c in weak)


def test_ranking_excludes_held_and_ineligible_and_breaks_ties_by_code() -> None:
    scores = {"a": 0.5, "b": 0.9, "c": 0.5, "d": 0.7, "e": 0.1}
    assert rc.rank_products(scores, held={"b"}) == ["d", "a", "c"]
    assert rc.rank_products(scores, held={"b"}, eligible={"c", "e"}) == ["c", "e"]
    assert rc.popularity_ranking({"x": 0.1, "y": 0.3, "z": 0.2}, held=set(), n=2) == ["y", "z"]
    assert rc.hit_at_k(["a", "b", "c"], {"c"}) and not rc.hit_at_k(["a", "b", "c", "d"], {"d"})


def test_score_weights_playbook_and_peers() -> None:
    assert rc.score(0.4, True, 0.2) == pytest.approx(0.4 + rc.W_PLAYBOOK + rc.W_POPULARITY * 0.2)
    assert rc.score(0.6, False, 0.0) > rc.score(0.2, True, 0.0)


def test_peer_shares_never_use_the_client_itself() -> None:
    x = np.array([[0.0], [0.1], [5.0], [5.1]])
    holdings = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    shares = rc.peer_shares(x, holdings, x, np.arange(4), k=1)
    assert np.allclose(shares, holdings)  # the nearest OTHER client holds the same product
    lonely = rc.peer_shares(x, np.array([[1, 0], [0, 0], [0, 0], [0, 0]]), x[:1], np.array([0]), k=1)
    assert lonely[0, 0] == 0.0  # its own holding does not count


def _blocked_population(n: int, seed: int, spread: float) -> tuple[np.ndarray, list[int]]:
    """Standardised-like rows: 4 numeric columns, then one-hot industry (6) and size (3) columns."""
    rng = np.random.default_rng(seed)
    industry, size = rng.integers(0, 6, n), rng.choice(3, n, p=[0.7, 0.25, 0.05])
    x = np.hstack([rng.normal(0, spread, (n, 4)), np.eye(6)[industry] * 2.5, np.eye(3)[size] * 2.5])
    x[rng.random(n) < 0.05, :4] = 0.0  # exact duplicates (missing values standardised to the mean): ties
    return x, list(range(4, 13))


def test_neighbours_come_from_the_clients_own_block() -> None:
    from sklearn.neighbors import NearestNeighbors

    x, _ = _blocked_population(3000, seed=5, spread=1.0)
    industry, size = list(range(4, 10)), list(range(10, 13))
    pool, query = x[:2400], x[1800:].copy()
    query[-3:, 4:] = 0.0
    query[-3:, [4, 12]] = 2.5  # industry 0 x the rare size 2: few or no pool rows -> the industry's block
    d, i = rc.nearest(pool, query, 11, [industry, size], min_block=30)
    key = lambda rows, cols: [tuple(r) for r in rows[:, cols]]  # noqa: E731
    qi, qs = key(query, industry), key(query, size)
    pi, ps = key(pool, industry), key(pool, size)
    counts = {}
    for a, b in zip(pi, ps, strict=False):
        counts[(a, b)] = counts.get((a, b), 0) + 1
    for r in range(len(query)):
        assert all(pi[j] == qi[r] for j in i[r]), "always within the industry block"
        if counts.get((qi[r], qs[r]), 0) >= 30:
            assert all(ps[j] == qs[r] for j in i[r]), "and within the size block when it has 30+ pool rows"
        # the nearest rows of that block, in order
        same = [
            j for j in range(len(pool)) if pi[j] == qi[r] and (counts.get((qi[r], qs[r]), 0) < 30 or ps[j] == qs[r])
        ]
        best = np.sort(np.linalg.norm(pool[same] - query[r], axis=1))[:11]
        assert np.allclose(d[r], best)
    # without blocks: one search of the whole pool
    d0, _ = rc.nearest(pool, query, 11)
    assert np.allclose(d0, NearestNeighbors(n_neighbors=11).fit(pool).kneighbors(query)[0])


def test_blocked_search_with_tiny_blocks_falls_back_to_the_pool() -> None:
    x, _ = _blocked_population(200, seed=3, spread=1.0)
    d, i = rc.nearest(x[:5], x, 5, [list(range(4, 10)), list(range(10, 13))])  # no block holds 5 pool rows
    assert d.shape == (200, 5) and set(i.ravel()) <= set(range(5))
    shares = rc.peer_shares(x[:5], np.eye(5), x[:3], np.arange(3), k=4, block_keys=[list(range(4, 10))])
    assert np.allclose(shares.sum(axis=1), 1.0) and np.all(shares[np.arange(3), np.arange(3)] == 0.0)


# ---- bootstrap ---------------------------------------------------------------------------------------------


def test_bootstrap_ci_is_reproducible_and_brackets_the_mean() -> None:
    x = np.r_[np.ones(60), np.zeros(40)]
    est, lo, hi = rc.bootstrap_ci(x, n_boot=2000)
    assert est == pytest.approx(0.6)
    assert lo < 0.6 < hi and 0.16 < hi - lo < 0.23  # about 0.6 +/- 1.96 x sqrt(.24/100)
    assert rc.bootstrap_ci(x, n_boot=2000) == (est, lo, hi)
    assert np.isnan(rc.bootstrap_ci([])[0])
    d, dlo, dhi = rc.paired_bootstrap_diff(np.ones(50), np.r_[np.ones(25), np.zeros(25)])
    assert d == pytest.approx(0.5) and 0.3 < dlo < 0.5 < dhi


# ---- early-warning severity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signal, value, expected",
    [
        ("score_drop", 19, None),
        ("score_drop", 20, "watch"),
        ("score_drop", 30, "warning"),
        ("score_drop", 60, "critical"),
        ("arrears", 0, None),
        ("arrears", 5, "watch"),
        ("arrears", 30, "warning"),
        ("arrears", 61, "critical"),
        ("high_utilisation", 1, None),
        ("high_utilisation", 2, "watch"),
        ("high_utilisation", 6, "warning"),
        ("negative_cash_flow", 2, "watch"),
        ("negative_cash_flow", 4, "warning"),
        ("legal_judgments", 1, "watch"),
        ("legal_judgments", 3, "warning"),
        ("inquiries", 2, None),
        ("inquiries", 3, "watch"),
        ("inquiries", 6, "warning"),
        ("collateral", 1.0, None),
        ("collateral", 0.99, "watch"),
        ("collateral", 0.1, "watch"),
        ("multiple_signals", 3, None),
        ("multiple_signals", 4, "warning"),
        ("multiple_signals", 5, "critical"),
    ],
)
def test_severity_rules(signal, value, expected) -> None:
    assert ew.severity(signal, value) == expected


def test_every_observation_carries_the_threshold_of_its_own_severity() -> None:
    assert [ew.threshold_for("arrears", lv) for lv in ew.SEVERITIES] == [1, 30, 60]
    assert ew.threshold_for("collateral", "critical") is None
    assert ew.threshold_for("multiple_signals", "critical") == 5


# ---- credit policy and marketing rules -----------------------------------------------------------------


def test_expected_default_rate_counts_defaults_and_is_pulled_towards_the_book() -> None:
    assert pl.expected_default_rate(0.0, 0, 0, 0.03) == pytest.approx(0.03)  # no evidence: the book's rate
    assert pl.expected_default_rate(2.0, 20, 0, 0.03) == pytest.approx((2.0 + 20 * 0.03) / 40)  # 0.10 raw, halfway
    assert pl.expected_default_rate(50.0, 1000, 0, 0.03) == pytest.approx(50.6 / 1020)  # much evidence: near its own
    # a segment mostly in default is risky however few performing clients it has left
    assert pl.expected_default_rate(0.03, 1, 25, 0.03) == pytest.approx((0.03 + 25 + 0.6) / 46)
    assert pl.expected_default_rate(1.0, 10, 2, None) is None  # no rated performing client in the book


def test_segment_tracks_follow_the_expected_default_rate_within_the_share_caps() -> None:
    book, n = 0.02, 1000
    segs = [
        pl.SegmentRisk(1, 80, 0.10),
        pl.SegmentRisk(2, 60, 0.045),
        pl.SegmentRisk(3, 100, 0.03),
        pl.SegmentRisk(4, 150, 0.028),
        pl.SegmentRisk(5, 400, 0.01),
        pl.SegmentRisk(-13, 210, 0.02),
    ]
    t = {k: v[0] for k, v in pl.segment_tracks(segs, book, n).items()}
    # 1: 5x the book, 8 % of the clients -> restricted; 2 (2.25x) would take restricted to 14 % > 10 % -> enhanced;
    # 3 (1.5x) fits in 30 %; 4 (1.4x) would take restricted + enhanced to 39 % -> standard, and so does everything after
    assert t == {
        1: "restricted",
        2: "enhanced_review",
        3: "enhanced_review",
        4: "standard",
        5: "standard",
        -13: "standard",
    }
    reasons = pl.segment_tracks(segs, book, n)
    assert reasons[1][1] == "EDR_5.00X_BOOK|RISKIEST_SEGMENTS_WITHIN_10PCT_OF_BOOK"
    assert reasons[4][1].endswith("NON_STANDARD_SHARE_REACHED") and reasons[5][1].endswith("BELOW_ENHANCED_MULTIPLE")
    # monotone: every restricted segment riskier than every enhanced one, every enhanced one than every standard one
    edr = {s.segment_id: s.expected_default_rate for s in segs}
    lo = {tr: min(edr[i] for i in t if t[i] == tr) for tr in set(t.values())}
    hi = {tr: max(edr[i] for i in t if t[i] == tr) for tr in set(t.values())}
    assert lo["restricted"] >= hi["enhanced_review"] and lo["enhanced_review"] >= hi["standard"]
    # below the multiple: nothing is singled out however small the segment
    assert {
        v[0]
        for v in pl.segment_tracks([pl.SegmentRisk(1, 10, 0.024), pl.SegmentRisk(2, 990, 0.02)], 0.02, 1000).values()
    } == {"standard"}
    # no rated performing client in the book (e.g. the SBA loans): no evidence, every segment standard
    assert pl.segment_tracks(segs, None, n)[1] == ("standard", "NO_RATED_EVIDENCE")


@pytest.mark.parametrize(
    "grade, risk, seg_track, warn, crit, track, reason",
    [
        ("R2", "standard", "standard", False, False, "standard", pl.STANDARD_REASON),
        ("D", "standard", "standard", True, True, "restricted", "IN_DEFAULT_WORKOUT|OPEN_CRITICAL_EARLY_WARNING"),
        ("R8", "standard", "standard", False, False, "restricted", "OWN_GRADE_R8"),
        ("R2", "standard", "standard", True, True, "restricted", "OPEN_CRITICAL_EARLY_WARNING"),
        ("R2", "standard", "restricted", False, False, "enhanced_review", "SEGMENT_RESTRICTED|OWN_GRADE_STRONG"),
        ("R2", "high", "restricted", False, False, "restricted", "SEGMENT_RESTRICTED"),
        ("unrated", "high", "restricted", False, False, "restricted", "SEGMENT_RESTRICTED"),
        (
            "R7",
            "standard",
            "enhanced_review",
            True,
            False,
            "enhanced_review",
            "SEGMENT_ENHANCED_REVIEW|OWN_GRADE_R7|OPEN_EARLY_WARNING",
        ),
        (
            "unrated",
            "high",
            "standard",
            False,
            False,
            "standard",
            pl.STANDARD_REASON,
        ),  # unrated / high industry alone: no
        ("R6", "standard", "standard", True, False, "enhanced_review", "OPEN_EARLY_WARNING"),
    ],
)
def test_client_tracks_in_sql(grade, risk, seg_track, warn, crit, track, reason) -> None:
    import duckdb

    row = (
        duckdb.connect()
        .execute(
            f"SELECT {pl.client_reason_sql()} AS reason, approval_track FROM (SELECT *, {pl.client_track_sql()} "
            "AS approval_track FROM (SELECT ? AS rating_grade, ? AS industry_risk_class, ? AS segment_track, "
            "? AS open_warning, ? AS open_critical_warning))",
            [grade, risk, seg_track, warn, crit],
        )
        .fetchone()
    )
    assert row == (reason, track)


def test_contact_intensity() -> None:
    assert contact_intensity("restricted", 0.9, 0.9) == "low"
    assert contact_intensity("standard", 0.35, 0.1) == "high"
    assert contact_intensity("enhanced_review", 0.9, 0.9) == "medium"
