"""When a schedule's actions are due: nominal times, jitter and action workflow ids. Pure.

Theory of operation. A spec's nominal times are the union of its interval times and its cron
times, within [start_at_ms, end_at_ms], minus the times a `skip` expression matches. Interval
times are `offset + k * every` since the epoch, in UTC (Temporal's definition). Cron times are
wall-clock times in a time zone; an action is due at its nominal time plus a jitter.

Time zones and DST. A wall-clock time is turned into an instant the way Python reads a naive
time with `fold=0`, one rule for every zone:
- a wall time that happens twice (clocks go back) fires once, at its first occurrence
  (01:30 on the fall-back night in New York is 05:30Z, never also 06:30Z);
- a wall time that never happens (clocks go forward) fires at the instant that wall time would
  have had with the offset in force before the change, i.e. shifted forward by the gap (02:30 on
  the spring-forward night in New York fires at 03:30 EDT). A daily 02:30 job still runs that
  day, once; a time that lands on one another expression also gives is taken once.
`skip` expressions are matched on the local wall time of the instant.
The search walks the zone's stretches of constant UTC offset (found by probing the offset every
`_PROBE_S` seconds and bisecting to the second), so it costs a few offset lookups, not a scan.

Determinism. Everything here is a function of its arguments: no clock, no IO. Time zone rules
arrive as `tzinfo` values the caller resolved (`compile_spec(spec, zone_of)`), because they come
from the node's time zone database, and two nodes may hold different versions. So the shard
core never resolves a zone while applying a command: the leader's shell computes the times
(`schedule_catchup.due_times`) and proposes them inside the command, as it proposes `now_ms`;
replicas apply the numbers. A leader change to a node with other zone data can at worst move a
future time, never make replicas disagree, and action ids (the nominal time) plus the
processed-through cursor keep an action from running twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timezone, tzinfo

from raftflow.protocol.rfc3339 import DATETIME_MS_MAX
from raftflow.protocol.schedule_calendars import calendar_expression
from raftflow.protocol.schedule_cron import CronExpression, next_wall_match, parse_cron
from raftflow.protocol.schedules import IntervalSpec, ScheduleSpec
from raftflow.shards.core.limits import SCHEDULE_SEARCH_HORIZON_MS, SCHEDULE_SKIPPED_TIMES_MAX

# Offsets are probed this far apart: no zone has two offset changes within 6 hours.
_PROBE_S = 6 * 3_600
# Looking back this far from a search's start finds a change whose repeated or skipped wall
# times still reach past the start (the largest change ever made was a day: Samoa, 2011).
_LOOKBACK_S = 26 * 3_600
_MAX_S = DATETIME_MS_MAX // 1000 - _LOOKBACK_S


@dataclass(frozen=True, slots=True)
class ZonedCron:
    expression: CronExpression
    zone: tzinfo


@dataclass(frozen=True, slots=True)
class CompiledSpec:
    """A spec with its expressions parsed and its zones resolved, ready to search."""

    crons: tuple[ZonedCron, ...]
    skips: tuple[ZonedCron, ...]
    intervals: tuple[IntervalSpec, ...]
    start_at_ms: int | None
    end_at_ms: int | None
    jitter_ms: int


def compile_spec(spec: ScheduleSpec, zone_of: Callable[[str], tzinfo]) -> CompiledSpec:
    """`spec`, parsed (calendars become cron matchers). `zone_of(name)` resolves a non-empty IANA zone name (the shell passes
    `zoneinfo.ZoneInfo`); "" is UTC. The spec must have passed `schedules.schedule_problem`."""
    def zoned(text: str) -> ZonedCron:
        expression = parse_cron(text)
        if not expression.time_zone_name:
            return ZonedCron(expression, spec_zone)
        return ZonedCron(expression, zone_of(expression.time_zone_name))
    spec_zone = zone_of(spec.time_zone_name) if spec.time_zone_name else UTC
    calendars = tuple(ZonedCron(calendar_expression(c), spec_zone) for c in spec.calendars)
    skip_calendars = tuple(ZonedCron(calendar_expression(c), spec_zone)
                           for c in spec.skip_calendars)
    compiled = CompiledSpec(
        crons=calendars + tuple(zoned(t) for t in spec.cron_expressions),
        skips=skip_calendars + tuple(zoned(t) for t in spec.skip), intervals=spec.intervals,
        start_at_ms=spec.start_at_ms, end_at_ms=spec.end_at_ms, jitter_ms=spec.jitter_ms)
    assert compiled.crons or compiled.intervals, "a spec without times passed validation"
    return compiled


def next_nominal_after(spec: CompiledSpec, t_ms: int) -> int | None:
    """The first nominal time strictly after `t_ms` (ms since the epoch), or None if there is
    none within SCHEDULE_SEARCH_HORIZON_MS (or SCHEDULE_SKIPPED_TIMES_MAX skipped times)."""
    lower = t_ms
    if spec.start_at_ms is not None and lower < spec.start_at_ms:
        lower = spec.start_at_ms - 1
    until_ms = min(lower + SCHEDULE_SEARCH_HORIZON_MS, _MAX_S * 1000)
    if spec.end_at_ms is not None:
        until_ms = min(until_ms, spec.end_at_ms)
    for _ in range(SCHEDULE_SKIPPED_TIMES_MAX):
        if lower >= until_ms:
            return None
        found = _first_of_union(spec, lower, until_ms)
        if found is None:
            return None
        assert lower < found <= until_ms, (lower, found, until_ms)
        if not any(_wall_matches(skip, found) for skip in spec.skips):
            return found
        lower = found
    return None


def next_nominal_times(spec: CompiledSpec, after_ms: int, limit: int) -> tuple[int, ...]:
    """Up to `limit` nominal times strictly after `after_ms`, ascending (describe's
    `next_action_times`)."""
    times: list[int] = []
    cursor = after_ms
    while len(times) < limit:
        found = next_nominal_after(spec, cursor)
        if found is None:
            break
        times.append(found)
        cursor = found
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    return tuple(times)


def jitter_offset_ms(schedule_id: str, nominal_ms: int, jitter_ms: int,
                     next_nominal_ms: int | None) -> int:
    """How long after `nominal_ms` its action is due: in [0, jitter_ms), and always before the
    next nominal time, so actions keep their order. A hash of (schedule id, nominal time)
    (SHA-256, not `hash()`, which differs per process): every replica and every leader computes
    the same delay, and schedules sharing a cron spread out instead of firing together."""
    cap = jitter_ms if next_nominal_ms is None else min(jitter_ms, next_nominal_ms - nominal_ms)
    if cap <= 1:
        return 0
    digest = hashlib.sha256(f"{schedule_id}\x00{nominal_ms}".encode()).digest()
    offset = int.from_bytes(digest[:8], "big") % cap
    assert 0 <= offset < cap
    return offset


def actual_time_ms(spec: CompiledSpec, schedule_id: str, nominal_ms: int) -> int:
    """When the action of `nominal_ms` is due: the nominal time plus its jitter."""
    if spec.jitter_ms == 0:
        return nominal_ms
    following = next_nominal_after(spec, nominal_ms)
    return nominal_ms + jitter_offset_ms(schedule_id, nominal_ms, spec.jitter_ms, following)


def action_workflow_id(workflow_id_prefix: str, nominal_ms: int) -> str:
    """The workflow id of the action of `nominal_ms`: the prefix, '-', the nominal time in
    RFC 3339, UTC (`orders-2026-12-07T05:00:00Z`), as Temporal names them; milliseconds are
    written only when not zero (a trigger-now at an arbitrary instant). One id per nominal time:
    a second start of the same action is refused as a duplicate (DESIGN §4 I5)."""
    moment = datetime.fromtimestamp(nominal_ms // 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nominal_ms % 1000:
        text += f".{nominal_ms % 1000:03d}"
    return f"{workflow_id_prefix}-{text}Z"


# --- The union of sources -------------------------------------------------------------------------


def _first_of_union(spec: CompiledSpec, lower_ms: int, until_ms: int) -> int | None:
    candidates = [_interval_after(interval, lower_ms) for interval in spec.intervals]
    for cron in spec.crons:
        found_s = _cron_after(cron, lower_ms // 1000 + 1, until_ms // 1000)
        if found_s is not None:
            candidates.append(found_s * 1000)
    best = min((c for c in candidates if c <= until_ms), default=None)
    assert best is None or best > lower_ms
    return best


def _interval_after(interval: IntervalSpec, t_ms: int) -> int:
    steps = (t_ms - interval.offset_ms) // interval.every_ms + 1
    found = interval.offset_ms + steps * interval.every_ms
    assert t_ms < found <= t_ms + interval.every_ms
    return found


def _wall_matches(cron: ZonedCron, instant_ms: int) -> bool:
    wall = datetime.fromtimestamp(instant_ms // 1000, cron.zone)
    e = cron.expression
    return (instant_ms % 1000 == 0 and wall.second in e.seconds and wall.minute in e.minutes
            and wall.hour in e.hours and e.matches_day(wall.year, wall.month, wall.day))


# --- Cron times in a zone -------------------------------------------------------------------------


def _offset_s(zone: tzinfo, instant_s: int) -> int:
    offset = datetime.fromtimestamp(instant_s, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def _cron_after(cron: ZonedCron, start_s: int, until_s: int) -> int | None:
    """The first instant >= start_s (seconds) the expression fires at, <= until_s, or None.

    Walks stretches [begin, end) of constant offset. A stretch that begins with a change from
    offset `before` to `offset` fires at its own wall times, except those the previous stretch
    already showed (clocks went back), and at the images of the wall times the change skipped
    (clocks went forward), read with `before` (the module docstring's rule)."""
    if start_s > until_s:
        return None
    zone = cron.zone
    if isinstance(zone, timezone):  # UTC or a fixed offset: one stretch, no changes
        fixed = _offset_s(zone, start_s)
        return _stretch_first(cron.expression, start_s, until_s + 1, fixed, fixed, start_s)
    offset = _offset_s(zone, start_s)
    change = _change_between(zone, start_s - _LOOKBACK_S, start_s)
    begin, before = (start_s, offset) if change is None else (change, _offset_s(zone, change - 1))
    while begin <= until_s:
        # Search as if the stretch ran to the bound, then look for a change only up to what
        # was found: an every-second expression probes seconds ahead, not months.
        found = _stretch_first(cron.expression, begin, until_s + 1, before, offset, start_s)
        following = _change_between(zone, max(begin, start_s),
                                    until_s if found is None else found)
        if following is None:
            return found
        found = _stretch_first(cron.expression, begin, following, before, offset, start_s)
        if found is not None:
            return found
        begin, before, offset = following, offset, _offset_s(zone, following)
    return None


def _stretch_first(expression: CronExpression, begin: int, end: int, before: int, offset: int,
                   lower: int) -> int | None:
    """First firing instant in [max(begin, lower), end) of a stretch of `offset` that begins
    with a change from `before` (== offset: no change)."""
    best: int | None = None
    first_wall = max(begin, lower) + offset
    if before > offset:  # clocks went back: walls below begin + before fired before `begin`
        first_wall = max(first_wall, begin + before)
    if first_wall <= end - 1 + offset:
        wall = next_wall_match(expression, first_wall, end - 1 + offset)
        if wall is not None:
            best = wall - offset
    if offset > before:  # clocks went forward: the skipped walls fire shifted by the gap
        skipped_from = max(begin + before, lower + before)
        if skipped_from <= begin + offset - 1:
            wall = next_wall_match(expression, skipped_from, begin + offset - 1)
            if wall is not None and (best is None or wall - before < best):
                best = wall - before
    assert best is None or max(begin, lower) <= best
    return best


def _change_between(zone: tzinfo, after_s: int, until_s: int) -> int | None:
    """The first instant in (after_s, until_s] whose offset differs from after_s's, or None."""
    offset = _offset_s(zone, after_s)
    low = after_s
    while low < until_s:
        high = min(low + _PROBE_S, until_s)
        if _offset_s(zone, high) != offset:
            while high - low > 1:  # bisect: low has `offset`, high does not
                middle = (low + high) // 2
                if _offset_s(zone, middle) == offset:
                    low = middle
                else:
                    high = middle
            return high
        low = high
    return None
