"""The deployment: groups, communes, their languages, slots and endpoints.

Every ``schedules/*.toml`` file is read and merged (in name order). Each file is
checked on its own (unknown keys, types, times, days) and then the whole is checked
(unique commune codes and endpoint names, known groups). Errors name the file and the
field, e.g. ``schedules/lao-cai.toml: commune[3] (Y Tý).endpoint[0].host_key: …``.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError
from pipeline.models import LANGUAGES, WEEKDAYS, CapAreaRule, Commune, Deployment, Endpoint, Group, Policy, Slot

_NAME_RE = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_HOST_KEY_RE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]{40,}( .*)?$")


class _Raw(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawSlot(_Raw):
    name: str = Field(pattern=_NAME_RE)
    start: str
    max_minutes: int = Field(ge=1, le=240)
    days: list[str] = list(WEEKDAYS)

    @field_validator("start")
    @classmethod
    def _time(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f'{v!r} is not a time of day; write HH:MM, e.g. "05:30"')
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        bad = [d for d in v if d not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown day {bad[0]!r}; use {', '.join(WEEKDAYS)}")
        if not v:
            raise ValueError("a slot must run on at least one day")
        return v


class RawEndpoint(_Raw):
    name: str = Field(pattern=_NAME_RE)
    transport: Literal["sftp", "local"]
    format: Literal["playlist", "single"] = "playlist"
    host: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = None
    key_file: str | None = None
    host_key: str | None = None
    remote_dir: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _per_transport(self) -> RawEndpoint:
        if self.transport == "sftp":
            for key in ("host", "user", "key_file", "remote_dir"):
                if not getattr(self, key):
                    raise ValueError(f"an sftp endpoint needs {key}")
            if not self.host_key:
                raise ValueError(
                    "an sftp endpoint needs host_key, the device's pinned public key; "
                    f"get it with: ssh-keyscan -p {self.port} {self.host}"
                )
            if not _HOST_KEY_RE.match(self.host_key):
                raise ValueError('host_key must look like "ssh-ed25519 AAAAC3Nz…" (a line of ssh-keyscan)')
            if self.path:
                raise ValueError("path is for local endpoints; an sftp endpoint uses remote_dir")
        else:
            if not self.path:
                raise ValueError("a local endpoint needs path (a directory)")
            extra = [k for k in ("host", "user", "key_file", "host_key", "remote_dir") if getattr(self, k)]
            if extra:
                raise ValueError(f"{extra[0]} is for sftp endpoints; a local endpoint uses path")
        return self


class RawPolicy(_Raw):
    """``[policy]`` (the deployment) or ``[commune.policy]`` (one commune): broadcast rules."""

    quiet_hours: list[str] | None = None  # ["22:00", "05:00"]
    max_program_minutes: int | None = Field(default=None, ge=1, le=240)
    max_replays_per_day: int | None = Field(default=None, ge=0, le=288)
    required_languages: list[str] | None = None

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if len(v) != 2 or not all(re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t) for t in v):
            raise ValueError('write quiet_hours as ["HH:MM", "HH:MM"], e.g. ["22:00", "05:00"]')
        return v

    @field_validator("required_languages")
    @classmethod
    def _languages(cls, v: list[str] | None) -> list[str] | None:
        bad = [lang for lang in v or [] if lang not in LANGUAGES]
        if bad:
            raise ValueError(f"unknown language {bad[0]!r}; use {', '.join(LANGUAGES)}")
        return v


class RawCapArea(_Raw):
    """``[[cap_area]]``: which communes a CAP alert's area reaches (see pipeline/broadcast/cap.py)."""

    communes: list[str] = Field(min_length=1)
    geocode: str | None = None
    value_name: str | None = None
    area_desc: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> RawCapArea:
        if (self.geocode is None) == (self.area_desc is None):
            raise ValueError("give exactly one of geocode or area_desc")
        if self.value_name is not None and self.geocode is None:
            raise ValueError("value_name goes with geocode")
        return self


class RawCommune(_Raw):
    code: str = Field(pattern=r"^\d{5}$")
    name: str = Field(min_length=1)
    kind: Literal["xã", "phường", "thị trấn"] = "xã"
    group: str | None = None
    languages: list[str] = ["vi"]
    slots: list[RawSlot] | None = None
    endpoint: list[RawEndpoint] = []
    policy: RawPolicy | None = None

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str]) -> list[str]:
        bad = [lang for lang in v if lang not in LANGUAGES]
        if bad:
            raise ValueError(f"unknown language {bad[0]!r}; use {', '.join(LANGUAGES)}")
        if len(set(v)) != len(v):
            raise ValueError("a language is listed twice")
        if not v:
            raise ValueError('list at least one language, e.g. ["vi"]')
        return v


class RawGroup(_Raw):
    id: str = Field(pattern=_NAME_RE)
    name: str = Field(min_length=1)


class RawDefaults(_Raw):
    slots: list[RawSlot] = []


class RawDeploymentFile(_Raw):
    timezone: str | None = None
    defaults: RawDefaults | None = None
    group: list[RawGroup] = []
    commune: list[RawCommune] = []
    cap_area: list[RawCapArea] = []
    policy: RawPolicy | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f'unknown time zone {v!r}; use e.g. "Asia/Ho_Chi_Minh"') from exc
        return v


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    if isinstance(value, dict):
        return {k: _nfc(v) for k, v in value.items()}
    return value


def _where(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """Render a pydantic location as ``commune[3] (Y Tý).endpoint[0].host_key``."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            label = node.get("name") if isinstance(node, dict) else None
            if label and parts[-1].startswith("commune"):
                parts[-1] += f" ({label})"
        else:
            if "[" in str(item) or item in ("function-after",):
                continue
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _read_file(path: Path) -> RawDeploymentFile:
    try:
        data = _nfc(tomllib.loads(path.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the deployment file: {exc}") from exc
    try:
        return RawDeploymentFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {_where(tuple(err['loc']), data)}: {msg}") from exc


def _slot(raw: RawSlot) -> Slot:
    hh, mm = raw.start.split(":")
    return Slot(
        name=raw.name,
        start=dt.time(int(hh), int(mm)),
        max_minutes=raw.max_minutes,
        days=tuple(d for d in WEEKDAYS if d in raw.days),
    )


def _policy(raw: RawPolicy | None) -> Policy | None:
    if raw is None:
        return None
    quiet = None
    if raw.quiet_hours:
        start, end = (dt.time(int(t[:2]), int(t[3:])) for t in raw.quiet_hours)
        quiet = (start, end)
    return Policy(
        quiet_hours=quiet,
        max_program_minutes=raw.max_program_minutes,
        max_replays_per_day=raw.max_replays_per_day,
        required_languages=tuple(raw.required_languages or ()),
    )


def load_deployment(schedules_dir: Path, *, default_timezone: str = "Asia/Ho_Chi_Minh") -> Deployment:
    """Read and check every ``*.toml`` under ``schedules_dir``."""
    files = sorted(schedules_dir.glob("*.toml")) if schedules_dir.is_dir() else []
    if not files:
        raise ConfigError(f"{schedules_dir}: no deployment files (*.toml); see docs/deployment.md")
    timezone: tuple[str, Path] | None = None
    default_slots: tuple[tuple[Slot, ...], Path] | None = None
    groups: dict[str, tuple[Group, Path]] = {}
    raw_communes: list[tuple[RawCommune, Path]] = []
    raw_areas: list[tuple[RawCapArea, Path]] = []
    policy: tuple[Policy | None, Path] | None = None
    for path in files:
        raw = _read_file(path)
        raw_areas.extend((a, path) for a in raw.cap_area)
        if raw.policy is not None:
            if policy is not None:
                raise ConfigError(f"{path}: policy: already given in {policy[1]}; give [policy] once")
            policy = (_policy(raw.policy), path)
        if raw.timezone:
            if raw.timezone != default_timezone:
                raise ConfigError(
                    f"{path}: timezone: {raw.timezone!r} differs from {default_timezone!r} in the settings "
                    "(loa.toml timezone); set the same zone in both"
                )
            if timezone and timezone[0] != raw.timezone:
                raise ConfigError(f"{path}: timezone: {raw.timezone!r} differs from {timezone[0]!r} in {timezone[1]}")
            timezone = (raw.timezone, path)
        if raw.defaults and raw.defaults.slots:
            if default_slots:
                raise ConfigError(f"{path}: defaults.slots: already given in {default_slots[1]}; give them once")
            default_slots = (tuple(_slot(s) for s in raw.defaults.slots), path)
        for g in raw.group:
            if g.id in groups:
                raise ConfigError(f"{path}: group {g.id!r} is defined twice (also in {groups[g.id][1]})")
            groups[g.id] = (Group(id=g.id, name=g.name), path)
        raw_communes.extend((c, path) for c in raw.commune)

    communes: list[Commune] = []
    codes: dict[str, Path] = {}
    endpoint_names: dict[str, Path] = {}
    for raw_c, path in raw_communes:
        where = f"{path}: commune {raw_c.code} ({raw_c.name})"
        if raw_c.code in codes:
            raise ConfigError(f"{where}: code is used twice (also in {codes[raw_c.code]})")
        codes[raw_c.code] = path
        if raw_c.group is not None and raw_c.group not in groups:
            raise ConfigError(f"{where}: group: unknown group {raw_c.group!r}; define it with [[group]]")
        if raw_c.slots is not None:
            slots = tuple(_slot(s) for s in raw_c.slots)
        elif default_slots:
            slots = default_slots[0]
        else:
            raise ConfigError(f"{where}: slots: the commune names no slots and [defaults] has none")
        names = [s.name for s in slots]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}: slots: a slot name is used twice")
        endpoints = []
        for raw_e in raw_c.endpoint:
            if raw_e.name in endpoint_names:
                other = endpoint_names[raw_e.name]
                raise ConfigError(f"{where}: endpoint {raw_e.name!r}: name is used twice (also in {other})")
            endpoint_names[raw_e.name] = path
            endpoints.append(
                Endpoint(
                    name=raw_e.name,
                    commune=raw_c.code,
                    transport=raw_e.transport,
                    format=raw_e.format,
                    host=raw_e.host,
                    port=raw_e.port,
                    user=raw_e.user,
                    key_file=Path(raw_e.key_file) if raw_e.key_file else None,
                    host_key=raw_e.host_key,
                    remote_dir=raw_e.remote_dir,
                    path=_local_path(raw_e.path, schedules_dir),
                )
            )
        communes.append(
            Commune(
                code=raw_c.code,
                name=raw_c.name,
                group=raw_c.group,
                languages=tuple(raw_c.languages),
                slots=slots,
                endpoints=tuple(endpoints),
                kind=raw_c.kind,
                policy=_policy(raw_c.policy),
            )
        )
    areas: list[CapAreaRule] = []
    for i, (raw_a, path) in enumerate(raw_areas):
        expanded: list[str] = []
        for target in raw_a.communes:
            reached = [c.code for c in communes if target in (c.code, c.group)]
            if not reached:
                raise ConfigError(
                    f"{path}: cap_area[{i}] ({raw_a.geocode or raw_a.area_desc}).communes: "
                    f"{target!r} is neither a commune code nor a group id"
                )
            expanded.extend(reached)
        areas.append(
            CapAreaRule(
                communes=tuple(dict.fromkeys(expanded)),
                geocode=raw_a.geocode,
                value_name=raw_a.value_name,
                area_desc=raw_a.area_desc,
            )
        )
    return Deployment(
        timezone=timezone[0] if timezone else default_timezone,
        groups=tuple(g for g, _ in groups.values()),
        communes=tuple(communes),
        files=tuple(files),
        cap_areas=tuple(areas),
        policy=policy[0] if policy else None,
    )


def _local_path(value: str | None, schedules_dir: Path) -> Path | None:
    """Local endpoint paths are relative to the project root (the parent of schedules/)."""
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else schedules_dir.resolve().parent / path
