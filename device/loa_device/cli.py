"""``loa-device``: enroll this device, run the player, show its state.

    loa-device enroll --server https://loa.example.vn --code ABCD-EFGH-JKLM
    loa-device run                     (what the systemd unit runs)
    loa-device status

Exit codes: 0 done, 1 failure, 2 refused or bad input.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import platform
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from loa_device import __version__
from loa_device import config as cfg
from loa_device.agent import Agent
from loa_device.clock import Clock, FileClock, SystemClock
from loa_device.sync import FolderSync, PullSync
from loa_protocol.client import PullClient
from loa_protocol.errors import EnrollmentRefused, ProtocolError

log = logging.getLogger("loa_device")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, *, allow_http: bool) -> str:
    """``url`` if it is https (or http to a loopback address with ``allow_http``, for tests); else ValueError."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname and allow_http and _loopback(parts.hostname):
        return url.rstrip("/")
    if parts.scheme == "http" and allow_http:
        raise ValueError(f"{url}: --allow-http is only for a server on this machine (127.0.0.1, ::1); use https")
    raise ValueError(f"{url}: the server must be https:// (the token and the keys travel on this link)")


def enroll(args: argparse.Namespace) -> int:
    path = Path(args.config)
    if path.exists() and not args.force:
        print(
            f"error: {path} exists; this device is enrolled already (use --force to enroll it again)", file=sys.stderr
        )
        return 2
    try:
        server = check_server_url(args.server, allow_http=args.allow_http)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = {"hostname": platform.node()[:60], "agent": f"loa-device/{__version__}"}
    try:
        with PullClient(server, user_agent=f"loa-device/{__version__}", verify_tls=args.ca_file or True) as client:
            answer = client.enroll(args.code, device=device)
    except EnrollmentRefused as exc:
        print(f"Từ chối đăng ký: {exc}", file=sys.stderr)  # the server's own Vietnamese sentence
        return 2
    except ProtocolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = cfg.Config(
        server=server,
        endpoint=str(answer["endpoint"]),
        commune=str(answer["commune"]),
        token=str(answer["token"]),
        public_key_pem=str(answer["public_key"]),
        receipt_key_hex=str(answer["receipt_key"]),
        timezone=str(answer.get("timezone") or "Asia/Ho_Chi_Minh"),
        state_dir=args.state_dir,
        player=args.player,
        mode=args.mode,
        folder=args.folder or "",
        allow_http=server.startswith("http://"),
        ca_file=args.ca_file or "",
    )
    try:
        config.public_key  # noqa: B018  (a key that does not load is refused before anything is written)
    except ProtocolError as exc:
        print(f"error: the server's public key: {exc}", file=sys.stderr)
        return 1
    cfg.save(path, config)
    print(f"enrolled as {config.endpoint} (commune {config.commune}); deployment key {answer.get('fingerprint', '')}")
    print(f"configuration written to {path}; start the player with: systemctl enable --now loa-device")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        config = cfg.load(Path(args.config))
        if config.server and config.mode == "pull":
            check_server_url(config.server, allow_http=config.allow_http)
    except (cfg.ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clock: Clock = FileClock(Path(args.clock_file)) if args.clock_file else SystemClock()
    agent = Agent(config, clock=clock)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    if config.mode == "pull":
        agent.run(sync=lambda a: PullSync(a, config_path=Path(args.config)))
    else:
        agent.run(sync=FolderSync)
    return 0


def status(args: argparse.Namespace) -> int:
    try:
        config = cfg.load(Path(args.config))
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agent = Agent(config, clock=SystemClock())
    doc = agent.heartbeat_doc()
    doc["endpoint"] = config.endpoint
    doc["programs"] = sorted(agent.library.all())
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loa-device", description="Loa's player for a commune's loudspeakers.")
    p.add_argument("--version", action="version", version=f"loa-device {__version__}")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--config", default=os.environ.get("LOA_DEVICE_CONFIG", str(cfg.DEFAULT_PATH)))
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("enroll", help="trade a one-time code from the web for this device's configuration")
    e.add_argument("--server", required=True, help="the Loa server, https://…")
    e.add_argument("--code", required=True, help="the enrollment code shown on the web (Thiết bị page)")
    e.add_argument("--state-dir", default=str(cfg.DEFAULT_STATE))
    e.add_argument("--player", default=cfg.DEFAULT_PLAYER)
    e.add_argument("--mode", choices=cfg.MODES, default="pull")
    e.add_argument("--folder", help="mode folder: where the SFTP push lands")
    e.add_argument("--force", action="store_true", help="replace an existing configuration")
    e.add_argument("--ca-file", help="the deployment's own CA certificate (PEM), if its server's is not public")
    e.add_argument("--allow-http", action="store_true", help="tests only: plain http to a server on 127.0.0.1")
    e.set_defaults(func=enroll)
    r = sub.add_parser("run", help="play the programs (what the systemd service runs)")
    r.add_argument("--clock-file", help=argparse.SUPPRESS)  # tests: a controllable clock (loa_device.clock.FileClock)
    r.set_defaults(func=run)
    s = sub.add_parser("status", help="what this device holds and last played")
    s.set_defaults(func=status)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") else
        "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
    logging.getLogger("httpx").setLevel(logging.WARNING)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
