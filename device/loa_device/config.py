"""The agent's configuration: one JSON file (``/etc/loa-device/config.json``, mode 0600).

``loa-device enroll`` writes it; an operator may edit ``player``, ``mode``, ``folder``
and the intervals. Unknown keys are refused, so a typo is not silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loa_protocol.files import write_atomic
from loa_protocol.signature import PublicKey, from_pem

DEFAULT_PATH = Path("/etc/loa-device/config.json")
DEFAULT_STATE = Path("/var/lib/loa-device")
DEFAULT_PLAYER = "mpv --no-video --really-quiet --no-config"
MODES = ("pull", "folder")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or wrong; names the field."""


@dataclass(frozen=True)
class Config:
    server: str  # https://loa.example.vn
    endpoint: str
    commune: str
    token: str
    public_key_pem: str  # the deployment's Ed25519 key (SubjectPublicKeyInfo PEM)
    receipt_key_hex: str  # this endpoint's HMAC key for receipts
    timezone: str = "Asia/Ho_Chi_Minh"
    state_dir: str = str(DEFAULT_STATE)
    player: str = DEFAULT_PLAYER
    mode: str = "pull"  # pull: from the server; folder: what an SFTP push leaves in ``folder``
    folder: str = ""
    days_ahead: int = 3  # programs fetched ahead: today and the next days (for a long outage)
    pull_interval_s: float = 300.0
    heartbeat_interval_s: float = 300.0
    events_wait_s: float = 25.0
    scan_interval_s: float = 5.0  # folder mode
    late_grace_s: float = 600.0  # a slot missed by less than this (agent restarting) still plays, late
    replay_grace_s: float = 900.0
    allow_http: bool = False  # plain http to a loopback server: tests only
    ca_file: str = ""  # a deployment's own CA (PEM) instead of the bundled public ones
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def public_key(self) -> PublicKey:
        return from_pem(self.public_key_pem)

    @property
    def receipt_key(self) -> bytes:
        return bytes.fromhex(self.receipt_key_hex)

    @property
    def state(self) -> Path:
        return Path(self.state_dir)

    def to_json(self) -> bytes:
        doc = dataclasses.asdict(self)
        if not doc["extra"]:
            del doc["extra"]
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def load(path: Path) -> Config:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}); run `loa-device enroll` first") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(doc) - names)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}; settings are {', '.join(sorted(names))}")
    try:
        config = Config(**doc)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if config.mode not in MODES:
        raise ConfigError(f"{path}: mode is {config.mode!r}; use one of {', '.join(MODES)}")
    if config.mode == "folder" and not config.folder:
        raise ConfigError(f"{path}: mode 'folder' needs 'folder' (where the SFTP push lands)")
    return config


def save(path: Path, config: Config) -> None:
    """Write ``config`` atomically, readable by its owner only (it holds the token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, config.to_json(), mode=0o600)
