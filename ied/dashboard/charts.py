"""Geometry of the dashboard's per-day bar charts, worked out once in Python so the template
only writes the SVG elements (a chart of 90 days has up to 270 shapes; computing each one's
position with Jinja filters cost more than the rest of the page)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 640, 170
LEFT, RIGHT, TOP, BOTTOM = 34, 6, 8, 20
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Part:
    """One stacked part of a day's bar: the day's attribute it shows, its css class, its name."""

    attribute: str
    css: str
    label: str


@dataclass(frozen=True)
class Bar:
    css: str
    y: float
    height: float


@dataclass(frozen=True)
class Tick:
    x: float
    text: str
    anchor: str


@dataclass(frozen=True)
class DayColumn:
    day: date
    x: float
    title: str
    bars: list[Bar]
    tick: Tick | None


@dataclass(frozen=True)
class GridLine:
    y: float
    label: str
    is_axis: bool


@dataclass(frozen=True)
class DailyChart:
    chart_id: str
    days: int
    bar_width: float
    grid: list[GridLine]
    columns: list[DayColumn]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT


def daily_chart(chart_id: str, days: Sequence, parts: Sequence[Part], axis_max: int) -> DailyChart:
    """Bars per business day stacked from `parts`, under gridlines at 0, half and `axis_max`;
    a date under every day (up to 10 days), every 5th (a month) or every 15th, and the last."""
    slot = PLOT_WIDTH / len(days)
    bar_width = max(slot * 0.72, 1)
    every = 1 if len(days) <= 10 else (5 if len(days) <= 31 else 15)
    grid = [
        GridLine(
            round(TOP + PLOT_HEIGHT - PLOT_HEIGHT * fraction, 1),
            f"{int(round(axis_max * fraction)):,}",
            fraction == 0,
        )
        for fraction in (0, 0.5, 1)
    ]
    columns = []
    for index, day in enumerate(days):
        x = round(LEFT + slot * index + (slot - bar_width) / 2, 1)
        values = [(part, getattr(day, part.attribute)) for part in parts]
        bars, base = [], 0.0
        for part, value in values:
            if value:
                height = PLOT_HEIGHT * value / axis_max
                bars.append(
                    Bar(
                        part.css,
                        round(TOP + PLOT_HEIGHT - base - height, 1),
                        round(max(height, 1), 1),
                    )
                )
                base += height
        last = index == len(days) - 1
        remaining = len(days) - 1 - index
        tick = None
        if last:
            tick = Tick(WIDTH - RIGHT, day.day.strftime("%d %b"), "end")
        elif index % every == 0 and remaining >= every / 2:
            tick = Tick(round(x + bar_width / 2, 1), day.day.strftime("%d %b"), "middle")
        title = f"{day.day.strftime('%a %d %b')}: " + ", ".join(
            f"{value:,} {part.label}" for part, value in values
        )
        columns.append(DayColumn(day.day, x, title, bars, tick))
    return DailyChart(chart_id, len(days), round(bar_width, 1), grid, columns)
