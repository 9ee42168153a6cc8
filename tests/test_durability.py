"""Durability: an answered change is on disk; a damaged store powers nothing off.

Through Home Assistant: a lab of input_boolean relays, its real store files in the
test's own configuration folder, damaged between an unload and the next setup the way
the issue's measurements damaged them (truncated, empty, garbage, deleted, a newer
version, malformed tokens), with and without the last good copy.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
from pathlib import Path
from typing import Any

from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.labpower.const import DOMAIN, STORAGE_VERSION
from custom_components.labpower.core.journal import DurableFiles, encode_batch
from custom_components.labpower.core.ledger import replay
from custom_components.labpower.storage import (
    ISSUE_LOST,
    ISSUE_NEWER,
    ISSUE_RECOVERED,
    SAVE_DELAY,
)

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import call, setup_integration, state

RESOURCES = (
    resource_data("held", off_delay=0),
    resource_data("idle", off_delay=0),
)


def _files(hass: HomeAssistant, entry_id: str) -> DurableFiles:
    return DurableFiles(
        Path(hass.config.path(".storage")), f"{DOMAIN}.{entry_id}", STORAGE_VERSION
    )


def _on_disk(hass: HomeAssistant, entry_id: str) -> set[str]:
    """The live token ids a restart would find: snapshot and journal as written."""
    found = _files(hass, entry_id).read(lambda _data: None)
    data = found.data or {"tokens": [], "released": {}}
    return {raw["id"] for raw in replay(data, found.batches)["tokens"]}


async def _lab(hass: HomeAssistant) -> MockConfigEntry:
    """The lab of RESOURCES on its relays, set up."""
    await setup_relays(hass, "held", "idle")
    return await setup_integration(hass, lab_entry(*RESOURCES))


async def test_acknowledged_changes_are_on_disk_when_answered(
    hass: HomeAssistant,
) -> None:
    entry = await _lab(hass)
    runtime = entry.runtime_data
    # A burst of concurrent acquires: every answer means on disk, in a few fsyncs.
    answers = await asyncio.gather(
        *(
            call(hass, "acquire", {"resource": "held", "holder": f"job {n}"})
            for n in range(200)
        )
    )
    ids = {answer["tokens"][0]["token"] for answer in answers}
    assert len(ids) == 200
    assert _on_disk(hass, entry.entry_id) == ids  # no unload, no timer: a crash now
    assert runtime.storage.commits < 200  # grouped
    # the lab's holder total shows what the answers changed, with no delay (issue 7)
    assert state(hass, "sensor.lab_holders") == "200"
    listed = await call(hass, "list", {"resource": "held"})
    assert len(listed["resources"][0]["tokens"]) == 200
    # renew and release are on disk when answered too
    first, *rest = sorted(ids)
    await call(hass, "renew", {"token": first, "ttl": 60})
    await call(hass, "release", {"token": rest})
    assert _on_disk(hass, entry.entry_id) == {first}
    assert state(hass, "sensor.lab_holders") == "1"


async def _held_lab(hass: HomeAssistant) -> tuple[Any, str]:
    """A lab whose `held` resource is on for a hold; unloaded (files written)."""
    entry = await _lab(hass)
    hold = await call(hass, "acquire", {"resource": "held", "kind": "hold"})
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.held_relay") == "on"
    assert await hass.config_entries.async_unload(entry.entry_id)
    return entry, hold["tokens"][0]["token"]


def _damage(path: Path, how: str) -> None:
    match how:
        case "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        case "empty":
            path.write_bytes(b"")
        case "garbage":
            path.write_bytes(bytes(range(256)) * 4)
        case "deleted":
            path.unlink()
        case "malformed token":
            envelope = json.loads(path.read_text())
            envelope["data"]["tokens"] = [{"id": 7, "kind": "forever"}]
            path.write_text(json.dumps(envelope))


DAMAGES = ("truncated", "empty", "garbage", "deleted", "malformed token")


async def _restart(hass: HomeAssistant, entry: Any) -> list[Event]:
    switched = async_capture_events(hass, "call_service")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return switched


def _switched_off(switched: list[Event], relay: str) -> bool:
    return any(
        event.data["service"] in ("turn_off", "toggle")
        and relay in str(event.data["service_data"])
        for event in switched
    )


@pytest.mark.parametrize("how", DAMAGES)
async def test_a_damaged_store_is_restored_from_the_good_copy(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry, how: str
) -> None:
    entry, token = await _held_lab(hass)
    files = _files(hass, entry.entry_id)
    await hass.async_add_executor_job(_damage, files.store_path, how)
    damaged = None if how == "deleted" else files.store_path.read_bytes()
    switched = await _restart(hass, entry)
    listed = await call(hass, "list", {"resource": "held"})
    assert [t["token"] for t in listed["resources"][0]["tokens"]] == [token]
    # kept aside as the repair says, never made the good copy
    if damaged is not None:
        assert files.damaged_path.read_bytes() == damaged
    assert files.good_path.read_bytes() != damaged
    assert state(hass, "input_boolean.held_relay") == "on"
    assert not _switched_off(switched, "held_relay")
    issue = issue_registry.async_get_issue(
        DOMAIN, f"{ISSUE_RECOVERED}_{entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["tokens"] == "1"
    # the store is good again: the next start finds nothing to repair
    assert await hass.config_entries.async_unload(entry.entry_id)
    await _restart(hass, entry)
    assert not issue_registry.async_get_issue(
        DOMAIN, f"{ISSUE_RECOVERED}_{entry.entry_id}"
    )


@pytest.mark.parametrize("how", DAMAGES)
async def test_with_no_good_copy_nothing_held_is_switched_off(
    hass: HomeAssistant,
    issue_registry: ir.IssueRegistry,
    hass_client: ClientSessionGenerator,
    how: str,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    entry, token = await _held_lab(hass)
    files = _files(hass, entry.entry_id)

    def damage_all() -> None:
        _damage(files.store_path, how)
        _damage(files.good_path, "garbage")
        for segment in files.directory.glob(f"{files.key}.journal.*"):
            segment.unlink()

    await hass.async_add_executor_job(damage_all)
    switched = await _restart(hass, entry)
    issue_id = f"{ISSUE_LOST}_{entry.entry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders is not None
    assert "good: not valid JSON" in issue.translation_placeholders["detail"]
    # the held machine keeps its power, the idle one stays off, nothing is refused
    assert state(hass, "input_boolean.held_relay") == "on"
    assert state(hass, "sensor.held_state") == "available"
    assert state(hass, "input_boolean.idle_relay") == "off"
    assert not _switched_off(switched, "held_relay")
    assert await call(hass, "release", {"token": token}) == {"released": 0}
    # still kept after another restart, until an administrator confirms
    assert await hass.config_entries.async_unload(entry.entry_id)
    switched = await _restart(hass, entry)
    assert state(hass, "input_boolean.held_relay") == "on"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    form = await response.json()
    assert form["step_id"] == "confirm"
    response = await client.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.held_relay") == "off"  # its off delay is 0
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    with pytest.raises(HomeAssistantError):
        await call(hass, "release", {"token": token})  # unknown again: 404


async def test_a_newer_store_is_left_alone_and_powers_nothing(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    entry, _token = await _held_lab(hass)
    files = _files(hass, entry.entry_id)

    def newer() -> bytes:
        envelope = json.loads(files.store_path.read_text())
        envelope["version"] = STORAGE_VERSION + 1
        envelope["data"] = {"format": "from the future"}
        files.store_path.write_text(json.dumps(envelope))
        return files.store_path.read_bytes()

    written = await hass.async_add_executor_job(newer)
    switched = await _restart(hass, entry)
    issue = issue_registry.async_get_issue(DOMAIN, f"{ISSUE_NEWER}_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["version"] == str(STORAGE_VERSION + 1)
    assert state(hass, "input_boolean.held_relay") == "on"
    assert state(hass, "input_boolean.idle_relay") == "off"
    assert not _switched_off(switched, "held_relay")
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "acquire", {"resource": "idle"})
    assert err.value.translation_key == "acquire_refused"
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.async_add_executor_job(files.store_path.read_bytes) == written


async def test_a_journal_from_a_newer_version_powers_nothing_off(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """A journal record this version cannot replay: what it changed is not known."""
    entry, token = await _held_lab(hass)
    files = _files(hass, entry.entry_id)

    def append_future_record() -> None:
        files.read(lambda _data: None)
        files.append(encode_batch([["lease-v9", {"id": "t9", "exclusive": "maybe"}]]))
        files.close()

    await hass.async_add_executor_job(append_future_record)
    switched = await _restart(hass, entry)
    issue = issue_registry.async_get_issue(DOMAIN, f"{ISSUE_LOST}_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert "unknown record" in issue.translation_placeholders["detail"]
    assert state(hass, "input_boolean.held_relay") == "on"
    assert not _switched_off(switched, "held_relay")
    listed = await call(hass, "list", {"resource": "held"})
    assert [t["token"] for t in listed["resources"][0]["tokens"]] == [token]


async def test_unload_returns_while_the_disk_keeps_failing(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = await _lab(hass)
    tried: list[str] = []

    def disk_full(name: str) -> Any:
        def fail(*_args: Any) -> None:
            tried.append(name)
            raise OSError(28, "No space left on device")

        return fail

    monkeypatch.setattr(DurableFiles, "append", disk_full("append"))
    monkeypatch.setattr(DurableFiles, "compact", disk_full("compact"))
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "acquire", {"resource": "held"})
    assert err.value.translation_key == "store_write_failed"
    # the journal is retried while the lab runs; an unload ends that (the timeout
    # only turns a hang into a failure): one more try, then the snapshot's one try
    async with asyncio.timeout(30):
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert tried.count("compact") == 1


async def test_a_save_requested_while_a_journal_write_waits_compacts(
    hass: HomeAssistant,
) -> None:
    """Answering at once (the benchmark's baseline): save_soon still compacts."""
    entry = await _lab(hass)
    storage = entry.runtime_data.storage
    storage.acknowledge_on_disk = False
    generation = storage.files.generation
    answer = await call(hass, "acquire", {"resource": "held"})  # journal in 1 s
    storage.save_soon()  # energy or a host key changed: compact in 1 s
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY + 1))
    await hass.async_block_till_done(wait_background_tasks=True)  # the writer's
    assert storage.files.generation == generation + 1
    stored = json.loads(
        await hass.async_add_executor_job(storage.files.store_path.read_bytes)
    )
    assert [t["id"] for t in stored["data"]["tokens"]] == [answer["tokens"][0]["token"]]
    assert await hass.config_entries.async_unload(entry.entry_id)
