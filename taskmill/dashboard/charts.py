"""Bar chart geometry for inline SVG: pure arithmetic, rendered by a template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

WIDTH: Final = 600
HEIGHT: Final = 120
GAP: Final = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One bar, in SVG user units (y grows downwards, so a bar stands on the baseline)."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BarChart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    peak: int

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    gap: float = GAP,
) -> BarChart:
    """Lay out one bar per (label, value), scaled so the largest value fills the height.

    Values below zero are drawn as zero; a chart of zeros has no visible bars.
    """
    peak = max((max(value, 0) for _, value in points), default=0)
    slot = width / len(points) if points else 0.0
    bars = []
    for index, (label, value) in enumerate(points):
        shown = max(value, 0)
        bar_height = height * shown / peak if peak else 0.0
        bars.append(
            Bar(
                x=round(index * slot, 2),
                y=round(height - bar_height, 2),
                width=round(max(slot - gap, 0.5), 2),
                height=round(bar_height, 2),
                label=label,
                value=value,
            )
        )
    return BarChart(width=width, height=height, bars=tuple(bars), peak=peak)
