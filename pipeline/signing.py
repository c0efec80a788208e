"""The deployment's Ed25519 key: make it, load it, sign a manifest.

Checking a signature is the protocol's (``loa_protocol.signature``: ``PublicKey``,
``public_key``, ``verify``), re-exported here.

The signature is the raw 64-byte Ed25519 signature of the manifest's exact bytes,
in ``manifest.json.sig`` beside it. A device checks it with stock OpenSSL 3::

    openssl pkeyutl -verify -pubin -inkey loa-manifest.pub.pem -rawin \\
        -in manifest.json -sigfile manifest.json.sig

The private key is a PKCS#8 PEM file, mode 0600, outside the repository and the
outbox (``signing.key_file``, default ``<data_dir>/keys/manifest-ed25519.pem``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from loa_protocol.signature import SIGNATURE_SUFFIX, PublicKey, PublicKeyError, load_pem, public_key, verify

from pipeline.errors import ConfigError
from pipeline.files import write_atomic

log = logging.getLogger(__name__)
__all__ = ["SIGNATURE_SUFFIX", "PublicKey", "init_key", "load_key", "load_public", "public_key", "sign", "verify"]


def init_key(path: Path, *, force: bool = False) -> PublicKey:
    """Make a new key at ``path`` (mode 0600); refuse to replace one unless ``force``."""
    if path.exists() and not force:
        raise ConfigError(f"{path}: a signing key is already there; devices trust it (use --force to replace it)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, pem, mode=0o600)
    return public_key(key.public_key())


def load_key(path: Path, *, create: bool = False) -> Ed25519PrivateKey:
    """The private key at ``path``; with ``create``, make one if there is none (and say so in the log)."""
    if not path.is_file():
        if not create:
            raise ConfigError(f"{path}: no signing key; run `loa keys init`")
        pub = init_key(path)
        log.warning("made a new manifest signing key %s (%s); give devices `loa keys show`", path, pub.fingerprint)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path}: the signing key is readable by others (mode {mode:o}); run chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an unencrypted Ed25519 PEM key ({exc}); run `loa keys init --force`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 key; run `loa keys init --force`")
    return key


def _load_public(pem: str) -> PublicKey:
    try:
        return public_key(load_pem(pem))
    except PublicKeyError as exc:
        raise ConfigError(str(exc)) from exc


def load_public(path: Path) -> PublicKey:
    """A public key file: PEM (``loa keys show --pem``) or the private key itself."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the public key ({exc})") from exc
    if "PRIVATE KEY" in text:
        return public_key(load_key(path).public_key())
    return _load_public(text)


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)
