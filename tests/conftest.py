"""Fixtures: a Lab with resources made of input_boolean relays and template sensors.

In peblar's shape: `mock_config_entry` is the lab (its resources from `lab_resources`, which a
module overrides or a test parametrizes indirectly), `init_integration` sets it up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
import json
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    get_test_config_dir,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.labpower import PLATFORMS
from custom_components.labpower.const import (
    CONF_CHECKER,
    CONF_POWER_ENTITY,
    CONF_RESOURCE_NAME,
    CONF_SWITCHER,
    DOMAIN,
    SUBENTRY_RESOURCE,
    SWITCHER_ENTITY,
)

from .peers.ha import setup_integration
from .peers.ipmi_sim import Sim, start_sim


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots with Home Assistant's serializer (ids and times left out)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def hass_config_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each test its own configuration folder: a lab's journal and store are files.

    Not the test's tmp_path, which end-to-end tests make a configuration of their own.
    """
    directory = tmp_path_factory.mktemp("hass_config")
    shutil.copytree(get_test_config_dir(), directory, symlinks=True, dirs_exist_ok=True)
    return str(directory)


def stored_lab(hass: HomeAssistant, entry_id: str) -> dict[str, Any] | None:
    """The data of a lab's store file as written (None: there is none)."""
    path = Path(hass.config.path(".storage", f"{DOMAIN}.{entry_id}"))
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())["data"]
    return data


def lab_files(hass: HomeAssistant, entry_id: str) -> set[str]:
    """The names of a lab's storage files (store, good copy, journal segments)."""
    key = f"{DOMAIN}.{entry_id}"
    return {path.name for path in Path(hass.config.path(".storage")).glob(f"{key}*")}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> Generator[None]:
    """Load labpower from custom_components in every test."""
    return


@pytest.fixture(autouse=True)
def entities_enabled(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every entity enabled (HA's snapshot tests want that), unless marked otherwise.

    A test marked `entities_as_installed` gets the defaults a new lab gets (a large
    lab: most of a resource's entities disabled, see entity.LARGE_LAB).
    """
    if request.node.get_closest_marker("entities_as_installed"):
        yield
        return
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


def relay(name: str) -> str:
    """The input_boolean relay `resource_data(name)` switches."""
    return f"input_boolean.{name.replace('-', '_')}_relay"


def resource_data(name: str, **overrides: Any) -> dict[str, Any]:
    """A resource switched by input_boolean.<name>_relay, no checker, short delays."""
    data: dict[str, Any] = {
        CONF_RESOURCE_NAME: name,
        CONF_SWITCHER: "entity",
        CONF_CHECKER: "none",
        CONF_POWER_ENTITY: relay(name),
        "off_delay": 30,
        "min_off_time": 0,
        "start_timeout": 60,
        "stop_timeout": 30,
        "default_ttl": 600,
        "max_ttl": 3600,
        "graceful_off": True,
    }
    data.update(overrides)
    return data


def lab_entry(
    *resources: dict[str, Any],
    title: str = "Lab",
    subentries: tuple[ConfigSubentryDataWithId, ...] = (),
    **options: Any,
) -> MockConfigEntry:
    """A Lab config entry with these resources as subentries (stable ids for snapshots).

    `subentries` (PDU units, BMCs) come before the resources; `options` are the lab's
    (`lab_file="labpower.yaml"`).
    """
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        data={"name": title},
        entry_id=f"entry_{title.lower().replace(' ', '_')}",
        options=options,
        subentries_data=[
            *subentries,
            *(
                ConfigSubentryDataWithId(
                    data=data,
                    subentry_id=f"sub_{data[CONF_RESOURCE_NAME]}",
                    subentry_type=SUBENTRY_RESOURCE,
                    title=data[CONF_RESOURCE_NAME],
                    unique_id=data[CONF_RESOURCE_NAME],
                )
                for data in resources
            ),
        ],
    )


async def setup_relays(hass: HomeAssistant, *names: str, initial: bool = False) -> None:
    """Create input_boolean relays <name>_relay."""
    assert await async_setup_component(
        hass,
        "input_boolean",
        {
            "input_boolean": {
                f"{name.replace('-', '_')}_relay": {
                    "name": f"{name} relay",
                    "initial": initial,
                }
                for name in names
            }
        },
    )


@pytest.fixture
def lab_resources() -> list[dict[str, Any]]:
    """The resources of `mock_config_entry`: builder-1 and builder-2."""
    return [resource_data("builder-1"), resource_data("builder-2")]


@pytest.fixture
def mock_config_entry(lab_resources: list[dict[str, Any]]) -> MockConfigEntry:
    """The lab of `lab_resources`, not added to Home Assistant yet."""
    return lab_entry(*lab_resources)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    request: pytest.FixtureRequest,
    mock_config_entry: MockConfigEntry,
) -> AsyncGenerator[MockConfigEntry]:
    """`mock_config_entry` set up; first the relays its resources switch (`relay`), off.

    Parametrized indirectly with a platform, only that platform is set up (snapshots).
    """
    await setup_relays(
        hass,
        *(
            sub.data[CONF_RESOURCE_NAME]
            for sub in mock_config_entry.subentries.values()
            if sub.subentry_type == SUBENTRY_RESOURCE
            and sub.data.get(CONF_SWITCHER) == SWITCHER_ENTITY
            and sub.data.get(CONF_POWER_ENTITY) == relay(sub.data[CONF_RESOURCE_NAME])
        ),
    )
    platforms = [request.param] if hasattr(request, "param") else PLATFORMS
    with patch("custom_components.labpower.PLATFORMS", platforms):
        await setup_integration(hass, mock_config_entry)
    # A generator: its teardown runs on the loop, so a reload that a test's flow
    # scheduled ends before Home Assistant stops (no lingering timer).
    yield mock_config_entry


@pytest.fixture
def lab(init_integration: MockConfigEntry) -> MockConfigEntry:
    """The lab, set up: `init_integration` as tests name it when they use the entry."""
    return init_integration


async def until(
    hass: HomeAssistant, predicate: Callable[[], bool], limit: float = 10
) -> None:
    """Let HA run (real time: the fake units answer over sockets) until it holds."""
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.05)
            await hass.async_block_till_done()


@pytest.fixture(scope="module")
def ipmi_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """One ipmi_sim for the whole test module."""
    sim = start_sim(tmp_path_factory.mktemp("ipmi_sim"))
    yield sim
    sim.stop()


@pytest.fixture
def sim(ipmi_sim: Sim) -> Sim:
    """The simulator with a fresh chassis: off, an OS that shuts down on a soft off."""
    ipmi_sim.reset_chassis()
    return ipmi_sim
