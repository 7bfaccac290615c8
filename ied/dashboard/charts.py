"""Geometry of the dashboard's per-day bar charts, worked out once in Python so the template
only writes the SVG elements (a chart of 90 days has up to 270 shapes; computing each one's
position with Jinja filters cost more than the rest of the page)."""

from collections.abc import Sequence
from dataclasses import dataclass

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
    day: str  # ISO date
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
        title = f"{day.label}: " + ", ".join(f"{value:,} {part.label}" for part, value in values)
        columns.append(DayColumn(day.day.isoformat(), x, title, bars, tick))
    return DailyChart(chart_id, len(days), round(bar_width, 1), grid, columns)


# Cycle caps: a bar per installer running to 125 % of its cap, the cap a line at 80 % of the
# bar's space; at or over the cap the row turns red, from 80 % amber.
CAP_ROW_HEIGHT, CAP_WIDTH, CAP_LABEL_WIDTH = 22, 380, 124
CAP_BAR_SPACE = CAP_WIDTH - CAP_LABEL_WIDTH - 84
CAP_X = round(CAP_LABEL_WIDTH + CAP_BAR_SPACE * 0.8, 1)
CAP_LABEL_LENGTH = 17


@dataclass(frozen=True)
class CapRow:
    installer_id: int
    state: str  # no-cap, at-cap, near-cap, under-cap (+ paused)
    title: str
    label: str
    y: int
    bar_width: float | None  # None: no cap
    value: str


@dataclass(frozen=True)
class CapChart:
    rows: list[CapRow]
    height: int
    width: int = CAP_WIDTH
    label_width: int = CAP_LABEL_WIDTH
    bar_space: int = CAP_BAR_SPACE
    cap_x: float = CAP_X


def _short(name: str) -> str:
    return name if len(name) <= CAP_LABEL_LENGTH else name[: CAP_LABEL_LENGTH - 1] + "…"


def cap_chart(rows: Sequence) -> CapChart:
    """One bar per CapUse row (installer, its current cycle's use against its cap)."""
    drawn = []
    for index, row in enumerate(rows):
        usage, percent = row.usage, row.percent
        if percent is None:
            state = "no-cap"
        elif usage.is_full:
            state = "at-cap"
        else:
            state = "near-cap" if percent >= 80 else "under-cap"
        if not row.active:
            state += " paused"
        of_cap = "" if usage.cap is None else f" of {usage.cap}"
        drawn.append(
            CapRow(
                row.installer_id,
                state,
                f"{row.installer_name}: {usage.used}{of_cap} this cycle",
                _short(row.installer_name),
                index * CAP_ROW_HEIGHT,
                None
                if percent is None
                else round(CAP_BAR_SPACE * 0.8 * min(percent, 125) / 100, 1),
                f"{usage.used} · no cap"
                if percent is None
                else f"{usage.used}/{usage.cap}" + (" at cap" if usage.is_full else ""),
            )
        )
    return CapChart(drawn, len(rows) * CAP_ROW_HEIGHT + 4)


@dataclass(frozen=True)
class Segment:
    css: str
    x: float
    width: float


SATISFACTION_WIDTH = 120


def satisfaction_segments(satisfied: int, mixed: int, unsatisfied: int) -> list[Segment]:
    """Satisfied / mixed / unsatisfied shares of an installer's closed follow-ups, side by side."""
    total = satisfied + mixed + unsatisfied
    segments, x = [], 0
    for value, css in ((satisfied, "satisfied"), (mixed, "mixed"), (unsatisfied, "unsatisfied")):
        if value:
            width = SATISFACTION_WIDTH * value / total
            segments.append(Segment(css, round(x, 1), round(width, 1)))
            x += width
    return segments
