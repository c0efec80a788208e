"""The commune's players (``loa-device``): enrollment, token rotation, heartbeats.

- **Enrollment**: an admin or approver issues a one-time code for an endpoint on the web
  (``issue_enrollment_code``: 12 letters and digits, valid 24 hours, stored hashed); the
  device trades it once for the endpoint's bearer token, the deployment's public key and
  its receipt key (``enroll``). A wrong, used or expired code is refused
  (``EnrollmentError``, Vietnamese text in ``pipeline.messages``).
- **Rotation**: the web asks for it (``request_rotation``); at its next heartbeat the
  device is told, asks for a new token (``rotate``: the old ones stay valid) and, once it
  has saved it, confirms with it (``confirm_rotation``: the old ones are revoked). A power
  cut in between leaves the device with a token that works.
- **Heartbeats**: version, free space, clock offset, last program played (``record_heartbeat``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from pipeline.broadcast import receipts as rc
from pipeline.models import Deployment
from pipeline.signing import PublicKey
from pipeline.store import Database, audit
from pipeline.store import devices as device_store
from pipeline.store import tokens as token_store
from pipeline.store.devices import Device, EnrollmentError, Heartbeat

__all__ = ["CODE_LIFETIME", "Device", "Enrollment", "EnrollmentError", "Heartbeat", "enroll"]
__all__ += ["confirm_rotation", "issue_enrollment_code", "record_heartbeat", "request_rotation", "rotate"]

CODE_LIFETIME = dt.timedelta(hours=24)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
CLOCK_WARN_S = 60.0


@dataclass(frozen=True, slots=True)
class Enrollment:
    endpoint: str
    commune: str
    token: str
    public_key: PublicKey
    receipt_key: bytes
    timezone: str


def new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def issue_enrollment_code(db: Database, deployment: Deployment, endpoint: str, *, by: str) -> str:
    """A one-time code for ``endpoint`` (shown once; stored hashed), valid for ``CODE_LIFETIME``."""
    if deployment.endpoint(endpoint) is None:
        raise EnrollmentError(f"endpoint {endpoint!r} is not in the deployment", code="enroll.no_endpoint")
    code = new_code()
    device_store.add_enrollment_code(db, endpoint, code, created_by=by, lifetime=CODE_LIFETIME)
    audit.record(db, by, "device.code_issued", f"endpoint:{endpoint}")
    return code


def enroll(
    db: Database, deployment: Deployment, code: str, *, public_key: PublicKey, data_dir: Path, client: str | None
) -> Enrollment:
    """Trade a one-time code for the endpoint's token, the deployment's public key and the receipt key."""
    endpoint_name = device_store.redeem_enrollment_code(db, code)
    endpoint = deployment.endpoint(endpoint_name)
    if endpoint is None:  # removed from schedules/ since the code was issued
        raise EnrollmentError(f"endpoint {endpoint_name!r} is gone from the deployment", code="enroll.no_endpoint")
    token = token_store.create_endpoint_token(db, endpoint.name)
    audit.record(db, "device", "device.enrolled", f"endpoint:{endpoint.name}", client=client)
    key = rc.endpoint_key(rc.load_receipt_secret(data_dir), endpoint.name)
    return Enrollment(endpoint.name, endpoint.commune, token, public_key, key, deployment.timezone)


def request_rotation(db: Database, endpoint: str, *, by: str) -> None:
    device_store.request_rotation(db, endpoint)
    audit.record(db, by, "device.rotation_requested", f"endpoint:{endpoint}")


def rotate(db: Database, endpoint: str) -> str:
    """A new token for ``endpoint``; the tokens it had stay valid until ``confirm_rotation``."""
    old = [t.id for t in token_store.list_tokens(db, "endpoint", endpoint) if t.revoked_at is None]
    token = token_store.create_endpoint_token(db, endpoint)
    device_store.rotation_started(db, endpoint, revoke=old + device_store.rotation_pending(db, endpoint))
    return token


def confirm_rotation(db: Database, endpoint: str) -> int:
    """The device uses its new token: revoke the old ones; how many were revoked."""
    revoked = 0
    for token_id in device_store.rotation_pending(db, endpoint):
        revoked += token_store.revoke_tokens(db, "endpoint", endpoint, token_id=token_id)
    device_store.rotation_done(db, endpoint)
    if revoked:
        audit.record(db, "device", "device.token_rotated", f"endpoint:{endpoint}", f"{revoked} revoked")
    return revoked


def record_heartbeat(db: Database, endpoint: str, hb: Heartbeat) -> Device:
    return device_store.save_heartbeat(db, endpoint, hb)
