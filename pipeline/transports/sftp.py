"""The SFTP transport (paramiko): pinned host keys, key authentication, atomic uploads.

Library errors are translated here, once: ``TransientDeliveryError`` for what a retry
may cure (refused, timed out, connection lost), ``DeliveryError`` for what a person
must fix (host key, authentication, permissions, a full disk, a path that escapes).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import logging
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import BinaryIO, Self

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY
from paramiko.ssh_exception import IncompatiblePeer

from pipeline.config import DeliverSettings
from pipeline.errors import DeliveryError, TransientDeliveryError
from pipeline.models import Endpoint
from pipeline.transports.base import check_rel, is_temp_name, is_under, temp_name

log = logging.getLogger(__name__)

#: Bytes handed to one pipelined write; paramiko splits them into 32 KiB SFTP requests.
CHUNK = 1024 * 1024
#: Ciphers tried first. AES-GCM needs no separate MAC and is about 1.7× faster in paramiko
#: than its default aes128-ctr + hmac-sha2-256 (benchmarks/sftp_throughput.py); servers
#: without it (old dropbear) still get paramiko's other ciphers.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: SSH channel window: how much may be in flight before the server acknowledges.
WINDOW = 8 * 1024 * 1024
#: Host key algorithms acceptable for a pinned key of each type (OpenSSH's names).
_KEY_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
}


#: Errors that mean the link is gone or in an unknown state (not an answer from the server).
_LINK_ERRORS = (TimeoutError, EOFError, paramiko.SSHException, ConnectionError)


def _auth_link_failure(ssh: paramiko.Transport, exc: paramiko.AuthenticationException) -> bool:
    """Whether an authentication failure is the link's fault (retry), not the device's answer.

    paramiko raises ``AuthenticationException`` for a refused key, but also when no answer
    came within ``auth_timeout`` ("Authentication timeout.") or the link closed during
    authentication ("... transport shut down or saw EOF"). Only a server's explicit answer
    (a refusal, or "publickey is not allowed") is permanent.
    """
    if isinstance(exc, paramiko.BadAuthenticationType):
        return False
    text = str(exc)
    return text.startswith("Authentication timeout") or "saw EOF" in text or not ssh.is_active()


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob: ``SHA256:base64-without-padding``."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_host_key(endpoint: Endpoint) -> tuple[str, bytes]:
    """The pinned ``(key type, key blob)`` of ``endpoint``, or ``DeliveryError`` saying how to get it."""
    where = f"host_key for endpoint {endpoint.name} in schedules/*.toml"
    scan = f"ssh-keyscan -p {endpoint.port} {endpoint.host}"
    if not endpoint.host_key:
        raise DeliveryError(
            f"{endpoint.name}: no host key is pinned, so the device cannot be trusted; "
            f"run `{scan}` on a trusted link, check it with the commune, and set {where} "
            '(e.g. host_key = "ssh-ed25519 AAAA…")',
            code="delivery.host_key_missing",
            endpoint=endpoint.name,
        )
    parts = endpoint.host_key.split()
    if len(parts) >= 3 and parts[1] in _KEY_ALGORITHMS:  # a known_hosts line: "host type key"
        parts = parts[1:]
    if len(parts) < 2 or parts[0] not in _KEY_ALGORITHMS:
        raise DeliveryError(
            f"{endpoint.name}: {where} must look like 'ssh-ed25519 AAAA…' "
            f"(types: {', '.join(_KEY_ALGORITHMS)}); get it with `{scan}`",
            code="delivery.host_key_invalid",
            endpoint=endpoint.name,
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise DeliveryError(
            f"{endpoint.name}: {where} is not valid base64; get it with `{scan}`",
            code="delivery.host_key_invalid",
            endpoint=endpoint.name,
        ) from exc
    try:
        embedded = paramiko.Message(blob).get_text() if len(blob) > 4 else ""
    except (UnicodeDecodeError, ValueError):
        embedded = ""
    if embedded != parts[0]:
        raise DeliveryError(
            f"{endpoint.name}: {where} says {parts[0]} but holds a {embedded or 'malformed'} key; "
            f"copy the whole line from `{scan}`",
            code="delivery.host_key_invalid",
            endpoint=endpoint.name,
        )
    return parts[0], blob


class SftpTransport:
    """``Transport`` over SFTP to ``endpoint.remote_dir`` on ``endpoint.host``."""

    def __init__(self, endpoint: Endpoint, *, settings: DeliverSettings) -> None:
        missing = [f for f in ("host", "user", "key_file", "remote_dir") if not getattr(endpoint, f)]
        if missing:
            raise DeliveryError(
                f"{endpoint.name}: an sftp endpoint needs {', '.join(missing)} in its [[commune.endpoint]]",
                code="delivery.endpoint_config",
                endpoint=endpoint.name,
            )
        self.endpoint = endpoint
        self.settings = settings
        self._ssh: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._root = ""
        self._dirs_ok: set[str] = set()  # directories (absolute) checked to lie under the root
        self._broken: str | None = None

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def _where(self) -> str:
        return f"{self.endpoint.user}@{self.endpoint.host}:{self.endpoint.port}"

    # --- connection -------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        sftp, ssh, self._sftp, self._ssh = self._sftp, self._ssh, None, None
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.close()
        if ssh is not None:
            with contextlib.suppress(Exception):
                ssh.close()

    def _connect(self) -> None:
        ep, st = self.endpoint, self.settings
        key_type, pinned = parse_host_key(ep)
        pkey = self._load_key()
        assert ep.host is not None and ep.user is not None and ep.remote_dir is not None
        try:
            sock = socket.create_connection((ep.host, ep.port), timeout=st.connect_timeout_s)
        except OSError as exc:
            raise self._transient(f"cannot connect to {ep.host}:{ep.port}", exc) from exc
        ssh = paramiko.Transport(sock, default_window_size=WINDOW)
        self._ssh = ssh
        ssh.banner_timeout = st.connect_timeout_s
        ssh.handshake_timeout = st.connect_timeout_s
        ssh.auth_timeout = st.connect_timeout_s
        options = ssh.get_security_options()
        options.key_types = [k for k in _KEY_ALGORITHMS[key_type] if k in options.key_types]
        first = [c for c in PREFERRED_CIPHERS if c in options.ciphers]
        options.ciphers = first + [c for c in options.ciphers if c not in first]
        try:
            done = threading.Event()
            ssh.start_client(event=done)  # paramiko returns silently on its own timeout; wait here
            if not done.wait(st.connect_timeout_s):
                raise TimeoutError("no SSH handshake")
            if not ssh.is_active():
                raise ssh.get_exception() or paramiko.SSHException("negotiation failed")
        except IncompatiblePeer as exc:
            if "host key" in str(exc):
                raise DeliveryError(
                    f"{self.name}: the device at {ep.host}:{ep.port} has no {key_type} host key, "
                    f"but host_key pinned for endpoint {self.name} is one; the connection was refused. "
                    f"If the device was re-installed, check its new key (ssh-keyscan -p {ep.port} {ep.host}) "
                    f"with the commune and update host_key for endpoint {self.name} in schedules/*.toml",
                    code="delivery.host_key_mismatch",
                    host=ep.host,
                    endpoint=self.name,
                ) from exc
            raise DeliveryError(
                f"{self.name}: the SSH server at {ep.host}:{ep.port}: {exc}",
                code="delivery.ssh_incompatible",
                endpoint=self.name,
            ) from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._transient(f"SSH handshake with {ep.host}:{ep.port} failed", exc) from exc
        offered = ssh.get_remote_server_key()
        if offered.asbytes() != pinned:
            raise DeliveryError(
                f"{self.name}: HOST KEY MISMATCH at {ep.host}:{ep.port}: the device presented "
                f"{offered.get_name()} {fingerprint(offered.asbytes())}, but host_key pinned for endpoint "
                f"{self.name} is {key_type} {fingerprint(pinned)}; the connection was refused. "
                f"If the device was re-installed, check the new key with the commune "
                f"(ssh-keyscan -p {ep.port} {ep.host} | ssh-keygen -lf -) and update host_key for endpoint "
                f"{self.name} in schedules/*.toml; otherwise someone may be intercepting the link",
                code="delivery.host_key_mismatch",
                host=ep.host,
                endpoint=self.name,
            )
        try:
            ssh.auth_publickey(ep.user, pkey)
        except paramiko.AuthenticationException as exc:
            if _auth_link_failure(ssh, exc):
                raise TransientDeliveryError(
                    f"{self.name}: authentication as {ep.user} at {ep.host}:{ep.port} did not complete "
                    f"within {st.connect_timeout_s:g} s ({exc}); the link is slow or was lost, "
                    "the key was not refused; will retry",
                    code="delivery.timeout",
                    endpoint=self.name,
                ) from exc
            raise DeliveryError(
                f"{self.name}: the device does not accept key {ep.key_file} for user {ep.user} "
                f"({exc}); add its public key ({ep.key_file}.pub) to ~{ep.user}/.ssh/authorized_keys "
                "on the device",
                code="delivery.auth_refused",
                user=ep.user,
                endpoint=self.name,
            ) from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._transient(f"authentication as {ep.user} at {ep.host}:{ep.port} failed", exc) from exc
        if st.keepalive_s:
            ssh.set_keepalive(st.keepalive_s)
        with self._translating("opening the SFTP session"):
            sftp = paramiko.SFTPClient.from_transport(ssh)
            if sftp is None:
                raise TransientDeliveryError(
                    f"{self.name}: the SFTP session could not be opened; retry",
                    code="delivery.link_lost",
                    endpoint=self.name,
                )
            self._sftp = sftp
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(st.op_timeout_s)
            try:
                self._root = sftp.normalize(ep.remote_dir)
                is_dir = stat.S_ISDIR(sftp.stat(self._root).st_mode or 0)
            except FileNotFoundError:
                is_dir = False
            if not is_dir:
                raise DeliveryError(
                    f"{self.name}: remote_dir {ep.remote_dir} is not a directory on {self._where}; "
                    f"create it on the device (mkdir -p {ep.remote_dir}) and make it writable by {ep.user}",
                    code="delivery.no_remote_dir",
                    endpoint=self.name,
                )
        self._dirs_ok = {self._root}
        log.debug("%s: connected to %s, remote_dir %s", self.name, self._where, self._root)

    def _load_key(self) -> paramiko.PKey:
        ep = self.endpoint
        assert ep.key_file is not None
        try:
            return paramiko.PKey.from_path(ep.key_file)
        except paramiko.PasswordRequiredException as exc:
            raise DeliveryError(
                f"{self.name}: key_file {ep.key_file} is protected by a passphrase; Loa runs unattended, "
                "so give it a key without one (ssh-keygen -t ed25519 -N '' -f FILE)",
                code="delivery.key_file",
                endpoint=self.name,
            ) from exc
        except OSError as exc:
            raise DeliveryError(
                f"{self.name}: cannot read key_file {ep.key_file}: {exc.strerror or exc}; "
                "check the path and that the user running Loa may read it",
                code="delivery.key_file",
                endpoint=self.name,
            ) from exc
        except (paramiko.SSHException, ValueError, TypeError) as exc:
            if "password" in str(exc):  # cryptography's words for a key with a passphrase
                raise DeliveryError(
                    f"{self.name}: key_file {ep.key_file} is protected by a passphrase; Loa runs "
                    "unattended, so give it a key without one (ssh-keygen -t ed25519 -N '' -f FILE)",
                    code="delivery.key_file",
                    endpoint=self.name,
                ) from exc
            raise DeliveryError(
                f"{self.name}: key_file {ep.key_file} is not a private key paramiko can read ({exc}); "
                "use an OpenSSH ed25519, ecdsa or rsa key",
                code="delivery.key_file",
                endpoint=self.name,
            ) from exc

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            why = self._broken or "the transport is not open; use it in a 'with' block"
            raise TransientDeliveryError(
                f"{self.name}: no connection to {self._where} ({why})", code="delivery.link_lost", endpoint=self.name
            )
        return self._sftp

    # --- error translation ------------------------------------------------------

    def _transient(self, doing: str, exc: BaseException) -> TransientDeliveryError:
        if isinstance(exc, TimeoutError):
            reason, code = "timed out", "delivery.timeout"
        elif isinstance(exc, ConnectionRefusedError):
            reason, code = "connection refused (is the device on and sshd running?)", "delivery.connection_refused"
        else:
            reason, code = str(exc) or type(exc).__name__, "delivery.link_lost"
        return TransientDeliveryError(f"{self.name}: {doing}: {reason}; will retry", code=code, endpoint=self.name)

    def _lost(self, doing: str, exc: BaseException) -> TransientDeliveryError:
        """The link is gone or in an unknown state: drop it; a new transport must be opened."""
        self._broken = f"lost while {doing}"
        self.close()
        if isinstance(exc, TimeoutError):
            reason, detail, code = f"no answer for {self.settings.op_timeout_s:g} s", "", "delivery.timeout"
        else:
            reason, detail, code = "connection lost", f" ({exc or type(exc).__name__})", "delivery.link_lost"
        return TransientDeliveryError(
            f"{self.name}: {reason} while {doing} on {self._where}{detail}; will retry", code=code, endpoint=self.name
        )

    @contextlib.contextmanager
    def _translating(self, doing: str, *, needed: int = 0, writing: bool = False) -> Iterator[None]:
        """Turn paramiko and socket errors raised while ``doing`` into Loa's errors."""
        try:
            yield
        except DeliveryError:
            raise
        except _LINK_ERRORS as exc:
            raise self._lost(doing, exc) from exc
        except OSError as exc:
            if self._ssh is None or not self._ssh.is_active():
                raise self._lost(doing, exc) from exc
            raise self._status_error(doing, exc, needed, writing=writing) from exc

    def _status_error(self, doing: str, exc: OSError, needed: int, *, writing: bool) -> DeliveryError:
        """An error status from the SFTP server: permanent."""
        user, text = self.endpoint.user, exc.strerror or str(exc)
        if isinstance(exc, PermissionError):
            able = "writable" if writing else "readable"
            return DeliveryError(
                f"{self.name}: permission denied while {doing}: remote_dir {self._root} (or a directory "
                f"in it) is not {able} by {user}; on the device run chown -R {user} {self._root}",
                code="delivery.permission",
                endpoint=self.name,
            )
        full = self._no_space(doing, needed) if needed else None
        return full or DeliveryError(
            f"{self.name}: the SFTP server refused {doing}: {text}", code="delivery.server_refused", endpoint=self.name
        )

    def _no_space(self, doing: str, needed: int) -> DeliveryError | None:
        """The error to raise if the device's disk is (nearly) full, else ``None``.

        OpenSSH's sftp-server reports ENOSPC as a bare "Failure"; statvfs tells.
        """
        free = self._free_or_none()
        if free is None or free >= max(needed, 64 * 1024):
            return None
        return DeliveryError(
            f"{self.name}: no space left on the device while {doing}: {free} bytes free in "
            f"{self._root}, {needed} needed; free space on the device "
            "(remove old programs or media) and run again",
            code="delivery.no_space",
            endpoint=self.name,
        )

    # --- paths ------------------------------------------------------------------

    def _abs(self, clean: PurePosixPath) -> str:
        return str(PurePosixPath(self._root, *clean.parts))

    def _check_inside(self, resolved: str, rel: str) -> None:
        if not is_under(self._root, resolved):
            raise DeliveryError(
                f"{self.name}: refused {rel!r}: it leads to {resolved}, outside remote_dir {self._root} "
                "(a symbolic link on the device points out of remote_dir; remove it)",
                code="delivery.path_refused",
                endpoint=self.name,
            )

    def _dir(self, rel_dir: PurePosixPath, *, create: bool) -> str | None:
        """Absolute path of the directory ``root/rel_dir`` after checking each level stays
        under the root (made if ``create``); ``None`` if missing and not ``create``."""
        current = PurePosixPath(self._root)
        for part in rel_dir.parts:
            current = current / part
            path = str(current)
            if path in self._dirs_ok:
                continue
            try:
                self.sftp.stat(path)  # OpenSSH's realpath accepts a missing last component
            except FileNotFoundError:
                self._refuse_dangling_link(path, str(rel_dir))
                if not create:
                    return None
                self.sftp.mkdir(path)
            resolved = self.sftp.normalize(path)
            self._check_inside(resolved, str(rel_dir))
            self._dirs_ok.add(path)
        return str(current)

    def _refuse_dangling_link(self, path: str, rel: str) -> None:
        """A broken symbolic link where a directory should be: name it and its target."""
        try:
            attrs = self.sftp.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(attrs.st_mode or 0):
            target = self.sftp.readlink(path) or "?"
            where = "outside remote_dir" if target.startswith("/") and not is_under(self._root, target) else "missing"
            raise DeliveryError(
                f"{self.name}: {path} is a symbolic link to {target} ({where}, and it does not exist); "
                f"remove it on the device so that {rel}/ can be made inside {self._root}",
                code="delivery.path_refused",
                endpoint=self.name,
            )

    def _lstat_inside(self, clean: PurePosixPath, rel: str) -> paramiko.SFTPAttributes | None:
        """Attributes of ``root/clean``, following a symbolic link only if it stays inside."""
        parent = self._dir(clean.parent, create=False)
        if parent is None:
            return None
        path = f"{parent}/{clean.name}"
        try:
            attrs = self.sftp.lstat(path)
            if stat.S_ISLNK(attrs.st_mode or 0):
                self._check_inside(self.sftp.normalize(path), rel)
                attrs = self.sftp.stat(path)
        except FileNotFoundError:
            return None
        return attrs

    # --- reading ----------------------------------------------------------------

    def list_dir(self, rel: str = "") -> list[str]:
        clean = check_rel(self.endpoint, rel, allow_root=True)
        with self._translating(f"listing {rel or '.'}"):
            path = self._dir(clean, create=False)
            if path is None:
                return []
            try:
                return sorted(self.sftp.listdir(path))
            except FileNotFoundError:
                return []

    def list_files(self, rel: str = "") -> dict[str, int]:
        """Regular files in ``root/rel`` with their sizes, in one request (no temp names)."""
        clean = check_rel(self.endpoint, rel, allow_root=True)
        with self._translating(f"listing {rel or '.'}"):
            path = self._dir(clean, create=False)
            if path is None:
                return {}
            try:
                entries = self.sftp.listdir_attr(path)
            except FileNotFoundError:
                return {}
        return {
            e.filename: e.st_size or 0 for e in entries if stat.S_ISREG(e.st_mode or 0) and not is_temp_name(e.filename)
        }

    def file_size(self, rel: str) -> int | None:
        clean = check_rel(self.endpoint, rel)
        with self._translating(f"reading the size of {rel}"):
            attrs = self._lstat_inside(clean, rel)
        if attrs is None or not stat.S_ISREG(attrs.st_mode or 0):
            return None
        return attrs.st_size or 0

    def read_bytes(self, rel: str, *, limit: int = 10_000_000) -> bytes | None:
        clean = check_rel(self.endpoint, rel)
        with self._translating(f"reading {rel}"):
            attrs = self._lstat_inside(clean, rel)
            if attrs is None or not stat.S_ISREG(attrs.st_mode or 0):
                return None
            if (attrs.st_size or 0) > limit:
                raise DeliveryError(
                    f"{self.name}: {rel} is larger than {limit} bytes; not read",
                    code="delivery.too_large",
                    endpoint=self.name,
                )
            try:
                with self.sftp.open(self._abs(clean), "rb") as f:
                    f.prefetch(attrs.st_size)
                    data = f.read(limit + 1)
            except FileNotFoundError:
                return None
        if len(data) > limit:
            raise DeliveryError(
                f"{self.name}: {rel} is larger than {limit} bytes; not read",
                code="delivery.too_large",
                endpoint=self.name,
            )
        return data

    def free_bytes(self) -> int | None:
        with self._translating("asking for free space"):
            return self._statvfs_free()

    def _free_or_none(self) -> int | None:
        try:
            return self._statvfs_free()
        except Exception:
            return None

    def _statvfs_free(self) -> int | None:
        """Bytes available to the user (f_bavail × f_frsize) via statvfs@openssh.com."""
        try:
            kind, msg = self.sftp._request(CMD_EXTENDED, "statvfs@openssh.com", self._root)  # type: ignore[attr-defined]
        except OSError as exc:
            if self._ssh is not None and self._ssh.is_active():
                return None  # the server does not offer the extension
            raise exc
        if kind != CMD_EXTENDED_REPLY:
            return None
        _bsize, frsize, _blocks, _bfree, bavail = (msg.get_int64() for _ in range(5))
        free: int = bavail * frsize
        return free

    # --- writing ----------------------------------------------------------------

    def put_file(self, local: Path, rel: str) -> int:
        try:
            src = local.open("rb")
        except OSError as exc:
            raise DeliveryError(
                f"{self.name}: cannot read the local file {local}: {exc}", code="delivery.outbox", endpoint=self.name
            ) from exc
        with src:
            return self._put(src, os.fstat(src.fileno()).st_size, rel)

    def put_bytes(self, data: bytes, rel: str) -> int:
        return self._put(io.BytesIO(data), len(data), rel)

    def _put(self, src: BinaryIO, size: int, rel: str) -> int:
        clean = check_rel(self.endpoint, rel)
        with self._translating(f"making the directory for {rel}", writing=True):
            parent = self._dir(clean.parent, create=True)
        assert parent is not None
        final = f"{parent}/{clean.name}"
        tmp = f"{parent}/{temp_name(clean.name)}"
        try:
            with self._translating(f"uploading {rel}", needed=size, writing=True):
                sent = self._upload(src, tmp)
                remote = self.sftp.stat(tmp).st_size
                if sent != size or remote != size:
                    full = self._no_space(f"uploading {rel}", size)
                    if full is not None:
                        raise full
                    raise TransientDeliveryError(
                        f"{self.name}: {rel}: {remote} bytes arrived of {size} "
                        f"({sent} sent; did the local file change?); will retry",
                        code="delivery.incomplete",
                        endpoint=self.name,
                    )
                self.sftp.posix_rename(tmp, final)
        except BaseException:
            self._discard(tmp)
            raise
        log.debug("%s: put %s (%d bytes)", self.name, rel, size)
        return sent

    def _upload(self, src: BinaryIO, tmp: str) -> int:
        """Pipelined write of ``src`` to ``tmp``: requests are not waited for one by one."""
        f = self.sftp.open(tmp, "wb")
        sent = 0
        try:
            f.set_pipelined(True)
            while chunk := src.read(CHUNK):
                f.write(chunk)
                sent += len(chunk)
            f.flush()
            self._wait_for_writes(f)
            f.close()
        except BaseException as exc:
            _abandon(f, drain=not isinstance(exc, _LINK_ERRORS))
            raise
        return sent

    def _wait_for_writes(self, f: paramiko.SFTPFile) -> None:
        """Read the status of every pipelined write still unanswered; raise the first error.

        paramiko's own ``close()`` does not: the answers to the last writes (a full disk
        shows there) would be skipped unread.
        """
        pending = f._reqs  # type: ignore[attr-defined]
        while pending:
            self.sftp._read_response(pending.popleft())  # type: ignore[attr-defined]

    def _discard(self, tmp: str) -> None:
        """Best effort: remove a temporary upload after a failure."""
        if self._sftp is None or self._ssh is None or not self._ssh.is_active():
            return  # left for remove_temps() on the next connection
        try:
            self._sftp.remove(tmp)
        except Exception as exc:
            log.debug("%s: could not remove %s: %s", self.name, tmp, exc)

    def remove(self, rel: str) -> None:
        clean = check_rel(self.endpoint, rel)
        with self._translating(f"removing {rel}", writing=True):
            parent = self._dir(clean.parent, create=False)
            if parent is None:
                return
            with contextlib.suppress(FileNotFoundError):
                self.sftp.remove(f"{parent}/{clean.name}")

    def move(self, rel: str, to: str) -> None:
        """Rename the file ``root/rel`` to ``root/to`` (parents made), replacing ``to``."""
        src, dst = check_rel(self.endpoint, rel), check_rel(self.endpoint, to)
        with self._translating(f"moving {rel} to {to}", writing=True):
            parent = self._dir(src.parent, create=False)
            if parent is None:
                raise DeliveryError(
                    f"{self.name}: cannot move {rel}: its directory is missing",
                    code="delivery.server_refused",
                    endpoint=self.name,
                )
            dst_parent = self._dir(dst.parent, create=True)
            self.sftp.posix_rename(f"{parent}/{src.name}", f"{dst_parent}/{dst.name}")

    def remove_dir(self, rel: str) -> None:
        clean = check_rel(self.endpoint, rel)
        with self._translating(f"removing the directory {rel}", writing=True):
            parent = self._dir(clean.parent, create=False)
            if parent is None:
                return
            path = f"{parent}/{clean.name}"
            try:
                self.sftp.rmdir(path)
            except FileNotFoundError:
                return
            except OSError as exc:
                if self.sftp.listdir(path):
                    raise DeliveryError(
                        f"{self.name}: cannot remove the directory {rel}: it is not empty",
                        code="delivery.server_refused",
                        endpoint=self.name,
                    ) from exc
                raise
            self._dirs_ok.discard(path)

    def remove_temps(self, rel: str = "") -> list[str]:
        removed = [n for n in self.list_dir(rel) if is_temp_name(n)]
        for name in removed:
            self.remove(f"{rel}/{name}" if rel not in ("", ".") else name)
        return removed


def _abandon(f: paramiko.SFTPFile, *, drain: bool) -> None:
    """Forget an open remote file after a failed write.

    Its pending write statuses may never come (the link is gone) or carry the error
    already raised; paramiko would wait for them again when the object is collected.
    ``drain``: the link still works, so close the handle properly (a server error).
    """
    if drain:
        with contextlib.suppress(Exception):
            f.close()
    f._closed = True  # type: ignore[attr-defined]
