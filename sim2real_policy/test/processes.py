"""What this machine's processes and sockets are doing, read from /proc (Linux), for tests."""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
import signal


def listening_tcp(tables: dict | None = None) -> set[tuple[str, int]]:
    """``(address, port)`` of every listening TCP socket in this network namespace.

    ``tables``: the text of ``/proc/net/tcp`` and ``tcp6`` read elsewhere (keys ``tcp``,
    ``tcp6``); default: this namespace's, now.
    """
    if tables is None:
        tables = {name: (Path('/proc/net') / name).read_text() for name in ('tcp', 'tcp6')
                  if (Path('/proc/net') / name).exists()}
    found = set()
    for name, text in tables.items():
        for line in text.splitlines()[1:]:
            fields = line.split()
            if fields[3] != '0A':   # TCP_LISTEN
                continue
            hex_ip, hex_port = fields[1].split(':')
            raw = bytes.fromhex(hex_ip)
            if name == 'tcp':
                address = ipaddress.IPv4Address(raw[::-1])
            else:   # four little-endian 32-bit words
                address = ipaddress.IPv6Address(b''.join(raw[i:i + 4][::-1]
                                                         for i in range(0, 16, 4)))
                address = address.ipv4_mapped or address
            found.add((str(address), int(hex_port, 16)))
    return found


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1."""
    return ipaddress.ip_address(address).is_loopback


def pids_with_command(fragment: str) -> list[int]:
    """Processes whose command line (or title, as Ray sets it) contains ``fragment``."""
    pids = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / 'cmdline').read_bytes()
            command = raw.replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if fragment in command:
            pids.append(int(entry.name))
    return pids


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(')', 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    """True unless the process is gone or a zombie."""
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


def kill(pids) -> None:
    """SIGKILL, as the out-of-memory killer would."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
