"""An in-memory SQLite database with the visibility schema, for tests of `query_sql`.

Rows are written the way storage must write them (`attribute_columns` picks the column), and
queries run the way storage must run them: `to_sql`'s pieces in a fixed SELECT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from raftflow.visibility.query_ast import AttributeType, Query
from raftflow.visibility.query_eval import VisibilityRow
from raftflow.visibility.query_sql import attribute_columns, to_sql

SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    namespace TEXT,
    workflow_id TEXT,
    workflow_type TEXT,
    task_queue TEXT,
    status TEXT,
    start_time_ms INTEGER,
    close_time_ms INTEGER NULL
);
CREATE TABLE search_attributes (
    run_id TEXT,
    name TEXT,
    value_int INTEGER NULL,
    value_real REAL NULL,
    value_text TEXT NULL,
    PRIMARY KEY (run_id, name)
);
"""

NAMESPACE = "default"


def open_db(rows: Iterable[VisibilityRow], attributes: Mapping[str, AttributeType]) -> sqlite3.Connection:
    """A fresh database holding `rows`; attribute values are stored under their registered type."""
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    for row in rows:
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (row.run_id, NAMESPACE, row.workflow_id, row.workflow_type, row.task_queue,
                    row.status, row.start_time_ms, row.close_time_ms))
        for name, value in row.attributes.items():
            value_int, value_real, value_text = attribute_columns(attributes[name], value)
            db.execute("INSERT INTO search_attributes VALUES (?, ?, ?, ?, ?)",
                       (row.run_id, name, value_int, value_real, value_text))
    return db


def select_run_ids(db: sqlite3.Connection, query: Query) -> list[str]:
    """Run ids `query` selects through SQL, in the SQL order."""
    where_sql, params, order_sql = to_sql(query)
    sql = (f"SELECT runs.run_id FROM runs WHERE runs.namespace = ? AND ({where_sql}) "
           f"ORDER BY {order_sql}")
    return [run_id for (run_id,) in db.execute(sql, [NAMESPACE, *params])]
