"""Ports for servers that a test's process will listen on later (a bot's webhook, metrics or
console server, a sandbox started after the bot).

A port from `bind(("127.0.0.1", 0))` comes from the kernel's ephemeral range, the same range
every outgoing connection on the machine takes its local port from: in the seconds before a
loaded machine's bot gets to listen on it, a connection (to the sandbox, PostgreSQL, another
test run) can take it, and the bot exits with "address already in use". So these ports are
picked at random below that range, where the kernel hands none out, and checked free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_given: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listen_port() -> int:
    """A free loopback port outside the ephemeral range, not given before in this process."""
    high = _ephemeral_start() - 1
    low = max(1024, high - 12000)
    if high - low >= 1000:
        for _ in range(200):
            port = random.randint(low, high)
            if port not in _given and _free(port):
                _given.add(port)
                return port
    with socket.socket() as s:  # an unusual range setting: the kernel's choice after all
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
