"""Hosts on one network link, made of Linux network namespaces, for tests that
need nodes on different machines.

Each host is a network namespace with its own address on 10.77.0.0/24,
joined to the others by a veth pair to a bridge (the switch) in a namespace
of its own: processes in one host reach the others only over that link,
exactly as two machines on a bench network would. A process runs in a host
through ``ip netns exec NAME ...`` (``Hosts.argv``), started by the process
harness like any other child.

Needs root and iproute2 (``ip``); ``skip_reason()`` says why not when it
cannot work. Names carry the pid of the test process and a random tag, so
parallel runs do not clash; namespaces left by a test process that died
(SIGKILL) are removed by the next run.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

PREFIX = "hiltest"
SUBNET = "10.77.0"
_NAME = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]+-\w+$")


class NetnsError(RuntimeError):
    """An ``ip`` command that failed, with its output."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def skip_reason() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is missing (apt-get install -y iproute2)"
    if os.geteuid() != 0:
        return "creating network namespaces (ip netns add) needs root"
    probe = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(2)}-probe"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    try:
        bridge = ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"this kernel makes no bridge in a namespace: {bridge.stderr.strip()}"
    finally:
        ip("netns", "del", probe, check=False)
    return None


def remove_stale() -> None:
    """Namespaces of earlier test processes that no longer exist."""
    for line in ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            ip("netns", "del", name, check=False)


@dataclass
class Hosts:
    """Hosts on one link: ``open()``, then ``host(name)`` adds one (address .1, .2, ... in order)."""

    tag: str = field(default_factory=lambda: f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}")
    addresses: dict[str, str] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)

    switch: str = ""

    def open(self) -> None:
        """The switch: a bridge in a namespace of its own (call ``close`` even when this fails)."""
        self.switch = self._namespace("switch")
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def _namespace(self, name: str) -> str:
        full = f"{self.tag}-{name}"
        ip("netns", "add", full)
        self.namespaces.append(full)
        ip("-n", full, "link", "set", "lo", "up")
        return full

    def host(self, name: str) -> str:
        """A new host on the link; returns its address."""
        namespace = self._namespace(name)
        index = len(self.addresses) + 1
        address = f"{SUBNET}.{index}"
        # Interface names are at most 15 bytes: made in the switch, then one end moved.
        inside, outside = f"h{os.getpid() % 10000}n{index}", f"h{os.getpid() % 10000}s{index}"
        ip("-n", self.switch, "link", "add", inside, "type", "veth", "peer", "name", outside)
        ip("-n", self.switch, "link", "set", inside, "netns", namespace)
        ip("-n", self.switch, "link", "set", outside, "master", "br0")
        ip("-n", self.switch, "link", "set", outside, "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
        ip("-n", namespace, "link", "set", inside, "up")
        self.addresses[name] = address
        return address

    def argv(self, name: str, command: Sequence[str]) -> list[str]:
        """``command`` run inside host ``name``."""
        return ["ip", "netns", "exec", f"{self.tag}-{name}", *command]

    def close(self) -> None:
        """Remove every namespace (their veth ends and the bridge go with them)."""
        for namespace in reversed(self.namespaces):
            ip("netns", "del", namespace, check=False)
        self.namespaces.clear()

    def left(self) -> list[str]:
        """This object's namespaces that still exist (for the test's own check)."""
        listed = {line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.split()}
        return sorted(name for name in listed if name.startswith(self.tag))
