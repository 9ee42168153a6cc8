"""bin/labpower-run, the real script, against Home Assistant's real HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import getpass
import os
from pathlib import Path
import signal
import socket
import sys
import time
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.core import Event, HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.labpower.core.model import TokenKind

from .conftest import resource_data
from .peers.ha import event_tokens, throttled_done

SCRIPT = str(Path(__file__).parent.parent / "bin" / "labpower-run")
SENSOR = "binary_sensor.slow_1_up"

# What the command sees, asked from the server while it runs: state, holders, token.
PROBE = """\
import json, os, urllib.request
url = os.environ["LABPOWER_URL"] + "/api/labpower/resources/" + os.environ["LABPOWER_RESOURCES"]
headers = {"Authorization": "Bearer " + os.environ["LABPOWER_TOKEN"]}
resource = json.load(urllib.request.urlopen(urllib.request.Request(url, headers=headers)))
[token] = resource["tokens"]
print(resource["state"], resource["holders"], token["token"] == os.environ["LABPOWER_TOKENS"])
print(os.environ["LABPOWER_TOKENS"])
raise SystemExit(7)
"""


@dataclass
class Run:
    """A finished labpower-run: exit status and output."""

    code: int
    stdout: str
    stderr: str


@dataclass
class Env:
    """How to reach the server; the environment labpower-run gets."""

    url: str
    access_token: str
    environ: dict[str, str]
    client: TestClient


@pytest.fixture
def lab_resources(hass: HomeAssistant) -> list[dict[str, Any]]:
    """builder-1/2 (labelled arm), x86-1, and slow-1 that is up when SENSOR is on (off)."""
    hass.states.async_set(SENSOR, "off")
    return [
        resource_data("builder-1", labels=["arm", "big"]),
        resource_data("builder-2", labels=["arm"]),
        resource_data("x86-1", labels=["x86"]),
        resource_data("slow-1", checker_type="entity", check_entity=SENSOR),
    ]


@pytest.fixture
async def server(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    aiohttp_client: ClientSessionGenerator,
    hass_access_token: str,
    socket_enabled: None,
) -> Env:
    """The lab served by Home Assistant's HTTP app on a real 127.0.0.1 port."""
    # Home Assistant's own runner cancels a handler when its client goes away.
    client = await aiohttp_client(
        hass.http.app, server_kwargs={"handler_cancellation": True}
    )
    url = str(client.make_url("")).rstrip("/")
    environ = clean_environ(LABPOWER_URL=url, LABPOWER_TOKEN=hass_access_token)
    return Env(url, hass_access_token, environ, client)


def clean_environ(**extra: str) -> dict[str, str]:
    """The test's environment without CI job names, proxies or LABPOWER_*, plus extra."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"BUILD_TAG", "CI_JOB_URL", "CI_JOB_ID", "GITHUB_ACTIONS"}
        and "proxy" not in key.lower()
        and not key.startswith("LABPOWER_")
    }
    environ.update(extra)
    return environ


async def start(environ: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    """Start labpower-run with these arguments."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        SCRIPT,
        *args,
        env=environ,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, seconds: float = 20) -> Run:
    """Wait for labpower-run to end (killing it past `seconds`)."""
    communicate = asyncio.ensure_future(process.communicate())
    done, _ = await asyncio.wait([communicate], timeout=seconds)
    if not done:
        process.kill()
        _, stderr = await communicate
        pytest.fail(f"labpower-run still ran after {seconds} s:\n{stderr.decode()}")
    stdout, stderr = communicate.result()
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


async def run(environ: dict[str, str], *args: str) -> Run:
    """Run labpower-run to its end."""
    return await finish(await start(environ, *args))


async def until(condition: Callable[[], Any], seconds: float = 10) -> None:
    """Let the server work until condition() is true."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def holders(entry: MockConfigEntry, resource: str) -> list[Any]:
    """The live tokens on a resource."""
    return list(entry.runtime_data.lab.ledger.tokens(resource))


def holders_of(events: list[Event]) -> list[str]:
    """The holders named by token events."""
    return event_tokens(events)


async def test_runs_the_command_while_holding_the_resource(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    acquired = async_capture_events(hass, "labpower_token_acquired")
    released = async_capture_events(hass, "labpower_token_released")
    power = async_capture_events(hass, "labpower_power_changed")
    environ = {**server.environ, "BUILD_TAG": "jenkins-lab-42"}
    result = await run(
        environ, "--resource", "builder-1", "--", sys.executable, "-c", PROBE
    )
    assert result.code == 7, result.stderr
    seen, token = result.stdout.splitlines()
    assert seen == "available 1 True"
    await throttled_done(hass)  # a burst's token events
    assert holders_of(acquired) == holders_of(released) == ["jenkins-lab-42"]
    assert [(e.data["resource"], e.data["action"]) for e in power] == [
        ("builder-1", "on")
    ]
    assert holders(lab, "builder-1") == []
    assert "acquired builder-1 (available)" in result.stderr
    assert "released builder-1" in result.stderr
    # Secrets stay secret: neither the usage token nor the access token is printed.
    assert token not in result.stderr
    assert server.access_token not in result.stderr + result.stdout


async def test_a_revoked_token_does_not_stop_the_command(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry, tmp_path: Path
) -> None:
    revoked = async_capture_events(hass, "labpower_token_revoked")
    marker = tmp_path / "started"
    process = await start(
        server.environ,
        "--resource",
        "builder-1",
        "--ttl",
        "3",
        "--",
        "sh",
        "-c",
        'touch "$0"; sleep 2',
        str(marker),
    )
    await until(marker.exists)
    lab.runtime_data.lab.force_off("builder-1", "forced off by the test")
    result = await finish(process)
    assert result.code == 0, result.stderr
    assert len(revoked) == 1
    assert "the token on builder-1 has ended" in result.stderr


async def test_server_gone_while_the_command_runs(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry, tmp_path: Path
) -> None:
    """Renewals fail and are retried, the release fails: the command's status stays."""
    marker = tmp_path / "started"
    process = await start(
        server.environ,
        "--resource",
        "x86-1",
        "--ttl",
        "3",
        "--",
        "sh",
        "-c",
        'touch "$0"; exec sleep 2.5',
        str(marker),
    )
    await until(marker.exists)
    [token] = holders(lab, "x86-1")
    await server.client.close()
    result = await finish(process)
    assert result.code == 0, result.stderr
    assert (
        result.stderr.count("renewing x86-1 failed: Connection refused; retrying") >= 1
    )
    assert "could not release x86-1 (Connection refused)" in result.stderr
    assert token.id not in result.stderr
    assert token.id[:6] not in result.stderr


@pytest.mark.parametrize(
    ("script", "code"), [("exit 0", 0), ("exit 3", 3), ("kill -KILL $$", 128 + 9)]
)
async def test_exit_status_is_the_commands(
    hass: HomeAssistant, server: Env, script: str, code: int
) -> None:
    released = async_capture_events(hass, "labpower_token_released")
    result = await run(
        server.environ, "--resource", "x86-1", "-q", "--", "sh", "-c", script
    )
    assert result.code == code
    assert result.stderr == ""  # --quiet
    await throttled_done(hass)  # a burst's token events
    assert len(released) == 1


async def test_renews_while_the_command_runs(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    expired = async_capture_events(hass, "labpower_token_expired")
    released = async_capture_events(hass, "labpower_token_released")
    process = await start(
        server.environ, "--resource", "builder-1", "--ttl", "3", "--", "sleep", "4.5"
    )
    await until(lambda: holders(lab, "builder-1"))
    [token] = holders(lab, "builder-1")
    first = token.expires
    # Renewed every second: before the first ttl ends, the lease reaches past it.
    await until(lambda: token.expires > first + 2.5)
    result = await finish(process)  # 4.5 s: longer than the ttl given
    assert result.code == 0, result.stderr
    assert expired == []
    assert len(released) == 1


async def test_renews_with_the_resources_default_ttl(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    """Without --ttl the first renew comes at once; its answer gives the lease length."""
    acquired = async_capture_events(hass, "labpower_token_acquired")
    process = await start(server.environ, "--resource", "builder-2", "--", "sleep", "1")
    await until(lambda: holders(lab, "builder-2"))
    [token] = holders(lab, "builder-2")
    since = dt_util.parse_datetime(event_tokens(acquired, "since")[0])
    assert since is not None
    first = (
        since.timestamp() + lab.runtime_data.lab.ledger.policy("builder-2").default_ttl
    )
    await until(lambda: token.expires > first)
    result = await finish(process)
    assert result.code == 0, result.stderr
    assert "renewing" not in result.stderr


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ('touch "$0"; exec sleep 30', 128 + signal.SIGTERM),
        ('trap "exit 3" TERM; touch "$0"; while :; do sleep 0.1; done', 3),
    ],
)
async def test_sigterm_releases_and_returns_the_commands_status(
    hass: HomeAssistant, server: Env, tmp_path: Path, script: str, code: int
) -> None:
    released = async_capture_events(hass, "labpower_token_released")
    marker = tmp_path / "started"
    process = await start(
        server.environ,
        "--resource",
        "builder-1",
        "--",
        "sh",
        "-c",
        script,
        str(marker),
    )
    await until(marker.exists)
    process.send_signal(signal.SIGTERM)
    result = await finish(process, seconds=10)
    assert result.code == code, result.stderr
    await throttled_done(hass)  # a burst's token events
    assert len(released) == 1


async def test_waits_until_available(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    process = await start(
        server.environ,
        "--resource",
        "slow-1",
        "--wait-timeout",
        "20",
        "--",
        "sh",
        "-c",
        'echo "ran on $LABPOWER_RESOURCES"',
    )
    await until(lambda: holders(lab, "slow-1"))
    await until(lambda: hass.states.get("input_boolean.slow_1_relay").state == "on")
    assert process.returncode is None  # still waiting
    hass.states.async_set(SENSOR, "on")
    result = await finish(process)
    assert result.code == 0, result.stderr
    assert result.stdout == "ran on slow-1\n"
    assert "acquired slow-1 (available)" in result.stderr


async def test_wait_timeout(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    released = async_capture_events(hass, "labpower_token_released")
    result = await run(
        server.environ,
        "--resource",
        "slow-1",
        "--holder",
        "nightly",
        "--wait-timeout",
        "0.5",
        "--",
        "sh",
        "-c",
        "echo never",
    )
    assert result.code == 6
    assert "Not available within 0.5 s: slow-1" in result.stderr
    assert result.stdout == ""
    await throttled_done(hass)  # a burst's token events
    assert holders_of(released) == ["nightly"]
    assert holders(lab, "slow-1") == []


async def test_sigterm_while_waiting_exits(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    process = await start(
        server.environ, "--resource", "slow-1", "--", "sh", "-c", "echo never"
    )
    await until(lambda: holders(lab, "slow-1"))
    process.send_signal(signal.SIGTERM)
    result = await finish(process, seconds=10)
    assert result.code == 128 + signal.SIGTERM
    assert result.stdout == ""
    assert "interrupted by signal 15 while acquiring" in result.stderr
    assert "the server releases what it was giving" in result.stderr
    assert "ends with its lease" not in result.stderr


async def test_sigterm_while_waiting_releases_on_the_server(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    process = await start(
        server.environ, "--resource", "slow-1", "--", "sh", "-c", "echo never"
    )
    await until(lambda: holders(lab, "slow-1"))
    process.send_signal(signal.SIGTERM)
    await finish(process, seconds=10)
    await until(lambda: not holders(lab, "slow-1"), seconds=1)


async def test_pool_by_label(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    acquired = async_capture_events(hass, "labpower_token_acquired")
    released = async_capture_events(hass, "labpower_token_released")
    result = await run(
        server.environ,
        "--label",
        "arm",
        "--count",
        "2",
        "--",
        "sh",
        "-c",
        'echo "$LABPOWER_RESOURCES" "$LABPOWER_TOKENS"',
    )
    assert result.code == 0, result.stderr
    names, tokens = result.stdout.split()
    assert sorted(names.split(",")) == ["builder-1", "builder-2"]
    assert len(tokens.split(",")) == 2
    user = f"{getpass.getuser()}@{socket.gethostname()} "
    await throttled_done(hass)  # a burst's token events
    assert (
        holders_of(acquired)
        == [f'{user}sh -c \'echo "$LABPOWER_RESOURCES" "$LABPOWER_TOKENS"\''] * 2
    )
    assert len(released) == 2

    result = await run(
        server.environ,
        "--label",
        "arm",
        "--label",
        "big",
        "--",
        "sh",
        "-c",
        'echo "$LABPOWER_RESOURCES"',
    )
    assert (result.code, result.stdout) == (0, "builder-1\n")

    result = await run(server.environ, "--label", "arm", "--count", "3", "--", "true")
    assert result.code == 5
    assert "3 free resource(s) labelled arm wanted, 2 free" in result.stderr


async def test_refused(server: Env) -> None:
    result = await run(server.environ, "--resource", "nope", "--", "true")
    assert result.code == 5
    assert "acquire refused (HTTP 404): Unknown resource: nope" in result.stderr

    result = await run(
        server.environ, "--resource", "x86-1", "--ttl", "99999", "--", "true"
    )
    assert result.code == 5
    assert "at most 3600 s (field: ttl)" in result.stderr

    rejected = {**server.environ, "LABPOWER_TOKEN": "not-a-token"}
    result = await run(rejected, "--resource", "x86-1", "--", "true")
    assert result.code == 3
    assert "rejected (HTTP 401)" in result.stderr
    assert "not-a-token" not in result.stderr

    elsewhere = {**server.environ, "LABPOWER_URL": server.url + "/not-ha"}
    result = await run(elsewhere, "--resource", "x86-1", "--", "true")
    assert result.code == 4
    assert "no labpower REST API" in result.stderr


async def test_command_not_found(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    released = async_capture_events(hass, "labpower_token_released")
    result = await run(server.environ, "--resource", "x86-1", "--", "no-such-command-x")
    assert result.code == 127
    assert "cannot run 'no-such-command-x'" in result.stderr
    await throttled_done(hass)  # a burst's token events
    assert len(released) == 1


async def test_configuration_missing() -> None:
    environ = clean_environ()
    result = await run(environ, "--resource", "builder-1", "--", "true")
    assert result.code == 3
    assert "LABPOWER_URL and LABPOWER_TOKEN not set" in result.stderr

    result = await run(
        {**environ, "LABPOWER_URL": "ha:8123", "LABPOWER_TOKEN": "x"},
        "--resource",
        "builder-1",
        "--",
        "true",
    )
    assert result.code == 3
    assert "LABPOWER_URL must look like http://ha:8123" in result.stderr


@pytest.mark.usefixtures("socket_enabled")
async def test_server_unreachable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = clean_environ(LABPOWER_URL=f"http://127.0.0.1:{port}")
    environ["LABPOWER_TOKEN"] = "x"
    result = await run(environ, "--resource", "builder-1", "--", "true")
    assert result.code == 4
    assert "cannot reach labpower at LABPOWER_URL: Connection refused" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--resource", "builder-1"],  # no command
        ["--", "true"],  # neither --resource nor --label
        ["--resource", "a", "--label", "b", "--", "true"],
        ["--resource", "a", "--count", "2", "--", "true"],
        ["--resource", "a", "--ttl", "0", "--", "true"],
        ["--resource", "a", "--wait-timeout", "86401", "--", "true"],
    ],
)
async def test_usage_errors(args: list[str]) -> None:
    result = await run(clean_environ(), *args)
    assert result.code == 2
    assert result.stderr.startswith("usage: labpower-run")


async def test_help_documents_the_exit_codes() -> None:
    result = await run(clean_environ(), "--help")
    assert result.code == 0
    for line in ("2 ", "3 ", "4 ", "5 ", "6 ", "126 ", "127 ", "128+N "):
        assert f"\n  {line}" in result.stdout
    assert "LABPOWER_TOKEN" in result.stdout


def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert Path(SCRIPT).read_text().startswith("#!/usr/bin/env python3\n")


async def test_waits_in_the_queue_and_prints_its_position(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    first = lab.runtime_data.lab.acquire(
        ["builder-1"], "me", kind=TokenKind.HOLD, exclusive=True
    )
    process = await start(
        server.environ,
        "--resource",
        "builder-1",
        "--exclusive",
        "--holder",
        "bench",
        "--",
        "sh",
        "-c",
        'echo "$LABPOWER_RESOURCES"',
    )
    assert process.stderr is not None
    seen = b""
    while b"waiting in the queue: position 1" not in seen:
        seen += await asyncio.wait_for(process.stderr.readline(), 20)
    assert [r.holder for r in lab.runtime_data.lab.queue.requests()] == ["bench"]
    lab.runtime_data.lab.release([token.id for token in first])
    result = await finish(process)
    assert (result.code, result.stdout) == (0, "builder-1\n"), result.stderr
    assert lab.runtime_data.lab.queue.requests() == []


async def test_no_queue_is_refused_at_once(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    lab.runtime_data.lab.acquire(["builder-1"], "me", exclusive=True)
    result = await run(
        server.environ, "--resource", "builder-1", "--no-queue", "--", "true"
    )
    assert result.code == 5
    assert "builder-1 is held exclusively by me" in result.stderr


async def test_keeps_its_place_in_the_queue_when_the_lab_reloads(
    hass: HomeAssistant, server: Env, lab: MockConfigEntry
) -> None:
    first = lab.runtime_data.lab.acquire(["builder-1"], "me", exclusive=True)
    process = await start(
        server.environ, "--resource", "builder-1", "--holder", "ci", "--", "true"
    )
    await until(lab.runtime_data.lab.queue.requests)
    [queued] = lab.runtime_data.lab.queue.requests()
    assert await hass.config_entries.async_reload(lab.entry_id)
    # Told the lab stopped, labpower-run asks again with its ticket: same request.
    await until(lambda: lab.runtime_data.lab.queue.is_attached(queued.id), 20)
    lab.runtime_data.lab.release([token.id for token in first])
    result = await finish(process)
    assert result.code == 0, result.stderr
    assert "asking again" in result.stderr
