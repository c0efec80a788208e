"""The manifest, ``loa.manifest/2``: the server's name for ``loa_protocol.manifest``.

The one reader and writer of ``manifest.json`` is the protocol package that the server
and the commune's player (``loa-device``) share; docs/manifest.md specifies it and
``schemas/manifest-2.schema.json`` is its JSON Schema. Nothing else builds or parses it.
"""

from __future__ import annotations

from loa_protocol.manifest import (
    FILE,
    FORMATS,
    SCHEMA,
    SIG_FILE,
    Emergency,
    FileEntry,
    Item,
    Manifest,
    ManifestError,
    ProgramEntry,
    Source,
    check_file,
    expiry,
    files_named,
    parse,
    read,
    verify_folder,
)

__all__ = ["FILE", "FORMATS", "SCHEMA", "SIG_FILE", "Emergency", "FileEntry", "Item", "Manifest", "ManifestError"]
__all__ += ["ProgramEntry", "Source", "check_file", "expiry", "files_named", "parse", "read", "verify_folder"]
