"""Run Python in a network namespace of its own: only a loopback interface, its own sysctls.

`unshare --net` gives the code a private network stack: what it sends cannot leave the
machine (there is no interface but `lo`, no route), and ICMP settings that are global on
the host are its own there: `net.ipv4.ping_group_range` (Linux's unprivileged ping
sockets, icmp(7)) and `net.ipv4.icmp_echo_ignore_all` / `net.ipv6.icmp.echo_ignore_all`
(the kernel stops answering echo requests: silent hosts on loopback). The code runs in a
child process and prints one JSON document, which `in_netns` returns.
"""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest

REPOSITORY = Path(__file__).parents[2]
UNSHARE = shutil.which("unshare")

# Brings `lo` up (SIOCGIFFLAGS / SIOCSIFFLAGS, netdevice(7)) and writes the sysctls.
_PRELUDE = """
import fcntl, json, socket, struct, sys
sys.path.insert(0, {repository!r})
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as _s:
    _flags = struct.unpack("16sh", fcntl.ioctl(_s, 0x8913, struct.pack("16sh", b"lo", 0))[:18])[1]
    fcntl.ioctl(_s, 0x8914, struct.pack("16sh", b"lo", _flags | 1))
for _path, _value in {sysctls!r}.items():
    with open("/proc/sys/" + _path.replace(".", "/"), "w") as _file:
        _file.write(_value)
"""


def in_netns(
    code: str, *, sysctls: dict[str, str] | None = None, timeout: float = 60
) -> Any:
    """Run `code` (which prints JSON) in a fresh network namespace; return what it printed."""
    if UNSHARE is None:
        pytest.skip("needs unshare (util-linux)")
    prelude = _PRELUDE.format(repository=str(REPOSITORY), sysctls=sysctls or {})
    try:
        done = subprocess.run(  # noqa: S603 - a fixed local program
            [UNSHARE, "--net", sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True, check=False, timeout=timeout, text=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"no answer in {timeout} s: {err.stderr!r}") from err
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
