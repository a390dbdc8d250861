"""A private LAN of Linux network namespaces: one per "host", wired to a switch.

    with Lan("10.231.0") as lan:
        lan.add_host("a", 11)          # namespace souk-<id>-a, eth0 10.231.0.11/24
        lan.cut("a"); lan.restore("a")  # pull and plug the host's cable at the switch

The switch is a namespace of its own holding a bridge (address .1: where the test's
port-forwards come from); every host is a namespace with a veth pair whose other end is a
port of that bridge. Both ends are created directly inside their namespaces: nothing is
added to the machine's own (root) namespace. Closing deletes every namespace it made, which
deletes their interfaces with them.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from types import TracebackType


class NetnsUnavailableError(RuntimeError):
    """This process may not create network namespaces (not root, or in a restricted sandbox)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def check_netns() -> None:
    """Raise NetnsUnavailableError unless a namespace can be made and deleted here."""
    probe = f"souk-probe-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        raise NetnsUnavailableError(f"`ip netns add` is not permitted here: {detail}") from exc
    _ip("netns", "delete", probe)


class Lan:
    """Network namespaces on one bridge; see the module."""

    def __init__(self, subnet: str) -> None:
        self.subnet = subnet  # the first three octets of a /24
        self.id = secrets.token_hex(3)
        self.switch = self._name("sw")
        self.hosts: dict[str, str] = {}  # host → its namespace
        self._made: list[str] = []

    def _name(self, host: str) -> str:
        return f"souk-{self.id}-{host}"

    def address(self, octet: int) -> str:
        return f"{self.subnet}.{octet}"

    def __enter__(self) -> Lan:
        try:
            self._add_namespace(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "addr", "add", f"{self.address(1)}/24", "dev", "br0")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def add_host(self, host: str, octet: int) -> str:
        """A host on the LAN at subnet.octet; returns its namespace's name."""
        namespace = self._name(host)
        self._add_namespace(namespace)
        port = f"p-{host}"
        _ip("link", "add", "eth0", "netns", namespace, "type", "veth",
            "peer", "name", port, "netns", self.switch)  # fmt: skip
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", namespace, "addr", "add", f"{self.address(octet)}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        self.hosts[host] = namespace
        return namespace

    def cut(self, host: str) -> None:
        """Pull the host's cable at the switch: nothing reaches it or leaves it."""
        _ip("-n", self.switch, "link", "set", f"p-{host}", "down")

    def restore(self, host: str) -> None:
        """Plug it back in."""
        _ip("-n", self.switch, "link", "set", f"p-{host}", "up")

    def exec_prefix(self, host: str) -> list[str]:
        """The argv prefix that runs a command on a host."""
        return ["ip", "netns", "exec", self.hosts[host]]

    def close(self) -> None:
        """Delete every namespace made (and so every interface in them)."""
        while self._made:
            name = self._made.pop()
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "delete", name)
