"""The frozen dataclasses that stages hand to each other.

Paths are ``Path``, durations are integer milliseconds, times are timezone-aware.
Change a value with ``dataclasses.replace``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loa_protocol.manifest import Source as _Source

#: BCP 47 tags Loa knows, in the order of the display names (Vietnamese).
LANGUAGES: dict[str, str] = {
    "vi": "Tiếng Việt",
    "hmn": "Tiếng Mông",
    "ium": "Tiếng Dao",
    "pcc": "Tiếng Giáy",
}
#: Languages spoken by text-to-speech; the others come from recordings.
TTS_LANGUAGES = frozenset({"vi"})

CATEGORIES = ("policy", "notice", "emergency", "storm", "flood")
#: Categories whose emergency bulletins replay every 2 hours unless the bulletin says otherwise.
REPLAYED_CATEGORIES = frozenset({"emergency", "storm", "flood"})
#: The three tiers of Circular 39/2020/TT-BTTTT, most pressing first: khẩn cấp (at once,
#: replayed), ưu tiên (the commune's next slot, ahead of the rest), thông thường (the
#: commune decides whether and when). The stored value is the English name.
TIERS = ("emergency", "priority", "normal")
PRIORITIES = TIERS
#: Vietnamese display names of the tiers (web, docs, reports).
#: Names of round one, still read in bulletin files and old rows: the one mapping table.
TIER_ALIASES: dict[str, str] = {"routine": "normal", "urgent": "priority", "emergency": "emergency"}
STATUSES = ("draft", "approved", "withdrawn", "superseded", "cancelled")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def tier_of(name: str) -> str | None:
    """The tier a priority name stands for (a tier name or an old name), None when unknown."""
    return name if name in TIERS else TIER_ALIASES.get(name)


# --- deployment -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    start: dt.time
    max_minutes: int
    days: tuple[str, ...] = WEEKDAYS

    def runs_on(self, day: dt.date) -> bool:
        return WEEKDAYS[day.weekday()] in self.days


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    commune: str  # commune code
    transport: str  # "sftp" | "local"
    format: str = "playlist"  # "playlist" | "single"
    host: str | None = None
    port: int = 22
    user: str | None = None
    key_file: Path | None = None
    host_key: str | None = None  # "ssh-ed25519 AAAA…", pinned
    remote_dir: str | None = None
    path: Path | None = None  # local transport


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    name: str
    group: str | None
    languages: tuple[str, ...]
    slots: tuple[Slot, ...]
    endpoints: tuple[Endpoint, ...] = ()
    kind: str = "xã"  # xã | phường | thị trấn, as the greeting says it
    policy: Policy | None = None  # the commune's own [commune.policy]; pipeline.broadcast.guard merges it

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)


@dataclass(frozen=True, slots=True)
class Deployment:
    timezone: str
    groups: tuple[Group, ...]
    communes: tuple[Commune, ...]
    files: tuple[Path, ...] = ()
    cap_areas: tuple[CapAreaRule, ...] = ()  # [[cap_area]]: CAP area → communes
    policy: Policy | None = None  # [policy] in schedules/: the deployment's broadcast rules

    def commune(self, code: str) -> Commune | None:
        return next((c for c in self.communes if c.code == code), None)

    def group(self, group_id: str) -> Group | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for c in self.communes for e in c.endpoints)

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints() if e.name == name), None)

    def targeted(self, targets: tuple[str, ...]) -> tuple[Commune, ...]:
        """The communes a bulletin's ``targets`` reach: "all", group ids, commune codes."""
        if "all" in targets:
            return self.communes
        wanted = set(targets)
        return tuple(c for c in self.communes if c.code in wanted or c.group in wanted)


# --- bulletins ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bulletin:
    title: str
    category: str
    priority: str
    source: str
    reference: str
    valid_from: dt.date
    valid_until: dt.date
    targets: tuple[str, ...]
    languages: tuple[str, ...]
    body: str
    id: int | None = None
    revision: int = 1
    status: str = "draft"
    content_hash: str = ""
    source_file: str | None = None
    created_at: dt.datetime | None = None
    approved_at: dt.datetime | None = None
    withdrawn_at: dt.datetime | None = None
    policy: str = ""  # the policy this bulletin belongs to ("" for none)
    stage: str = ""  # its stage in the policy's life (POLICY_STAGES)
    consultation: ConsultationSpec | None = None  # a draft put to the people
    public: bool = True  # false: internal, never published beyond the loudspeaker

    #: Emergency replay cadence (front matter ``replay_every_minutes``); None: the default
    #: of ``pipeline.broadcast.replay.replay_every`` (120 for storm and flood warnings, else no replay).
    replay_every_minutes: int | None = None
    #: Where a CAP 1.2 alert made it: its identifier, sender, sent time and references
    #: ("sender,identifier,sent" as CAP writes them); the bulletin it supersedes.
    cap_identifier: str | None = None
    cap_sender: str | None = None
    cap_sent: dt.datetime | None = None
    cap_references: tuple[str, ...] = ()
    supersedes: int | None = None

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


@dataclass(frozen=True, slots=True)
class Recording:
    bulletin_id: int
    language: str
    path: Path  # inside data_dir/recordings, under a generated name
    duration_ms: int
    sha256: str
    original_name: str
    codec: str = ""
    sample_rate: int = 0
    channels: int = 0
    id: int | None = None
    created_at: dt.datetime | None = None
    transcript: str = ""  # the text as read, in ``language`` (a reader types it): archive and feeds


# --- plan and script ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedBulletin:
    bulletin: Bulletin
    languages: tuple[str, ...]  # the commune's languages the bulletin lists, commune order
    estimated_ms: int


@dataclass(frozen=True, slots=True)
class Deferral:
    """A bulletin left out of a program: why (English ``reason``), and ``kind``, what the views key on."""

    bulletin: Bulletin
    reason: str
    until_slot: str | None = None  # the next slot it is deferred to ("HH slot" or "YYYY-MM-DD slot")
    #: "time" (the slot is full), "language" (none of the commune's), "declined" or "deferred" (by the commune)
    kind: str = "time"


@dataclass(frozen=True, slots=True)
class ProgramPlan:
    date: dt.date
    commune: Commune
    slot: Slot
    items: tuple[PlannedBulletin, ...]
    deferred: tuple[Deferral, ...] = ()
    kind: str = "program"  # "program" | "emergency"

    @property
    def estimated_ms(self) -> int:
        return sum(i.estimated_ms for i in self.items)


CUE_KINDS = ("speech", "say", "chime", "pause", "clip", "recording", "comment")


@dataclass(frozen=True, slots=True)
class Cue:
    kind: str  # one of CUE_KINDS
    line: int  # line number in the cue sheet
    text: str = ""  # speech/say text, comment text
    language: str = "vi"
    key: str = ""  # clip "lang/key", chime name
    bulletin_id: int | None = None
    ms: int = 0  # pause length


@dataclass(frozen=True, slots=True)
class Gap:
    """Something a script lacks: a bulletin's recording in one language (``kind`` "recording").

    ``str()`` is the English line the CLI prints and the run report keeps; the web shows
    ``pipeline.messages.gap_vi`` of it, from ``code`` and ``fields``, never from that line.
    """

    kind: str
    bulletin: int
    title: str
    language: str

    @property
    def code(self) -> str:
        return f"compose.gap.{self.kind}"

    @property
    def fields(self) -> dict[str, object]:
        return {"bulletin": self.bulletin, "title": self.title, "language": self.language}

    def __str__(self) -> str:
        return f"bulletin {self.bulletin} ({self.title}): no {self.language} {self.kind}"


@dataclass(frozen=True, slots=True)
class Script:
    name: str  # e.g. "02641/2026-12-01/morning"
    text: str  # the cue sheet as rendered
    cues: tuple[Cue, ...]
    missing: tuple[Gap, ...] = ()  # recordings reported missing


# --- audio ----------------------------------------------------------------------


# Source is part of the manifest, so the protocol package owns it (``loa_protocol.manifest``).
Source = _Source


@dataclass(frozen=True, slots=True)
class Segment:
    key: str  # content hash; the file is media/<key>.mp3
    path: Path  # encoded MP3 in the segment cache
    duration_ms: int
    kind: str  # cue kind it came from
    language: str
    title: str
    bytes: int
    sha256: str
    bulletin_id: int | None = None
    engine: str | None = None  # which TTS engine spoke it
    loudness_lufs: float | None = None
    reused: bool = False
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class Program:
    id: str  # "<commune>/<date>/<slot>" or "<commune>/emergency/<bulletin>"
    commune: str
    date: dt.date
    slot: str
    start: dt.datetime
    priority: str
    valid_until: dt.date
    items: tuple[Segment, ...]
    kind: str = "program"
    missing: tuple[str, ...] = field(default=())

    @property
    def duration_ms(self) -> int:
        return sum(s.duration_ms for s in self.items)


# --- delivery -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    endpoint: str
    commune: str
    program: str  # program id, or "<date>" for a whole day
    status: str  # "delivered" | "failed" | "pending"
    attempts: int = 0
    files_sent: int = 0
    files_skipped: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    error: str | None = None  # the English text (CLI, logs)
    finished_at: dt.datetime | None = None
    state: str | None = None  # what the endpoint holds afterwards (``pipeline.deliver.held_state``)
    error_code: str | None = None  # the error's code: the web shows ``messages.delivery_error_vi`` of it
    error_fields: dict[str, object] = field(default_factory=dict)  # the fields that fill its message
    transient: bool = False  # it failed in a way a later attempt may not (TransientDeliveryError); not stored


# --- records the store keeps ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the job: nightly, build, push, dispatch, retry, missed."""

    id: int
    kind: str
    date: dt.date | None
    status: str  # running | done | partial | failed
    started_at: dt.datetime | None
    finished_at: dt.datetime | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    failures: tuple[dict[str, Any], ...] = ()
    host: str | None = None
    pid: int | None = None
    heartbeat_at: dt.datetime | None = None  # the running process's last beat


@dataclass(frozen=True, slots=True)
class ProgramRecord:
    """A program built for a commune and slot, as the store remembers it."""

    id: str
    commune: str
    date: dt.date
    slot: str
    kind: str
    priority: str
    duration_ms: int
    items: tuple[str, ...]  # segment keys
    missing: tuple[str, ...]
    built_at: dt.datetime | None


# --- policies and consultations -------------------------------------------------

#: A policy's life, in order: the draft put to the people, the promulgated text, guidance.
POLICY_STAGES = ("draft", "promulgated", "guidance")
QUESTION_KINDS = ("yesno", "choice", "text")
#: Where an answer came from.
ANSWER_CHANNELS = ("web", "meeting", "device")


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    kind: str  # one of QUESTION_KINDS
    choices: tuple[str, ...] = ()  # for "choice"


@dataclass(frozen=True, slots=True)
class ConsultationSpec:
    """A campaign as a draft bulletin's ``[consultation]`` front matter declares it."""

    code: str  # short, said on the phone: "GY27"
    opens: dt.date
    closes: dt.date
    agency: str  # the drafting agency that receives the result
    questions: tuple[Question, ...]

    def open_on(self, day: dt.date) -> bool:
        return self.opens <= day <= self.closes


@dataclass(frozen=True, slots=True)
class Consultation:
    """A stored campaign: its spec, the bulletin that declares it, the communes it targets."""

    id: int
    spec: ConsultationSpec
    bulletin_id: int
    title: str
    policy: str
    targets: tuple[str, ...]  # the bulletin's targets ("all", groups, commune codes)
    bulletin_status: str = "draft"
    agency_answer: str = ""  # what the drafting agency answered, for the follow-up
    followup_bulletin_id: int | None = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: a citizen's form, a village meeting's record, or a device's submission.

    ``values`` holds one text per question (yes/no as "yes"/"no", a choice as its text,
    free text as written; "" when left empty). Personal fields may be erased later
    (``erased_at``); the values and counts stay.
    """

    consultation_id: int
    channel: str  # one of ANSWER_CHANNELS
    values: tuple[str, ...]
    commune: str = ""  # commune code, "" when not given
    language: str = "vi"
    people: int = 1  # a village meeting speaks for many
    notes: tuple[str, ...] = ()  # a village meeting's gist per question
    name: str = ""
    phone: str = ""
    consent: bool = False
    topic: str = ""
    hidden: bool = False
    merged_into: int | None = None
    recording: str = ""  # path of a converted voice message, under data_dir
    source: str = ""  # endpoint name, operator user name, or "public"
    id: int | None = None
    created_at: dt.datetime | None = None
    erased_at: dt.datetime | None = None


# --- broadcast rules: operator decisions ------------------------------------------

#: What a commune's operator decides about a normal-tier (thông thường) bulletin.
DECISIONS = ("accepted", "deferred", "declined")


@dataclass(frozen=True, slots=True)
class Decision:
    """A commune's decision on a normal bulletin: air it, not before ``until``, or not at all."""

    bulletin_id: int
    commune: str  # commune code
    decision: str  # one of DECISIONS
    until: dt.date | None = None  # deferred: not before this day
    reason: str = ""  # declined: why (required); deferred: optional
    by: str = ""  # "user:<name>" or "endpoint:<name>"
    decided_at: dt.datetime | None = None


# --- broadcast rules: CAP areas and the policy guard ---------------------------------


@dataclass(frozen=True, slots=True)
class CapAreaRule:
    """One row of the CAP area table (``[[cap_area]]`` in schedules/): an area → communes.

    Exactly one of ``geocode`` (a ``<geocode><value>``, optionally only under the
    ``<valueName>`` given) or ``area_desc`` (an ``<areaDesc>``, compared without case and
    extra spaces) says which CAP areas it matches.
    """

    communes: tuple[str, ...]  # commune codes (group ids are expanded when the deployment loads)
    geocode: str | None = None
    value_name: str | None = None
    area_desc: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """Broadcast rules of a deployment or a commune (``[policy]``); None means no limit.

    ``quiet_hours``: (start, end) local times, e.g. 22:00–05:00, when only emergencies air.
    """

    quiet_hours: tuple[dt.time, dt.time] | None = None
    max_program_minutes: int | None = None
    max_replays_per_day: int | None = None
    required_languages: tuple[str, ...] = ()
