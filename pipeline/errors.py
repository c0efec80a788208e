"""The one error tree of Loa.

Every error a user can cause or meet is a ``LoaError``; ``cli.main()`` is the only
place that turns one into an ``error: …`` line and an exit code::

    LoaError                      exit 1 unless a subclass says otherwise
    ├── UsageError                exit 2  bad input: nothing was changed
    │   ├── ConfigError           loa.toml, LOA_* variables, schedules/*.toml
    │   ├── BulletinError         a bulletin file or form, a recording
    │   │   └── CapError          a CAP 1.2 alert (names the element)
    │   ├── ScriptError           a template or a cue sheet
    │   └── NotFoundError         an id, commune, slot or endpoint that does not exist
    ├── RenderError               speech, a clip or a recording could not become audio
    │   └── TransientRenderError  a TTS service was slow or refused; another engine may speak
    ├── StoreError                the database
    ├── DeliveryError             an endpoint could not be served
    │   └── TransientDeliveryError   refused, timed out, connection lost: worth a retry
    └── PartialFailure            exit 3  some communes or endpoints failed; they are named

Messages say what was being done, to what, and what to do next. Adapters translate
library errors at their boundary: ``raise DeliveryError(f"{endpoint}: {reason}") from exc``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3


class LoaError(Exception):
    """Base of every error Loa raises on purpose."""

    exit_code = EXIT_FAILURE


class UsageError(LoaError):
    """Bad input: the command changed nothing."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(UsageError):
    """A configuration or deployment file is invalid."""


class BulletinError(UsageError):
    """A bulletin (file or form) or one of its recordings is invalid."""


class CapError(BulletinError):
    """A Common Alerting Protocol alert is invalid or cannot be mapped; names the element."""


class ScriptError(UsageError):
    """A template or cue sheet is invalid, or clips it needs are missing."""


class NotFoundError(UsageError):
    """Something named on the command line does not exist."""


class RenderError(LoaError):
    """Audio could not be produced for a cue."""


class TransientRenderError(RenderError):
    """A speech engine failed in a way that another engine (or a retry) may not."""


class StoreError(LoaError):
    """The database could not be read or written."""


class DeliveryError(LoaError):
    """An endpoint could not be served; permanent unless a subclass says otherwise."""


class TransientDeliveryError(DeliveryError):
    """A delivery failure worth retrying: refused, timed out, connection lost."""


class PartialFailure(LoaError):
    """Some of the work was done; the message names what failed."""

    exit_code = EXIT_PARTIAL


class RecordingRefused(BulletinError):
    """An uploaded recording is not audio Loa accepts; ``reason`` names why (the web translates it).

    Reasons: empty, missing, playlist, concat, image, reference, extension, not_audio,
    video, no_audio, codec, too_long, no_duration, damaged, truncated, language.
    """

    def __init__(self, message: str, *, reason: str, **params: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.params = params
