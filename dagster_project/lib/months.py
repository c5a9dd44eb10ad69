"""Calendar-month arithmetic on first-of-month dates, shared by the applications stage and the demo tools."""

from datetime import date


def add_months(d: date, k: int) -> date:
    """First day of the month ``k`` months after the month of ``d`` (``k`` may be negative)."""
    m = d.year * 12 + d.month - 1 + k
    return date(m // 12, m % 12 + 1, 1)


def months_between(earlier: date, later: date) -> int:
    """Whole calendar months from the month of ``earlier`` to the month of ``later`` (negative if later is earlier)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def month_end(d: date) -> date:
    """Last day of the month of ``d``."""
    return date.fromordinal(add_months(d, 1).toordinal() - 1)
