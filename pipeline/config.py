"""Settings: ``loa.toml``, then ``LOA_*`` environment variables, validated once.

Nested keys are reached with a double underscore: ``LOA_AUDIO__BITRATE_KBPS=96``
overrides ``[audio] bitrate_kbps``. Relative paths are taken from the directory of the
config file. The result is passed to the code that needs it; there is no global config.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pipeline.errors import ConfigError

DEFAULT_CONFIG = Path("loa.toml")
ENV_PREFIX = "LOA_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EspeakSettings(_Section):
    binary: str = "espeak-ng"
    voice: str = "vi"
    # rate 130 with a 100 ms word gap: the most intelligible espeak-ng setting measured (docs/intelligibility.md)
    rate: int = Field(default=130, ge=80, le=450)  # words per minute
    pitch: int = Field(default=50, ge=0, le=99)
    word_gap: int = Field(default=10, ge=0, le=100)  # extra pause between words, in 10 ms units (-g)
    timeout_s: float = Field(default=60.0, gt=0)


class GttsSettings(_Section):
    lang: str = "vi"
    tld: str = "com.vn"
    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=1.0, ge=0)
    #: Only for tests: a local HTTP server that answers like Google's service.
    base_url: str | None = None


class CloudTtsSettings(_Section):
    """What every vendor adapter shares. The API key is never written here: ``key_env``
    names an environment variable holding it, ``key_file`` a file holding it (the file wins)."""

    key_env: str | None = None
    key_file: Path | None = None
    base_url: str = ""
    voice: str = ""
    timeout_s: float = Field(default=15.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)


class FptSettings(CloudTtsSettings):
    """FPT.AI text-to-speech v5: POST the text, then fetch the audio from the ``async`` link."""

    key_env: str | None = "LOA_FPT_API_KEY"
    base_url: str = "https://api.fpt.ai/hmi/tts/v5"
    voice: str = "banmai"  # banmai, thuminh, leminh (north); lannhi, linhsan (south); myan, giahuy (centre)
    speed: int = Field(default=0, ge=-3, le=3)
    format: Literal["mp3", "wav"] = "mp3"
    poll_interval_s: float = Field(default=2.0, ge=0)
    poll_attempts: int = Field(default=60, ge=1, le=600)


class ViettelSettings(CloudTtsSettings):
    """Viettel AI text-to-speech: POST JSON with a ``token`` header, the answer is the audio."""

    key_env: str | None = "LOA_VIETTEL_TOKEN"
    base_url: str = "https://viettelgroup.ai/voice/api/tts/v1/rest/syn"
    voice: str = "hn-quynhanh"  # hn-quynhanh, phamtienquan (north); hcm-minhquan, lethiyen (south)
    speed: float = Field(default=1.0, ge=0.7, le=1.3)
    without_filter: bool = False


class GoogleTtsSettings(CloudTtsSettings):
    """Google Cloud Text-to-Speech ``text:synthesize`` with an API key; vi-VN voices."""

    key_env: str | None = "LOA_GOOGLE_TTS_KEY"
    base_url: str = "https://texttospeech.googleapis.com/v1/text:synthesize"
    voice: str = "vi-VN-Neural2-A"
    language_code: str = "vi-VN"
    speaking_rate: float = Field(default=1.0, ge=0.25, le=4.0)
    audio_encoding: Literal["MP3", "LINEAR16", "OGG_OPUS"] = "MP3"


class CommandSettings(_Section):
    """Any local program that reads text on stdin and writes WAV: to stdout, or to the
    path it is given where ``{out}`` stands in ``argv``. ``{voice}`` and ``{speed}`` in
    ``argv`` are replaced by ``voice`` and ``speed``."""

    argv: tuple[str, ...] = ()
    label: str = "command"
    voice: str = ""
    speed: str = ""
    timeout_s: float = Field(default=120.0, gt=0)


class TtsSettings(_Section):
    engines: tuple[Literal["espeak", "gtts", "fpt", "viettel", "google", "command"], ...] = ("espeak",)
    variant: Literal["north", "south"] = "north"
    espeak: EspeakSettings = EspeakSettings()
    gtts: GttsSettings = GttsSettings()
    fpt: FptSettings = FptSettings()
    viettel: ViettelSettings = ViettelSettings()
    google: GoogleTtsSettings = GoogleTtsSettings()
    command: CommandSettings = CommandSettings()

    @field_validator("engines")
    @classmethod
    def _some_engine(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError('name at least one engine, e.g. ["espeak"]')
        return v


class AudioSettings(_Section):
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    sample_rate: Literal[22050, 24000, 32000, 44100, 48000] = 44100
    bitrate_kbps: Literal[32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192] = 64
    target_lufs: float = Field(default=-16.0, ge=-40, le=-5)
    true_peak_db: float = Field(default=-1.5, ge=-9, le=0)
    max_recording_minutes: int = Field(default=30, ge=1, le=180)
    timeout_s: float = Field(default=300.0, gt=0)


class RenderSettings(_Section):
    workers: int = Field(default=0, ge=0, le=64)  # 0: one per core
    on_missing_recording: Literal["skip", "fail"] = "skip"


class DeliverSettings(_Section):
    parallel: int = Field(default=16, ge=1, le=256)
    retries: int = Field(default=4, ge=0, le=20)
    backoff_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    connect_timeout_s: float = Field(default=15.0, gt=0)
    op_timeout_s: float = Field(default=60.0, gt=0)
    keepalive_s: int = Field(default=15, ge=0)
    retention_days: int = Field(default=7, ge=1)
    trust_remote_manifest: bool = True  # an endpoint whose signed manifest matches is whole: skip listing it
    # A push does not reconnect to an endpoint that, less than this long ago, took a delivery
    # leaving it with exactly what the outbox now holds for it (0: always reconnect).
    recheck_hours: float = Field(default=12.0, ge=0, le=168)


class NightlySettings(_Section):
    time: str = Field(default="01:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    retry_every_minutes: int = Field(default=15, ge=1, le=720)
    misfire_grace_hours: int = Field(default=20, ge=1, le=24)
    emergency_poll_seconds: int = Field(default=10, ge=2, le=300)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_upload_mb: int = Field(default=50, ge=1, le=500)
    login_attempts_per_minute: int = Field(default=5, ge=1)
    #: Reverse proxies (IP addresses or networks) whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: list[str] = []
    #: Failed logins in a row on one account before each next try waits (1 s, 2 s, 4 s … 5 min).
    login_account_failures: int = Field(default=10, ge=1)
    #: Failed logins in a row on one account before it is locked until an admin unlocks it.
    login_lockout_failures: int = Field(default=30, ge=2)
    #: Wrong, used or expired enrollment codes (POST /api/v1/enroll) per client address per hour,
    #: and from all clients together, before the next try is answered 429 (docs/device.md).
    enroll_failures_per_client_per_hour: int = Field(default=10, ge=1)
    enroll_failures_per_hour: int = Field(default=100, ge=1)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {item!r} is not an IP address or network") from exc
        return v


class SigningSettings(_Section):
    # The deployment's Ed25519 key for manifests; default <data_dir>/keys/manifest-ed25519.pem.
    # Keep it outside the repository and the outbox, mode 0600.
    key_file: Path | None = None


class RunnerSettings(_Section):
    kind: Literal["inprocess", "celery"] = "inprocess"
    segments_dir: Path | None = (
        None  # the segment store; default <data_dir>/cache/segments (shared storage for many workers)
    )
    # kind = "celery" (docs/scale.md): the broker and result backend, both Redis
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str = ""  # default: the broker_url
    visibility_timeout_s: int = Field(default=3600, ge=5)  # a lost worker's units run again after this
    retries: int = Field(default=3, ge=0, le=20)  # a transient failure is retried this often…
    retry_backoff_s: float = Field(default=5.0, ge=0)  # …after 5 s, 10 s, 20 s…
    retry_backoff_max_s: float = Field(default=300.0, ge=0)
    stall_timeout_s: float = Field(default=3600.0, gt=0)  # no unit finished for this long: the rest fail
    broker_wait_s: float = Field(default=120.0, gt=0)  # the broker unreachable for this long: the rest fail
    # failover (pipeline/liveness.py): workers and runs beat every heartbeat_s; silent for
    # heartbeat_timeout_s, a worker's units are sent again and a run is marked failed by any host
    heartbeat_s: float = Field(default=5.0, gt=0, le=60)
    heartbeat_timeout_s: float = Field(default=30.0, ge=2)
    # a night and an emergency as a dependency graph (docs/architecture.md "One pipeline"): a
    # commune is packaged and delivered the moment its own segments exist; false: phase by phase
    streaming: bool = True


class ConsultationSettings(_Section):
    retention_days: int = Field(default=180, ge=1, le=3650)  # then names, phones, voice messages are erased
    answers_per_client_per_hour: int = Field(default=20, ge=1)  # mobile carriers share addresses (CGNAT)
    answers_per_campaign_per_hour: int = Field(default=500, ge=1)
    max_answer_kb: int = Field(default=16, ge=1, le=1024)
    public_url: str = ""  # e.g. "https://loa.laocai.gov.vn": the QR code's address; default: the request's


class ReportSettings(_Section):
    """Statistics for the provincial source-information system (``loa report``)."""

    push_url: str | None = None  # where ``loa report --push`` POSTs the JSON (https)
    token: SecretStr | None = None  # bearer token: set LOA_REPORT__TOKEN, or use token_file
    token_file: Path | None = None
    allow_http: bool = False  # only for a receiver on this machine (tests)
    ca_file: Path | None = None  # a CA bundle to trust for push_url instead of the system's
    timeout_s: float = Field(default=30.0, gt=0)


class CapSettings(_Section):
    """``[cap]``: Common Alerting Protocol 1.2 import and export (pipeline/broadcast/cap.py)."""

    #: "manual": an imported alert is a draft an approver approves (the normal rule);
    #: "auto": it is approved on import and the scheduler dispatches it at once.
    approval: Literal["manual", "auto"] = "manual"
    #: URLs ``loa cap import`` may fetch: exact URLs, or prefixes ending in "/".
    allowed_urls: tuple[str, ...] = ()
    #: ``<sender>`` of exported alerts (no spaces, commas, "<" or "&").
    sender: str = Field(default="loa@localhost", pattern=r"^[^\s,<&]+$")
    timeout_s: float = Field(default=15.0, gt=0)
    max_bytes: int = Field(default=1_000_000, ge=1_000)


class PublishSettings(_Section):
    """The public archive, feeds and public API (docs/publish.md)."""

    #: The server's public address, for absolute links in feeds (e.g. "https://loa.laocai.gov.vn").
    base_url: str = ""
    title: str = "Đài truyền thanh cơ sở tỉnh Lào Cai"
    author: str = "Trung tâm Văn hóa, Thể thao và Truyền thông"
    #: Channel image for podcast apps: a path under the site or an absolute URL.
    image: str = "/feeds/image.png"
    #: Web origins allowed to call the public API from a browser and to frame the player snippet.
    cors_origins: tuple[str, ...] = ()
    feed_items: int = Field(default=100, ge=1, le=1000)
    #: How long a browser, a podcast app or a CDN may reuse a public page, feed, API answer or
    #: audio file before asking again (a conditional request, answered 304 when unchanged): a
    #: withdrawal reaches every cache within this many seconds.
    max_age_s: int = Field(default=60, ge=0, le=3600)
    #: Compute feeds, archive pages and public API answers once per change of what is public
    #: (a build, an approval, a withdrawal), not once per request. ``false`` only to measure.
    cache: bool = True
    #: How many distinct answers (pages, searches, feeds) the cache keeps.
    cache_entries: int = Field(default=512, ge=1, le=100_000)


#: The events a webhook may be sent (docs/publish.md); the outbox (``store.webhooks``) takes the same.
WebhookEvent = Literal[
    "bulletin.approved",
    "bulletin.withdrawn",
    "program.aired",
    "alert.fired",
    "alert.resolved",
    "reading.requested",
    "reading.due",
]


class WebhookSettings(_Section):
    """One ``[[webhook]]``: where events go and where its signing secret is read from."""

    url: str = Field(pattern=r"^https?://")
    #: alert.fired / alert.resolved (operations alerts, docs/operations.md) only when listed here.
    events: tuple[WebhookEvent, ...] = (
        "bulletin.approved",
        "bulletin.withdrawn",
        "program.aired",
    )
    secret_env: str = ""  # name of an environment variable holding the secret
    secret_file: Path | None = None  # or a file holding it (mode 0600)
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_s: float = Field(default=30.0, ge=0)
    backoff_max_s: float = Field(default=3600.0, ge=0)


class OutboundSettings(_Section):
    """``[outbound]``: where webhooks, CAP fetches and vendor TTS may connect (pipeline/outbound.py).

    Loopback, link-local, private, shared, multicast and reserved addresses are refused unless
    allowed here; public addresses are always allowed."""

    allow_loopback: bool = False  # tests and a developer's machine: receivers on 127.0.0.1 / ::1
    #: networks that may be reached although not public, e.g. ["10.20.0.0/16"] for a receiver on the LAN
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    connect_timeout_s: float = Field(default=10.0, gt=0)


class MetricsSettings(_Section):
    """``[metrics]``: who may read ``/metrics`` (docs/operations.md). Never public by default."""

    #: Client addresses or networks allowed without a token (a proxied request never counts as loopback).
    allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    #: A bearer token that also opens it: set LOA_METRICS__TOKEN, or name a file with token_file.
    token: SecretStr | None = None
    token_file: Path | None = None
    #: ``loa worker --metrics-port``: the address its metrics listen on.
    worker_host: str = "127.0.0.1"

    @field_validator("allow")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"allow: {item!r} is not an IP address or network") from exc
        return v


class HealthSettings(_Section):
    """``[health]``: what ``/readyz`` asks (docs/operations.md)."""

    min_free_mb: int = Field(default=1024, ge=0)  # free space under data_dir below this: not ready
    scheduler_stale_s: int = Field(default=300, ge=0)  # no scheduler heartbeat for this long: not ready (0: skip)


class AlertSettings(_Section):
    """``[alerts]``: evaluated every minute by the scheduler, sent through Apprise (docs/operations.md)."""

    #: Apprise URLs (mailto://, tgram://, …). They hold passwords: prefer urls_file (one per line, mode 0600).
    urls: tuple[str, ...] = ()
    urls_file: Path | None = None
    #: Also record each alert as a signed webhook event (alert.fired / alert.resolved) for [[webhook]]s.
    webhooks: bool = True
    repeat_minutes: int = Field(default=240, ge=1)  # while it lasts, an alert is sent again this often
    silent_commune_hours: float = Field(default=72.0, gt=0)  # no push, pull or receipt for this long
    emergency_confirm_minutes: int = Field(default=15, ge=1)  # every endpoint reached within this
    webhook_failing_minutes: int = Field(default=60, ge=1)
    min_free_mb: int = Field(default=2048, ge=0)  # free space under data_dir below this


class ReminderSettings(_Section):
    """``[reminders]``: readers told a reading is wanted, and again before its deadline (docs/phrases.md)."""

    enabled: bool = True
    #: Tell the readers and the approver again when a reading is still missing this long before the deadline.
    before_deadline_hours: float = Field(default=12.0, ge=0, le=24 * 14)
    #: E-mail through this SMTP server; none: no e-mail (the webhooks still get reading.* events).
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "loa@localhost"
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password_file: Path | None = None  # mode 0600; never in the configuration itself
    smtp_timeout_s: float = Field(default=20.0, gt=0)
    #: The web's address, for the link in the message (e.g. "https://loa.laocai.gov.vn").
    web_url: str = ""


class BackupSettings(_Section):
    """``[backup]``: the scheduler's nightly backup (``loa backup`` makes one by hand)."""

    dir: Path | None = None  # where nightly backups go; none: no nightly backup
    time: str = Field(default="03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    keep: int = Field(default=14, ge=1, le=3650)  # the newest this many complete backups are kept
    pg_bin_dir: Path | None = None  # where pg_dump/pg_restore are; default: the server's version's, else PATH


class ReadersSettings(_Section):
    """``[readers]``: the reading queue and the reading length check (docs/readers.md)."""

    horizon_days: int = Field(default=7, ge=1, le=60)  # how far ahead the queue looks
    #: A reading's length over the Vietnamese text's (read at the planner's pace) outside
    #: [min_ratio, max_ratio] warns the reader and the approver.
    min_ratio: float = Field(default=0.5, gt=0, le=1)
    max_ratio: float = Field(default=2.5, ge=1, le=20)


class LogSettings(_Section):
    """``[log]``: "text" (readable, the default) or "json" (one object per line, for journald and shippers)."""

    format: Literal["text", "json"] = "text"


class Settings(_Section):
    config_file: Path | None = None
    data_dir: Path = Path("data")
    database_url: str = ""  # default: SQLite at <data_dir>/loa.db
    templates_dir: Path = Path("templates")
    voices_dir: Path = Path("voices")
    schedules_dir: Path = Path("schedules")
    timezone: str = "Asia/Ho_Chi_Minh"
    tts: TtsSettings = TtsSettings()
    audio: AudioSettings = AudioSettings()
    render: RenderSettings = RenderSettings()
    deliver: DeliverSettings = DeliverSettings()
    nightly: NightlySettings = NightlySettings()
    web: WebSettings = WebSettings()
    signing: SigningSettings = SigningSettings()
    runner: RunnerSettings = RunnerSettings()
    consultation: ConsultationSettings = ConsultationSettings()
    publish: PublishSettings = PublishSettings()
    webhook: tuple[WebhookSettings, ...] = ()

    report: ReportSettings = ReportSettings()

    cap: CapSettings = CapSettings()

    outbound: OutboundSettings = OutboundSettings()

    metrics: MetricsSettings = MetricsSettings()
    health: HealthSettings = HealthSettings()
    alerts: AlertSettings = AlertSettings()
    reminders: ReminderSettings = ReminderSettings()
    backup: BackupSettings = BackupSettings()
    log: LogSettings = LogSettings()
    readers: ReadersSettings = ReadersSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Ho_Chi_Minh") from exc
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'loa.db'}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def segments_dir(self) -> Path:
        return self.runner.segments_dir or self.cache_dir / "segments"

    @property
    def signing_key_file(self) -> Path:
        return self.signing.key_file or self.data_dir / "keys" / "manifest-ed25519.pem"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


_PATH_KEYS = ("data_dir", "templates_dir", "voices_dir", "schedules_dir")


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "LOA_CONFIG":
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        parsed: Any = value
        # numbers, booleans and lists as TOML reads them (96, true, ["gtts"]); else plain text
        with contextlib.suppress(tomllib.TOMLDecodeError):
            parsed = tomllib.loads(f"v = {value}")["v"]
        node[keys[-1]] = parsed
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read ``path`` (or ``$LOA_CONFIG``, or ``./loa.toml``), apply ``LOA_*``, validate.

    A missing file is an error only when it was named; with no file the defaults apply.
    """
    env = dict(os.environ if environ is None else environ)
    named = path is not None or "LOA_CONFIG" in env
    config_path = Path(path) if path is not None else Path(env.get("LOA_CONFIG", DEFAULT_CONFIG))
    raw: dict[str, Any] = {}
    if config_path.is_file():
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: {exc}; fix the TOML syntax") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{config_path}: not UTF-8 text ({exc.reason})") from exc
    elif named:
        raise ConfigError(f"{config_path}: no such config file; pass --config PATH or set LOA_CONFIG")
    data = _merge(raw, _env_overrides(env))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        origin = config_path if config_path.is_file() else "settings"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{origin}: {where}: {first['msg']}{more}") from exc
    base = config_path.resolve().parent if config_path.is_file() else Path.cwd()
    updates: dict[str, Any] = {"config_file": config_path.resolve() if config_path.is_file() else None}
    for key in _PATH_KEYS:
        value: Path = getattr(settings, key)
        updates[key] = value if value.is_absolute() else base / value
    for section, key in (
        ("signing", "key_file"),
        ("runner", "segments_dir"),
        ("report", "token_file"),
        ("report", "ca_file"),
        ("metrics", "token_file"),
        ("alerts", "urls_file"),
        ("backup", "dir"),
        ("backup", "pg_bin_dir"),
    ):
        sub = updates.get(section, getattr(settings, section))
        value = getattr(sub, key)
        if value is not None and not value.is_absolute():
            updates[section] = sub.model_copy(update={key: base / value})
    return settings.model_copy(update=updates)
