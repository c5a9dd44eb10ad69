"""Marketing rules per segment (pure functions; docs/applications.md)."""


def contact_intensity(track: str, platinum_gold_share: float, eligible_share: float) -> str:
    """high: standard track and >= 30 % platinum/gold clients or >= 50 % eligible; low: restricted; else medium."""
    if track == "restricted":
        return "low"
    if track == "standard" and (platinum_gold_share >= 0.30 or eligible_share >= 0.50):
        return "high"
    return "medium"
