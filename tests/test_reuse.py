"""labpower switches through what other integrations already made.

A. A Tasmota plug: HA's own `mqtt` integration connected to a real mosquitto on 127.0.0.1,
   HA's `tasmota` integration discovering a simulated plug that speaks the firmware's MQTT
   (tests/peers/tasmota.py); labpower only ever sees `switch.bench_plug`.
B. A Gembird USB power strip: HA's `command_line` switch running `sispmctl` (a stand-in with
   the real tool's options and output, tests/peers/bin/sispmctl).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
import json
import os
from pathlib import Path
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from hatasmota.discovery import TASMOTA_SENSOR_DISCOVERY_SCHEMA, TasmotaDiscoveryMsg
from homeassistant.components.mqtt.const import (
    CONFIG_ENTRY_MINOR_VERSION as MQTT_MINOR_VERSION,
    CONFIG_ENTRY_VERSION as MQTT_VERSION,
)
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.labpower.const import DOMAIN, EVENT_POWER_CHANGED

from .conftest import lab_entry, resource_data
from .peers.ha import setup_integration
from .peers.mqtt import HOST, Broker, Recorder
from .peers.net import sockets_allowed
from .peers.tasmota import DISCOVERY_PREFIX, TasmotaPlug

PEER_BIN = Path(__file__).parent / "peers" / "bin"
PLUG_SWITCH = "switch.bench_plug"
BENCH_STATE = "sensor.bench_state"

# Helpers


async def wait_for(
    predicate: Callable[[], bool], what: str, within: float = 10.0
) -> None:
    """Let the event loop run until `predicate` holds (at most `within` seconds)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def state_of(hass: HomeAssistant, entity_id: str) -> str | None:
    """An entity's state, None while it does not exist."""
    state = hass.states.get(entity_id)
    return None if state is None else state.state


async def wait_state(
    hass: HomeAssistant, entity_id: str, expected: str, within: float = 10.0
) -> None:
    """Wait until `entity_id` is `expected`."""
    try:
        await wait_for(
            lambda: state_of(hass, entity_id) == expected,
            f"{entity_id} == {expected}",
            within,
        )
    except AssertionError as err:
        raise AssertionError(f"{err}; it is {state_of(hass, entity_id)}") from None


def record_states(hass: HomeAssistant, entity_id: str) -> list[str]:
    """Every state `entity_id` takes from now on (attribute-only changes left out)."""
    seen: list[str] = []

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        if new is not None and (old is None or old.state != new.state):
            seen.append(new.state)

    async_track_state_change_event(hass, entity_id, changed)
    return seen


async def acquire(hass: HomeAssistant, resource: str, **extra: Any) -> dict[str, Any]:
    """Call labpower.acquire and return its one token."""
    response = await hass.services.async_call(
        DOMAIN,
        "acquire",
        {"resource": resource, "holder": "ci job 42", **extra},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    (token,) = response["tokens"]
    return dict(token)


async def release(hass: HomeAssistant, token: str) -> None:
    """Call labpower.release."""
    response = await hass.services.async_call(
        DOMAIN, "release", {"token": token}, blocking=True, return_response=True
    )
    assert response == {"released": 1}


def tasmota_polls_pending() -> bool:
    """Whether HATasmota still has a debounced poll (a 1 s timer task) waiting."""
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None)
        if (
            code is not None
            and code.co_qualname == "Timer._job"
            and ("hatasmota" in code.co_filename)
        ):
            return True
    return False


# A. Tasmota over MQTT


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real mosquitto on 127.0.0.1 and a free port, for the whole session."""
    with sockets_allowed():
        broker = Broker.start(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture
async def plug(
    hass: HomeAssistant, socket_enabled: None, mqtt_broker: Broker
) -> AsyncIterator[TasmotaPlug]:
    """A Tasmota plug called "Bench plug", online, relay off; gone from the broker after."""
    device = TasmotaPlug(mqtt_broker.port, "Bench plug")
    await hass.async_add_executor_job(device.start)
    yield device
    await hass.async_add_executor_job(device.retire)


@pytest.fixture
async def bus(
    hass: HomeAssistant, mqtt_broker: Broker, plug: TasmotaPlug
) -> AsyncIterator[Recorder]:
    """Everything anyone publishes to the plug's command topics, offline or not."""
    recorder = Recorder(
        mqtt_broker.port, f"monitor-{plug.topic}", f"cmnd/{plug.topic}/#"
    )
    await hass.async_add_executor_job(recorder.start)
    yield recorder
    await hass.async_add_executor_job(recorder.stop)


def power_sent(bus: Recorder) -> list[str]:
    """The payloads of the POWER commands published to the plug so far."""
    return [
        payload
        for topic, payload in bus.messages()
        if topic.rpartition("/")[2].upper() in ("POWER", "POWER1")
    ]


async def power_sent_after(bus: Recorder, count: int) -> list[str]:
    """power_sent once the monitor has caught up with `count` POWER commands.

    The plug and the monitor are separate connections: after the plug acted on a
    command, the monitor's copy may still be on its way.
    """
    await wait_for(lambda: len(power_sent(bus)) >= count, f"{count} POWER commands")
    return power_sent(bus)


@pytest.fixture
async def tasmota_switch(
    hass: HomeAssistant,
    mock_hass_config: None,
    mqtt_broker: Broker,
    plug: TasmotaPlug,
    bus: Recorder,
) -> AsyncIterator[str]:
    """HA's mqtt and tasmota integrations on the broker; the plug's switch, known off.

    (`mock_hass_config`: mqtt reads configuration.yaml, which tests do not have.)
    """
    mqtt_entry = MockConfigEntry(
        domain="mqtt",
        title="MQTT",
        data={"broker": HOST, "port": mqtt_broker.port, "protocol": "5"},
        options={"birth_message": {}},
        version=MQTT_VERSION,
        minor_version=MQTT_MINOR_VERSION,
    )
    mqtt_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    tasmota_entry = MockConfigEntry(
        domain="tasmota", title="Tasmota", data={"discovery_prefix": DISCOVERY_PREFIX}
    )
    tasmota_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(tasmota_entry.entry_id)
    # Discovery, LWT Online, then HA's debounced STATE poll answered by the plug.
    await wait_state(hass, PLUG_SWITCH, STATE_OFF)
    yield PLUG_SWITCH
    # HATasmota's debounced polls run on bare tasks: let them go out before MQTT goes.
    await wait_for(lambda: not tasmota_polls_pending(), "HATasmota's polls")
    for domain in (DOMAIN, "tasmota", "mqtt"):
        for entry in hass.config_entries.async_loaded_entries(domain):
            assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_simulated_plug_speaks_like_the_firmware(
    hass: HomeAssistant, mqtt_broker: Broker, plug: TasmotaPlug
) -> None:
    """The stand-in itself: HATasmota's schemas accept it, POWER/STATUS answered."""
    assert TasmotaDiscoveryMsg(plug.discovery())["t"] == plug.topic
    TASMOTA_SENSOR_DISCOVERY_SCHEMA(plug.sensors())
    stat = Recorder(mqtt_broker.port, "monitor-stat", f"stat/{plug.topic}/#")
    commander = Recorder(mqtt_broker.port, "commander", f"tele/{plug.topic}/LWT")
    await hass.async_add_executor_job(stat.start)
    await hass.async_add_executor_job(commander.start)
    try:
        # The retained LWT is there for anyone who subscribes later.
        await wait_for(lambda: commander.messages() != [], "the retained LWT")
        assert commander.messages() == [(plug.lwt_topic, "Online")]
        for command, payload in (
            ("Power1", "TOGGLE"),
            ("POWER", ""),
            ("power", "off"),
            ("STATUS", "11"),
        ):
            await hass.async_add_executor_job(
                commander.publish, f"cmnd/{plug.topic}/{command}", payload
            )
        await wait_for(lambda: len(stat.messages()) == 7, "seven answers")
    finally:
        await hass.async_add_executor_job(stat.stop)
        await hass.async_add_executor_job(commander.stop)
    answers = [
        (topic.rpartition("/")[2], json.loads(payload) if "{" in payload else payload)
        for topic, payload in stat.messages()
    ]
    assert answers[:6] == [
        ("RESULT", {"POWER": "ON"}),
        ("POWER", "ON"),
        ("RESULT", {"POWER": "ON"}),
        ("POWER", "ON"),
        ("RESULT", {"POWER": "OFF"}),
        ("POWER", "OFF"),
    ]
    assert answers[6][0] == "STATUS11"
    assert answers[6][1]["StatusSTS"]["POWER"] == "OFF"
    assert plug.power_commands() == ["TOGGLE", "", "off"]


async def test_tasmota_plug_powered_through_mqtt(
    hass: HomeAssistant, tasmota_switch: str, plug: TasmotaPlug, bus: Recorder
) -> None:
    await setup_integration(
        hass,
        lab_entry(resource_data("bench", power_entity=tasmota_switch, off_delay=1)),
    )
    assert state_of(hass, BENCH_STATE) == "off"
    assert plug.power_commands() == []
    changes = async_capture_events(hass, EVENT_POWER_CHANGED)

    token = await acquire(hass, "bench", wait="available", timeout=15)

    assert token["state"] == "available"
    assert state_of(hass, BENCH_STATE) == "available"
    assert plug.power is True
    assert plug.power_commands() == ["ON"]  # one command, read back, never re-sent
    # What HA's tasmota integration published for it, as the broker relayed it:
    assert await power_sent_after(bus, 1) == ["ON"]
    assert bus.messages(lambda topic: topic.upper().endswith("/POWER1")) == [
        (f"cmnd/{plug.topic}/Power1", "ON")
    ]
    assert state_of(hass, tasmota_switch) == STATE_ON

    await release(hass, token["token"])
    # The off delay (1 s) holds the power on for a moment...
    assert plug.power is True
    assert state_of(hass, BENCH_STATE) == "available"
    # ...then the plug is told off, and labpower reads it back.
    await wait_state(hass, BENCH_STATE, "off")
    assert plug.power is False
    assert plug.power_commands() == ["ON", "OFF"]
    assert await power_sent_after(bus, 2) == ["ON", "OFF"]
    assert state_of(hass, tasmota_switch) == STATE_OFF
    assert [(e.data["action"], e.data["cause"]) for e in changes] == [
        ("on", "acquired by ci job 42"),
        ("off", "released by ci job 42"),
    ]


async def test_tasmota_plug_offline_is_unknown_never_off(
    hass: HomeAssistant, tasmota_switch: str, plug: TasmotaPlug, bus: Recorder
) -> None:
    await setup_integration(
        hass,
        lab_entry(resource_data("bench", power_entity=tasmota_switch, off_delay=0)),
    )
    assert state_of(hass, BENCH_STATE) == "off"
    seen = record_states(hass, BENCH_STATE)

    # The plug drops off the network while off: the broker publishes its will.
    await hass.async_add_executor_job(plug.drop)
    await wait_state(hass, tasmota_switch, STATE_UNAVAILABLE)
    await wait_state(hass, BENCH_STATE, "unknown")

    # A token now must not make labpower send anything to a device it cannot read.
    token = await acquire(hass, "bench")
    assert token["state"] == "unknown"
    await asyncio.sleep(2.5)  # the wake-up pass and a fast poll (2 s)
    assert power_sent(bus) == []
    assert state_of(hass, BENCH_STATE) == "unknown"

    # Back online: HA reads the plug again, labpower powers it on.
    await hass.async_add_executor_job(plug.start)
    await wait_state(hass, BENCH_STATE, "available")
    assert plug.power is True
    assert await power_sent_after(bus, 1) == ["ON"]

    # Gone while on: unknown again, never off; releasing sends nothing either.
    await hass.async_add_executor_job(plug.drop)
    await wait_state(hass, tasmota_switch, STATE_UNAVAILABLE)
    await wait_state(hass, BENCH_STATE, "unknown")
    await release(hass, token["token"])
    await asyncio.sleep(2.5)
    assert power_sent(bus) == ["ON"]
    assert state_of(hass, BENCH_STATE) == "unknown"
    assert plug.power is True  # the relay kept its state

    # Back again, on and without a token: now it goes off.
    await hass.async_add_executor_job(plug.start)
    await wait_state(hass, BENCH_STATE, "off")
    assert plug.power is False
    assert await power_sent_after(bus, 2) == ["ON", "OFF"]
    assert plug.power_commands() == ["ON", "OFF"]
    assert seen == ["unknown", "starting", "available", "unknown", "stopping", "off"]


# B. command_line + sispmctl


@pytest.fixture
def sispm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The sispmctl stand-in on PATH; returns the directory holding its outlets."""
    state_dir = tmp_path / "sispm"
    state_dir.mkdir()
    monkeypatch.setenv("SISPMCTL_STATE_DIR", str(state_dir))
    monkeypatch.setenv("PATH", f"{PEER_BIN}{os.pathsep}{os.environ['PATH']}")
    return state_dir


def outlet(state_dir: Path, number: int) -> str:
    """What the strip's outlet is (the stand-in's file; missing is off)."""
    path = state_dir / f"outlet{number}"
    return path.read_text(encoding="utf-8").strip() if path.exists() else "off"


def calls(state_dir: Path) -> list[str]:
    """The sispmctl invocations so far (their arguments)."""
    path = state_dir / "calls"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.mark.freeze_time("2026-05-04 08:00:00", tick=True)
async def test_sispm_outlet_through_command_line(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, sispm: Path
) -> None:
    assert await async_setup_component(
        hass,
        "command_line",
        {
            "command_line": [
                {
                    "switch": {
                        "name": "USB outlet 1",
                        "command_on": "sispmctl -o 1",
                        "command_off": "sispmctl -f 1",
                        "command_state": "sispmctl -g 1",
                        # "Accessing Gembird #0 USB device 001\nStatus of outlet 1:\ton"
                        "value_template": "{{ value.split()[-1] == 'on' }}",
                        # Not due when the clock jumps below. command_line skips the
                        # read-back after a command while its own poll runs, so a poll
                        # falling on the off delay's end leaves the switch "on" until
                        # labpower's verification retries (~30 s): real, but slow here.
                        "scan_interval": 3600,
                    }
                }
            ]
        },
    )
    await hass.async_block_till_done()
    assert state_of(hass, "switch.usb_outlet_1") == STATE_OFF
    await setup_integration(
        hass,
        lab_entry(
            resource_data("usb-box", power_entity="switch.usb_outlet_1", off_delay=300)
        ),
    )
    assert state_of(hass, "sensor.usb_box_state") == "off"

    token = await acquire(hass, "usb-box", wait="available", timeout=15)

    assert token["state"] == "available"
    assert outlet(sispm, 1) == "on"
    assert calls(sispm) == ["-o 1", "-g 1"]  # switched, then read back by command_line
    assert state_of(hass, "switch.usb_outlet_1") == STATE_ON
    assert state_of(hass, "sensor.usb_box_state") == "available"

    await release(hass, token["token"])
    await hass.async_block_till_done()
    assert outlet(sispm, 1) == "on"  # the off delay runs
    assert "-f 1" not in calls(sispm)
    assert state_of(hass, "sensor.usb_box_state") == "available"

    freezer.tick(timedelta(seconds=301))
    async_fire_time_changed(hass)
    await wait_state(hass, "sensor.usb_box_state", "off")
    assert outlet(sispm, 1) == "off"
    assert calls(sispm).count("-f 1") == 1
    assert calls(sispm).count("-o 1") == 1
    assert state_of(hass, "switch.usb_outlet_1") == STATE_OFF
