"""Credit-policy rules: the approval track of a segment and of a client (pure functions; docs/applications.md).

**Expected default rate (EDR)** of a segment: the share of its rated clients that default within a year - realised
or expected. A client in default (grade D) counts as a default (1); a performing rated client (R1-R8) counts with the
one-year probability of default of the rating master scale (``reference.rating_master_scale``, midpoint of the
grade's PD band); unrated clients have no evidence. A segment with little evidence is pulled towards the book's rate
(:func:`expected_default_rate`, ``CREDIBILITY_CLIENTS`` pseudo-clients at the book's rate). The **book's rate** is the
mean PD of all performing rated clients: what lending to a client in good standing is expected to cost. Why not the
segments' observed defaults alone: the segments are built from current features that include arrears, so the
clients who defaulted sit in one segment and every other segment shows no observed default in the last 12 months -
an observed rate singles out that one segment and ranks none of the others; the PDs rank them.

**Segment track** (:func:`segment_tracks`): segments in descending EDR order are put on ``restricted`` while
their EDR is at least ``RESTRICTED_MULTIPLE`` x the book's and together they hold at most
``RESTRICTED_SHARE`` of the clients; the next ones on ``enhanced_review`` while their EDR is at least
``ENHANCED_MULTIPLE`` x the book's and restricted + enhanced segments hold at most ``NON_STANDARD_SHARE``; the
first segment that fails stops the step, so every restricted segment is riskier than every enhanced one, and
every enhanced one riskier than every standard one. No rated performing client in the book: every segment
``standard`` (no evidence singles any out).

**Client track** (:func:`client_track_sql`, first rule that applies): ``restricted`` - in default (grade D,
marts.workout_clients), grade R8 (PD 15-100 %), an open critical early warning, or a restricted segment unless
the client is rated R1-R3 outside ``high`` industries (then enhanced_review); ``enhanced_review`` - an
enhanced-review segment, grade R7 (PD 6-15 %) or an open warning-level early warning; else ``standard``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dagster_project.lib.tables import sql_literal

CREDIBILITY_CLIENTS = 20  # pseudo-clients at the book's rate added to every segment's rated performing clients
RESTRICTED_MULTIPLE = 2.0  # a restricted segment's EDR is at least twice the book's ...
RESTRICTED_SHARE = 0.10  # ... and restricted segments hold at most 10 % of the clients
ENHANCED_MULTIPLE = 1.25  # an enhanced-review segment's EDR is at least 1.25 x the book's ...
NON_STANDARD_SHARE = 0.30  # ... and restricted + enhanced-review segments hold at most 30 % of the clients
TRACKS: tuple[str, ...] = ("standard", "enhanced_review", "restricted")


def expected_default_rate(
    pd_sum: float,
    rated_performing: int,
    in_default: int,
    book_rate: float | None,
    credibility: int = CREDIBILITY_CLIENTS,
) -> float | None:
    """EDR of a segment: (sum of its performing rated clients' PDs + its clients in default + ``credibility`` x book
    rate) / (performing rated + in default + ``credibility``); None when the book has no rated performing client."""
    if book_rate is None or book_rate != book_rate:
        return None
    return (pd_sum + in_default + credibility * book_rate) / (rated_performing + in_default + credibility)


def _pct(share: float) -> str:
    return f"{round(share * 100)}PCT"


@dataclass(frozen=True)
class SegmentRisk:
    segment_id: int
    clients: int
    expected_default_rate: float | None


def segment_tracks(
    segments: Sequence[SegmentRisk], book_rate: float | None, book_clients: int
) -> dict[int, tuple[str, str]]:
    """{segment_id: (approval track, reason codes)} by the EDR steps of the module docstring."""
    if book_rate is None or book_rate != book_rate or book_rate <= 0 or book_clients <= 0:
        return {s.segment_id: ("standard", "NO_RATED_EVIDENCE") for s in segments}
    order = sorted(segments, key=lambda s: (-(s.expected_default_rate or 0.0), s.segment_id))
    out: dict[int, tuple[str, str]] = {}
    step, placed = "restricted", 0
    for s in order:
        edr = s.expected_default_rate or 0.0
        multiple = f"EDR_{edr / book_rate:.2f}X_BOOK"
        if step == "restricted":
            if edr >= RESTRICTED_MULTIPLE * book_rate and placed + s.clients <= RESTRICTED_SHARE * book_clients:
                out[s.segment_id] = (
                    "restricted",
                    f"{multiple}|RISKIEST_SEGMENTS_WITHIN_{_pct(RESTRICTED_SHARE)}_OF_BOOK",
                )
                placed += s.clients
                continue
            step = "enhanced_review"
        if step == "enhanced_review":
            if edr >= ENHANCED_MULTIPLE * book_rate and placed + s.clients <= NON_STANDARD_SHARE * book_clients:
                out[s.segment_id] = (
                    "enhanced_review",
                    f"{multiple}|RISKIEST_SEGMENTS_WITHIN_{_pct(NON_STANDARD_SHARE)}_OF_BOOK",
                )
                placed += s.clients
                continue
            step = "standard"
        why = "BELOW_ENHANCED_MULTIPLE" if edr < ENHANCED_MULTIPLE * book_rate else "NON_STANDARD_SHARE_REACHED"
        out[s.segment_id] = ("standard", f"{multiple}|{why}")
    return out


# Client rules, in order: (track, reason code, SQL condition on the columns of client_track_sql's input).
CLIENT_RULES: tuple[tuple[str, str, str], ...] = (
    ("restricted", "IN_DEFAULT_WORKOUT", "rating_grade = 'D'"),
    ("restricted", "OWN_GRADE_R8", "rating_grade = 'R8'"),
    ("restricted", "OPEN_CRITICAL_EARLY_WARNING", "open_critical_warning"),
    (
        "enhanced_review",
        "SEGMENT_RESTRICTED|OWN_GRADE_STRONG",
        "segment_track = 'restricted' AND rating_grade IN ('R1', 'R2', 'R3') AND industry_risk_class IS DISTINCT "
        "FROM 'high'",
    ),
    ("restricted", "SEGMENT_RESTRICTED", "segment_track = 'restricted'"),
    ("enhanced_review", "SEGMENT_ENHANCED_REVIEW", "segment_track = 'enhanced_review'"),
    ("enhanced_review", "OWN_GRADE_R7", "rating_grade = 'R7'"),
    ("enhanced_review", "OPEN_EARLY_WARNING", "open_warning"),
)
STANDARD_REASON = "SEGMENT_STANDARD|OWN_RISK_WITHIN_APPETITE"


def client_track_sql() -> str:
    """SQL expression of the client's track: the first client rule that applies, over columns rating_grade,
    industry_risk_class, segment_track (text) and open_warning / open_critical_warning (booleans, not null)."""
    return (
        "CASE " + " ".join(f"WHEN {cond} THEN {sql_literal(t)}" for t, _, cond in CLIENT_RULES) + " ELSE 'standard' END"
    )


def client_reason_sql(track_col: str = "approval_track") -> str:
    """SQL expression of the reason codes: every rule that applies and gives the client's track (``track_col``),
    pipe-separated in rule order; STANDARD_REASON for standard clients."""
    parts = ", ".join(
        f"CASE WHEN {track_col} = {sql_literal(t)} AND ({cond}) THEN {sql_literal(r)} END"
        for t, r, cond in CLIENT_RULES
    )
    return f"CASE WHEN {track_col} = 'standard' THEN {sql_literal(STANDARD_REASON)} ELSE concat_ws('|', {parts}) END"


TRACK_TEXT = {
    "standard": "standard approval",
    "enhanced_review": "enhanced credit review",
    "restricted": "restricted: new lending only by exception",
}
