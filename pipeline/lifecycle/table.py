"""The one table of a bulletin's life: (state, action) → next state, and who may act.

``move`` is what every action asks before it writes: the next state, or a ``UsageError``
with the code that says why not (``lifecycle.not_allowed`` with ``action``, ``state`` and
``role``; ``lifecycle.alert_cancelled`` for anything of a cancelled alert). The module
docstring of ``pipeline.lifecycle`` draws the same table for people.
"""

from __future__ import annotations

from pipeline.errors import UsageError
from pipeline.labels import BULLETIN, lower

NEW = "new"  # not stored yet
STATES = ("draft", "approved", "withdrawn", "superseded", "cancelled", "expired")
#: ``recording`` is attaching, replacing or removing one; ``decide`` is a commune's decision.
ACTIONS = ("submit", "revise", "recording", "approve", "withdraw", "cancel", "supersede", "expire", "decide")
ROLES = ("system", "admin", "editor", "approver", "agency", "operator", "device", "reader")

#: Who may do each action (``system`` is the CLI, the scheduler and CAP import).
WHO: dict[str, frozenset[str]] = {
    # culture-center staff write bulletins (editors and approvers alike), agencies submit theirs
    "submit": frozenset({"system", "admin", "editor", "approver", "agency"}),
    "revise": frozenset({"system", "admin", "editor", "approver", "agency"}),
    # a reader records the languages they read, in their scope (``load_in``, ``attach_recording``)
    "recording": frozenset({"system", "admin", "editor", "approver", "agency", "reader"}),
    "approve": frozenset({"system", "admin", "approver"}),
    "withdraw": frozenset({"system", "admin", "approver"}),
    "cancel": frozenset({"system"}),
    "supersede": frozenset({"system"}),
    "expire": frozenset({"system"}),
    "decide": frozenset({"admin", "operator", "device"}),
}
#: Roles that may attach or replace a recording but not remove one (``remove_recording``).
ATTACH_ONLY = frozenset({"reader"})

#: What the Vietnamese messages (``pipeline/messages.py``) call the states, actions and roles.
STATE_VI = {NEW: "mới"} | {state: lower(BULLETIN, state) for state in STATES}  # pipeline/labels.py
ACTION_VI = {
    "submit": "gửi bản tin",
    "revise": "sửa bản tin",
    "recording": "thay đổi bản ghi",
    "approve": "duyệt",
    "withdraw": "thu hồi",
    "cancel": "hủy",
    "supersede": "thay thế",
    "expire": "cho hết hạn",
    "decide": "quyết định phát",
}
ROLE_VI = {
    "system": "hệ thống",
    "admin": "quản trị viên",
    "editor": "biên tập viên",
    "approver": "người duyệt",
    "agency": "cơ quan gửi tin",
    "operator": "đài truyền thanh xã",
    "device": "thiết bị",
    "reader": "người đọc",
}

_D, _A, _W, _S, _C, _E = STATES
#: (state, action) → next state; a pair that is missing is refused.
TABLE: dict[tuple[str, str], str] = {
    (NEW, "submit"): _D,
    # a draft
    (_D, "revise"): _D,
    (_D, "recording"): _D,
    (_D, "approve"): _A,
    (_D, "withdraw"): _W,
    (_D, "cancel"): _C,
    (_D, "supersede"): _S,
    (_D, "expire"): _E,
    # approved: any change to what airs sends it back to draft
    (_A, "revise"): _D,
    (_A, "recording"): _D,
    (_A, "approve"): _A,
    (_A, "withdraw"): _W,
    (_A, "cancel"): _C,
    (_A, "supersede"): _S,
    (_A, "expire"): _E,
    (_A, "decide"): _A,
    # withdrawn: a changed version makes a new draft
    (_W, "revise"): _D,
    (_W, "withdraw"): _W,
    (_W, "cancel"): _C,
    # superseded by a newer version of its alert: only a Cancel still reaches it
    (_S, "supersede"): _S,
    (_S, "cancel"): _C,
    # cancelled: the end, for every version of the alert
    (_C, "cancel"): _C,
    # expired: a revision with new dates makes a new draft
    (_E, "revise"): _D,
    (_E, "withdraw"): _W,
    (_E, "cancel"): _C,
    (_E, "expire"): _E,
}


def refusal_code(state: str, action: str, role: str) -> str | None:
    """None when ``role`` may do ``action`` to a bulletin in ``state``; else the error code."""
    if role not in WHO[action]:
        return "lifecycle.not_allowed"
    if (state, action) in TABLE:
        return None
    return "lifecycle.alert_cancelled" if state == _C else "lifecycle.not_allowed"


def refuse_removal(state: str, role: str, *, bulletin_id: int) -> None:
    """A role in ``ATTACH_ONLY`` may not remove a recording: ``lifecycle.not_allowed``."""
    if role in ATTACH_ONLY:
        raise UsageError(
            f"bulletin {bulletin_id}: a {role} may attach or replace a recording, not remove one",
            code="lifecycle.not_allowed",
            action="recording",
            state=state,
            role=role,
            bulletin=bulletin_id,
            action_vi="gỡ bản ghi",
            state_vi=STATE_VI.get(state, state),
            role_vi=ROLE_VI[role],
        )


def move(state: str, action: str, role: str, *, bulletin_id: int | None = None) -> str:
    """The state after ``action``, or a ``UsageError`` with the refusal's code and fields."""
    code = refusal_code(state, action, role)
    if code is None:
        return TABLE[(state, action)]
    what = f"bulletin {bulletin_id}" if bulletin_id is not None else "a new bulletin"
    vi = {"action_vi": ACTION_VI[action], "state_vi": STATE_VI.get(state, state), "role_vi": ROLE_VI.get(role, role)}
    if code == "lifecycle.alert_cancelled":
        raise UsageError(
            f"{what}: its alert was cancelled by its issuer; nothing of it can be approved or changed again",
            code=code,
            action=action,
            state=state,
            role=role,
            bulletin=bulletin_id,
            **vi,
        )
    why = f"a {role} may not {action}" if role not in WHO[action] else f"cannot {action} a bulletin that is {state}"
    raise UsageError(f"{what}: {why}", code=code, action=action, state=state, role=role, bulletin=bulletin_id, **vi)
