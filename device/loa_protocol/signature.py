"""Checking a manifest's signature with the deployment's Ed25519 public key.

The signature is the raw 64-byte Ed25519 signature of the manifest's exact bytes, in
``manifest.json.sig`` beside it. Stock OpenSSL 3 checks it too::

    openssl pkeyutl -verify -pubin -inkey loa-manifest.pub.pem -rawin \\
        -in manifest.json -sigfile manifest.json.sig

Making and keeping the private key is the server's business (``pipeline.signing``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from loa_protocol.errors import ProtocolError

SIGNATURE_SUFFIX = ".sig"


class PublicKeyError(ProtocolError):
    """A public key that cannot be read or is not Ed25519."""

    code = "signature.key"


@dataclass(frozen=True)
class PublicKey:
    pem: str  # SubjectPublicKeyInfo PEM, what `openssl pkeyutl -pubin` reads
    openssh: str  # "ssh-ed25519 AAAA… loa-manifest"
    fingerprint: str  # "SHA256:…" as ssh-keygen -l prints it

    @property
    def raw(self) -> bytes:
        return load_pem(self.pem).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key(key: Ed25519PublicKey) -> PublicKey:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    blob = base64.b64decode(openssh.split()[1])
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return PublicKey(pem=pem, openssh=f"{openssh} loa-manifest", fingerprint=fingerprint)


def load_pem(pem: str) -> Ed25519PublicKey:
    """The Ed25519 key of a SubjectPublicKeyInfo PEM text; ``PublicKeyError`` otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise PublicKeyError(f"not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise PublicKeyError("the public key is not Ed25519")
    return key


def from_pem(pem: str) -> PublicKey:
    return public_key(load_pem(pem))


def read_public(path: Path) -> PublicKey:
    """A PEM public key file (``loa keys show --pem``)."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise PublicKeyError(f"{path}: cannot read the public key ({exc})") from exc
    return from_pem(text)


def verify(pub: PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``pub``'s Ed25519 signature of exactly ``data``."""
    try:
        load_pem(pub.pem).verify(signature, data)
    except InvalidSignature:
        return False
    return True
