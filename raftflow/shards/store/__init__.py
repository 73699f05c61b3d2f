"""A shard replica's state on disk: the archive in SQLite, the open part beside it, one file.

See `shard_store.py` for the file and its transactions, `sqlite_archive.py` for the archive's
tables. Only this package (below the core) touches the disk for shard state.
"""
