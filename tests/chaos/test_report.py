"""Goal: the chaos report shows what happened truthfully and safely: report.json keeps every
field, the HTML page is well-formed, draws one band per healed fault and one line per
instantaneous fault over a bounded number of points, gives the right verdict, and never lets
run-derived text ('<script>' in a violation detail) through unescaped.

Method: a `ChaosOutcome` built by hand (a few buckets, three faults of different kinds, one
without an end, one failing invariant, one hostile violation detail) is rendered; the page is
parsed with the stdlib `HTMLParser` into a flat element list that the tests query by tag and
class. The pure scale, tick and downsampling functions are tested on their edge cases.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from raftflow.chaos.observations import Violation
from raftflow.chaos.outcome import ChaosOutcome, FaultWindow, InvariantRow, TimeBucket
from raftflow.chaos.report import outcome_json, render_html, write_report
from raftflow.chaos.svg_timeline import (
    POINTS_MAX,
    Scale,
    downsample,
    nice_ticks,
    render_timeline,
    segments,
)

VOID_TAGS = frozenset({"meta", "br", "hr", "img", "input", "link"})
SUMMARY_KEYS = {"seed", "duration_s", "faults_injected", "workflows_started",
                "workflows_completed", "violations"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class TreeParser(HTMLParser):
    """Flattens a document into elements (with their own text) and records nesting errors."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1].tag != tag:
            open_tag = self.stack[-1].tag if self.stack else None
            self.errors.append(f"</{tag}> closes <{open_tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.stack[-1].text.append(data)


def parse(document: str) -> TreeParser:
    parser = TreeParser()
    parser.feed(document)
    parser.close()
    assert parser.errors == []
    assert [e.tag for e in parser.stack] == [], "unclosed elements"
    return parser


def with_class(parser: TreeParser, name: str) -> list[Element]:
    return [e for e in parser.elements if name in e.classes]


def bucket(start_s: float, starts: int, completions: int, errors: int,
           p50: float | None, p99: float | None) -> TimeBucket:
    return TimeBucket(start_s=start_s, width_s=1.0, starts=starts, completions=completions,
                      errors=errors, latency_p50_ms=p50, latency_p99_ms=p99)


FAULTS = (
    FaultWindow(kind="kill", target="node-2", start_s=1.0, end_s=3.0,
                detail="SIGKILL, restarted after 2.0 s", recovered_after_s=1.4),
    FaultWindow(kind="partition", target="node-1|node-2,node-3 & <odd>", start_s=2.5,
                end_s=4.5, detail="split", recovered_after_s=None),
    FaultWindow(kind="leader", target="shard 0 -> node-3", start_s=5.0, end_s=None,
                detail="transfer", recovered_after_s=0.3),
)
INVARIANTS = (
    InvariantRow(name="acked-start-completes", description="every acked start completes",
                 violations=0),
    InvariantRow(name="digests-agree", description="replicas agree at equal index",
                 violations=1),
)
VIOLATION = Violation(invariant="digests-agree", subject="shard 3",
                      detail="expected abc, saw <script>alert(1)</script> & more")
OUTCOME = ChaosOutcome(
    seed=42, duration_s=6.0, nodes=3, fault_kinds=("kill", "partition", "leader"),
    command="raftflow chaos run --seed 42 --faults kill,partition,leader",
    faults=FAULTS,
    buckets=(bucket(0, 5, 4, 0, 12.0, 30.0), bucket(1, 3, 1, 2, 40.0, 250.0),
             bucket(2, 0, 0, 7, None, None), bucket(3, 2, 3, 1, 20.0, 90.0),
             bucket(4, 6, 6, 0, 11.0, 25.0), bucket(5, 5, 5, 0, 10.0, 22.0)),
    invariants=INVARIANTS, violations=(VIOLATION,),
    workflows_started=21, workflows_completed=19, recovery_p50_s=0.8, recovery_p99_s=1.4,
)
PASSING = replace(OUTCOME, violations=(),
                  invariants=tuple(replace(r, violations=0) for r in INVARIANTS))


def test_report_json_round_trips_and_keeps_every_field_and_the_summary() -> None:
    data = outcome_json(OUTCOME)
    assert json.loads(json.dumps(data, indent=2, sort_keys=True)) == data
    assert set(data) == {f.name for f in dataclasses.fields(ChaosOutcome)} | {"summary"}
    summary = data["summary"]
    assert isinstance(summary, dict)
    assert set(summary) == SUMMARY_KEYS
    assert summary["faults_injected"] == 3
    assert summary["violations"] == [VIOLATION.to_json()]
    assert data["violations"] == [VIOLATION.to_json()]
    assert data["faults"] == [dataclasses.asdict(f) for f in FAULTS]
    assert data["buckets"][2] == dataclasses.asdict(OUTCOME.buckets[2])  # type: ignore[index]
    assert data["fault_kinds"] == ["kill", "partition", "leader"]


def test_write_report_creates_the_directory_and_writes_both_files(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "report"
    html_path, json_path = write_report(OUTCOME, directory)
    assert (html_path, json_path) == (directory / "report.html", directory / "report.json")
    assert json.loads(json_path.read_text()) == outcome_json(OUTCOME)
    assert html_path.read_text(encoding="utf-8") == render_html(OUTCOME)
    assert sorted(p.name for p in directory.iterdir()) == ["report.html", "report.json"]
    write_report(PASSING, directory)  # replacing existing files works too
    assert json.loads(json_path.read_text())["violations"] == []


def test_html_is_well_formed_with_svg_and_tables() -> None:
    parser = parse(render_html(OUTCOME))
    tags = [e.tag for e in parser.elements]
    assert tags.count("svg") >= 1
    assert tags.count("table") == 2
    assert "script" not in tags
    assert not any(e.attrs.get(k, "").startswith("http") for e in parser.elements
                   for k in ("src", "href"))


def test_every_fault_is_drawn_as_a_band_or_an_instant_line() -> None:
    parser = parse(render_html(OUTCOME))
    bands = with_class(parser, "fault-band")
    instants = with_class(parser, "fault-instant")
    assert [e.tag for e in bands] == ["rect", "rect"]
    assert [e.tag for e in instants] == ["line"]
    assert "fault-kill" in bands[0].classes and "fault-partition" in bands[1].classes
    assert "fault-leader" in instants[0].classes
    # Both bands share one time axis: kill (1 s -> 3 s) starts left of partition (2.5 s)
    # and, lasting as long, is as wide.
    assert float(bands[0].attrs["x"]) < float(bands[1].attrs["x"])
    assert bands[0].attrs["width"] == bands[1].attrs["width"]
    assert float(bands[0].attrs["height"]) > 3 * 100  # spans all three panels


def test_fault_labels_and_legend_name_each_kind() -> None:
    parser = parse(render_html(OUTCOME))
    labels = ["".join(e.text) for e in with_class(parser, "fault-label")]
    assert labels == ["kill node-2", "partition node-1|node-2,node-3 & <odd>",
                      "leader shard 0 -> node-3"]
    assert legend_kinds(parser) == ["kill", "partition", "leader"]
    # A kind injected without being requested still gets a legend entry, after the requested.
    only_leader = parse(render_html(replace(OUTCOME, fault_kinds=("leader", "pause"))))
    assert legend_kinds(only_leader) == ["leader", "pause", "kill", "partition"]


def legend_kinds(parser: TreeParser) -> list[str]:
    legend = next(e for e in parser.elements if "fault-legend" in e.classes)
    swatches = parser.elements[parser.elements.index(legend):]
    kinds: list[str] = []
    for element in swatches:
        if element.tag == "svg" and element is not legend:
            break
        if element.tag == "text":
            kinds.extend(element.text)
    return kinds


def test_tables_list_faults_and_invariants_with_status() -> None:
    parser = parse(render_html(OUTCOME))
    fault_rows = with_class(parser, "fault-row")
    assert len(fault_rows) == 3
    rows = with_class(parser, "invariant-row")
    assert len(rows) == 2
    cells = [e for e in parser.elements if e.tag == "td"]
    names = ["".join(c.text) for c in cells]
    assert "acked-start-completes" in names and "digests-agree" in names
    statuses = ["".join(e.text) for e in with_class(parser, "status")]
    assert statuses == ["OK", "FAIL"]


@pytest.mark.parametrize(("outcome", "verdict"), [(OUTCOME, "FAIL"), (PASSING, "PASS")])
def test_verdict_follows_violations(outcome: ChaosOutcome, verdict: str) -> None:
    parser = parse(render_html(outcome))
    verdicts = ["".join(e.text) for e in with_class(parser, "verdict")]
    assert verdicts == [verdict]
    listed = with_class(parser, "violation")
    assert len(listed) == len(outcome.violations)
    assert bool(with_class(parser, "no-violations")) is (not outcome.violations)


def test_run_derived_text_is_escaped() -> None:
    page = render_html(OUTCOME)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "<odd>" not in page and "&lt;odd&gt;" in page


def test_scale_maps_ends_and_survives_degenerate_domains() -> None:
    y = Scale.of(0.0, 100.0, 200.0, 100.0)  # y axis: larger values are higher (smaller px)
    assert (y.to_px(0.0), y.to_px(50.0), y.to_px(100.0)) == (200.0, 150.0, 100.0)
    assert y.to_px(1e9) == 100.0 and y.to_px(-5.0) == 200.0  # clamped into the panel
    for lo, hi in [(0.0, 0.0), (7.0, 7.0), (3.0, 1.0)]:  # all zeros, one point, inverted
        scale = Scale.of(lo, hi, 10.0, 110.0)
        assert scale.to_px(lo) == 10.0
        assert 10.0 <= scale.to_px(hi) <= 110.0
    with pytest.raises(AssertionError):
        Scale.of(0.0, 1.0, 0.0, 10.0).to_px(math.nan)


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0.0, 600.0) == (0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0)
    assert nice_ticks(0.0, 0.0, count=4) == (0.0, 0.5, 1.0)  # all zeros: a unit axis
    assert nice_ticks(0.0, 0.6, count=3) == (0.0, 0.2, 0.4, 0.6)  # no 0.6000000000000001
    ticks = nice_ticks(0.0, 7.3, count=4)
    assert ticks[0] == 0.0 and ticks[-1] >= 7.3 and len(ticks) <= 6


@pytest.mark.parametrize("buckets", [
    (),
    (bucket(0, 1, 1, 0, 5.0, 9.0),),
    tuple(bucket(i, 0, 0, 0, None, None) for i in range(5)),
], ids=["empty", "single", "all-zero-no-latency"])
def test_timeline_draws_degenerate_inputs(buckets: tuple[TimeBucket, ...]) -> None:
    svg = render_timeline(buckets, FAULTS, duration_s=0.0)
    parse(svg)
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    assert svg.count('class="fault-band') == 2


def test_latency_gaps_split_the_line() -> None:
    runs = segments([(0.0, 1.0), (1.0, None), (2.0, 3.0), (3.0, 4.0), (4.0, math.nan)])
    assert runs == [[(0.0, 1.0)], [(2.0, 3.0), (3.0, 4.0)]]
    parser = parse(render_timeline(OUTCOME.buckets, (), OUTCOME.duration_s))
    p99 = [e for e in with_class(parser, "series") if e.attrs.get("data-series") == "p99 ms"]
    assert [e.tag for e in p99] == ["polyline", "polyline"]  # bucket 2 had no completions


def test_downsampling_bounds_points_and_keeps_totals() -> None:
    many = tuple(bucket(i, i % 7, i % 5, i % 3, float(i % 11), float(i % 13 * 10))
                 for i in range(5_000))
    merged = downsample(many)
    assert len(merged) <= POINTS_MAX
    assert sum(b.starts for b in merged) == sum(b.starts for b in many)
    assert sum(b.errors for b in merged) == sum(b.errors for b in many)
    assert merged[0].start_s == 0.0
    assert merged[-1].start_s + merged[-1].width_s == 5_000.0
    assert max(b.latency_p99_ms or 0.0 for b in merged) == 120.0  # the spike survives
    assert downsample(many[:POINTS_MAX]) == many[:POINTS_MAX]
    parser = parse(render_timeline(many, FAULTS, 5_000.0))
    for line in with_class(parser, "series"):
        assert len(line.attrs.get("points", "").split()) <= POINTS_MAX


def test_a_label_near_the_right_edge_ends_at_its_fault() -> None:
    late = FaultWindow(kind="pause", target="node-1", start_s=5.9, end_s=6.0, detail="SIGSTOP",
                       recovered_after_s=None)
    parser = parse(render_timeline(OUTCOME.buckets, (FAULTS[0], late), OUTCOME.duration_s))
    anchors = [e.attrs["text-anchor"] for e in with_class(parser, "fault-label")]
    assert anchors == ["start", "end"]
