"""The chaos report's timeline: load, errors and latency over time, with the faults on top.

Theory of operation: three panels share one time axis, so a dip in completions, a burst of
errors and a latency spike line up under the fault band that caused them. Drawing is split
into pure steps a test can check one by one: `downsample` bounds the number of points,
`Scale` maps seconds and values to pixels, `nice_ticks` picks axis labels, and the `svg_*`
functions only format strings. Nothing here reads files or clocks.

Every string that came from the run (fault kinds, targets) is escaped with `html.escape`,
because the SVG is inlined into an HTML page and a target may contain '<' or '&'.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from raftflow.chaos.outcome import FaultWindow, TimeBucket

# A 10-minute run at 1-s buckets is 600 points; an hour would be 3,600 per series and still
# nothing a reader can tell apart at this width. Past this bound buckets are merged.
POINTS_MAX = 1_200

WIDTH_PX = 960
PANEL_HEIGHT_PX = 130
PANEL_GAP_PX = 34
MARGIN_LEFT_PX = 64
MARGIN_RIGHT_PX = 16
# Room above the first panel for staggered fault labels, which overlap when faults are close.
LABEL_ROWS = 3
LABEL_ROW_HEIGHT_PX = 13
MARGIN_TOP_PX = 12 + LABEL_ROWS * LABEL_ROW_HEIGHT_PX
MARGIN_BOTTOM_PX = 34
LABEL_RIGHT_ROOM_PX = 180
TICKS_TARGET = 6

# One color per fault kind (faults.FAULT_KINDS); a kind added later falls back to grey
# rather than failing the report of a run that already happened.
FAULT_COLORS: dict[str, str] = {
    "kill": "#d62728", "pause": "#9467bd", "partition": "#ff7f0e", "latency": "#bcbd22",
    "loss": "#8c564b", "restart-all": "#e377c2", "clock-skew": "#17becf", "leader": "#2ca02c",
    "join": "#1f77b4", "drain": "#aec7e8", "remove": "#393b79", "replace": "#843c39",
}
FAULT_COLOR_UNKNOWN = "#7f7f7f"
SERIES_COLORS: dict[str, str] = {
    "starts/s": "#1f77b4", "completions/s": "#2ca02c", "errors/s": "#d62728",
    "p50 ms": "#1f77b4", "p99 ms": "#ff7f0e",
}


@dataclass(frozen=True, slots=True)
class Scale:
    """A linear map from a data domain onto a pixel range, clamped to the range.

    `px_lo` is where `lo` lands; for a y axis pass the panel's bottom as `px_lo` so larger
    values are drawn higher. Clamping keeps a fault that outlasts the axis inside the panel.
    """

    lo: float
    hi: float
    px_lo: float
    px_hi: float

    @staticmethod
    def of(lo: float, hi: float, px_lo: float, px_hi: float) -> Scale:
        """Build a scale; an empty or single-value domain is widened to one unit so that no
        input (no buckets, one bucket, all zeros) divides by zero."""
        assert all(math.isfinite(x) for x in (lo, hi, px_lo, px_hi)), (lo, hi, px_lo, px_hi)
        if hi <= lo:
            hi = lo + 1.0
        return Scale(lo, hi, px_lo, px_hi)

    def to_px(self, value: float) -> float:
        assert self.hi > self.lo, (self.lo, self.hi)
        assert math.isfinite(value), value
        fraction = min(1.0, max(0.0, (value - self.lo) / (self.hi - self.lo)))
        return self.px_lo + fraction * (self.px_hi - self.px_lo)


def nice_ticks(lo: float, hi: float, count: int = TICKS_TARGET) -> tuple[float, ...]:
    """About `count` round tick values (steps of 1, 2 or 5 x 10^k) covering [lo, hi].

    The last tick is >= hi, so using it as the axis maximum keeps the top label on the axis.
    """
    assert count >= 1, count
    if hi <= lo:
        hi = lo + 1.0
    raw_step = (hi - lo) / count
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw_step)
    first = math.floor(lo / step)
    last = math.ceil(hi / step)
    ticks = tuple(round(i * step, 10) for i in range(first, last + 1))
    # Rounding away float noise (0.30000000000000004) may move an end tick by a hair.
    slack = step * 1e-6
    assert ticks[0] <= lo + slack and ticks[-1] >= hi - slack, (ticks, lo, hi)
    return ticks


def format_tick(value: float) -> str:
    return f"{value:g}"


def downsample(buckets: Sequence[TimeBucket], points_max: int = POINTS_MAX) -> tuple[TimeBucket, ...]:
    """Merge runs of consecutive buckets so at most `points_max` remain.

    Counts are summed over the merged width, so rates stay exact. Percentiles cannot be merged
    exactly: p50 becomes the median of the parts' p50s and p99 the maximum of their p99s, so
    the tail line may overstate a spike but never hides one.
    """
    assert points_max >= 1, points_max
    if len(buckets) <= points_max:
        return tuple(buckets)
    group = math.ceil(len(buckets) / points_max)
    merged = tuple(merge_buckets(buckets[i:i + group]) for i in range(0, len(buckets), group))
    assert len(merged) <= points_max, (len(merged), points_max)
    return merged


def merge_buckets(parts: Sequence[TimeBucket]) -> TimeBucket:
    assert parts, "nothing to merge"
    p50s = [b.latency_p50_ms for b in parts if b.latency_p50_ms is not None]
    p99s = [b.latency_p99_ms for b in parts if b.latency_p99_ms is not None]
    first, last = parts[0], parts[-1]
    return TimeBucket(
        start_s=first.start_s, width_s=last.start_s + last.width_s - first.start_s,
        starts=sum(b.starts for b in parts), completions=sum(b.completions for b in parts),
        errors=sum(b.errors for b in parts),
        latency_p50_ms=statistics.median(p50s) if p50s else None,
        latency_p99_ms=max(p99s) if p99s else None,
    )


Point = tuple[float, float | None]  # (seconds, value); None is a gap in the line


def rate(count: int, width_s: float) -> float:
    # A zero-width bucket cannot have a rate; drawing 0 is better than failing the report.
    return count / width_s if width_s > 0 else 0.0


def bucket_mid_s(bucket: TimeBucket) -> float:
    return bucket.start_s + bucket.width_s / 2


def time_extent(buckets: Sequence[TimeBucket], faults: Sequence[FaultWindow],
                duration_s: float) -> tuple[float, float]:
    """The time axis covers the requested duration, every bucket and every fault."""
    ends = [duration_s, *(b.start_s + b.width_s for b in buckets),
            *(f.end_s if f.end_s is not None else f.start_s for f in faults)]
    starts = [0.0, *(b.start_s for b in buckets), *(f.start_s for f in faults)]
    return min(starts), max(ends)


def segments(points: Iterable[Point]) -> list[list[tuple[float, float]]]:
    """Split a series at its gaps (None or non-finite values) into drawable runs."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, value in points:
        if value is None or not math.isfinite(value):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((t, value))
    return [run for run in runs if run]


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    series: dict[str, tuple[Point, ...]]


def panels_of(buckets: Sequence[TimeBucket]) -> tuple[Panel, ...]:
    throughput = Panel("throughput", {
        "starts/s": tuple((bucket_mid_s(b), rate(b.starts, b.width_s)) for b in buckets),
        "completions/s": tuple((bucket_mid_s(b), rate(b.completions, b.width_s)) for b in buckets),
    })
    errors = Panel("error rate", {
        "errors/s": tuple((bucket_mid_s(b), rate(b.errors, b.width_s)) for b in buckets),
    })
    latency = Panel("latency", {
        "p50 ms": tuple((bucket_mid_s(b), b.latency_p50_ms) for b in buckets),
        "p99 ms": tuple((bucket_mid_s(b), b.latency_p99_ms) for b in buckets),
    })
    return throughput, errors, latency


def fault_color(kind: str) -> str:
    return FAULT_COLORS.get(kind, FAULT_COLOR_UNKNOWN)


def css_token(kind: str) -> str:
    """A fault kind made safe for a class attribute."""
    return re.sub(r"[^a-z0-9-]", "-", kind.lower())


def svg_height_px(panel_count: int) -> float:
    return MARGIN_TOP_PX + panel_count * PANEL_HEIGHT_PX + (panel_count - 1) * PANEL_GAP_PX \
        + MARGIN_BOTTOM_PX


def render_timeline(buckets: Sequence[TimeBucket], faults: Sequence[FaultWindow],
                    duration_s: float) -> str:
    """The whole timeline as one `<svg>` element (no scripts, no external references)."""
    drawn = downsample(buckets)
    panels = panels_of(drawn)
    t_lo, t_hi = time_extent(drawn, faults, duration_s)
    t_ticks = nice_ticks(t_lo, t_hi)
    x = Scale.of(t_ticks[0], t_ticks[-1], MARGIN_LEFT_PX, WIDTH_PX - MARGIN_RIGHT_PX)
    height = svg_height_px(len(panels))
    top, bottom = MARGIN_TOP_PX, height - MARGIN_BOTTOM_PX
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH_PX}" '
             f'height="{height:.0f}" viewBox="0 0 {WIDTH_PX} {height:.0f}" '
             f'font-family="sans-serif" font-size="11">']
    for index, panel in enumerate(panels):
        panel_top = top + index * (PANEL_HEIGHT_PX + PANEL_GAP_PX)
        parts.append(svg_panel(panel, x, panel_top, t_ticks, with_time_labels=index == len(panels) - 1))
    parts.extend(svg_fault(fault, index, x, top, bottom) for index, fault in enumerate(faults))
    parts.append(f'<text x="{(x.px_lo + x.px_hi) / 2:.1f}" y="{height - 4:.1f}" '
                 'text-anchor="middle">seconds since start</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def svg_panel(panel: Panel, x: Scale, panel_top: float, t_ticks: Sequence[float],
              *, with_time_labels: bool) -> str:
    panel_bottom = panel_top + PANEL_HEIGHT_PX
    values = [v for points in panel.series.values() for _, v in points
              if v is not None and math.isfinite(v)]
    v_ticks = nice_ticks(0.0, max(values, default=0.0), count=4)
    y = Scale.of(0.0, v_ticks[-1], panel_bottom, panel_top)
    parts = [f'<g class="panel" data-panel="{escape(panel.title)}">',
             f'<rect x="{x.px_lo:.1f}" y="{panel_top:.1f}" width="{x.px_hi - x.px_lo:.1f}" '
             f'height="{PANEL_HEIGHT_PX}" fill="#fafafa" stroke="#ccc" />']
    for tick in v_ticks:
        py = y.to_px(tick)
        parts.append(f'<line x1="{x.px_lo:.1f}" y1="{py:.1f}" x2="{x.px_hi:.1f}" y2="{py:.1f}" '
                     'stroke="#e4e4e4" />')
        parts.append(f'<text x="{x.px_lo - 4:.1f}" y="{py + 4:.1f}" text-anchor="end">'
                     f'{format_tick(tick)}</text>')
    for tick in t_ticks:
        px = x.to_px(tick)
        parts.append(f'<line x1="{px:.1f}" y1="{panel_bottom:.1f}" x2="{px:.1f}" '
                     f'y2="{panel_bottom + 4:.1f}" stroke="#888" />')
        if with_time_labels:
            parts.append(f'<text x="{px:.1f}" y="{panel_bottom + 16:.1f}" text-anchor="middle">'
                         f'{format_tick(tick)}</text>')
    legend_x = x.px_lo
    parts.append(f'<text x="{legend_x:.1f}" y="{panel_top - 4:.1f}" font-weight="bold">'
                 f'{escape(panel.title)}</text>')
    for offset, (name, points) in enumerate(panel.series.items()):
        color = SERIES_COLORS.get(name, "#333")
        lx = legend_x + 90 + offset * 110
        parts.append(f'<line x1="{lx:.1f}" y1="{panel_top - 8:.1f}" x2="{lx + 16:.1f}" '
                     f'y2="{panel_top - 8:.1f}" stroke="{color}" stroke-width="2" />')
        parts.append(f'<text x="{lx + 20:.1f}" y="{panel_top - 4:.1f}">{escape(name)}</text>')
        parts.extend(svg_series(name, points, x, y, color))
    parts.append("</g>")
    return "\n".join(parts)


def svg_series(name: str, points: Sequence[Point], x: Scale, y: Scale, color: str) -> list[str]:
    """One polyline per gap-free run; a lone point between gaps becomes a dot, since a
    one-point polyline draws nothing."""
    shapes: list[str] = []
    for run in segments(points):
        if len(run) == 1:
            (t, v), = run
            shapes.append(f'<circle class="series" data-series="{escape(name)}" '
                          f'cx="{x.to_px(t):.1f}" cy="{y.to_px(v):.1f}" r="2" fill="{color}" />')
            continue
        coords = " ".join(f"{x.to_px(t):.1f},{y.to_px(v):.1f}" for t, v in run)
        shapes.append(f'<polyline class="series" data-series="{escape(name)}" fill="none" '
                      f'stroke="{color}" stroke-width="1.5" points="{coords}" />')
    return shapes


def svg_fault(fault: FaultWindow, index: int, x: Scale, top: float, bottom: float) -> str:
    """A band across every panel for a fault with an end, a vertical line for one without."""
    color = fault_color(fault.kind)
    kind_class = f"fault-{css_token(fault.kind)}"
    label = escape(f"{fault.kind} {fault.target}")
    x0 = x.to_px(fault.start_s)
    tooltip = f"<title>{label}: {escape(fault.detail)}</title>"
    if fault.end_s is None:
        shape = (f'<line class="fault-instant {kind_class}" x1="{x0:.1f}" y1="{top:.1f}" '
                 f'x2="{x0:.1f}" y2="{bottom:.1f}" stroke="{color}" stroke-width="2" '
                 f'stroke-dasharray="4 3">{tooltip}</line>')
    else:
        # A fault healed within the same pixel still gets a visible sliver.
        width = max(1.0, x.to_px(fault.end_s) - x0)
        shape = (f'<rect class="fault-band {kind_class}" x="{x0:.1f}" y="{top:.1f}" '
                 f'width="{width:.1f}" height="{bottom - top:.1f}" fill="{color}" '
                 f'fill-opacity="0.18" stroke="{color}" stroke-opacity="0.5">{tooltip}</rect>')
    label_y = 10 + (index % LABEL_ROWS) * LABEL_ROW_HEIGHT_PX
    # Near the right edge the label would be clipped, so it ends at the fault instead.
    near_edge = x0 > x.px_hi - LABEL_RIGHT_ROOM_PX
    anchor, label_x = ("end", x0 - 2) if near_edge else ("start", x0 + 2)
    text = (f'<text class="fault-label" x="{label_x:.1f}" y="{label_y:.1f}" '
            f'text-anchor="{anchor}" fill="{color}">{label}</text>')
    return f"{shape}\n{text}"


def svg_fault_legend(kinds: Sequence[str]) -> str:
    """A small SVG strip with one swatch per fault kind, for the page's legend."""
    step_px = 120
    width = max(step_px, step_px * len(kinds))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="fault-legend" width="{width}" '
             'height="20" font-family="sans-serif" font-size="12">']
    for i, kind in enumerate(kinds):
        color = fault_color(kind)
        parts.append(f'<rect class="legend-swatch" x="{i * step_px}" y="4" width="14" '
                     f'height="12" fill="{color}" fill-opacity="0.5" stroke="{color}" />')
        parts.append(f'<text x="{i * step_px + 18}" y="15">{escape(kind)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
