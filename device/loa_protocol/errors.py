"""The protocol's errors: each carries a stable ``code`` and the ``fields`` of its message.

::

    ProtocolError                 a document or a server answer that cannot be used
    ├── ManifestError             a manifest that cannot be read, or a folder that does not match it
    ├── ReceiptError              a receipt that is malformed, forged or replayed
    │   ├── ForgedReceiptError    the MAC is missing or does not match
    │   └── ReplayedReceiptError  its id was accepted once already
    └── ServerError               the pull API answered something unexpected
        ├── TokenRefused          401: the token is wrong or revoked
        ├── EnrollmentRefused     the enrollment code is wrong, used or expired (Vietnamese text)
        └── LinkError             no answer at all (refused, timed out, cut): worth a retry

The server (``pipeline``) turns them into its own exit codes and pages.
"""

from __future__ import annotations


class ProtocolError(Exception):
    code = "protocol"

    def __init__(self, message: str = "", *, code: str | None = None, **fields: object) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.fields: dict[str, object] = fields


class ManifestError(ProtocolError):
    """A manifest that cannot be read, or a folder that does not match its manifest."""

    code = "manifest"


class ReceiptError(ProtocolError):
    """A receipt that is malformed, forged, or replayed; it is refused and nothing is stored."""

    code = "receipt"


class ForgedReceiptError(ReceiptError):
    """The MAC is missing or does not match the endpoint's receipt key."""

    code = "receipt.forged"


class ReplayedReceiptError(ReceiptError):
    """A receipt whose id was already accepted once."""

    code = "receipt.replayed"


class ServerError(ProtocolError):
    """The pull API answered with a status the client cannot use."""

    code = "server"


class TokenRefused(ServerError):
    code = "server.token_refused"


class EnrollmentRefused(ServerError):
    code = "server.enrollment_refused"


class LinkError(ServerError):
    """No answer: connection refused, timed out or cut. Try again later."""

    code = "server.link"
