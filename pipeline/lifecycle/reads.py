"""What doors read of a bulletin's life: the bulletin, its revisions, recordings, approval and decisions.

Doors (the CLI, the web, the APIs) read through here and change through the actions of
this package, so none of them imports the store's bulletin tables (an import-linter
contract in ``pyproject.toml`` holds that). The readers are the store's own: one
owner of each query, named here for the doors.
"""

from __future__ import annotations

from pipeline.store.approvals import changes_since_approval
from pipeline.store.bulletins import CONTENT_FIELDS, MAX_ID, get_bulletin, list_bulletins, revisions
from pipeline.store.decisions import decisions
from pipeline.store.recordings import current_recordings

__all__ = [
    "CONTENT_FIELDS",
    "MAX_ID",
    "changes_since_approval",
    "current_recordings",
    "decisions",
    "get_bulletin",
    "list_bulletins",
    "revisions",
]
