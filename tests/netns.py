"""Weak links for tests: endpoints in their own network namespaces, with real faults.

Each ``Site`` is a network namespace ``loa-t-<n>`` joined to the root namespace by a
veth pair on its own /30 in 10.231.0.0/16 (host side ``.1``, endpoint side ``.2``);
traffic goes only to those addresses. On it:

- ``site.start_sshd()``: OpenSSH's sshd inside the namespace (the keys and config of
  ``pipeline.bench.sshd.SshServer``, listening on the namespace's address, port 22);
- ``site.set_loss(5)``: nftables drops 5 % of packets each way, at random
  (``numgen random mod 100 < 5 drop``) — netem is not in every kernel, nftables is;
- ``site.shape(256)``: ``tc tbf`` limits both directions to 256 kbit/s;
- ``site.blackhole()``: every packet is dropped (a dead radio link: timeouts);
- ``site.link_down()``: the host side of the veth is down: "no route to host" at once
  (``Lab`` routes 10.231.0.0/16 as unreachable, so nothing leaves by the default route).

``Lab`` makes and removes sites; it removes what a crashed earlier run left (same name
prefix) when it starts, and everything it made when it closes, even after a failure.
Requires root, ``ip`` (iproute2), ``nft`` (nftables) and ``tc``;
``netns_unavailable()`` says why not when they are missing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from pipeline.bench.sshd import SSHD, SshServer, have_sshd, keygen

PREFIX = "loa-t-"
NETWORK = ipaddress.IPv4Network("10.231.0.0/16")
TABLE = "loa_faults"
_COUNTER = re.compile(r"counter packets (\d+) bytes \d+ drop")


def run(*args: str, ns: str | None = None, stdin: str | None = None, check: bool = True) -> str:
    """Run a command (inside namespace ``ns`` if given); its stdout. Errors carry stderr."""
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def netns_unavailable() -> str | None:
    """Why weak-link tests cannot run here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the faults tests as root, as CI does"
    missing = [tool for tool in ("ip", "nft", "tc") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install -y iproute2 nftables)"
    if not have_sshd():
        return f"{SSHD} or ssh-keygen is not installed (apt-get install openssh-server)"
    routes = run("ip", "-4", "route", "show")
    for line in routes.splitlines():
        dest = line.split()[0]
        if dest not in ("default", "unreachable") and f"dev {PREFIX}" not in line:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_network(dest, strict=False).overlaps(NETWORK):
                    return f"{NETWORK} is already routed here ({line.strip()}); the tests would disturb it"
    probe = f"{PREFIX}probe"
    try:
        run("ip", "netns", "add", probe)
        run("nft", "list", "tables", ns=probe)
    except RuntimeError as exc:
        return f"cannot make a network namespace or use nftables in it: {exc}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


def remove_leftovers(prefix: str = PREFIX) -> list[str]:
    """Remove namespaces (and the sshd they hold) and host links named ``prefix…``."""
    removed = []
    for line in run("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix):
            _kill_namespace_processes(name)
            run("ip", "netns", "del", name, check=False)
            removed.append(name)
    for line in run("ip", "-o", "link", "show").splitlines():
        m = re.match(r"\d+: ([^:@]+)", line)
        if m and m.group(1).startswith(prefix):
            run("ip", "link", "del", m.group(1), check=False)
            removed.append(m.group(1))
    run("ip", "route", "del", "unreachable", str(NETWORK), check=False)
    return removed


def _kill_namespace_processes(ns: str) -> None:
    for pid in run("ip", "netns", "pids", ns, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


class NsSshServer(SshServer):
    """``SshServer``'s keys and config, but run inside ``ns`` and listening on ``address:22``."""

    def __init__(self, workdir: Path, *, ns: str, address: str, client_key: Path | None = None) -> None:
        self.ns = ns
        self.listen = address
        super().__init__(workdir, client_key=client_key)
        self.host, self.port = address, 22
        self.config_path.write_text(self._config())

    def _config(self) -> str:
        lines = super()._config().splitlines()
        fixed = [
            f"ListenAddress {self.listen}"
            if ln.startswith("ListenAddress ")
            else "Port 22"
            if ln.startswith("Port ")
            else ln
            for ln in lines
        ]
        return "\n".join(fixed) + "\n"

    def start(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            return
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, SSHD, "-D", "-e", "-f", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"sshd in {self.ns} exited at start; see {self.log_path}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd in {self.ns} did not answer on {self.host}:22; see {self.log_path}")

    def stop(self) -> None:
        """End sshd and its sessions: every process in the namespace is one of ours."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        _kill_namespace_processes(self.ns)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Site:
    """One endpoint's namespace and veth pair (see the module docstring)."""

    def __init__(self, index: int, workdir: Path, *, client_key: Path | None = None) -> None:
        self.index = index
        self.ns = f"{PREFIX}{index}"
        self.host_if = f"{PREFIX}h{index}"
        self.ns_if = f"{PREFIX}e{index}"
        base = NETWORK.network_address + 4 * index  # the site's /30
        if base + 3 not in NETWORK:
            raise ValueError(f"site {index}: beyond {NETWORK}")
        self.host_addr, self.addr = str(base + 1), str(base + 2)
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.remote = self.dir / "remote"
        self.remote.mkdir(exist_ok=True)
        self._client_key = client_key
        self.sshd: NsSshServer | None = None

    def create(self) -> None:
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.ns)
        run("ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
        run("ip", "link", "set", self.host_if, "up")
        run("ip", "addr", "add", f"{self.addr}/30", "dev", self.ns_if, ns=self.ns)
        run("ip", "link", "set", self.ns_if, "up", ns=self.ns)
        run("ip", "link", "set", "lo", "up", ns=self.ns)

    def server(self) -> NsSshServer:
        """This site's sshd (keys and config made, not started)."""
        if self.sshd is None:
            self.sshd = NsSshServer(self.dir / "sshd", ns=self.ns, address=self.addr, client_key=self._client_key)
        return self.sshd

    def start_sshd(self) -> NsSshServer:
        server = self.server()
        server.start()
        return server

    def stop_sshd(self) -> None:
        if self.sshd is not None:
            self.sshd.stop()

    # --- faults -----------------------------------------------------------------

    def _rules(self, rule: str) -> None:
        run("nft", "delete", "table", "inet", TABLE, ns=self.ns, check=False)
        script = (
            f"table inet {TABLE} {{\n"
            f"  chain input {{ type filter hook input priority 0; policy accept; {rule}; }}\n"
            f"  chain output {{ type filter hook output priority 0; policy accept; {rule}; }}\n"
            "}\n"
        )
        run("nft", "-f", "-", ns=self.ns, stdin=script)

    def set_loss(self, percent: int) -> None:
        """Drop ``percent`` % of packets at random, in each direction (inside the namespace)."""
        self._rules(f"numgen random mod 100 < {percent} counter drop")

    def blackhole(self) -> None:
        """Drop every packet: connections time out, as on a dead radio link."""
        self._rules("counter drop")

    def clear_faults(self) -> None:
        run("nft", "delete", "table", "inet", TABLE, ns=self.ns, check=False)
        run("tc", "qdisc", "del", "dev", self.ns_if, "root", ns=self.ns, check=False)
        run("tc", "qdisc", "del", "dev", self.host_if, "root", check=False)
        self.link_up()

    def dropped(self) -> int:
        """Packets dropped so far by this site's nftables rules (both directions)."""
        out = run("nft", "list", "table", "inet", TABLE, ns=self.ns, check=False)
        return sum(int(n) for n in _COUNTER.findall(out))

    def shape(self, kbit: int) -> None:
        """``tc tbf`` at ``kbit`` kbit/s on both ends of the veth (so both directions)."""
        tbf = ["root", "tbf", "rate", f"{kbit}kbit", "burst", "16kbit", "latency", "400ms"]
        run("tc", "qdisc", "replace", "dev", self.ns_if, *tbf, ns=self.ns)
        run("tc", "qdisc", "replace", "dev", self.host_if, *tbf)

    def link_down(self) -> None:
        run("ip", "link", "set", self.host_if, "down")

    def link_up(self) -> None:
        run("ip", "link", "set", self.host_if, "up")

    def destroy(self) -> None:
        self.stop_sshd()
        _kill_namespace_processes(self.ns)
        run("ip", "netns", "del", self.ns, check=False)
        run("ip", "link", "del", self.host_if, check=False)  # gone with the namespace, normally


class Lab:
    """A set of sites; ``with Lab(dir) as lab: lab.add(n)``. Everything is removed on exit."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.sites: list[Site] = []
        self.client_key = workdir / "id_ed25519"

    def __enter__(self) -> Self:
        remove_leftovers()
        # Packets for a site whose link is down must not follow the default route off this
        # machine: the whole test network is unreachable except through a site's veth.
        run("ip", "route", "replace", "unreachable", str(NETWORK))
        self.dir.mkdir(parents=True, exist_ok=True)
        keygen(self.client_key)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def add(self, count: int) -> list[Site]:
        new = []
        for _ in range(count):
            site = Site(len(self.sites), self.dir / f"site{len(self.sites)}", client_key=self.client_key)
            self.sites.append(site)  # before create(): close() removes half-made sites too
            site.create()
            new.append(site)
        return new

    def close(self) -> None:
        errors = []
        for site in self.sites:
            try:
                site.destroy()
            except Exception as exc:  # keep removing the others
                errors.append(f"{site.ns}: {exc}")
        self.sites = []
        left = remove_leftovers()
        if errors or left:
            raise RuntimeError(f"clean-up of the network namespaces: {errors or ''} {left or ''}")
