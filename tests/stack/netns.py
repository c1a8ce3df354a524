"""A private network namespace for one test session.

Why: WebRTC stacks skip loopback ICE candidates, and tests must never touch the machine's own
external address. So the real stack (livekit-server, the worker, the test callers) runs inside a
namespace the harness makes, on a private test address that exists only there. Everything in the
namespace talks to that one address; nothing leaves it.

Needs root and iproute2's `ip`. Every `ip` call goes through `_ip`, which raises `NetnsError`
carrying the command and its stderr.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
from dataclasses import dataclass

PREFIX = "ivrkit-"
IFACE = "ivrkit0"
PEER = "ivrkit1"  # only used by the veth fallback


class NetnsError(RuntimeError):
    """An `ip` command failed; the message names the command and what it printed."""


def _ip(*args: str) -> str:
    argv = ["ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces() -> list[str]:
    """Names of all network namespaces (`ip netns list` prints 'name (id: N)')."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def namespace_pids(name: str) -> list[int]:
    return [int(p) for p in _ip("netns", "pids", name).split()]


def reap_stale() -> list[str]:
    """Delete ivrkit-<pid> (and ivrkit-<pid>-<suffix>) namespaces whose test session is gone.

    Why: a session killed with SIGKILL cannot clean up; its namespace (and any orphaned
    process in it, which our harness started) would linger. Namespaces of live sessions are
    left alone.
    """
    reaped = []
    for name in list_namespaces():
        match = re.fullmatch(re.escape(PREFIX) + r"(\d+)(-[\w-]+)?", name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_all(name)
            _ip("netns", "delete", name)
            reaped.append(name)
    return reaped


def _kill_all(name: str) -> None:
    for pid in namespace_pids(name):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Namespace:
    """A created namespace: `name`, its test `address` (IPv4, /30) and the link it sits on."""

    name: str
    address: str
    prefixlen: int
    link: str  # "dummy" or "veth"

    @classmethod
    def create(cls, name: str | None = None, address: str = "10.213.0.1", prefixlen: int = 30) -> Namespace:
        """Create the namespace, bring up `lo` and one interface carrying `address`.

        A dummy interface is enough (traffic to a local address never leaves the host stack);
        where the kernel lacks the dummy driver, a veth pair with both ends inside is used.
        """
        name = name or f"{PREFIX}{os.getpid()}"
        ipaddress.IPv4Address(address)  # raises ValueError on a bad address
        if name in list_namespaces():
            _kill_all(name)
            _ip("netns", "delete", name)
        _ip("netns", "add", name)
        ns = cls(name=name, address=address, prefixlen=prefixlen, link="dummy")
        try:
            _ip("-n", name, "link", "set", "lo", "up")
            try:
                _ip("-n", name, "link", "add", IFACE, "type", "dummy")
            except NetnsError:
                ns.link = "veth"
                _ip("-n", name, "link", "add", IFACE, "type", "veth", "peer", "name", PEER)
                _ip("-n", name, "link", "set", PEER, "up")
            _ip("-n", name, "addr", "add", f"{address}/{prefixlen}", "dev", IFACE)
            _ip("-n", name, "link", "set", IFACE, "up")
        except BaseException:
            ns.delete()
            raise
        return ns

    def exec_prefix(self) -> list[str]:
        """argv prefix that runs a command inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def pids(self) -> list[int]:
        return namespace_pids(self.name)

    def delete(self) -> list[int]:
        """Kill what still runs inside (processes the harness started) and delete the namespace.

        Returns the PIDs that had to be killed, so the caller can report leaks.
        """
        if self.name not in list_namespaces():
            return []
        leftover = self.pids()
        _kill_all(self.name)
        _ip("netns", "delete", self.name)
        return leftover
