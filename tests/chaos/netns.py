"""Worker "hosts" in network namespaces of the test's own making, and cutting their links.

Each host is a namespace joined to this one by a veth pair with a /30 of its own in
10.77.0.0/16. It reaches the database through a Forwarder listening on this side's address,
so the database server needs no change. Cutting a host's link sets this side of its veth
down: the host keeps its address and route (its side just loses carrier), so its packets are
dropped without an error and its connections hang, as in a real partition, rather than being
refused or reset. Needs Linux, root and iproute2's `ip`.
"""

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.chaos.forwarder import Forwarder

SUBNET: Final = ipaddress.IPv4Network("10.77.0.0/16")
BLOCKS: Final = SUBNET.num_addresses // 4  # /30s: network, this side, the host, broadcast
NAME_PREFIX: Final = "taskmill-host-"
IP_TIMEOUT: Final = 10.0


class NetnsUnavailable(Exception):
    """Network namespaces can't be made here; the message says why."""


def why_netns_unavailable() -> str | None:
    """Return why this process can't make namespaces and veths, or None if it can try."""
    if not Path("/proc/self/ns/net").exists():
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "making network namespaces needs root (run as root, or in a root container)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return None


def ip(*args: str) -> str:
    """Run `ip *args` and return its output; raise NetnsUnavailable with its error if it fails."""
    done = subprocess.run(
        ["ip", *args],  # noqa: S607 - iproute2 from PATH, checked by why_netns_unavailable
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(slots=True, kw_only=True)
class Host:
    """One namespace, its veth pair and the forwarder port it reaches the database through."""

    name: str
    outside: str  # veth end in this namespace
    inside: str  # veth end in the host's namespace
    outside_address: str
    inside_address: str
    forwarder: Forwarder | None = None  # what the host reaches the database through
    database_port: int = 0
    is_cut: bool = False

    @property
    def command_prefix(self) -> tuple[str, ...]:
        """Run a command inside the host: `ip netns exec` execs it in place (same pid)."""
        return ("ip", "netns", "exec", self.name)

    def database_env(self) -> dict[str, str]:
        """Worker environment reaching the database through this host's forwarder."""
        return {
            "TASKMILL_TEST_DB_HOST": self.outside_address,
            "TASKMILL_TEST_DB_PORT": str(self.database_port),
        }

    def cut(self) -> None:
        """Drop every packet between the host and the rest, silently, until restore()."""
        ip("link", "set", self.outside, "down")
        self.is_cut = True

    def end_sessions(self) -> int:
        """Drop the host's database sessions, as a failover does; return how many.

        While the link is cut, the host isn't told: it finds out when it next sends.
        """
        assert self.forwarder is not None
        return self.forwarder.end_sessions(self.database_port)

    def restore(self) -> None:
        """Bring the link back; connections that hung carry on at their next retransmission."""
        ip("link", "set", self.outside, "up")
        self.is_cut = False


@dataclass(slots=True, kw_only=True)
class Network:
    """Hosts joined to this namespace, each reaching `upstream` through one Forwarder."""

    upstream: tuple[str, int]
    hosts: list[Host] = field(default_factory=list)
    forwarder: Forwarder | None = None

    @classmethod
    def create(cls, count: int, *, upstream: tuple[str, int]) -> "Network":
        """Make `count` hosts; raise NetnsUnavailable, having removed any made, if one fails."""
        reason = why_netns_unavailable()
        if reason is not None:
            raise NetnsUnavailable(reason)
        remove_stale_hosts()
        network = cls(upstream=upstream)
        try:
            network.forwarder = Forwarder(upstream)
            for index, block in enumerate(_free_blocks(count)):
                network._add_host(index, block)
        except BaseException:
            network.destroy()
            raise
        return network

    def _add_host(self, index: int, block: ipaddress.IPv4Network) -> None:
        assert self.forwarder is not None
        # Interface names have at most 15 characters: "tm" + pid + "h" + index + side.
        stem = f"tm{os.getpid()}h{index}"
        outside_address, inside_address = (str(a) for a in block.hosts())
        host = Host(
            name=f"{NAME_PREFIX}{os.getpid()}-{index}",
            outside=f"{stem}o",
            inside=f"{stem}i",
            outside_address=outside_address,
            inside_address=inside_address,
        )
        ip("netns", "add", host.name)
        # Appended before the veth exists, so destroy() removes the namespace if the rest fails.
        self.hosts.append(host)
        ip("link", "add", host.outside, "type", "veth", "peer", "name", host.inside)
        ip("link", "set", host.inside, "netns", host.name)
        ip("addr", "add", f"{outside_address}/{block.prefixlen}", "dev", host.outside)
        ip("link", "set", host.outside, "up")
        ip(
            "-n",
            host.name,
            "addr",
            "add",
            f"{inside_address}/{block.prefixlen}",
            "dev",
            host.inside,
        )
        ip("-n", host.name, "link", "set", host.inside, "up")
        ip("-n", host.name, "link", "set", "lo", "up")
        # The host knows this side's MAC address for good, as a host knows its gateway's:
        # otherwise, while the link is cut, a new connection would fail at once with "no
        # route to host" when ARP gives up, instead of hanging like the rest of its traffic.
        mac = ip("-j", "link", "show", host.outside)
        ip(
            "-n", host.name, "neigh", "replace", outside_address,
            "lladdr", json.loads(mac)[0]["address"], "dev", host.inside, "nud", "permanent",
        )  # fmt: skip
        host.forwarder = self.forwarder
        host.database_port = self.forwarder.listen(outside_address)

    def destroy(self) -> list[str]:
        """Kill what still runs in the hosts, remove them and stop the forwarder.

        Every step is tried whatever failed before it; return what could not be removed.
        """
        problems = []
        for host in self.hosts:
            problems.extend(remove_host(host.name, host.outside))
        if self.forwarder is not None:
            self.forwarder.close()
        return problems

    def leftovers(self) -> list[str]:
        """Namespaces and links of this network that still exist."""
        names = set(ip("netns", "list").split())
        links = ip("-o", "link", "show")
        found = [host.name for host in self.hosts if host.name in names]
        found += [host.outside for host in self.hosts if f" {host.outside}@" in links]
        return found


def remove_host(name: str, outside: str | None) -> list[str]:
    """Kill the processes in namespace `name`, delete its veth and the namespace.

    Return the steps that failed.
    """
    problems = []
    with contextlib.suppress(NetnsUnavailable):
        for pid in ip("netns", "pids", name).split():
            # Only processes a test started inside its own namespace can be in there.
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    steps = [("link", "del", outside)] if outside else []
    steps.append(("netns", "del", name))
    for step in steps:
        try:
            ip(*step)
        except NetnsUnavailable as error:
            problems.append(str(error))
    return problems


def remove_stale_hosts() -> None:
    """Remove namespaces left by test runs that were killed before their clean-up.

    Only namespaces named for a process that no longer exists: a run still going keeps its own.
    """
    for name in ip("netns", "list").split():
        match = re.fullmatch(rf"{re.escape(NAME_PREFIX)}(\d+)-\d+", name)
        if match and not Path(f"/proc/{match[1]}").exists():
            # Deleting the namespace deletes its veth end, and with it this side's.
            remove_host(name, None)


def _free_blocks(count: int) -> list[ipaddress.IPv4Network]:
    """`count` /30s of SUBNET on no interface yet, starting at a place picked by the pid.

    Starting from the pid keeps two runs side by side apart even when they look at the same
    moment; the check skips blocks an earlier run still uses.
    """
    taken = {
        ipaddress.IPv4Network(f"{address}/30", strict=False)
        for address in re.findall(r"inet (10\.77\.[\d.]+)/", ip("-o", "-4", "addr", "show"))
    }
    found: list[ipaddress.IPv4Network] = []
    start = (os.getpid() * count) % BLOCKS
    for offset in range(BLOCKS):
        index = (start + offset) % BLOCKS
        block = ipaddress.IPv4Network((int(SUBNET.network_address) + 4 * index, 30))
        if block not in taken and block.network_address != SUBNET.network_address:
            found.append(block)
            if len(found) == count:
                return found
    raise NetnsUnavailable(f"no free /30 left in {SUBNET} for {count} hosts")
