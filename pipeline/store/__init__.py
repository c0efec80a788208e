"""The store: SQLAlchemy 2.x Core behind small functions that take and return dataclasses.

SQLite in WAL mode by default (``sqlite:///data/loa.db``), PostgreSQL by URL. Schema
changes are versioned migrations (``pipeline/store/migrations.py``), applied on open.
"""

from pipeline.store.db import Database, open_database

__all__ = ["Database", "open_database"]
