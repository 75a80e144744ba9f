"""Inline SVG charts for the HTML reports, made here rather than by a plotting library.

Why not a library: the pages must be static and offline (no script, no external URL, a
``default-src 'none'`` policy), byte-identical for the same database, and ``vanta --help``
must stay fast. The candidates (matplotlib, plotly, pygal, bokeh) either pull in float
arithmetic whose last digits vary by platform and version, embed ids or timestamps, emit
JavaScript, or cost hundreds of milliseconds and tens of megabytes to import. What the
reports need is four shapes (lines, a shaded band, bars, markers) over a few hundred
points: a hundred lines of exact arithmetic.

Coordinates are computed with ``Decimal`` (never a float: money values go in as they are)
and printed with one decimal, so the same values always give the same bytes. Every chart
is a ``<figure>`` holding an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``, a
caption sentence and a small data table (``<details>``) as its text alternative. All text
is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from markupsafe import Markup, escape

from vanta_box.core.money import ZERO

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 86, 16, 14, 34
TENTH = Decimal("0.1")

Formatter = Callable[[Decimal], str]


@dataclass(frozen=True)
class Series:
    """One named series of values (``None``: no value at that point)."""

    name: str
    values: Sequence[Decimal | None]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A vertical mark at point ``index`` (a halt, say)."""

    index: int
    label: str
    color: str = "#b42318"


@dataclass
class Chart:
    chart_id: str
    title: str
    desc: str
    labels: Sequence[str]
    fmt: Formatter
    caption: str = ""
    extra_columns: dict[str, Sequence[str]] = field(default_factory=dict)


def _n(value: Decimal) -> str:
    """A coordinate: one decimal, half-up, no negative zero."""
    text = format(value.quantize(TENTH, rounding=ROUND_HALF_UP), "f")
    return "0.0" if text == "-0.0" else text


def nice_ticks(low: Decimal, high: Decimal, count: int = 5) -> list[Decimal]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) / 10 if high != 0 else Decimal(1)
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = Decimal(10) ** raw.adjusted()
    step = power * 10
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            step = power * factor
            break
    start = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    ticks: list[Decimal] = []
    value = start
    while value < high + step and len(ticks) < 12:
        ticks.append(value)
        value += step
    if ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


class _Frame:
    """Maps (index, value) to SVG coordinates for ``points`` points and a value range."""

    def __init__(self, points: int, low: Decimal, high: Decimal, slots: bool = False) -> None:
        self.ticks = nice_ticks(low, high)
        self.low, self.high = self.ticks[0], self.ticks[-1]
        self.points = max(points, 1)
        self.slots = slots  # bars: each point is the centre of a slot
        self.width = Decimal(WIDTH - LEFT - RIGHT)
        self.height = Decimal(HEIGHT - TOP - BOTTOM)

    def x(self, index: int) -> Decimal:
        if self.slots:
            return LEFT + self.width * (2 * index + 1) / (2 * self.points)
        if self.points == 1:
            return LEFT + self.width / 2
        return LEFT + self.width * index / (self.points - 1)

    def slot(self) -> Decimal:
        return self.width / self.points

    def y(self, value: Decimal) -> Decimal:
        span = self.high - self.low
        return TOP + self.height * (self.high - value) / span

    def axes(self, fmt: Formatter, labels: Sequence[str]) -> list[str]:
        out = []
        for tick in self.ticks:
            y = _n(self.y(tick))
            out.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" '
                       'stroke="#e4e7ec" stroke-width="1"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y}" text-anchor="end" '
                       f'dominant-baseline="middle">{escape(fmt(tick))}</text>')
        if labels:
            shown = (list(range(len(labels))) if self.slots and len(labels) <= 16 else
                     sorted({0, (len(labels) - 1) // 2, len(labels) - 1}))
            for i in shown:
                anchor = ("middle" if self.slots or 0 < i < len(labels) - 1 else
                          "start" if i == 0 else "end")
                out.append(f'<text x="{_n(self.x(i))}" y="{HEIGHT - 12}" '
                           f'text-anchor="{anchor}">{escape(labels[i])}</text>')
        if self.low < 0 < self.high:
            y = _n(self.y(ZERO))
            out.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" '
                       'stroke="#98a2b3" stroke-width="1"/>')
        return out


def _range(series: Sequence[Series], include_zero: bool) -> tuple[Decimal, Decimal]:
    values = [v for s in series for v in s.values if v is not None]
    if include_zero:
        values.append(ZERO)
    if not values:
        return ZERO, Decimal(1)
    return min(values), max(values)


def _path(frame: _Frame, values: Sequence[Decimal | None]) -> str:
    parts, pen = [], "M"
    for i, v in enumerate(values):
        if v is None:
            pen = "M"
            continue
        parts.append(f"{pen}{_n(frame.x(i))} {_n(frame.y(v))}")
        pen = "L"
    return " ".join(parts)


def _svg(chart: Chart, body: list[str], legend: list[tuple[str, str]]) -> str:
    cid = escape(chart.chart_id)
    keys = []
    x = LEFT
    for name, color in legend:
        keys.append(f'<rect x="{x}" y="1" width="10" height="10" fill="{color}"/>'
                    f'<text x="{x + 14}" y="10">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return (f'<svg class="chart" id="{cid}" role="img" viewBox="0 0 {WIDTH} {HEIGHT + 14}" '
            f'width="{WIDTH}" height="{HEIGHT + 14}" aria-labelledby="{cid}-t {cid}-d" '
            'xmlns="http://www.w3.org/2000/svg" font-size="11" '
            'font-family="DejaVu Sans, sans-serif" fill="#1d2430">'
            f'<title id="{cid}-t">{escape(chart.title)}</title>'
            f'<desc id="{cid}-d">{escape(chart.desc)}</desc>'
            f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT + 14}" fill="#ffffff"/>'
            f'<g transform="translate(0 14)">{"".join(body)}</g>'
            f'<g>{"".join(keys)}</g></svg>')


def _figure(chart: Chart, svg: str, series: Sequence[Series]) -> Markup:
    head = "".join(f"<th>{escape(s.name)}</th>" for s in series)
    head += "".join(f"<th>{escape(name)}</th>" for name in chart.extra_columns)
    rows = []
    for i, label in enumerate(chart.labels):
        cells = "".join(
            f'<td class="num">{escape(chart.fmt(v)) if (v := s.values[i]) is not None else "—"}'
            "</td>" for s in series)
        cells += "".join(f"<td>{escape(col[i])}</td>" for col in chart.extra_columns.values())
        rows.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    caption = chart.caption or chart.desc
    return Markup(
        f'<figure class="chart-box"><figcaption><strong>{escape(chart.title)}</strong> — '
        f"{escape(caption)}</figcaption>{svg}"
        f"<details><summary>data of this chart ({len(chart.labels)} points)</summary>"
        f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table></details></figure>")


def empty(chart_id: str, title: str, why: str) -> Markup:
    """A chart that has nothing to show yet: a sentence, no drawing."""
    return Markup(f'<figure class="chart-box" id="{escape(chart_id)}"><figcaption><strong>'
                  f"{escape(title)}</strong> — {escape(why)}</figcaption></figure>")


def line_chart(chart: Chart, series: Sequence[Series], *, band: tuple[int, int] | None = None,
               band_color: str = "#fee4e2", area: bool = False,
               markers: Sequence[Marker] = ()) -> Markup:
    """Lines over the points of ``chart.labels``; ``band`` shades between two series (the
    peak and the NAV: the drawdown), ``area`` fills the first series down to zero."""
    frame = _Frame(len(chart.labels), *_range(series, include_zero=area))
    body = frame.axes(chart.fmt, chart.labels)
    if band is not None:
        upper, lower = series[band[0]].values, series[band[1]].values
        for i in range(len(chart.labels) - 1):
            a, b, c, d = upper[i], upper[i + 1], lower[i], lower[i + 1]
            if a is None or b is None or c is None or d is None or (a == c and b == d):
                continue
            x0, x1 = _n(frame.x(i)), _n(frame.x(i + 1))
            body.append(f'<path d="M{x0} {_n(frame.y(a))} L{x1} {_n(frame.y(b))} '
                        f'L{x1} {_n(frame.y(d))} L{x0} {_n(frame.y(c))} Z" '
                        f'fill="{band_color}" stroke="none"/>')
    if area and series:
        points = [(i, v) for i, v in enumerate(series[0].values) if v is not None]
        if points:
            base = _n(frame.y(ZERO))
            line = " ".join(f"L{_n(frame.x(i))} {_n(frame.y(v))}" for i, v in points)
            body.append(f'<path d="M{_n(frame.x(points[0][0]))} {base} {line} '
                        f'L{_n(frame.x(points[-1][0]))} {base} Z" fill="{band_color}" '
                        'stroke="none"/>')
    for m in markers:
        x = _n(frame.x(m.index))
        body.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{HEIGHT - BOTTOM}" '
                    f'stroke="{m.color}" stroke-width="1.5" stroke-dasharray="3 2"/>'
                    f'<text x="{x}" y="{TOP + 10}" fill="{m.color}" text-anchor="middle">'
                    f"{escape(m.label)}</text>")
    for s in series:
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        path = _path(frame, s.values)
        if path:
            body.append(f'<path d="{path}" fill="none" stroke="{s.color}" '
                        f'stroke-width="2"{dash}/>')
        if len(s.values) == 1 and s.values[0] is not None:
            body.append(f'<circle cx="{_n(frame.x(0))}" cy="{_n(frame.y(s.values[0]))}" '
                        f'r="3" fill="{s.color}"/>')
    legend = [(s.name, s.color) for s in series]
    legend += [(m.label, m.color) for m in markers[:1]]
    return _figure(chart, _svg(chart, body, legend), series)


def bar_chart(chart: Chart, bars: Sequence[Series], line: Series | None = None) -> Markup:
    """Grouped bars per point (one per series of ``bars``), and optionally a line (a
    cumulative total) drawn over them on the same scale."""
    drawn = [*bars, *([line] if line is not None else [])]
    frame = _Frame(len(chart.labels), *_range(drawn, include_zero=True), slots=True)
    body = frame.axes(chart.fmt, chart.labels)
    slot = frame.slot()
    width = min(slot * Decimal("0.8") / max(len(bars), 1), Decimal(56))
    zero = frame.y(ZERO)
    for i in range(len(chart.labels)):
        left = frame.x(i) - width * len(bars) / 2
        for k, s in enumerate(bars):
            v = s.values[i]
            if v is None:
                continue
            y = frame.y(v)
            top, bottom = min(y, zero), max(y, zero)
            height = max(bottom - top, TENTH)
            body.append(f'<rect x="{_n(left + width * k)}" y="{_n(top)}" '
                        f'width="{_n(width)}" height="{_n(height)}" fill="{s.color}"/>')
    if line is not None:
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        body.append(f'<path d="{_path(frame, line.values)}" fill="none" '
                    f'stroke="{line.color}" stroke-width="2"{dash}/>')
        for i, v in enumerate(line.values):
            if v is not None:
                body.append(f'<circle cx="{_n(frame.x(i))}" cy="{_n(frame.y(v))}" r="2.5" '
                            f'fill="{line.color}"/>')
    return _figure(chart, _svg(chart, body, [(s.name, s.color) for s in drawn]), drawn)
