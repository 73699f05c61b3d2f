"""Upgrading a shard store file written by an older release, in place, in one transaction.

Format 1 kept `runs` and `history` as WITHOUT ROWID tables; format 2 makes them rowid tables
(why: sqlite_archive.SCHEMA). The rows are the same, so the upgrade renames the old tables,
creates the new ones and copies every row across. A crash before the commit leaves the file as
it was (format 1), and the next start upgrades it again. Nothing else changes: the meta row keeps
its log index and open part, so the replica restarts exactly where it stopped.

Format 3 lets `history` hold open runs' spilled chunks too; a format-2 file holds none, so its
upgrade only sets the number (a format-1 file gets both steps in the one transaction).

Format 4 keeps each open run as a row of `open_runs` instead of inside the meta row's open part:
the upgrade moves them out, in their order (open_run_rows.py).

Format 5 lets the open part hold an outbox; a format-4 file has none, so only the number changes.
"""

from __future__ import annotations

import sqlite3

from raftflow.shards.store import open_run_rows
from raftflow.shards.store.sqlite_archive import SCHEMA

# Indexes of format 1's `runs`: dropped before the rename so SCHEMA's `IF NOT EXISTS` creates
# them on the new table instead of finding the old ones.
_FORMAT_1_INDEXES = ("runs_due", "runs_started", "runs_closed")
_REBUILT_TABLES = ("runs", "history")


def upgrade(db: sqlite3.Connection, found_format: int, to_format: int) -> None:
    """Bring the store on `db` (no transaction open) from `found_format` to `to_format`."""
    assert 1 <= found_format < to_format <= 5, (found_format, to_format)
    db.execute("BEGIN IMMEDIATE")
    try:
        if found_format == 1:
            _rowid_tables(db)
        if found_format <= 3 < to_format:
            open_part = db.execute("SELECT open_part FROM meta").fetchone()[0]
            db.execute("UPDATE meta SET open_part = ? WHERE id = 0",
                       (open_run_rows.move_out_of_open_part(db, open_part),))
        db.execute("UPDATE meta SET format = ? WHERE id = 0", (to_format,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _rowid_tables(db: sqlite3.Connection) -> None:
    """Format 1 to 2: `runs` and `history` rebuilt as rowid tables, every row copied."""
    for index in _FORMAT_1_INDEXES:
        db.execute(f"DROP INDEX {index}")
    for table in _REBUILT_TABLES:
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_format_1")
    for statement in SCHEMA:
        db.execute(statement)
    for table in _REBUILT_TABLES:
        db.execute(f"INSERT INTO {table} SELECT * FROM {table}_format_1")  # noqa: S608
        db.execute(f"DROP TABLE {table}_format_1")
