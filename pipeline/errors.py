"""The one error tree of Loa.

Every error a user can cause or meet is a ``LoaError``; ``cli.main()`` is the only
place that turns one into an ``error: …`` line and an exit code::

    LoaError                      exit 1 unless a subclass says otherwise
    ├── UsageError                exit 2  bad input: nothing was changed
    │   ├── ConfigError           loa.toml, LOA_* variables, schedules/*.toml
    │   ├── BulletinError         a bulletin file or form, a recording
    │   │   └── CapError          a CAP 1.2 alert (names the element)
    │   ├── ScriptError           a template or a cue sheet
    │   ├── NotFoundError         an id, commune, slot or endpoint that does not exist
    │   └── OutboundRefused       a URL whose address Loa does not connect to (loopback, private…)
    ├── RenderError               speech, a clip or a recording could not become audio
    │   └── TransientRenderError  a TTS service was slow or refused; another engine may speak
    ├── StoreError                the database
    ├── DeliveryError             an endpoint could not be served
    │   └── TransientDeliveryError   refused, timed out, connection lost: worth a retry
    └── PartialFailure            exit 3  some communes or endpoints failed; they are named

Messages say what was being done, to what, and what to do next. Adapters translate
library errors at their boundary: ``raise DeliveryError(f"{endpoint}: {reason}") from exc``.

Every error carries a stable ``code`` (``"bulletin.field.too_long"``) and the ``fields`` that
fill its message (file, field, line, limit, …). The English text is the exception's own
message; the Vietnamese text that the web and the APIs show comes from the one table in
``pipeline/messages.py``, keyed by code — never from the English text.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3


class LoaError(Exception):
    """Base of every error Loa raises on purpose: a message, a stable ``code`` and its ``fields``."""

    exit_code = EXIT_FAILURE
    #: The class's default code; an instance may name a more precise one.
    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None, **fields: object) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.fields: dict[str, object] = fields


class UsageError(LoaError):
    """Bad input: the command changed nothing."""

    code = "usage"

    exit_code = EXIT_BAD_INPUT


class ConfigError(UsageError):
    """A configuration or deployment file is invalid."""

    code = "config"


class BulletinError(UsageError):
    """A bulletin (file or form) or one of its recordings is invalid."""

    code = "bulletin"


class CapError(BulletinError):
    """A Common Alerting Protocol alert is invalid or cannot be mapped; names the element."""

    code = "cap"


class ScriptError(UsageError):
    """A template or cue sheet is invalid, or clips it needs are missing."""

    code = "script"


class NotFoundError(UsageError):
    """Something named on the command line does not exist."""

    code = "not_found"


class OutboundRefused(UsageError):
    """An outbound request to an address the ``[outbound]`` policy refuses; nothing was sent."""

    code = "outbound.refused"


class RenderError(LoaError):
    """Audio could not be produced for a cue."""

    code = "render"


class TransientRenderError(RenderError):
    """A speech engine failed in a way that another engine (or a retry) may not."""

    code = "render.transient"


class StoreError(LoaError):
    """The database could not be read or written."""

    code = "store"


class DeliveryError(LoaError):
    """An endpoint could not be served; permanent unless a subclass says otherwise."""

    code = "delivery"


class TransientDeliveryError(DeliveryError):
    """A delivery failure worth retrying: refused, timed out, connection lost."""

    code = "delivery.transient"


class PartialFailure(LoaError):
    """Some of the work was done; the message names what failed."""

    code = "partial"

    exit_code = EXIT_PARTIAL


class RecordingRefused(BulletinError):
    """An uploaded recording is not audio Loa accepts; ``reason`` names why (the web translates it).

    Reasons: empty, missing, playlist, concat, image, reference, extension, not_audio,
    video, no_audio, codec, too_long, no_duration, damaged, truncated, language.
    """

    def __init__(self, message: str, *, reason: str, **params: object) -> None:
        super().__init__(message, code=f"recording.{reason}", **params)
        self.reason = reason
        self.params = params
