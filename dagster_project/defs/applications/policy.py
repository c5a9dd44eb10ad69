"""Credit-policy rules: the approval track of a segment and of a client (pure functions; docs/applications.md)."""

from dagster_project.defs.applications import recommend as rc


# Segment approval track (first matching rule wins; documented in docs/applications.md):
#   restricted       default share (grade D) >= 15 %, or mean grade R7 or worse (>= 6.5), or 30+ dpd rate >= 30 %
#   enhanced_review  high-risk industry share >= 50 %, or mean grade R5 or worse (>= 4.5), or 30+ dpd rate >= 15 %,
#                    or default share >= 5 %
#   standard         otherwise
TRACK_RULES = {"restricted": {"default_share": 0.15, "mean_grade": 6.5, "arrears_rate": 0.30},
               "enhanced_review": {"high_risk_share": 0.50, "mean_grade": 4.5, "arrears_rate": 0.15, "default_share": 0.05}}


def segment_track(default_share: float, mean_grade: float | None, arrears_rate: float, high_risk_share: float
                  ) -> tuple[str, str]:
    """(approval track, reason codes) of a segment from its risk figures."""
    r, e = TRACK_RULES["restricted"], TRACK_RULES["enhanced_review"]
    g = mean_grade if mean_grade is not None and mean_grade == mean_grade else 0.0
    reasons = [c for c, hit in (("DEFAULT_SHARE_GE_15PCT", default_share >= r["default_share"]),
                                ("MEAN_GRADE_R7_OR_WORSE", g >= r["mean_grade"]),
                                ("ARREARS_RATE_GE_30PCT", arrears_rate >= r["arrears_rate"])) if hit]
    if reasons:
        return "restricted", "|".join(reasons)
    reasons = [c for c, hit in (("HIGH_RISK_SHARE_GE_50PCT", high_risk_share >= e["high_risk_share"]),
                                ("MEAN_GRADE_R5_OR_WORSE", g >= e["mean_grade"]),
                                ("ARREARS_RATE_GE_15PCT", arrears_rate >= e["arrears_rate"]),
                                ("DEFAULT_SHARE_GE_5PCT", default_share >= e["default_share"])) if hit]
    if reasons:
        return "enhanced_review", "|".join(reasons)
    return "standard", "SEGMENT_RISK_WITHIN_APPETITE"


def client_track(segment_track_: str, rating_grade: str, industry_risk_class: str, open_critical: bool,
                 open_warning: bool) -> tuple[str, str]:
    """(approval track, reason codes) of one client from its segment's track, own rating, risk class and warnings.

    restricted: grade D or R8, an open critical early warning, or a restricted segment unless the client is
    rated R1-R3 outside `high` industries (then enhanced_review). enhanced_review: segment enhanced_review,
    `high` industry risk class, grade R6-R7, unrated, or an open warning-level early warning. standard otherwise.
    """
    strong = rating_grade in ("R1", "R2", "R3") and industry_risk_class != "high"
    if rating_grade in ("D", "R8"):
        return "restricted", f"OWN_GRADE_{rating_grade}"
    if open_critical:
        return "restricted", "OPEN_CRITICAL_EARLY_WARNING"
    if segment_track_ == "restricted":
        return ("enhanced_review", "SEGMENT_RESTRICTED|OWN_GRADE_STRONG") if strong else ("restricted", "SEGMENT_RESTRICTED")
    reasons = [c for c, hit in (("SEGMENT_ENHANCED_REVIEW", segment_track_ == "enhanced_review"),
                                ("HIGH_RISK_INDUSTRY", industry_risk_class == "high"),
                                ("OWN_GRADE_R6_R7", rating_grade in ("R6", "R7")),
                                ("UNRATED", rating_grade not in rc.GRADE_ORDER),
                                ("OPEN_EARLY_WARNING", open_warning)) if hit]
    if reasons:
        return "enhanced_review", "|".join(reasons)
    return "standard", "SEGMENT_STANDARD|OWN_RISK_WITHIN_APPETITE"


TRACK_TEXT = {"standard": "standard approval", "enhanced_review": "enhanced credit review",
              "restricted": "restricted: new lending only by exception"}
