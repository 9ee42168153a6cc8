"""Network UPS Tools' own server on 127.0.0.1: Debian's upsd with a dummy-ups driver.

The UPS is NUT's simulation driver `dummy-ups` (nut-server package) in its "dummy-once"
mode: it reads a definition file (`<ups>.dev`, `name: value` lines as `upsc` prints them)
and reads it again whenever the file's timestamp changes (dummy-ups(8), "Dummy Mode"). A
test switches the UPS by rewriting the file: `nut.set_status("OB DISCHRG")`; the peer then
waits until upsd itself reports the new value over NUT's network protocol (`GET VAR`, see
NUT's docs/net-protocol.txt), so what Home Assistant reads next is the new status.

upsd and the driver run as the current user (`-u`, honoured only when started as root)
from a temporary configuration directory (NUT_CONFPATH) with their sockets and PID files
in a private state directory (NUT_STATEPATH, NUT_ALTPIDPATH), upsd on a free TCP port:
nothing needs root, nothing touches the system's NUT.

Fixture: `nut_server` (one server for a test, with UPS `ups1` online).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
import os
from pathlib import Path
import pwd
import shutil
import socket
import subprocess
import time

import pytest

from .net import HOST, free_port, sockets_allowed, stop_process

UPSD = shutil.which("upsd") or "/usr/sbin/upsd"
DUMMY_UPS = "/usr/libexec/nut/dummy-ups"
UPS_NAME = "ups1"
USERNAME = "monuser"
PASSWORD = "monpass"  # a test server's account

# What a small line-interactive UPS reports (the variable names of NUT's docs/nut-names.txt).
ONLINE: dict[str, str] = {
    "device.mfr": "Lab Power",
    "device.model": "Dummy 1500",
    "device.serial": "LP0001",
    "device.type": "ups",
    "ups.status": "OL",
    "battery.charge": "100",
    "battery.runtime": "1800",
    "input.voltage": "230.0",
    "ups.load": "20",
}


def nut_get(port: int, ups: str, variable: str, timeout: float = 2.0) -> str | None:
    """One variable as upsd reports it (`GET VAR`), None for an ERR answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(f"GET VAR {ups} {variable}\n".encode())
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        sock.sendall(b"LOGOUT\n")
    line = answer.decode().strip()
    prefix = f"VAR {ups} {variable} "
    if not line.startswith(prefix):
        return None  # "ERR DATA-STALE", "ERR DRIVER-NOT-CONNECTED"...
    return line[len(prefix) :].strip('"')


@dataclass
class NutServer:
    """A running upsd with one dummy-ups UPS whose variables a test rewrites."""

    directory: Path
    port: int
    driver: subprocess.Popen[bytes]
    upsd: subprocess.Popen[bytes] | None = None
    ups: str = UPS_NAME
    host: str = HOST
    username: str = USERNAME
    password: str = PASSWORD
    _stamp: int = 0

    @property
    def definition(self) -> Path:
        """The dummy-ups definition file (`name: value` lines)."""
        return self.directory / f"{self.ups}.dev"

    def write(self, variables: Mapping[str, str]) -> None:
        """Replace the UPS's variables (the driver reads the file again)."""
        tmp = self.definition.with_suffix(".tmp")
        tmp.write_text(
            "".join(f"{name}: {value}\n" for name, value in variables.items()),
            encoding="utf-8",
        )
        tmp.replace(self.definition)
        # A timestamp that always moves on, even for two writes in the same second.
        self._stamp = max(self._stamp + 1, int(time.time()))
        os.utime(self.definition, (self._stamp, self._stamp))

    def set_status(self, status: str, timeout: float = 15.0, **variables: str) -> None:
        """Switch ups.status ("OL", "OB DISCHRG", "OB LB"); return once upsd reports it."""
        self.write({**ONLINE, **variables, "ups.status": status})
        self.await_status(status, timeout)

    def status(self) -> str | None:
        """ups.status as upsd reports it now."""
        try:
            return nut_get(self.port, self.ups, "ups.status")
        except OSError:
            return None

    def await_status(self, status: str, timeout: float = 15.0) -> None:
        """Wait until upsd reports this ups.status; raise if a process exits or it does not."""
        deadline = time.monotonic() + timeout
        while (now := self.status()) != status:
            for process in (self.driver, self.upsd):
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited: {self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"upsd reports {now!r}, not {status!r}: {self.log()}"
                )
            time.sleep(0.1)

    def log(self) -> str:
        """The end of both processes' output."""
        return "\n".join(
            (self.directory / name).read_text(encoding="utf-8", errors="replace")[
                -2000:
            ]
            for name in ("dummy-ups.log", "upsd.log")
            if (self.directory / name).exists()
        )

    def start_upsd(self) -> None:
        """Start upsd (again: after `stop_upsd`, on the same port)."""
        log = (self.directory / "upsd.log").open("ab")
        self.upsd = subprocess.Popen(  # noqa: S603 - a fixed local binary
            [UPSD, "-F", "-u", _user()],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=_env(self.directory),
        )  # fmt: skip
        log.close()

    def stop_upsd(self) -> None:
        """Stop upsd (the UPS's network server goes away, the driver stays)."""
        if self.upsd is not None:
            stop_process(self.upsd)
            self.upsd = None

    def stop(self) -> None:
        """Stop upsd and the driver."""
        self.stop_upsd()
        stop_process(self.driver)


def _user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _env(directory: Path) -> dict[str, str]:
    state = str(directory / "state")
    return {
        **os.environ,
        "NUT_CONFPATH": str(directory),
        "NUT_STATEPATH": state,
        "NUT_ALTPIDPATH": state,
    }


def nut_config(directory: Path, port: int) -> None:
    """ups.conf, upsd.conf and upsd.users for one dummy UPS (NUT's own file formats)."""
    files = {
        "ups.conf": (
            f"[{UPS_NAME}]\n"
            "  driver = dummy-ups\n"
            f"  port = {directory / f'{UPS_NAME}.dev'}\n"
            '  desc = "Lab UPS"\n'
            "  pollinterval = 1\n"
        ),
        "upsd.conf": f"LISTEN {HOST} {port}\nMAXAGE 30\n",
        "upsd.users": (f"[{USERNAME}]\n  password = {PASSWORD}\n  upsmon secondary\n"),
        "nut.conf": "MODE=netserver\n",
    }
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
    (directory / "state").mkdir(mode=0o700, exist_ok=True)


def start_nut(directory: Path, timeout: float = 15.0) -> NutServer:
    """Start dummy-ups and upsd on a free port with the UPS online; return once it answers."""
    with sockets_allowed():
        port = free_port()
    nut_config(directory, port)
    log = (directory / "dummy-ups.log").open("ab")
    driver = subprocess.Popen(  # noqa: S603 - a fixed local binary
        [DUMMY_UPS, "-a", UPS_NAME, "-F", "-u", _user()],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=_env(directory),
    )  # fmt: skip
    log.close()
    server = NutServer(directory, port, driver)
    server.write(ONLINE)
    server.start_upsd()
    try:
        with sockets_allowed():
            server.await_status("OL", timeout)
    except RuntimeError:
        server.stop()
        raise
    return server


@pytest.fixture
def nut_server(tmp_path: Path) -> Iterator[NutServer]:
    """NUT's upsd on 127.0.0.1 with the dummy UPS `ups1` online."""
    if not Path(UPSD).exists() or not Path(DUMMY_UPS).exists():
        pytest.skip("needs Debian's nut-server (upsd, dummy-ups)")
    directory = tmp_path / "nut"
    directory.mkdir()
    server = start_nut(directory)
    yield server
    server.stop()
