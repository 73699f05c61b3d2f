"""Goal: the in-memory evaluator and the SQL filter agree with the documented semantics on the
cases that are easy to get wrong: missing values (NULL), STARTS_WITH on prefixes holding LIKE
wildcards, NUL or the highest code points, inclusive BETWEEN, and the order of open runs under
ORDER BY CloseTime.

Method: a handful of hand-made rows; each query's expected run ids are written out, and both
`select` (memory) and `to_sql` (SQLite with the storage schema) must return exactly them.
"""

from __future__ import annotations

from contextlib import closing

import pytest

from raftflow.visibility.query_ast import AttributeType, BuiltinField, BuiltinRef, Query, StartsWith
from raftflow.visibility.query_eval import VisibilityRow, select
from raftflow.visibility.query_parser import parse
from raftflow.visibility.query_sql import to_sql
from tests.visibility.visibility_db import open_db, select_run_ids

ATTRIBUTES = {
    "CustomKeyword": AttributeType.KEYWORD,
    "CustomInt": AttributeType.INT,
    "CustomDouble": AttributeType.DOUBLE,
    "CustomBool": AttributeType.BOOL,
    "CustomDatetime": AttributeType.DATETIME,
}


def row(run_id: str, workflow_id: str, status: str, start_time_ms: int,
        close_time_ms: int | None, **attributes: str | int | float | bool) -> VisibilityRow:
    return VisibilityRow(run_id=run_id, workflow_id=workflow_id, workflow_type="Charge",
                         status=status, start_time_ms=start_time_ms, close_time_ms=close_time_ms,
                         task_queue="q", attributes=attributes)


ROWS = [
    row("r1", "order-1", "Running", 1000, None, CustomKeyword="gold", CustomInt=5),
    row("r2", "order-2", "Completed", 2000, 5000, CustomKeyword="gold%", CustomDouble=1.5,
        CustomBool=True),
    row("r3", "order_3", "Failed", 2000, 3000, CustomBool=False, CustomDatetime=4000),
    row("r4", "x\x00y", "Running", 500, None, CustomKeyword="\U0010ffff"),
]

CASES = [
    ("", ["r3", "r2", "r1", "r4"]),  # StartTime DESC, then run id DESC
    ("ORDER BY StartTime ASC", ["r4", "r1", "r3", "r2"]),  # ties still run id DESC
    ("ORDER BY CloseTime ASC", ["r3", "r2", "r4", "r1"]),  # open runs last
    ("ORDER BY CloseTime DESC", ["r4", "r1", "r2", "r3"]),  # open runs first
    # A comparison with a missing value is false, != included.
    ("CloseTime != '1970-01-01T00:00:05Z'", ["r3"]),
    ("CloseTime >= '1970-01-01T00:00:00Z'", ["r3", "r2"]),
    ("CustomInt != 5", []),
    ("CustomInt != 4", ["r1"]),
    ("CustomBool != true", ["r3"]),
    ("CustomBool = false OR CustomDouble >= 1.5", ["r3", "r2"]),
    ("CustomDatetime BETWEEN '1970-01-01T00:00:04Z' AND '1970-01-01T00:00:04Z'", ["r3"]),
    ("StartTime BETWEEN '1970-01-01T00:00:01Z' AND '1970-01-01T00:00:02Z'", ["r3", "r2", "r1"]),
    ("ExecutionStatus IN ('Running', 'Failed')", ["r3", "r1", "r4"]),
    ("ExecutionStatus != 'Running'", ["r3", "r2"]),
    # STARTS_WITH is a plain prefix test: no wildcards, case-sensitive, NUL and U+10FFFF safe.
    ("CustomKeyword STARTS_WITH 'gold'", ["r2", "r1"]),
    ("CustomKeyword STARTS_WITH 'gold%'", ["r2"]),
    ("WorkflowId STARTS_WITH 'order_'", ["r3"]),
    ("WorkflowId STARTS_WITH 'ORDER'", []),
    ("WorkflowId STARTS_WITH 'x\x00'", ["r4"]),
    ("WorkflowId STARTS_WITH 'x'", ["r4"]),
    ("CustomKeyword STARTS_WITH '\U0010ffff'", ["r4"]),
    ("CustomKeyword STARTS_WITH ''", ["r2", "r1", "r4"]),
    ("WorkflowId = 'x\x00y'", ["r4"]),
    ("WorkflowId = 'x'", []),
    ("WorkflowId = 'order-1' OR WorkflowId = 'order-2' AND CustomBool = false", ["r1"]),
    ("(WorkflowId = 'order-1' OR WorkflowId = 'order-2') AND CustomInt > 0", ["r1"]),
]


@pytest.mark.parametrize(("text", "run_ids"), CASES, ids=[c[0][:50] for c in CASES])
def test_memory_and_sql_select_the_documented_runs(text: str, run_ids: list[str]) -> None:
    query = parse(text, ATTRIBUTES)
    assert [r.run_id for r in select(query, ROWS)] == run_ids
    with closing(open_db(ROWS, ATTRIBUTES)) as db:
        assert select_run_ids(db, query) == run_ids


# Strings around the edges of the prefix range: the surrogate gap, the top code point, NUL.
EDGE_IDS = ["", "a", "a\x00", "a\x00b", "ab", "a\U0010ffff", "a\U0010ffff\U0010ffff", "b",
            "\ud7ff", "\ud7ffz", "\ue000", "\U0010ffff", "%", "_", "a%", "A"]
EDGE_PREFIXES = ["", "a", "a\x00", "a\U0010ffff", "\ud7ff", "\U0010ffff", "%", "_", "A"]


@pytest.mark.parametrize("prefix", EDGE_PREFIXES, ids=[ascii(p) for p in EDGE_PREFIXES])
def test_starts_with_matches_exactly_the_strings_with_that_prefix(prefix: str) -> None:
    rows = [row(f"r{i:02d}", wid, "Running", i, None) for i, wid in enumerate(EDGE_IDS)]
    query = Query(where=StartsWith(field=BuiltinRef(field=BuiltinField.WORKFLOW_ID),
                                   prefix=prefix), order_by=None)
    expected = sorted((r.run_id for r in rows if r.workflow_id.startswith(prefix)), reverse=True)
    assert sorted((r.run_id for r in select(query, rows)), reverse=True) == expected
    with closing(open_db(rows, ATTRIBUTES)) as db:
        assert sorted(select_run_ids(db, query), reverse=True) == expected
    assert "LIKE" not in to_sql(query).where_sql
