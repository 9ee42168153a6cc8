"""A real ipmi_sim (Debian's openipmi) on 127.0.0.1 and ipmitool, the reference client.

The simulated chassis keeps its power in a file; a soft off (ACPI) makes the simulated OS
shut down at once, after a delay or never, as a file says. No packet leaves 127.0.0.0/8.
The `ipmi_sim` (one per test module) and `sim` (a fresh chassis) fixtures are in conftest.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
import shutil
import socket
import subprocess
import time

from .net import free_port, sockets_allowed, stop_process

HOST = "127.0.0.1"
IPMI_SIM = shutil.which("ipmi_sim")
IPMITOOL = shutil.which("ipmitool")


# The simulated chassis: `chassis.sh DEV get power` prints power:0|1, `set power 0|1`
# stores it, a soft off arrives as `set shutdown 1` and a reset as `set reset 1`.
CHASSIS_SH = """#!/bin/sh
dir="$(dirname "$0")"
echo "$*" >> "$dir/calls.log"
case "$2" in
get)
    shift 2
    for item in "$@"; do
        case "$item" in
            power) echo "power:$(cat "$dir/power")" ;;
            *) echo "$item:0" ;;
        esac
    done ;;
set)
    shift 2
    while [ $# -ge 2 ]; do
        case "$1" in
            power) echo "$2" > "$dir/power" ;;
            reset) [ "$2" = 1 ] && echo reset >> "$dir/resets" ;;
            shutdown)
                # The OS: "now" shuts down at once, "ignore" never, a number of seconds
                # later (in the background: ipmi_sim waits for this script).
                mode="$(cat "$dir/soft_off")"
                if [ "$2" = 1 ] && [ "$mode" = now ]; then
                    echo 0 > "$dir/power"
                elif [ "$2" = 1 ] && [ "$mode" != ignore ]; then
                    (sleep "$mode"; echo 0 > "$dir/power") </dev/null >/dev/null 2>&1 &
                fi ;;
        esac
        shift 2
    done ;;
esac
"""

LAN_CONF = """name "labsim"
set_working_mc 0x20
  startlan 1
    addr {host} {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{chassis} 0x20"
  user 2 true "admin" "password" admin 10 none md2 md5 straight
"""

CMD_EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


def ipmitool_args(port: int, *args: str) -> list[str]:
    """The reference client's command line for the simulator."""
    assert IPMITOOL is not None
    return [
        IPMITOOL,
        *("-I", "lanplus", "-H", HOST, "-p", str(port)),
        *("-U", "admin", "-P", "password", "-C", "3", "-N", "1", "-R", "1"),
        *args,
    ]


@dataclass
class Sim:
    """A running ipmi_sim and the files of its simulated chassis."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def power(self) -> str:
        """What the chassis file says: "0" or "1"."""
        return (self.directory / "power").read_text(encoding="utf-8").strip()

    @property
    def resets(self) -> int:
        """Resets the chassis received."""
        path = self.directory / "resets"
        return len(path.read_text(encoding="utf-8").split()) if path.exists() else 0

    @property
    def calls(self) -> list[str]:
        """`set` calls ipmi_sim made to the chassis script ("power 1", "shutdown 1")."""
        lines = (self.directory / "calls.log").read_text(encoding="utf-8").splitlines()
        return [line.split(" ", 2)[2] for line in lines if " set " in line]

    def reset_chassis(self, *, power: str = "0", soft_off: str = "now") -> None:
        """A fresh chassis: power, and what the OS does on a soft off."""
        (self.directory / "power").write_text(power + "\n", encoding="utf-8")
        (self.directory / "soft_off").write_text(soft_off + "\n", encoding="utf-8")
        (self.directory / "calls.log").write_text("", encoding="utf-8")
        (self.directory / "resets").unlink(missing_ok=True)

    async def ipmitool(self, *args: str) -> str:
        """Run the reference client; its output."""
        process = await asyncio.create_subprocess_exec(
            *ipmitool_args(self.port, *args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output
        return output.decode().strip()

    def stop(self) -> None:
        """Terminate ipmi_sim and wait for it."""
        stop_process(self.process)


def start_sim(directory: Path, timeout: float = 10.0) -> Sim:
    """Start ipmi_sim on a free port; return once ipmitool gets an answer."""
    assert IPMI_SIM is not None
    chassis = directory / "chassis.sh"
    chassis.write_text(CHASSIS_SH, encoding="utf-8")
    chassis.chmod(0o755)
    with sockets_allowed():
        port = free_port(socket.SOCK_DGRAM)
    (directory / "lan.conf").write_text(
        LAN_CONF.format(host=HOST, port=port, chassis=chassis), encoding="utf-8"
    )
    (directory / "cmd.emu").write_text(CMD_EMU, encoding="utf-8")
    (directory / "state").mkdir()
    log = directory / "ipmi_sim.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - a fixed local binary
            [IPMI_SIM, "-c", "lan.conf", "-f", "cmd.emu", "-s", "state", "-n"],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    sim = Sim(directory, port, process)
    sim.reset_chassis()
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"ipmi_sim exited with {process.returncode}: "
                + log.read_text(encoding="utf-8", errors="replace")
            )
        probe = subprocess.run(  # noqa: S603 - a fixed local binary
            ipmitool_args(port, "chassis", "power", "status"),
            capture_output=True,
            check=False,
            timeout=10,
        )
        if probe.returncode == 0:
            return sim
        if time.monotonic() > deadline:
            sim.stop()
            raise RuntimeError(f"ipmi_sim does not answer on {HOST}:{port}")
        time.sleep(0.05)
