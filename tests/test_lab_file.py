"""The lab as code through Home Assistant: 48 Pis in 12 stacks from one file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.labpower.const import DOMAIN

from .conftest import lab_entry, resource_data, setup_relays, until
from .peers.ha import SwitchLog, advance, call, state

PIS = [f"pi{n:02d}" for n in range(1, 49)]
STACKS = [f"stack{n}" for n in range(1, 13)]

LAB_FILE = """\
version: 1
policies:
  max_parallel_on: 4
  on_spacing: 2
defaults:
  min_off_time: 0
  stop_timeout: 30
resources:
  - name: stack[1-12]
    power_entity: input_boolean.stack[1-12]_relay
    off_delay: 60
    labels: [stacks]
  - name: pi[01-48]
    power_entity: input_boolean.pi[01-48]_relay
    depends_on: stack[1-12]*4
    off_delay: {pi_off_delay}
    labels: [pi, arm64]
"""


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Iterator[Path]:
    """A configuration folder of this test's own, for the lab file."""
    previous = hass.config.config_dir
    hass.config.config_dir = str(tmp_path)
    yield tmp_path
    hass.config.config_dir = previous


async def setup_file_lab(
    hass: HomeAssistant,
    config_dir: Path,
    text: str,
    *,
    loads: bool = True,
    **options: Any,
) -> MockConfigEntry:
    """Relays for every stack and Pi, the lab file, and a lab that reads it."""
    await setup_relays(hass, *STACKS, *PIS)
    (config_dir / "labpower.yaml").write_text(text)
    entry = lab_entry(title="Pi lab", **{"lab_file": "labpower.yaml", **options})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id) is loads
    await hass.async_block_till_done()
    return entry


async def run_for(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Let `seconds` pass in half-second steps (timers and sleeps both run)."""
    for _ in range(int(seconds * 2)):
        await advance(hass, freezer, 0.5)


async def test_one_pi_powers_its_stack_first(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, config_dir: Path
) -> None:
    """Acquire pi07: stack2, then pi07; release: pi07 off, stack2 after its delay."""
    await setup_file_lab(hass, config_dir, LAB_FILE.format(pi_off_delay=0))
    assert len(hass.states.async_entity_ids("sensor")) >= 60 * 4
    log = SwitchLog(hass)
    response = await call(hass, "acquire", {"resource": "pi07", "holder": "ci"})
    [token] = response["tokens"]
    await run_for(hass, freezer, 3)
    assert log.order("on") == ["stack2", "pi07"]
    assert state(hass, "sensor.pi07_state") == "available"
    assert state(hass, "sensor.stack2_state") == "available"
    await call(hass, "release", {"token": token["token"]})
    await run_for(hass, freezer, 2)
    assert log.order("off") == ["pi07"]
    await run_for(hass, freezer, 50)
    assert state(hass, "input_boolean.stack2_relay") == "on"
    await run_for(hass, freezer, 12)
    assert log.order("off") == ["pi07", "stack2"]


async def test_waiting_pi_says_so(hass: HomeAssistant, config_dir: Path) -> None:
    """While its stack boots, a Pi's state says it waits for the stack; then it comes."""
    text = LAB_FILE.format(pi_off_delay=0).replace(
        "    off_delay: 60\n",
        "    off_delay: 60\n    check_entity: binary_sensor.stack[1-12]_up\n",
    )
    for stack in STACKS:
        hass.states.async_set(f"binary_sensor.{stack}_up", "off")
    await setup_file_lab(hass, config_dir, text)
    await call(hass, "acquire", {"resource": "pi09", "holder": "ci"})
    await until(hass, lambda: state(hass, "sensor.stack3_state") == "starting")
    pi = hass.states.get("sensor.pi09_state")
    assert pi.state == "off"
    assert pi.attributes["reason"] == "waiting for stack3"
    assert state(hass, "input_boolean.pi09_relay") == "off"
    hass.states.async_set("binary_sensor.stack3_up", "on")  # the stack is up
    await until(hass, lambda: state(hass, "sensor.pi09_state") == "available")
    assert "reason" not in hass.states.get("sensor.pi09_state").attributes


async def test_all_48_come_up_in_waves(hass: HomeAssistant, config_dir: Path) -> None:
    """Acquiring all 48 Pis respects the stagger limit: at most 4 per spacing.

    Real time (not frozen): the gate's spacing runs on the event loop's clock.
    """
    spacing = 0.3
    text = LAB_FILE.format(pi_off_delay=0).replace(
        "on_spacing: 2", f"on_spacing: {spacing}"
    )
    await setup_file_lab(hass, config_dir, text)
    log = SwitchLog(hass)
    await call(hass, "acquire", {"resource": PIS, "holder": "load test"})
    await until(hass, lambda: len(log.order("on")) == len(PIS) + len(STACKS), 30)
    assert sorted(log.order("on")) == sorted([*STACKS, *PIS])
    times = [when for when, _, seen in log.real if seen == "on"]
    for first in times:
        window = [t for t in times if 0 <= t - first < spacing * 0.95]
        assert len(window) <= 4
    # 60 power-ons, 4 at a time: at least 14 spacings from the first to the last
    assert times[-1] - times[0] >= 14 * spacing * 0.95
    order = log.order("on")
    for index, pi in enumerate(PIS):
        assert order.index(STACKS[index // 4]) < order.index(pi)


async def test_pool_prefers_powered_then_powered_parents(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, config_dir: Path
) -> None:
    """Pools pick resources already on, then those whose parents are on."""
    await setup_file_lab(hass, config_dir, LAB_FILE.format(pi_off_delay=600))
    response = await call(hass, "acquire", {"resource": "pi09", "holder": "warm"})
    await run_for(hass, freezer, 6)
    await call(hass, "release", {"token": response["tokens"][0]["token"]})
    await run_for(hass, freezer, 1)
    assert state(hass, "sensor.pi09_state") == "available"  # its off delay runs
    response = await call(
        hass, "acquire", {"labels": ["arm64"], "count": 3, "holder": "pool"}
    )
    chosen = [token["resource"] for token in response["tokens"]]
    assert chosen == ["pi09", "pi10", "pi11"]
    with pytest.raises(ServiceValidationError):
        await call(
            hass,
            "acquire",
            {"labels": ["arm64"], "resource": ["pi01"], "holder": "both"},
        )


async def test_reload_keeps_tokens_and_refuses_dropping_held(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, config_dir: Path
) -> None:
    """Reload without a restart: tokens stay; a held resource cannot be dropped."""
    await setup_file_lab(hass, config_dir, LAB_FILE.format(pi_off_delay=0))
    await call(hass, "acquire", {"resource": "pi48", "holder": "keep"})
    await run_for(hass, freezer, 3)
    smaller = LAB_FILE.format(pi_off_delay=0).replace("pi[01-48]", "pi[01-44]")
    smaller = smaller.replace("stack[1-12]*4", "stack[1-11]*4")
    (config_dir / "labpower.yaml").write_text(smaller)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "reload_lab_file", {})
    assert err.value.translation_key == "lab_file_removes_held"
    assert "pi48" in str(err.value.translation_placeholders)
    # a broken file is refused with its line
    (config_dir / "labpower.yaml").write_text(
        LAB_FILE.format(pi_off_delay=0).replace("off_delay: 60", "of_delay: 60")
    )
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "reload_lab_file", {})
    assert "line 11" in err.value.translation_placeholders["detail"]
    # one feed, one owner: a second resource on stack1's relay is refused
    (config_dir / "labpower.yaml").write_text(
        LAB_FILE.format(pi_off_delay=0)
        + "  - name: extra1\n    power_entity: input_boolean.stack1_relay\n"
    )
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "reload_lab_file", {})
    assert err.value.translation_placeholders["detail"].startswith(
        "labpower.yaml line 19: power_entity 'input_boolean.stack1_relay' of extra1 "
        "already feeds stack1 (line 9)"
    )
    # a bigger file loads; the token lives on
    hass.states.async_set("input_boolean.extra1_relay", "off")
    (config_dir / "labpower.yaml").write_text(
        LAB_FILE.format(pi_off_delay=0)
        + "  - name: extra1\n    power_entity: input_boolean.extra1_relay\n"
    )
    response = await call(hass, "reload_lab_file", {})
    assert response == {"reloaded": ["Pi lab"]}
    await hass.async_block_till_done()
    assert state(hass, "sensor.extra1_state") in ("off", "available", "unknown")
    listed = await call(hass, "list", {"resource": ["pi48"]})
    assert listed["resources"][0]["holders"] == 1
    # an administrator forces it off (its holder is told): now pi45-48 may go
    await call(hass, "force_off", {"resource": ["pi48"]})
    assert (await call(hass, "list", {"resource": ["pi48"]}))["resources"][0][
        "holders"
    ] == 0
    (config_dir / "labpower.yaml").write_text(smaller)
    await call(hass, "reload_lab_file", {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.pi48_state") is None or (
        state(hass, "sensor.pi48_state") == "unavailable"
    )
    devices = dr.async_get(hass)
    assert not devices.async_get_device_by_identifier(
        (DOMAIN, "file_resource_pi48"), "entry_pi_lab"
    )
    assert devices.async_get_device_by_identifier(
        (DOMAIN, "file_resource_pi44"), "entry_pi_lab"
    )


async def test_cycle_in_file_is_refused_with_its_line(
    hass: HomeAssistant, config_dir: Path
) -> None:
    """A dependency cycle: the lab waits for a good file; a repair names the line.

    Starting without the file would drop the tokens of its resources and leave their
    machines unmanaged; Home Assistant retries the setup until the file is fixed.
    """
    text = (
        "resources:\n"
        "  - name: a\n"
        "    power_entity: input_boolean.stack1_relay\n"
        "    depends_on: b\n"
        "  - name: b\n"
        "    power_entity: input_boolean.stack2_relay\n"
        "    depends_on: a\n"
    )
    entry = await setup_file_lab(hass, config_dir, text, loads=False)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "lab_file_invalid_entry_pi_lab")
    assert issue is not None
    detail = issue.translation_placeholders["detail"]
    assert "cycle" in detail
    assert "line " in detail
    assert hass.states.get("sensor.a_state") is None
    # fixed: the next retry loads it
    (config_dir / "labpower.yaml").write_text(text.replace("    depends_on: a\n", ""))
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert state(hass, "sensor.a_state") == "off"
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, "lab_file_invalid_entry_pi_lab")
        is None
    )


async def test_pool_takes_the_least_recently_used(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, config_dir: Path
) -> None:
    """Among resources that are all off, the one used longest ago (or never) first."""
    await setup_file_lab(hass, config_dir, LAB_FILE.format(pi_off_delay=0))
    for stack in ("stack1", "stack2"):  # used, stack1 before stack2
        response = await call(hass, "acquire", {"resource": stack, "holder": "warm"})
        await run_for(hass, freezer, 3)
        await call(hass, "release", {"token": response["tokens"][0]["token"]})
        await run_for(hass, freezer, 62)  # their off delay
        assert state(hass, f"sensor.{stack}_state") == "off"
    response = await call(
        hass, "acquire", {"labels": ["stacks"], "count": 12, "holder": "pool"}
    )
    chosen = [token["resource"] for token in response["tokens"]]
    assert set(chosen[:10]) == {f"stack{n}" for n in range(3, 13)}  # never used
    assert chosen[10:] == ["stack1", "stack2"]  # then the least recently used


async def test_low_battery_shuts_down_children_first(
    hass: HomeAssistant, config_dir: Path
) -> None:
    """A lab-wide UPS: on battery (idle shedding off here), low battery: all off."""
    hass.states.async_set("sensor.ups_main_status", "OL")
    await setup_file_lab(
        hass,
        config_dir,
        LAB_FILE.format(pi_off_delay=600),
        ups_entities=["sensor.ups_main_status"],
        shed_idle_on_battery=False,
        notify_holders_on_battery=False,
    )
    steps = async_capture_events(hass, "labpower_ups_policy")
    log = SwitchLog(hass)
    await call(hass, "acquire", {"resource": ["pi07", "pi08"], "holder": "ci"})
    response = await call(hass, "acquire", {"resource": "pi01", "holder": "short"})
    await until(hass, lambda: state(hass, "sensor.pi01_state") == "available")
    await call(hass, "release", {"token": response["tokens"][0]["token"]})
    await until(hass, lambda: state(hass, "sensor.pi08_state") == "available")
    hass.states.async_set("sensor.ups_main_status", "OB DISCHRG")
    await hass.async_block_till_done()
    assert state(hass, "sensor.pi01_state") == "available"  # shedding is turned off
    assert [event.data["step"] for event in steps] == ["refuse_acquire"]  # no notice
    hass.states.async_set("sensor.ups_main_status", "OB LB")
    await until(hass, lambda: state(hass, "input_boolean.stack2_relay") == "off")
    # and what they depend on, and the idle ones, without waiting for off delays
    await until(hass, lambda: state(hass, "input_boolean.stack1_relay") == "off")
    offs = log.order("off")
    assert offs.index("pi07") < offs.index("stack2")
    assert offs.index("pi08") < offs.index("stack2")
    assert offs.index("pi01") < offs.index("stack1")
    assert state(hass, "sensor.pi07_state") == "off"
    listed = await call(hass, "list", {"resource": ["pi07", "pi08"]})
    assert [r["holders"] for r in listed["resources"]] == [0, 0]


def _alias_bomb() -> str:
    """Nine levels of ten aliases each inside a resource's labels: 10**9 labels."""
    levels = ["&l0 x"] + [
        f"&l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 10)
    ]
    return (
        "resources:\n"
        "  - name: bomb\n"
        "    power_entity: input_boolean.stack1_relay\n"
        f"    labels: [{', '.join(levels)}]\n"
    )


def _merge_bomb() -> str:
    """Each mapping merges the one before it twice: 2**40 keys once flattened."""
    lines = ["defaults:", "  meter_entity: null", "resources:"]
    lines.append("  - &m0 {name: m, power_entity: input_boolean.stack1_relay}")
    lines.extend(f"  - &m{n} {{<<: [*m{n - 1}, *m{n - 1}]}}" for n in range(1, 41))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_alias_bomb(), "line 4: aliases expand to more than 1,000,000 values"),
        (
            "".join(
                f"  - name: n{i}x[1-99999]\n    power_entity: switch.n\n"
                for i in range(20)
            ).join(["resources:\n", ""]),
            "line 2: name: bad range: 'n0x[1-99999]' gives more than 10,000 values",
        ),
        (_merge_bomb(), "line 21: aliases expand to more than 1,000,000 values"),
        (
            "resources:\n  - name: deep\n    labels: "
            + "[" * 100_000
            + "]" * 100_000
            + "\n",
            "line 3: nested more than 32 deep",
        ),
        (
            (
                "resources:\n  - name: pi[1-99999]\n"
                "    power_entity: input_boolean.pi[1-99999]_relay\n"
            ),
            "line 2: name: bad range: 'pi[1-99999]' gives more than 10,000 values",
        ),
        (
            "".join(
                f"  - name: n{i}x[1-9999]\n    power_entity: switch.n{i}x[1-9999]\n"
                for i in range(3)
            ).join(["resources:\n", ""]),
            "line 6: the file defines more than 20,000 names",
        ),
    ],
    ids=["alias bomb", "20 x 99,999", "merge bomb", "100,000 deep", "typo", "names"],
)
async def test_hostile_lab_files_are_refused_and_ha_lives(
    hass: HomeAssistant, config_dir: Path, text: str, expected: str
) -> None:
    """The attacks of issue 20: each a translated error with its line; HA carries on."""
    await setup_file_lab(hass, config_dir, LAB_FILE.format(pi_off_delay=0))
    await call(hass, "acquire", {"resource": "pi07", "holder": "ci"})
    (config_dir / "labpower.yaml").write_text(text)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "reload_lab_file", {})
    assert err.value.translation_key == "lab_file_invalid"
    detail = err.value.translation_placeholders["detail"]
    assert f"labpower.yaml {expected}" in detail
    assert "Pi lab" in str(err.value)  # the translated message
    # the lab runs on what it had: the token lives, the states are there
    listed = await call(hass, "list", {"resource": ["pi07"]})
    assert listed["resources"][0]["holders"] == 1
    assert state(hass, "sensor.stack1_state") in ("off", "available")


async def test_too_big_a_file_is_refused(hass: HomeAssistant, config_dir: Path) -> None:
    """A file larger than the bound is not read into memory beyond it."""
    await setup_file_lab(hass, config_dir, LAB_FILE.format(pi_off_delay=0))
    (config_dir / "labpower.yaml").write_text("# " + "x" * (4 * 1024 * 1024))
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "reload_lab_file", {})
    assert err.value.translation_placeholders["detail"] == (
        "labpower.yaml: larger than 4,194,304 bytes"
    )


async def test_names_are_checked_against_every_lab(
    hass: HomeAssistant, config_dir: Path
) -> None:
    """A name another lab has (made in the UI, or by its file) is refused with its line."""
    other = lab_entry(resource_data("pi07"), title="Other")
    other.add_to_hass(hass)
    await setup_relays(hass, "pi07")
    entry = await setup_file_lab(
        hass, config_dir, LAB_FILE.format(pi_off_delay=0), loads=False
    )
    assert entry.state is ConfigEntryState.SETUP_RETRY
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "lab_file_invalid_entry_pi_lab")
    assert issue is not None
    assert issue.translation_placeholders["detail"] == (
        "labpower.yaml line 13: resource 'pi07' already exists outside the lab file "
        "(in lab Other)"
    )
    # another lab's file: the second to define stack1 is refused
    await hass.config_entries.async_remove(other.entry_id)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    (config_dir / "second.yaml").write_text(
        "resources:\n  - name: Stack1\n    power_entity: input_boolean.pi07_relay\n"
    )
    second = lab_entry(title="Second", lab_file="second.yaml")
    second.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(second.entry_id)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "lab_file_invalid_entry_second")
    assert issue is not None
    assert issue.translation_placeholders["detail"] == (
        "second.yaml line 2: resource 'Stack1' already exists outside the lab file "
        "(in lab Pi lab)"
    )
    listed = await call(hass, "list", {"resource": ["stack1"]})
    assert [r["name"] for r in listed["resources"]] == ["stack1"]


async def test_lab_file_rules_are_the_flows(
    hass: HomeAssistant, config_dir: Path
) -> None:
    """The lab file's rules are the flows': 0 parallel power-ons, `pdu:a`, blank hosts.

    max_parallel_on 0 is no limit (as in the options); `pdu:a` and a blank host are
    refused, as the PDU and resource flows refuse them (name_colon, host_empty).
    """
    text = LAB_FILE.format(pi_off_delay=0).replace(
        "max_parallel_on: 4", "max_parallel_on: 0"
    )
    entry = await setup_file_lab(hass, config_dir, text)
    assert entry.runtime_data.settings["max_parallel_on"] == 0
    cases = {
        "units:\n  - name: pdu:a\n    vendor: netio\n    host: 10.0.0.5\n": (
            "line 2: name: a unit's name cannot contain ':', not 'pdu:a'"
        ),
        "resources:\n  - name: h\n    power_entity: switch.h\n    host: ' '\n": (
            "line 4: host: a host cannot be empty"
        ),
        (
            "resources:\n  - name: w\n    mac: aa:bb:cc:dd:ee:ff\n    ssh_host: ''\n"
            "    ssh_username: root\n    ssh_password: pw\n    host: w.lab\n"
        ): "line 4: ssh_host: a host cannot be empty",
    }
    for bad, expected in cases.items():
        (config_dir / "labpower.yaml").write_text(bad)
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "reload_lab_file", {})
        assert err.value.translation_placeholders["detail"] == (
            f"labpower.yaml {expected}"
        )


async def test_policies_set_the_price(hass: HomeAssistant, config_dir: Path) -> None:
    """A lab file's energy_price overrides the options' (the lab's money uses it)."""
    text = LAB_FILE.format(pi_off_delay=0).replace(
        "on_spacing: 2", "on_spacing: 2\n  energy_price: 0.5"
    )
    entry = await setup_file_lab(hass, config_dir, text, energy_price=0.1)
    assert entry.runtime_data.energy.price() == 0.5
    assert state(hass, "sensor.pi_lab_cost_avoided") == "0"  # priced: known
