"""The chaos run's report: `report.json` with all the data, `report.html` for a person.

Theory of operation: `outcome_json` and `render_html` are pure functions of a `ChaosOutcome`;
`write_report` is the only IO. The page is one self-contained file (inline CSS and SVG, no
scripts, no external assets) so it can be attached to a bug or opened from a CI artifact
years later. Everything that came from the run is escaped with `html.escape`: fault targets,
details and violation details may contain '<' or '&' (a checker quotes what it saw).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from html import escape
from pathlib import Path

from raftflow.chaos.outcome import ChaosOutcome, FaultWindow, InvariantRow
from raftflow.chaos.svg_timeline import fault_color, render_timeline, svg_fault_legend

# A badly broken run can report one violation per workflow; the page lists the first ones
# and report.json keeps them all, so the page stays openable.
VIOLATIONS_SHOWN_MAX = 1_000

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"

CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; }
.verdict { font-weight: bold; padding: 0.1em 0.5em; border-radius: 3px; color: #fff; }
.verdict.pass, .status.ok { background: #2ca02c; }
.verdict.fail, .status.fail { background: #d62728; }
.status { color: #fff; padding: 0 0.4em; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; }
code { background: #f4f4f4; padding: 0.2em 0.4em; display: inline-block; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
"""


def plain(value: object) -> object:
    """A JSON-ready copy: dataclasses become dicts (their own `to_json` if they have one),
    tuples become lists, so `json.loads(json.dumps(x)) == x`."""
    to_json = getattr(value, "to_json", None)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if callable(to_json):
            return plain(to_json())
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def outcome_json(outcome: ChaosOutcome) -> dict[str, object]:
    """Every field of the outcome, plus `summary` (the CLI's `--json` line), as report.json."""
    data = plain(outcome)
    assert isinstance(data, dict), type(data)
    assert "summary" not in data, "a ChaosOutcome field would be shadowed by the summary"
    data["summary"] = plain(outcome.summary_json())
    return data


def passed(outcome: ChaosOutcome) -> bool:
    # Either source of truth failing fails the run: the rows count, the list explains.
    return not outcome.violations and all(row.violations == 0 for row in outcome.invariants)


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def render_html(outcome: ChaosOutcome) -> str:
    """The report page as one self-contained HTML document."""
    verdict = "PASS" if passed(outcome) else "FAIL"
    title = f"raftflow chaos — seed {outcome.seed} — {verdict}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8" />',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        html_header(outcome, verdict),
        '<h2>Timeline</h2>',
        html_legend(outcome),
        render_timeline(outcome.buckets, outcome.faults, outcome.duration_s),
        "<h2>Fault schedule</h2>",
        html_fault_table(outcome.faults),
        "<h2>Invariants</h2>",
        html_invariant_table(outcome.invariants),
        "<h2>Violations</h2>",
        html_violations(outcome),
        "</body>",
        "</html>",
        "",
    ])


def html_header(outcome: ChaosOutcome, verdict: str) -> str:
    facts = [
        ("seed", str(outcome.seed)),
        ("nodes", str(outcome.nodes)),
        ("duration", seconds(outcome.duration_s)),
        ("fault kinds", ", ".join(outcome.fault_kinds) or "none"),
        ("workflows started", str(outcome.workflows_started)),
        ("workflows completed", str(outcome.workflows_completed)),
        ("recovery p50", seconds(outcome.recovery_p50_s)),
        ("recovery p99", seconds(outcome.recovery_p99_s)),
    ]
    rows = "\n".join(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in facts)
    return (f'<h1>raftflow chaos run <span class="verdict {verdict.lower()}">{verdict}</span>'
            f"</h1>\n<dl class=\"facts\">\n{rows}\n</dl>\n"
            f"<p>Reproduce with:</p>\n<p><code>{escape(outcome.command)}</code></p>")


def legend_kinds(outcome: ChaosOutcome) -> tuple[str, ...]:
    """Requested kinds first, then any kind that was injected without being requested."""
    kinds = list(dict.fromkeys(outcome.fault_kinds))
    kinds += [k for k in dict.fromkeys(f.kind for f in outcome.faults) if k not in kinds]
    return tuple(kinds)


def html_legend(outcome: ChaosOutcome) -> str:
    return ('<p>Shaded bands are fault windows; dashed lines are faults without an end.</p>\n'
            + svg_fault_legend(legend_kinds(outcome)))


def html_table(headers: tuple[str, ...], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join(rows) if rows else f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def html_fault_row(fault: FaultWindow) -> str:
    duration_s = None if fault.end_s is None else fault.end_s - fault.start_s
    swatch = f'<span class="swatch" style="background:{fault_color(fault.kind)}"></span>'
    cells = [
        f"<td>{swatch}{escape(fault.kind)}</td>",
        f"<td>{escape(fault.target)}</td>",
        f'<td class="num">{seconds(fault.start_s)}</td>',
        f'<td class="num">{seconds(fault.end_s)}</td>',
        f'<td class="num">{seconds(duration_s)}</td>',
        f"<td>{escape(fault.detail)}</td>",
        f'<td class="num">{seconds(fault.recovered_after_s)}</td>',
    ]
    return f'<tr class="fault-row">{"".join(cells)}</tr>'


def html_fault_table(faults: tuple[FaultWindow, ...]) -> str:
    ordered = sorted(faults, key=lambda f: f.start_s)  # stable: equal starts keep run order
    return html_table(("kind", "target", "start", "end", "duration", "detail", "recovered after"),
                      [html_fault_row(f) for f in ordered])


def html_invariant_row(row: InvariantRow) -> str:
    status = "OK" if row.violations == 0 else "FAIL"
    return (f'<tr class="invariant-row"><td>{escape(row.name)}</td>'
            f"<td>{escape(row.description)}</td>"
            f'<td class="num">{row.violations}</td>'
            f'<td><span class="status {status.lower()}">{status}</span></td></tr>')


def html_invariant_table(rows: tuple[InvariantRow, ...]) -> str:
    return html_table(("invariant", "description", "violations", "status"),
                      [html_invariant_row(r) for r in rows])


def html_violations(outcome: ChaosOutcome) -> str:
    if not outcome.violations:
        return '<p class="no-violations">none</p>'
    shown = outcome.violations[:VIOLATIONS_SHOWN_MAX]
    items = "\n".join(
        f'<li class="violation"><strong>{escape(v.invariant)}</strong> '
        f"{escape(v.subject)}: {escape(v.detail)}</li>" for v in shown)
    hidden = len(outcome.violations) - len(shown)
    more = f"\n<p>… and {hidden} more in {REPORT_JSON}.</p>" if hidden else ""
    return f"<ul>\n{items}\n</ul>{more}"


def write_atomically(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and `os.replace`, so a reader (or a run
    killed mid-write) sees the old file or the new one, never half of one."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_report(outcome: ChaosOutcome, directory: Path) -> tuple[Path, Path]:
    """Write report.html and report.json into `directory` (created if missing).

    Returns (html_path, json_path). Each file is replaced atomically.
    """
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / REPORT_HTML
    json_path = directory / REPORT_JSON
    write_atomically(json_path, json.dumps(outcome_json(outcome), indent=2, sort_keys=True) + "\n")
    write_atomically(html_path, render_html(outcome))
    return html_path, json_path
