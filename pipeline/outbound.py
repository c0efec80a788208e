"""The one outbound HTTP client: webhooks, CAP alerts by URL, vendor text-to-speech.

A URL from a config file or an operator may name any host; a host name may resolve to
anything, and differently on the next lookup. Every connection Loa opens to the outside
goes through :class:`GuardedBackend`, which decides on the RESOLVED address and then
connects to that very address (no second lookup, so no DNS-rebinding window):

* refused: loopback, link-local (169.254.169.254, the cloud metadata service), private
  (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10), multicast, reserved and
  unspecified addresses, and IPv4 hidden in IPv6 (``::ffff:127.0.0.1``);
* allowed anyway: loopback when ``[outbound] allow_loopback = true`` (tests, a developer's
  machine), and any network listed in ``[outbound] allow_networks`` (a receiver on the
  province's own network, e.g. ``["10.20.0.0/16"]``).

If any address a name resolves to is refused, the name is refused. A redirect is a new
connection and is checked the same way. TLS still verifies the certificate of the host
name (SNI and the check use the name, only the socket uses the checked address). The proxy
variables of the environment are ignored (``trust_env=False``). :func:`normalize_url`
gives the one spelling of a URL that allow-lists compare (``/cap/../secret`` is
``/secret``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from pipeline.config import OutboundSettings
from pipeline.errors import OutboundRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver); tests replace this function."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))


def refusal(ip: IPAddress, policy: OutboundSettings) -> str | None:
    """Why ``ip`` may not be reached under ``policy`` (``"loopback"``, ``"private"``…), or None."""
    if any(ip in net for net in policy.allow_networks):
        return None
    inner = _embedded_v4(ip)
    if inner is not None:
        why = refusal(inner, policy)
        return None if why is None else f"{why} (IPv4 inside IPv6)"
    if ip.is_loopback:
        return None if policy.allow_loopback else "loopback"
    for kind, hit in (
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if hit:
            return kind
    return None if ip.is_global else "not public"


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped or ip.sixtofour
    return None


def check_host(host: str, port: int, policy: OutboundSettings) -> list[IPAddress]:
    """The addresses of ``host`` that may be reached; ``OutboundRefused`` if any of them may not."""
    addresses = resolve(host, port)
    for ip in addresses:
        why = refusal(ip, policy)
        if why is not None:
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise OutboundRefused(
                f"{shown}: a {why} address; Loa does not send requests there. If this receiver is "
                "really on your own network, list its network in [outbound] allow_networks in loa.toml",
                code="outbound.refused",
                host=host,
                address=str(ip),
                kind=why,
            )
    if not addresses:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    return addresses


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, resolving and checking before it connects to the checked address."""

    def __init__(self, policy: OutboundSettings) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for ip in check_host(host, port, self.policy):
            try:
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next address of the name may answer
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise OutboundRefused("outbound requests go to TCP addresses only", code="outbound.unix")


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose every connection goes through :class:`GuardedBackend`."""

    def __init__(self, policy: OutboundSettings, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False, retries=0)
        pool = self._pool
        if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
            raise RuntimeError("httpx/httpcore changed: the outbound guard cannot be installed")  # pragma: no cover
        pool._network_backend = GuardedBackend(policy)


def client(
    policy: OutboundSettings,
    *,
    timeout_s: float,
    follow_redirects: bool = False,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An ``httpx.Client`` for the outside world: guarded, with timeouts, no proxy from the environment.

    ``verify``: an ``ssl.SSLContext`` trusting a given CA bundle instead of the system's."""
    connect = min(policy.connect_timeout_s, timeout_s)
    return httpx.Client(
        transport=GuardedTransport(policy, verify=verify),
        timeout=httpx.Timeout(timeout_s, connect=connect),
        follow_redirects=follow_redirects,
        max_redirects=5,
        trust_env=False,
    )


def normalize_url(url: str) -> str:
    """The one spelling of an http(s) URL: what allow-lists compare and what is fetched.

    Lower-case scheme and host (IDNA), no default port, no user name, no fragment;
    percent-escapes of unreserved characters decoded (``%2e`` is ``.``), the others in upper
    case; dot segments removed (RFC 3986 §5.2.4). An escaped ``/`` or ``\\`` in the path, a
    backslash, a space or a control character is refused (``ValueError``): servers disagree
    on what they mean.
    """
    if any(ord(c) <= 0x20 or c in "\\\x7f" for c in url):
        raise ValueError("spaces, backslashes and control characters are not allowed in a URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("only http and https URLs")
    if "@" in parts.netloc:
        raise ValueError("a user name or password in a URL is not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("no host in the URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("the port is not a number from 0 to 65535") from exc
    if ":" in host:
        netloc = f"[{ipaddress.ip_address(host).compressed}]"
    else:
        netloc = host.encode("idna").decode("ascii").lower()
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = _UNRESERVED.sub(_unescape, parts.path)
    if re.search(r"%(2F|5C)", path):
        raise ValueError("an escaped / or \\ in the path is not allowed")
    query = _UNRESERVED.sub(_unescape, parts.query)
    return urlunsplit((scheme, netloc, _remove_dot_segments(path) or "/", query, ""))


def _unescape(m: re.Match[str]) -> str:
    char = chr(int(m.group(1), 16))
    return char if char in _UNRESERVED_CHARS else f"%{m.group(1).upper()}"


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") or not path.startswith("/") else "/" + result


def url_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Whether the normalised ``url`` is an allowed URL or lies under an allowed prefix ending in "/"."""
    for entry in allowed:
        try:
            a = normalize_url(entry)
        except ValueError:
            continue
        if url == a or (entry.endswith("/") and a.endswith("/") and url.startswith(a)):
            return True
    return False
