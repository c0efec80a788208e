"""The benchmark's one error: a measured run failed."""

from __future__ import annotations

from pipeline.errors import LoaError


class BenchError(LoaError):
    """A measured run failed; the message says which and where its output is."""
