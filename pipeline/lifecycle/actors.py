"""Who acts on a bulletin: the CLI or the system, a web user, an agency, an operator, a device.

An ``Actor`` is a value the door builds once it has authenticated someone; the domain
decides from it what that someone may do (its ``role`` in the table, and its scope: the
communes it may address, and for an agency the bulletins it submitted).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.models import Deployment
from pipeline.store.agencies import Agency
from pipeline.store.users import User


@dataclass(frozen=True, slots=True)
class Actor:
    role: str  # one of table.ROLES
    name: str  # what the audit log names: "cli", a user name, "agency:…", "endpoint:…", "cap:…"
    communes: frozenset[str] | None = None  # the communes it may address; None: every one
    agency: str | None = None  # an agency acts only on bulletins it submitted
    client: str | None = None  # the client address, when a door knows it
    languages: frozenset[str] | None = None  # a reader acts on recordings of these languages only

    @property
    def scoped(self) -> bool:
        return self.communes is not None


def reader_communes(user: User, deployment: Deployment) -> frozenset[str]:
    """The communes of a reader's scope (groups and communes); every commune when it is empty."""
    if not user.scope:
        return frozenset(c.code for c in deployment.communes)
    return frozenset(c.code for c in deployment.targeted(user.scope))


def cli() -> Actor:
    return Actor("system", "cli")


def system(name: str = "system") -> Actor:
    """The scheduler, CAP import (``cap:<sender>``), the benchmark, the demo."""
    return Actor("system", name)


def web_user(user: User, deployment: Deployment, *, client: str | None = None) -> Actor:
    """A staff member, an operator or a reader logged in to the web: role, scope (and a reader's languages)."""
    if user.role == "reader":
        return Actor("reader", user.name, reader_communes(user, deployment), client=client,
                     languages=frozenset(user.languages))  # fmt: skip
    communes: frozenset[str] | None = None
    if user.role != "admin":
        if user.commune:
            communes = frozenset({user.commune})
        elif user.group:
            communes = frozenset(c.code for c in deployment.communes if c.group == user.group)
    return Actor(user.role, user.name, communes, client=client)


def agency(a: Agency, deployment: Deployment) -> Actor:
    """An agency with its API token: its scope, and only its own bulletins."""
    communes = None if "all" in a.scope else frozenset(c.code for c in deployment.targeted(a.scope))
    return Actor("agency", f"agency:{a.name}", communes, agency=a.name)


def device(endpoint: str, commune: str) -> Actor:
    """A commune's device (endpoint token): acts for its commune only."""
    return Actor("device", f"endpoint:{endpoint}", frozenset({commune}))
