"""RFC 3339 timestamps <-> integer milliseconds since the Unix epoch (UTC).

Why by hand: `datetime.fromisoformat` accepts many ISO 8601 forms RFC 3339 forbids (no offset,
week dates, `+0000`), and a query that means different things to different readers is a bug. So
the grammar is a strict regular expression and `datetime` only checks the calendar.

Why milliseconds: that is the precision runs are stored with (`start_time_ms`). A literal with
non-zero digits below the millisecond is refused rather than rounded, because no rounding keeps
both `<` and `<=` exact against millisecond values.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})",
    flags=re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# The instants both functions handle: datetime's year range, read in UTC.
DATETIME_MS_MIN = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
DATETIME_MS_MAX = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _ONE_MS


def parse_rfc3339_ms(text: str) -> int:
    """Milliseconds since the epoch, UTC, of an RFC 3339 timestamp.

    Raises:
        ValueError: with a message fit for a user when `text` is not an RFC 3339 timestamp or
            has non-zero digits below the millisecond.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("expected an RFC 3339 datetime such as '2026-12-06T10:00:00Z'")
    fraction = (match["fraction"] or "").ljust(9, "0")
    if fraction[3:] != "000000":
        raise ValueError("datetimes are stored in milliseconds; drop the sub-millisecond digits")
    offset = match["offset"]
    if offset in ("Z", "z"):
        zone = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"UTC offset {offset} is out of range")
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(int(match["year"]), int(match["month"]), int(match["day"]),
                          int(match["hour"]), int(match["minute"]), int(match["second"]),
                          int(fraction[:3]) * 1000, tzinfo=zone)
    except ValueError as err:  # month 13, February 30, second 60 ...
        raise ValueError(f"not a valid datetime: {err}") from None
    ms = (moment - _EPOCH) // _ONE_MS
    # An offset can push 9999-12-31 past the last UTC instant `format_rfc3339_ms` can write.
    if not DATETIME_MS_MIN <= ms <= DATETIME_MS_MAX:
        raise ValueError("datetime is outside years 0001-9999 UTC")
    return ms


def format_rfc3339_ms(ms: int) -> str:
    """The RFC 3339 form (UTC, millisecond precision) of `ms` since the epoch.

    `parse_rfc3339_ms(format_rfc3339_ms(ms)) == ms` for every ms in years 0001-9999.
    """
    assert DATETIME_MS_MIN <= ms <= DATETIME_MS_MAX, ms
    moment = _EPOCH + ms * _ONE_MS
    # Explicit widths: strftime's %Y drops leading zeros of years before 1000 on glibc.
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z")
    assert len(text) == 24, text
    return text
