"""Passwords (argon2), signed session cookies backed by a session table, CSRF, rate limits, roles.

Every route depends on exactly one of ``require_role(...)`` (pages), ``require_commune``
(an operator's commune pages) or the API's bearer token; POST routes also depend on
``check_csrf``. Anonymous page requests go to the login page; a user without the role
gets 403; a resource outside the user's scope is 404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request
from itsdangerous import BadSignature, Signer

from pipeline.files import local_secret
from pipeline.lifecycle.actors import reader_communes
from pipeline.models import Bulletin, Deployment
from pipeline.store import users as user_store
from pipeline.store.users import User
from pipeline.web.state import web_state

SESSION_COOKIE = "loa_session"
PRELOGIN_COOKIE = "loa_prelogin"  # double-submit CSRF token for the login form
CSRF_FIELD = "csrf_token"
SESSION_LIFETIME = dt.timedelta(hours=12)
#: OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): about 0.1 s a check on a small server.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


# --- secrets --------------------------------------------------------------------


def load_secret_key(data_dir: Path) -> bytes:
    """``data_dir/secret_key``, created (mode 0600) with 32 random bytes on first start."""
    return local_secret(data_dir / "secret_key")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class SessionCodec:
    """Signs the random session id (and the pre-login CSRF token) put in cookies."""

    def __init__(self, secret: bytes) -> None:
        self._session = Signer(secret, salt="loa-session")
        self._prelogin = Signer(secret, salt="loa-prelogin")

    def session_cookie(self, session_id: str) -> str:
        return self._session.sign(session_id).decode()

    def session_id(self, cookie: str | None) -> str | None:
        return _unsign(self._session, cookie)

    def prelogin_cookie(self, token: str) -> str:
        return self._prelogin.sign(token).decode()

    def prelogin_token(self, cookie: str | None) -> str | None:
        return _unsign(self._prelogin, cookie)


def _unsign(signer: Signer, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return signer.unsign(value).decode()
    except BadSignature:
        return None


# --- login rate limit -----------------------------------------------------------


class RateLimiter:
    """Failed logins per (user name, client address) within a sliding minute."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds before ``key`` may try again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            q = self._failures.get(key)
            if not q:
                return 0.0
            while q and q[0] <= now - self.window_s:
                q.popleft()
            if len(q) < self.limit:
                return 0.0
            return max(0.1, q[0] + self.window_s - now)

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # forget keys idle for a window (bounded memory)
                idle = [k for k, q in self._failures.items() if not q or q[-1] <= now - self.window_s]
                for k in idle:
                    del self._failures[k]
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class AccountBackoff:
    """Failed logins in a row per account, whatever the client: waits that double, then a lock.

    After ``after`` failures each next try waits 1 s, 2 s, 4 s … (at most ``max_wait_s``)
    from the last failure; ``failed`` returns True when ``lock_after`` is reached (the
    caller locks the account in the store, until an admin unlocks it).
    """

    def __init__(self, after: int, lock_after: int, max_wait_s: float = 300.0) -> None:
        self.after = after
        self.lock_after = lock_after
        self.max_wait_s = max_wait_s
        self._state: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, name: str) -> float:
        with self._lock:
            count, last = self._state.get(name, (0, 0.0))
        if count < self.after:
            return 0.0
        wait = min(2.0 ** (count - self.after), self.max_wait_s) - (time.monotonic() - last)
        return max(0.0, wait)

    def failed(self, name: str) -> bool:
        with self._lock:
            if len(self._state) > 10_000:
                cutoff = time.monotonic() - self.max_wait_s
                for k in [k for k, (_, t) in self._state.items() if t < cutoff]:
                    del self._state[k]
            count = self._state.get(name, (0, 0.0))[0] + 1
            self._state[name] = (count, time.monotonic())
        return count >= self.lock_after

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._state.pop(name, None)


@dataclass
class LoginGuard:
    """The three login limits: per (account, client), per client, per account."""

    pair: RateLimiter
    client: RateLimiter
    account: AccountBackoff

    @classmethod
    def for_settings(cls, per_minute: int, account_after: int, lock_after: int) -> LoginGuard:
        return cls(RateLimiter(per_minute), RateLimiter(per_minute * 4), AccountBackoff(account_after, lock_after))

    def wait_s(self, name: str, client: str) -> float:
        return max(self.pair.wait_s(f"{name}|{client}"), self.client.wait_s(client), self.account.wait_s(name))

    def failed(self, name: str, client: str) -> bool:
        """Count a failure; True when the account must now be locked."""
        self.pair.failed(f"{name}|{client}")
        self.client.failed(client)
        return self.account.failed(name)

    def succeeded(self, name: str, client: str) -> None:
        self.pair.succeeded(f"{name}|{client}")
        self.account.succeeded(name)


# --- who is asking --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authed:
    user: User
    csrf_token: str
    session_id: str


class LoginRequired(Exception):
    """An anonymous request for a page: the app answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def current(request: Request) -> Authed | None:
    state = web_state(request)
    session_id = state.codec.session_id(request.cookies.get(SESSION_COOKIE))
    if session_id is None:
        return None
    found = user_store.session_user(state.db, session_id)
    if found is None:
        return None
    return Authed(found[0], found[1], session_id)


def require_login(request: Request) -> Authed:
    who = current(request)
    if who is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    request.state.authed = who
    return who


def require_role(*roles: str) -> Callable[[Request], Authed]:
    """A dependency: a logged-in user with one of ``roles`` (admin always passes)."""

    def dependency(request: Request) -> Authed:
        who = require_login(request)
        if who.user.role != "admin" and who.user.role not in roles:
            raise HTTPException(status_code=403, detail="Tài khoản của bạn không có quyền làm việc này.")
        return who

    dependency.__name__ = f"require_{'_'.join(roles)}"
    return dependency


def require_commune(code: str, request: Request) -> Authed:
    """A dependency for ``/communes/{code}/…``: a user whose scope includes that commune, else 404."""
    who = require_login(request)
    state = web_state(request)
    if who.user.role == "reader":  # a reader has the reading queue, not the commune's pages
        raise HTTPException(status_code=404, detail="Không tìm thấy xã này.")
    if state.deployment.commune(code) is None or code not in scope_communes(who.user, state.deployment):
        raise HTTPException(status_code=404, detail="Không tìm thấy xã này.")
    return who


async def check_csrf(request: Request, who: Annotated[Authed, Depends(require_login)]) -> None:
    """Every POST form carries the session's token in ``csrf_token``."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, who.csrf_token):
        raise HTTPException(
            status_code=403, detail="Biểu mẫu đã hết hạn hoặc không hợp lệ; hãy tải lại trang và thử lại."
        )


LoggedIn = Annotated[Authed, Depends(require_login)]
Reader = Annotated[Authed, Depends(require_role("editor", "approver"))]
Editor = Annotated[Authed, Depends(require_role("editor"))]
Approver = Annotated[Authed, Depends(require_role("approver"))]
CommuneUser = Annotated[Authed, Depends(require_commune)]


# --- scope ----------------------------------------------------------------------


def scope_communes(user: User, deployment: Deployment) -> set[str]:
    """The commune codes a user may see."""
    if user.role == "admin":
        return {c.code for c in deployment.communes}
    if user.role == "reader":  # groups and communes, every one when empty
        return set(reader_communes(user, deployment))
    if user.commune:
        return {user.commune}
    if user.group:
        return {c.code for c in deployment.communes if c.group == user.group}
    return {c.code for c in deployment.communes}


def scope_is_all(user: User) -> bool:
    if user.role == "reader":
        return not user.scope
    return user.role == "admin" or (not user.commune and not user.group)


def may_see_bulletin(user: User, b: Bulletin, deployment: Deployment) -> bool:
    if scope_is_all(user):
        return True
    reached = {c.code for c in deployment.targeted(b.targets)}
    return bool(reached & scope_communes(user, deployment))
