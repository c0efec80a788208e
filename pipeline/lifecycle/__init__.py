"""A bulletin's life: every change to a bulletin, from whatever door, goes through here.

Doors (the CLI, the web form and buttons, the agency API, CAP import, the consultation
follow-up, operators and devices) parse, authenticate and present; they build an ``Actor``
and call one function here. Each function is one transaction that checks the table below
and who may act, writes the change, its audit entry and its webhook event, and returns a
frozen dataclass. The table is ``table.TABLE`` and ``table.WHO``; the code asks it
(``table.move``) before every write::

    state \\ action  submit  revise  recording  approve   withdraw   cancel     supersede   expire   decide
    new             draft   ·       ·          ·         ·          ·          ·           ·        ·
    draft           ·       draft   draft      approved  withdrawn  cancelled  superseded  expired  ·
    approved        ·       draft   draft      approved  withdrawn  cancelled  superseded  expired  approved
    withdrawn       ·       draft   ·          ·         withdrawn  cancelled  ·           ·        ·
    superseded      ·       ·       ·          ·         ·          cancelled  superseded  ·        ·
    cancelled       ✗       ✗       ✗          ✗         ✗          cancelled  ✗           ✗        ✗
    expired         ·       draft   ·          ·         withdrawn  cancelled  ·           expired  ·

    who may         system  system  system     system    system     system     system      system   admin
                    admin   admin   admin      admin     admin                                      operator
                    editor  editor  editor     approver  approver                                   device
                    approver approver approver
                    agency  agency  agency
                                    reader

    ·  refused: ``lifecycle.not_allowed`` (fields action, state, role)
    ✗  refused: ``lifecycle.alert_cancelled`` — nothing of a cancelled alert moves again
    a role outside "who may" is refused with ``lifecycle.not_allowed`` whatever the state

Submitting a bulletin whose title and source name a stored one is a ``revise`` of it.
``recording`` is attaching, replacing or removing the recording of one language; a
``reader`` attaches or replaces (never removes) recordings of the languages they read, for
bulletins that air in a commune of their scope in one of those languages
(``lifecycle.language_not_yours`` otherwise).

Rules that hold from every door:

- **Approval covers exactly what airs**: the revision and every current recording's
  sha256 (``store/approvals.py``); any change after approval (a revision, a recording
  added, replaced or removed) returns the bulletin to draft.
- **Scope**: a web user acts within its group or commune, an agency within its scope and
  only on the bulletins it submitted, an operator or a device for its own commune; a
  bulletin outside one's scope is "not found" (``lifecycle.not_found``), a target outside
  it is ``lifecycle.out_of_scope``.
- **CAP** (``alerts.py``): an Update supersedes every unapproved version of its alert at
  once, and the approved version when the Update is approved; a Cancel ends every live version;
  nothing of a cancelled alert can be approved again.
- **Idempotency** (an agency's ``Idempotency-Key``, a CAP identifier) is written in the
  same transaction as the save it names.
"""

from __future__ import annotations

from pipeline.lifecycle.actions import (
    Change,
    approve,
    check,
    end,
    expire,
    outside_scope,
    revise,
    submit,
    submit_all,
    submit_followup,
    withdraw,
)
from pipeline.lifecycle.actors import Actor, agency, cli, device, system, web_user
from pipeline.lifecycle.alerts import CapChange, cancel_alert, import_version, note_message
from pipeline.lifecycle.decisions import decide
from pipeline.lifecycle.recordings import RecordingChange, attach_recording, remove_recording
from pipeline.lifecycle.table import ACTIONS, ROLES, STATES, TABLE, WHO, move, refusal_code

__all__ = [
    "ACTIONS",
    "ROLES",
    "STATES",
    "TABLE",
    "WHO",
    "Actor",
    "CapChange",
    "Change",
    "RecordingChange",
    "agency",
    "approve",
    "attach_recording",
    "cancel_alert",
    "check",
    "cli",
    "decide",
    "device",
    "end",
    "expire",
    "import_version",
    "move",
    "note_message",
    "outside_scope",
    "refusal_code",
    "remove_recording",
    "revise",
    "submit",
    "submit_all",
    "submit_followup",
    "system",
    "web_user",
    "withdraw",
]
