"""A real Home Assistant as scripts/develop runs it, as a subprocess on 127.0.0.1.

config/ is copied into a temporary directory (on a free port, labpower linked in), a seed
writes the Lab's config entry (by default the demo lab of config/demo/seed.py), and
`hass --config <tmp> --skip-pip` starts. The owner is made through the onboarding API (the
other onboarding steps are marked done in storage, so nothing reaches the network); the
`Server` it yields holds the owner's tokens and an HTTP session. Used by the end-to-end
tests and by the load benchmark (benchmarks/test_load.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass
import importlib.util
import json
import os
from pathlib import Path
import shutil
import socket
import sys
import time
from types import ModuleType
from typing import Any

import aiohttp
import pytest

REPO = Path(__file__).parent.parent.parent
CONFIG = REPO / "config"
HOST = "127.0.0.1"
OWNER = "Ada"

type Seed = Callable[[Path], None]


def screenshot_dir(tmp_path: Path) -> Path:
    """Where end-to-end tests save screenshots (docs/images for scripts/screenshots)."""
    directory = Path(os.environ.get("LABPOWER_SCREENSHOTS") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """The environment without proxies: everything here stays on 127.0.0.1."""
    return {
        key: value for key, value in os.environ.items() if "proxy" not in key.lower()
    }


def seed_module() -> ModuleType:
    """config/demo/seed.py, the seed scripts/develop runs."""
    spec = importlib.util.spec_from_file_location(
        "demo_seed", CONFIG / "demo" / "seed.py"
    )
    assert spec is not None
    assert spec.loader is not None
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    return seed


def demo_seed(directory: Path) -> None:
    """The demo lab and its dashboard, written by config/demo/seed.py as scripts/develop does."""
    seed_module().main(str(directory))


def write_config(directory: Path, port: int, seed: Seed = demo_seed) -> None:
    """config/ as scripts/develop uses it, on `port`, seeded, onboarded but for the owner.

    The seed runs after configuration.yaml is written: it may add to it. The HTTP settings
    are stored afterwards, on `port`, as scripts/develop's seed stores them.
    """
    shutil.copyfile(CONFIG / "configuration.yaml", directory / "configuration.yaml")
    (directory / "custom_components").mkdir()
    (directory / "custom_components" / "labpower").symlink_to(
        REPO / "custom_components" / "labpower"
    )
    seed(directory)
    seed_module().write_http(directory, port)
    # Onboarding's steps but the owner's: core_config would set up integrations that
    # reach the Internet (weather, radio). The owner is made through the API.
    (directory / ".storage").mkdir(exist_ok=True)
    (directory / ".storage" / "onboarding").write_text(
        json.dumps(
            {
                "version": 4,
                "minor_version": 1,
                "key": "onboarding",
                "data": {"done": ["core_config", "analytics", "integration"]},
            }
        ),
        encoding="utf-8",
    )


@dataclass
class Server:
    """A running Home Assistant: its URL, the owner's tokens, an HTTP session."""

    url: str
    session: aiohttp.ClientSession
    tokens: dict[str, Any]
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The owner's authorization."""
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    async def get(self, path: str) -> Any:
        """GET a JSON answer."""
        async with self.session.get(self.url + path, headers=self.headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def action(
        self, service: str, data: dict[str, Any], *, response: bool = False
    ) -> Any:
        """Call a labpower action through the REST API; its response if asked for."""
        url = f"{self.url}/api/services/labpower/{service}"
        async with self.session.post(
            url + ("?return_response" if response else ""),
            headers=self.headers,
            json=data,
        ) as answer:
            assert answer.status == 200, await answer.text()
            return (await answer.json())["service_response"] if response else None

    async def websocket(self, *messages: dict[str, Any]) -> list[Any]:
        """Send websocket commands as the owner; their results."""
        results = []
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            assert (await ws.receive_json())["type"] == "auth_required"
            await ws.send_json(
                {"type": "auth", "access_token": self.tokens["access_token"]}
            )
            assert (await ws.receive_json())["type"] == "auth_ok"
            for number, message in enumerate(messages, start=1):
                await ws.send_json({"id": number, **message})
                answer = await ws.receive_json()
                assert answer["success"], answer
                results.append(answer["result"])
        return results

    async def long_lived_token(self, client_name: str) -> str:
        """A long-lived access token of the owner (Profile → Security), as CI uses."""
        [token] = await self.websocket(
            {
                "type": "auth/long_lived_access_token",
                "client_name": client_name,
                "lifespan": 1,
            }
        )
        return str(token)

    async def repairs_shown(self) -> list[dict[str, Any]]:
        """The repair issues Settings → Repairs shows (ignored ones are hidden there)."""
        [issues] = await self.websocket({"type": "repairs/list_issues"})
        return [issue for issue in issues["issues"] if not issue["ignored"]]

    def log_tail(self) -> str:
        """The end of Home Assistant's output, for failure messages."""
        return tail(self.log)


def tail(log: Path) -> str:
    """The end of a log file."""
    with contextlib.suppress(OSError):
        return log.read_text(encoding="utf-8", errors="replace")[-4000:]
    return ""


async def until_up(
    session: aiohttp.ClientSession,
    url: str,
    process: asyncio.subprocess.Process,
    log: Path,
    seconds: float = 45,
) -> None:
    """Wait until the HTTP server answers (it starts once every integration is set up)."""
    deadline = time.monotonic() + seconds
    while True:
        if process.returncode is not None:
            pytest.fail(f"hass exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(aiohttp.ClientError):
            # The API without a token, as onboarding's own page asks: /api/ would answer
            # 401 just as well, but log a failed login.
            async with session.get(f"{url}/api/onboarding") as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            pytest.fail(f"Home Assistant did not answer on {url}:\n{tail(log)}")
        await asyncio.sleep(0.2)


async def onboard(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """Make the owner through onboarding's API; the owner's tokens."""
    client_id = f"{url}/"
    async with session.post(
        f"{url}/api/onboarding/users",
        json={
            "client_id": client_id,
            "name": OWNER,
            "username": "ada",
            "password": "rack-card-test",
            "language": "en",
        },
    ) as response:
        assert response.status == 200, await response.text()
        code = (await response.json())["auth_code"]
    async with session.post(
        f"{url}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
        },
    ) as response:
        assert response.status == 200, await response.text()
        tokens: dict[str, Any] = await response.json()
    return tokens


async def demo_ready(server: Server) -> bool:
    """Whether the demo lab's entities are there (the last resource's Power switch)."""
    async with server.session.get(
        f"{server.url}/api/states/switch.pi_maas_power", headers=server.headers
    ) as response:
        return response.status == 200


async def start_hass(directory: Path, log: Path) -> asyncio.subprocess.Process:
    """Start `hass` on a configuration folder, its output into `log`."""
    hass = Path(sys.executable).parent / "hass"
    with log.open("wb") as output:
        # --skip-pip: the virtual environment has every requirement; never ask an index.
        return await asyncio.create_subprocess_exec(
            str(hass),
            "--config",
            str(directory),
            "--skip-pip",
            env=clean_environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )


@contextlib.asynccontextmanager
async def home_assistant(
    directory: Path,
    *,
    seed: Seed = demo_seed,
    ready: Callable[[Server], Awaitable[bool]] = demo_ready,
    ready_seconds: float = 20,
) -> AsyncIterator[Server]:
    """Home Assistant with the seeded lab on a free port, onboarded, once `ready`."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    write_config(directory, port, seed)
    log = directory / "hass-output.log"
    process = await start_hass(directory, log)
    try:
        async with aiohttp.ClientSession() as session:
            await until_up(session, url, process, log)
            tokens = await onboard(session, url)
            server = Server(url, session, tokens, log, process)
            deadline = time.monotonic() + ready_seconds
            while not await ready(server):
                assert time.monotonic() < deadline, server.log_tail()
                await asyncio.sleep(0.2)
            yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
