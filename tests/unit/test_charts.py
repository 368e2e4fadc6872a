"""Bar chart geometry for the dashboard's inline SVG."""

import pytest

from taskmill.dashboard.charts import bar_chart


def test_bar_chart__tallest_bar_fills_the_height_and_bars_stand_on_the_baseline() -> None:
    chart = bar_chart([("a", 1), ("b", 4), ("c", 0)], width=300, height=100, gap=2)

    assert chart.peak == 4
    assert chart.total == 5
    a, b, c = chart.bars
    assert (a.x, a.width, a.height, a.y) == (0, 98, 25, 75)
    assert (b.x, b.height, b.y) == (100, 100, 0)
    assert (c.x, c.height, c.y) == (200, 0, 100)


def test_bar_chart__all_zero_or_empty_draws_no_bar_and_never_divides_by_zero() -> None:
    assert all(bar.height == 0 for bar in bar_chart([("a", 0), ("b", 0)]).bars)
    empty = bar_chart([])
    assert (empty.bars, empty.peak, empty.total) == ((), 0, 0)


def test_bar_chart__negative_values_draw_as_zero() -> None:
    [bar] = bar_chart([("a", -3)]).bars
    assert bar.height == 0
    assert bar.value == -3


@pytest.mark.parametrize("count", [1, 60, 1000])
def test_bar_chart__bars_stay_inside_the_width(count: int) -> None:
    chart = bar_chart([(str(i), i) for i in range(count)], width=600)
    assert all(bar.x >= 0 and bar.x + bar.width <= 600.01 for bar in chart.bars)
    assert all(bar.width > 0 for bar in chart.bars)
