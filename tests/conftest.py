"""Fixtures: a Lab with resources made of input_boolean relays and template sensors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from typing import Any

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.labpower.const import (
    CONF_CHECKER,
    CONF_POWER_ENTITY,
    CONF_RESOURCE_NAME,
    CONF_SWITCHER,
    DOMAIN,
    SUBENTRY_RESOURCE,
)

from .peers.ipmi_sim import Sim, start_sim


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots with Home Assistant's serializer (ids and times left out)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> Generator[None]:
    """Load labpower from custom_components in every test."""
    return


def resource_data(name: str, **overrides: Any) -> dict[str, Any]:
    """A resource switched by input_boolean.<name>_relay, no checker, short delays."""
    data: dict[str, Any] = {
        CONF_RESOURCE_NAME: name,
        CONF_SWITCHER: "entity",
        CONF_CHECKER: "none",
        CONF_POWER_ENTITY: f"input_boolean.{name.replace('-', '_')}_relay",
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
    *resources: dict[str, Any], title: str = "Lab", **options: Any
) -> MockConfigEntry:
    """A Lab config entry with these resources as subentries (stable ids for snapshots).

    `options` are the lab's (`lab_file="labpower.yaml"`).
    """
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        data={"name": title},
        entry_id=f"entry_{title.lower().replace(' ', '_')}",
        options=options,
        subentries_data=[
            ConfigSubentryDataWithId(
                data=data,
                subentry_id=f"sub_{data[CONF_RESOURCE_NAME]}",
                subentry_type=SUBENTRY_RESOURCE,
                title=data[CONF_RESOURCE_NAME],
                unique_id=data[CONF_RESOURCE_NAME],
            )
            for data in resources
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
async def lab(hass: HomeAssistant) -> AsyncGenerator[MockConfigEntry]:
    """A loaded lab with resources builder-1 and builder-2, both off."""
    await setup_relays(hass, "builder-1", "builder-2")
    entry = lab_entry(resource_data("builder-1"), resource_data("builder-2"))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry


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
