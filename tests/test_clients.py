"""Real power clients against Home Assistant's real HTTP server on 127.0.0.1.

pdudaemon (PyPI, its home-assistant-http driver) runs as LAVA runs it; MAAS's webhook
driver and labgrid's Home Assistant driver are re-implementations of their public sources
(tests/clients/). Every resource keeps the default off delay (300 s): an off from these
clients must not wait for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
import json
from pathlib import Path
import sys
from typing import Any

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .clients.labgrid import HomeAssistantException, HomeAssistantPowerDriver
from .clients.maas import PowerActionError, PowerError, WebhookPowerDriver
from .conftest import resource_data
from .peers.ha import advance, call, state

DEFAULTS = {"off_delay": 300, "min_off_time": 10}


@dataclass
class Served:
    """Home Assistant on a real port, with an access token per client user."""

    url: str
    port: int
    tokens: dict[str, str]
    session: aiohttp.ClientSession
    relays: dict[str, list[str]]


async def _user_token(hass: HomeAssistant, name: str) -> str:
    user = await hass.auth.async_create_user(name, group_ids=["system-users"])
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name=name, token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
    )
    return hass.auth.async_create_access_token(refresh)


@pytest.fixture
def lab_resources() -> list[dict[str, Any]]:
    """dut-1 and dut-2 (default off delay); shared-1 keeps its off delay for clients."""
    return [
        resource_data("dut-1", **DEFAULTS),
        resource_data("dut-2", **DEFAULTS),
        resource_data("shared-1", **DEFAULTS, off_now=False),
    ]


@pytest.fixture
async def lab(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> MockConfigEntry:
    """The lab, and Home Assistant's REST API the clients also use."""
    assert await async_setup_component(hass, "api", {})
    return init_integration


@pytest.fixture
async def served(
    hass: HomeAssistant,
    lab: MockConfigEntry,
    aiohttp_client: ClientSessionGenerator,
    socket_enabled: None,
) -> AsyncGenerator[Served]:
    """The lab served on 127.0.0.1; the relays' changes recorded."""
    client = await aiohttp_client(
        hass.http.app, server_kwargs={"handler_cancellation": True}
    )
    url = str(client.make_url("")).rstrip("/")
    relays: dict[str, list[str]] = {}

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        entity_id = event.data["entity_id"]
        new = event.data["new_state"]
        if entity_id.endswith("_relay") and new is not None:
            relays.setdefault(entity_id.split(".")[1][: -len("_relay")], []).append(
                new.state
            )

    unsubscribe = hass.bus.async_listen("state_changed", record)
    tokens = {name: await _user_token(hass, name) for name in ("lava", "maas", "bob")}
    async with aiohttp.ClientSession() as session:
        yield Served(url, client.port, tokens, session, relays)
    unsubscribe()


async def _hold(hass: HomeAssistant, served: Served, user: str, resource: str) -> None:
    """Turn a resource's Power switch on as a client user (HA's REST API)."""
    async with served.session.post(
        f"{served.url}/api/services/switch/turn_on",
        headers={"Authorization": f"Bearer {served.tokens[user]}"},
        json={"entity_id": f"switch.{resource.replace('-', '_')}_power"},
    ) as answer:
        assert answer.status == 200, await answer.text()
    await hass.async_block_till_done()


def _holders(lab: MockConfigEntry, resource: str) -> list[str]:
    return [token.holder for token in lab.runtime_data.lab.ledger.tokens(resource)]


# pdudaemon, the real one


async def _pdudaemon(
    served: Served, tmp_path: Path, request: str, port: str, *extra: str
) -> tuple[int, str]:
    """`pdudaemon --drive` against Home Assistant, as LAVA's dispatcher runs it.

    pdudaemon 1.1.1's `main()` asks for an event loop the way Python 3.14 no longer
    allows (asyncio.get_event_loop outside a loop); its `main_async()`, the whole
    command line, runs under asyncio.run.
    """
    conf = tmp_path / "pdudaemon.conf"
    conf.write_text(
        json.dumps(
            {
                "daemon": {"hostname": "127.0.0.1", "port": 16421},
                "pdus": {
                    "ha": {
                        "driver": "home-assistant-http",
                        "hostname": "127.0.0.1",
                        "port": served.port,
                        "api_key": served.tokens["lava"],
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import asyncio, sys, pdudaemon; sys.argv[0] = 'pdudaemon'; "
        "sys.exit(0 if asyncio.run(pdudaemon.main_async()) is True else 1)",
        "--conf",
        str(conf),
        "--loglevel",
        "DEBUG",
        "--drive",
        "--hostname",
        "ha",
        "--port",
        port,
        "--request",
        request,
        *extra,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_pdudaemon_reboot_power_cycles_the_held_machine(
    hass: HomeAssistant, served: Served, lab: MockConfigEntry, tmp_path: Path
) -> None:
    code, log = await _pdudaemon(served, tmp_path, "on", "dut_1_power")
    assert code == 0, log
    await hass.async_block_till_done()
    assert served.relays["dut_1"] == ["on"]
    assert _holders(lab, "dut-1") == ["lava"]
    # LAVA's reboot: off, 5 s (its default --delay), on; the machine must really go off.
    code, log = await _pdudaemon(served, tmp_path, "reboot", "dut_1_power")
    assert code == 0, log
    assert "Failed" not in log
    await hass.async_block_till_done()
    assert served.relays["dut_1"][:2] == ["on", "off"]
    # min_off_time (10 s) holds the power-on back for what the delay left of it
    await asyncio.sleep(0)
    for _ in range(12):
        if served.relays["dut_1"][-1] == "on":
            break
        await asyncio.sleep(0.5)
        await hass.async_block_till_done()
    assert served.relays["dut_1"] == ["on", "off", "on"]
    assert state(hass, "switch.dut_1_power") == "on"
    assert _holders(lab, "dut-1") == ["lava"]


async def test_pdudaemon_off_while_others_hold_fails_with_their_names(
    hass: HomeAssistant, served: Served, lab: MockConfigEntry, tmp_path: Path
) -> None:
    await _hold(hass, served, "bob", "dut-1")
    await _hold(hass, served, "lava", "dut-1")
    code, log = await _pdudaemon(
        served, tmp_path, "off", "dut_1_power", "--retries", "2", "--retry-delay", "0"
    )
    assert code == 1
    # pdudaemon logs requests' error; Home Assistant's answer names the holder
    assert "400 Client Error" in log
    assert "Failed to execute job: dut_1_power off (attempts left 0)" in log
    await hass.async_block_till_done()
    assert served.relays["dut_1"] == ["on"]
    assert _holders(lab, "dut-1") == ["bob"]  # lava's hold is gone all the same


# labgrid's Home Assistant driver


def _labgrid(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, served: Served, entity: str
) -> HomeAssistantPowerDriver:
    async def sleep(seconds: float) -> None:
        await advance(hass, freezer, seconds)

    return HomeAssistantPowerDriver(
        served.session, served.url, served.tokens["lava"], entity, sleep
    )


async def test_labgrid_cycle_and_reset_power_cycle(
    hass: HomeAssistant,
    served: Served,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    power = _labgrid(hass, freezer, served, "switch.dut_1_power")
    await power.check_api()
    await power.on()
    await hass.async_block_till_done()
    assert await power.get()
    for action in (power.cycle, power.reset):
        seen = len(served.relays["dut_1"])
        await action()  # off, 5 s, on
        assert served.relays["dut_1"][seen:] == ["off"]
        assert await power.get()  # wanted on again, waiting out min_off_time
        await advance(hass, freezer, 5)
        assert served.relays["dut_1"][seen:] == ["off", "on"]
        assert state(hass, "sensor.dut_1_state") == "available"
    await power.off()
    await hass.async_block_till_done()
    assert not await power.get()
    assert served.relays["dut_1"][-1] == "off"
    assert state(hass, "sensor.dut_1_state") == "off"


async def test_labgrid_cycle_refused_while_others_hold(
    hass: HomeAssistant,
    served: Served,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _hold(hass, served, "bob", "dut-1")
    power = _labgrid(hass, freezer, served, "switch.dut_1_power")
    await power.on()
    with pytest.raises(HomeAssistantException) as err:
        await power.cycle()
    assert str(err.value) == (
        "Failed to turn off switch.dut_1_power: 400 "
        '{"message":"Released, but dut-1 stays on: still used by bob"}'
    )
    await hass.async_block_till_done()
    assert served.relays["dut_1"] == ["on"]


async def test_labgrid_off_on_a_shared_host_keeps_its_off_delay(
    hass: HomeAssistant,
    served: Served,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    power = _labgrid(hass, freezer, served, "switch.shared_1_power")
    await power.on()
    await power.off()
    await advance(hass, freezer, 299)
    assert served.relays["shared_1"] == ["on"]
    await advance(hass, freezer, 1)
    assert served.relays["shared_1"] == ["on", "off"]


# MAAS's webhook driver


def _maas(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    served: Served,
    resource: str,
) -> WebhookPowerDriver:
    async def pause(seconds: float) -> None:
        await advance(hass, freezer, seconds)

    base = f"{served.url}/api/labpower/maas/{resource}"
    return WebhookPowerDriver(
        served.session,
        power_on_uri=f"{base}/on",
        power_off_uri=f"{base}/off",
        power_query_uri=f"{base}/query",
        power_token=served.tokens["maas"],
        pause=pause,
    )


async def test_maas_on_off_query_and_cycle(
    hass: HomeAssistant,
    served: Served,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    maas = _maas(hass, freezer, served, "dut-1")
    assert await maas.query() == "off"
    await maas.on()
    assert await maas.query() == "on"
    assert _holders(lab, "dut-1") == ["MAAS"]
    await maas.off()  # with the default 300 s off delay: off at once
    assert await maas.query() == "off"
    assert served.relays["dut_1"] == ["on", "off"]
    await maas.cycle()  # of an off machine: on
    assert served.relays["dut_1"] == ["on", "off", "on"]
    await maas.cycle()  # of an on machine: off, then on
    assert served.relays["dut_1"] == ["on", "off", "on", "off", "on"]
    assert await maas.query() == "on"
    assert _holders(lab, "dut-1") == ["MAAS"]
    # every answer was one MAAS takes: no error, no retry with a trailing slash
    assert {status for _, _, status in maas.requests} == {200}


async def test_maas_unknown_machine_is_an_error(
    hass: HomeAssistant,
    served: Served,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    maas = _maas(hass, freezer, served, "nope")
    with pytest.raises(PowerActionError, match="status code: 400"):
        await maas.on()
    with pytest.raises(PowerActionError, match="status code: 400"):
        await maas.query()


async def test_maas_off_refused_while_others_hold(
    hass: HomeAssistant,
    served: Served,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    maas = _maas(hass, freezer, served, "dut-1")
    await maas.on()
    await _hold(hass, served, "bob", "dut-1")
    with pytest.raises(PowerActionError, match="status code: 409"):
        await maas.off()
    assert served.relays["dut_1"] == ["on"]
    assert _holders(lab, "dut-1") == ["bob"]
    # what the 409 says, for the MAAS operator reading the webhook's answer
    async with served.session.post(
        maas.power_off_uri, headers={"Authorization": f"Bearer {maas.power_token}"}
    ) as answer:
        body: dict[str, Any] = await answer.json()
    assert body["error"]["code"] == "holders_remain"
    assert body["error"]["holders"] == ["bob"]
    assert body["error"]["message"] == "dut-1 stays on: still used by bob"


async def test_maas_off_of_a_shared_host_waits_for_its_off_delay(
    hass: HomeAssistant,
    served: Served,
    lab: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """off_now turned off: MAAS gives up after its 35 s, as the README says."""
    maas = _maas(hass, freezer, served, "shared-1")
    await maas.on()
    with pytest.raises(
        PowerError, match="BMC never transitioned from on to off"
    ) as err:
        await maas.off()
    assert not isinstance(err.value, PowerActionError)


async def test_release_with_power_off_now(
    hass: HomeAssistant, served: Served, lab: MockConfigEntry
) -> None:
    headers = {"Authorization": f"Bearer {served.tokens['lava']}"}
    api = f"{served.url}/api/labpower"
    async with served.session.post(
        f"{api}/resources/dut-1/tokens", headers=headers, json={"holder": "lava"}
    ) as answer:
        token = (await answer.json())["token"]
    async with served.session.post(
        f"{api}/tokens/release",
        headers=headers,
        json={"token": token, "power_off": "later"},
    ) as answer:
        assert answer.status == 400
        assert (await answer.json())["error"]["field"] == "power_off"
    async with served.session.post(
        f"{api}/tokens/release",
        headers=headers,
        json={"token": token, "power_off": "now"},
    ) as answer:
        assert answer.status == 204
    await hass.async_block_till_done()
    assert served.relays["dut_1"] == ["on", "off"]
    # the action does the same; with another holder it names them
    first = await call(hass, "acquire", {"resource": "dut-2", "holder": "a"})
    await call(hass, "acquire", {"resource": "dut-2", "holder": "b"})
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            "release",
            {"token": first["tokens"][0]["token"], "power_off": "now"},
        )
    assert err.value.translation_key == "holders_remain"
    assert err.value.translation_placeholders["holders"] == "b"
    assert _holders(lab, "dut-2") == ["b"]
    # several tokens: one resource that stays on does not keep the others' tokens
    kept = await call(hass, "acquire", {"resource": "dut-2", "holder": "c"})
    other = await call(hass, "acquire", {"resource": "dut-1", "holder": "c"})
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            "release",
            {
                "token": [kept["tokens"][0]["token"], other["tokens"][0]["token"]],
                "power_off": "now",
            },
        )
    assert err.value.translation_placeholders["holders"] == "b"
    assert _holders(lab, "dut-2") == ["b"]
    assert _holders(lab, "dut-1") == []


async def test_power_cycle_endpoint(
    hass: HomeAssistant, served: Served, lab: MockConfigEntry, hass_access_token: str
) -> None:
    api = f"{served.url}/api/labpower/resources/dut-1/power_cycle"
    bob = {"Authorization": f"Bearer {served.tokens['bob']}"}
    async with served.session.post(api, headers=bob) as answer:
        assert answer.status == 409
        assert (await answer.json())["error"]["code"] == "not_powered"
    await _hold(hass, served, "lava", "dut-1")
    async with served.session.post(api, headers=bob) as answer:
        assert answer.status == 409
        error = (await answer.json())["error"]
    assert error["code"] == "held_by_others"
    assert error["holders"] == ["lava"]
    assert error["message"] == (
        "dut-1 is in use by lava: only an administrator can cycle it now"
    )
    admin = {"Authorization": f"Bearer {hass_access_token}"}
    async with served.session.post(api, headers=admin) as answer:
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["state"] == "starting"
    assert served.relays["dut_1"] == ["on", "off", "on"]
