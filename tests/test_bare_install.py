"""labpower installs on a bare Home Assistant: the manifest's requirements are all it needs.

Home Assistant installs only what an integration's manifest lists. This test builds a fresh
virtual environment with nothing but `homeassistant` (the version requirements.txt pins) and
the manifest's requirements - nothing else from requirements*.txt - copies
custom_components/labpower into a fresh configuration with the demo lab, starts `hass`, and
checks through a small probe integration that the Lab entry, every platform and the config
flow load. Home Assistant runs as on a real first start, without --skip-pip: it installs
what its own always-loaded integrations need (the frontend, assist...), and nothing of
labpower's: a module the manifest forgot would fail the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from .peers.hass_process import (
    CONFIG,
    REPO,
    free_port,
    seed_module,
    tail,
)

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
MANIFEST = REPO / "custom_components" / "labpower" / "manifest.json"
PLATFORMS = ("binary_sensor", "button", "calendar", "sensor", "switch")
# What the demo's configuration.yaml loads beyond a bare install's packages (the frontend,
# the recorder): a headless Home Assistant without them.
NOT_BARE = ("frontend", "config", "history", "logbook", "energy")

PROBE = '''
"""Writes what loaded, once Home Assistant has started."""
import json
import os
from pathlib import Path

from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.helpers import entity_registry as er


async def async_setup(hass, config):
    async def started(_event):
        flow = await hass.config_entries.flow.async_init(
            "labpower", context={"source": "user"}
        )
        registry = er.async_get(hass)
        entities = [
            e for e in registry.entities.values()
            if e.platform == "labpower" and e.disabled_by is None
        ]
        report = json.dumps({
            "entries": {
                e.title: str(e.state) for e in hass.config_entries.async_entries("labpower")
            },
            "components": sorted(hass.config.components),
            "flow": flow["type"],
            "entities": {
                e.entity_id: getattr(hass.states.get(e.entity_id), "state", None)
                for e in entities
            },
        })
        await hass.async_add_executor_job(Path(hass.config.path("probe.json")).write_text, report)

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STARTED, started)
    return True
'''

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.timeout(900),
]


def _install_environment() -> dict[str, str]:
    """Home Assistant installs with uv, which reads no pip settings: give it the CA bundle."""
    environment = dict(os.environ)
    if Path(CA_BUNDLE).exists():
        environment.setdefault("SSL_CERT_FILE", CA_BUNDLE)
    return environment


def _pins() -> list[str]:
    """Homeassistant at the pinned version, and the manifest's requirements."""
    [homeassistant] = [
        line.strip()
        for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith("homeassistant==")
    ]
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return [homeassistant, *manifest["requirements"]]


def _bare_configuration(directory: Path, port: int) -> None:
    """The demo lab's configuration without what a bare install lacks, plus the probe."""
    configuration = yaml.safe_load((CONFIG / "configuration.yaml").read_text("utf-8"))
    for key in NOT_BARE:
        configuration.pop(key)
    configuration["bare_probe"] = {}
    (directory / "configuration.yaml").write_text(
        yaml.safe_dump(configuration), encoding="utf-8"
    )
    shutil.copytree(
        REPO / "custom_components" / "labpower",
        directory / "custom_components" / "labpower",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    probe = directory / "custom_components" / "bare_probe"
    probe.mkdir()
    (probe / "__init__.py").write_text(PROBE, encoding="utf-8")
    (probe / "manifest.json").write_text(
        json.dumps(
            {
                "domain": "bare_probe",
                "name": "Bare install probe",
                "version": "1.0.0",
                "after_dependencies": ["labpower"],
                "codeowners": [],
                "documentation": "https://example.invalid",
                "iot_class": "local_push",
            }
        ),
        encoding="utf-8",
    )
    seed = seed_module()
    seed.main(str(directory), port)


def _bare_venv(venv: Path) -> Path:
    """A new virtual environment with homeassistant and the manifest's requirements."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    install = subprocess.run(  # noqa: S603
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *_pins()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-4000:]
    return venv


async def test_loads_on_bare_home_assistant(tmp_path: Path) -> None:
    venv = _bare_venv(tmp_path / "venv")

    config = tmp_path / "config"
    config.mkdir()
    port = free_port()
    _bare_configuration(config, port)
    log = tmp_path / "hass.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(venv / "bin" / "hass"),
            "--config",
            str(config),
            env=_install_environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    probe = config / "probe.json"
    try:
        deadline = time.monotonic() + 600
        while not probe.exists():
            assert process.returncode is None, tail(log)
            assert time.monotonic() < deadline, tail(log)
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.2)  # written in one go; let it land
        loaded = json.loads(probe.read_text(encoding="utf-8"))
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 30)
        if process.returncode is None:
            process.kill()
            await process.wait()

    # Home Assistant's own always-loaded integrations may lack packages with --skip-pip
    # (they would install theirs at first start); labpower must lack nothing.
    problems = [
        line
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if "labpower" in line
        and (" ERROR " in line or " WARNING " in line)
        and "has not been tested by Home Assistant" not in line
    ]
    assert problems == [], "\n".join(problems)
    assert loaded["entries"] == {"Demo lab": "ConfigEntryState.LOADED"}
    assert "labpower" in loaded["components"]
    for platform in PLATFORMS:
        assert f"labpower.{platform}" in loaded["components"], loaded["components"]
    assert loaded["flow"] == "form"
    states = loaded["entities"]
    assert states["switch.builder_1_power"] == "off"
    assert states["sensor.builder_1_state"] in {"off", "unknown"}
    assert all(state is not None for state in states.values()), states
