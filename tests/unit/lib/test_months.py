"""Calendar-month arithmetic (lib/months.py): the one place the stages and tools count months."""

from datetime import date

import pytest

from dagster_project.lib.months import add_months, month_end, months_between


@pytest.mark.parametrize(
    ("d", "k", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 1)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2026, 1, 15), -1, date(2025, 12, 1)),
        (date(2024, 2, 29), 12, date(2025, 2, 1)),
        (date(2026, 5, 1), 0, date(2026, 5, 1)),
    ],
)
def test_add_months_lands_on_the_first_of_the_month(d: date, k: int, expected: date) -> None:
    assert add_months(d, k) == expected


def test_months_between_counts_calendar_months_and_undoes_add_months() -> None:
    assert months_between(date(2025, 12, 31), date(2026, 1, 1)) == 1  # a day apart, a month boundary between
    assert months_between(date(2026, 3, 1), date(2026, 3, 31)) == 0
    assert months_between(date(2026, 3, 1), date(2025, 3, 1)) == -12
    start = date(2019, 7, 1)
    for k in range(-30, 31):
        assert months_between(start, add_months(start, k)) == k


def test_month_end_is_the_last_day() -> None:
    assert month_end(date(2024, 2, 10)) == date(2024, 2, 29)
    assert month_end(date(2026, 12, 1)) == date(2026, 12, 31)
