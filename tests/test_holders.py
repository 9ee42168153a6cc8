"""Who holds what, until when: the Holders sensor, UI holds that end, reminders, phones."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import User
from homeassistant.components import persistent_notification
from homeassistant.const import MATCH_ALL
from homeassistant.core import Context, Event, HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import translation
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, event_tokens, state

HOLDERS = "sensor.builder_1_holders"
POWER = "switch.builder_1_power"
EN = json.loads(
    (
        Path(__file__).parent.parent / "custom_components/labpower/translations/en.json"
    ).read_text(encoding="utf-8")
)
COMMON = EN["common"]


async def _lab(hass: HomeAssistant, **options: Any) -> MockConfigEntry:
    await setup_relays(hass, "builder-1", "builder-2")
    entry = lab_entry(resource_data("builder-1"), resource_data("builder-2"), **options)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _switch(hass: HomeAssistant, service: str, user: User) -> None:
    await hass.services.async_call(
        "switch",
        service,
        {"entity_id": POWER},
        blocking=True,
        context=Context(user_id=user.id),
    )
    await hass.async_block_till_done()


def _holders_writes(events: list[Event]) -> list[Event]:
    return [e for e in events if e.data.get("entity_id") == HOLDERS]


def _notifications(hass: HomeAssistant) -> dict[str, Any]:
    return dict(persistent_notification._async_get_or_create_notifications(hass))


def _phone(hass: HomeAssistant, user: User, device: str) -> list[ServiceCall]:
    """A mobile app registration of `user` and its notify action (the phone faked)."""
    MockConfigEntry(
        domain="mobile_app",
        data={"user_id": user.id, "device_name": device, "webhook_id": device},
    ).add_to_hass(hass)
    return async_mock_service(hass, "notify", f"mobile_app_{device.lower()}")


async def _answer(hass: HomeAssistant, action: str, user: User) -> None:
    """The phone's answer to an actionable notification, as the mobile app fires it."""
    hass.bus.async_fire(
        "mobile_app_notification_action",
        {"action": action},
        context=Context(user_id=user.id),
    )
    await hass.async_block_till_done()


async def test_holders_sensor_lists_tokens_without_ids(
    hass: HomeAssistant,
    hass_admin_user: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _lab(hass)
    now = dt_util.utcnow()
    await _switch(hass, "turn_on", hass_admin_user)
    await advance(hass, freezer, 5)
    ci = await call(hass, "acquire", {"resource": "builder-1", "holder": "ci 42"})
    await hass.async_block_till_done()
    holders = hass.states.get(HOLDERS)
    assert holders is not None
    assert holders.state == "2"
    # a count: its name says what is counted ("Holders 2"; HA's units have no plural,
    # "1 holders" read badly); still a measurement, for the history graph and statistics
    assert "unit_of_measurement" not in holders.attributes
    assert holders.attributes["state_class"] == "measurement"
    assert holders.attributes["friendly_name"] == "builder-1 Holders"
    assert holders.attributes["tokens"] == [
        {
            "holder": hass_admin_user.name,
            "kind": "hold",
            "since": now.isoformat(),
            "expires": (now + timedelta(hours=12)).isoformat(),
            "exclusive": False,
        },
        {
            "holder": "ci 42",
            "kind": "lease",
            "since": (now + timedelta(seconds=5)).isoformat(),
            "expires": (now + timedelta(seconds=605)).isoformat(),
            "exclusive": False,
        },
    ]
    # every user sees attributes: no token id anywhere in them
    assert ci["tokens"][0]["token"] not in str(holders.attributes)
    # renewing moves the expiry shown, within a second: renewals in that second share
    # one state write (each is a row in the recorder, though it records no list)
    await advance(hass, freezer, 60)
    writes = async_capture_events(hass, MATCH_ALL)
    for _ in range(3):
        await call(hass, "renew", {"token": ci["tokens"][0]["token"]})
    await hass.async_block_till_done()
    assert _holders_writes(writes) == []
    await advance(hass, freezer, 1)
    tokens = hass.states.get(HOLDERS).attributes["tokens"]  # type: ignore[union-attr]
    assert tokens[1]["expires"] == (now + timedelta(seconds=665)).isoformat()
    assert len(_holders_writes(writes)) == 1
    # renewals are not on the bus either (each event would be a row too)
    assert not [e for e in writes if e.event_type == "labpower_token_renewed"]
    # a new count is shown at once, the pending list with it
    await advance(hass, freezer, 1)
    await call(hass, "renew", {"token": ci["tokens"][0]["token"]})
    await call(hass, "release", {"token": ci["tokens"][0]["token"]})
    await hass.async_block_till_done()
    assert [e.data["new_state"].state for e in _holders_writes(writes)] == ["2", "1"]
    await advance(hass, freezer, 2)
    assert len(_holders_writes(writes)) == 2  # the pending write went with the count
    # counts changing many times a second: at once, then the latest a second later
    # (the lab's total and labpower.list show each answered request at once)
    for holder in ("a", "b", "c"):
        await call(hass, "acquire", {"resource": "builder-1", "holder": holder})
    await hass.async_block_till_done()
    assert [e.data["new_state"].state for e in _holders_writes(writes)][2:] == ["2"]
    assert state(hass, "sensor.lab_holders") == "4"
    await advance(hass, freezer, 1)
    assert [e.data["new_state"].state for e in _holders_writes(writes)][2:] == [
        "2",
        "4",
    ]


async def test_websocket_gives_ids_to_owners_and_admins(
    hass: HomeAssistant,
    hass_admin_user: User,
    hass_ws_client: WebSocketGenerator,
) -> None:
    await _lab(hass)
    bob = await hass.auth.async_create_user("Bob", group_ids=["system-users"])
    refresh = await hass.auth.async_create_refresh_token(bob, "https://example.com/app")
    bob_access = hass.auth.async_create_access_token(refresh)
    await _switch(hass, "turn_on", bob)
    admin = await call(
        hass, "acquire", {"resource": "builder-1"}, Context(user_id=hass_admin_user.id)
    )
    admin_token = admin["tokens"][0]["token"]

    async def tokens(token: str | None = None) -> list[dict[str, Any]]:
        client = (
            await hass_ws_client(hass, token) if token else await hass_ws_client(hass)
        )
        await client.send_json_auto_id({"type": "labpower/resources"})
        response = await client.receive_json()
        assert response["success"], response
        [builder] = [
            r for r in response["result"]["resources"] if r["name"] == "builder-1"
        ]
        assert builder["entities"]["energy"] == "sensor.builder_1_energy"
        return builder["tokens"]

    as_admin = await tokens()
    assert [t["holder"] for t in as_admin] == ["Bob", hass_admin_user.name]
    assert all(t["token"] for t in as_admin)
    assert [t["mine"] for t in as_admin] == [False, True]
    as_user = await tokens(bob_access)
    assert [t["mine"] for t in as_user] == [True, False]
    assert as_user[0]["token"] is not None
    assert as_user[1]["token"] is None
    assert admin_token not in str(as_user)
    assert as_user[0]["expires"] is not None  # a UI hold ends


async def test_ui_hold_reminds_then_ends(
    hass: HomeAssistant,
    hass_admin_user: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A hold with a 2-minute maximum: reminded at half time, then released."""
    await _lab(hass, ui_hold_max=120)
    expiring = async_capture_events(hass, "labpower_token_expiring")
    expired = async_capture_events(hass, "labpower_token_expired")
    await _switch(hass, "turn_on", hass_admin_user)
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    await advance(hass, freezer, 59)
    assert not _notifications(hass)
    await advance(hass, freezer, 2)
    [(notification_id, notification)] = _notifications(hass).items()
    assert notification_id.startswith("labpower_hold_")
    assert notification["title"] == "Your hold on builder-1 ends soon"
    ends = dt_util.as_local(dt_util.utcnow() + timedelta(seconds=59))
    assert notification["message"] == COMMON["hold_ending_message"].format(
        holder=hass_admin_user.name,
        resource="builder-1",
        time=ends.strftime("%H:%M"),
        minutes=1,
    )
    assert "(in 1 min)" in notification["message"]
    assert [e.data["resource"] for e in expiring] == ["builder-1"]
    assert expiring[0].data["kind"] == "hold"
    await advance(hass, freezer, 60)
    assert event_tokens(expired) == [hass_admin_user.name]
    assert state(hass, HOLDERS) == "0"
    assert not _notifications(hass)  # the reminder goes with the hold
    await advance(hass, freezer, 31)  # the off delay
    assert state(hass, "input_boolean.builder_1_relay") == "off"


async def test_ui_hold_renewed_and_never(
    hass: HomeAssistant,
    hass_admin_user: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await _lab(hass, ui_hold_max=600)
    await _switch(hass, "turn_on", hass_admin_user)
    await advance(hass, freezer, 400)
    assert _notifications(hass)
    # on again renews the hold to its maximum and takes the reminder back
    await _switch(hass, "turn_on", hass_admin_user)
    assert not _notifications(hass)
    await advance(hass, freezer, 500)
    assert state(hass, HOLDERS) == "1"
    # the renew action (the overview's Renew) does the same for its owner
    listed = await call(hass, "list", {"resource": "builder-1"})
    token = listed["resources"][0]["tokens"][0]
    renewed = await call(hass, "renew", {"token": token["token"]})
    expires = dt_util.parse_datetime(renewed["tokens"][0]["expires"])
    assert expires == dt_util.utcnow() + timedelta(seconds=600)
    # 0: holds from the UI never end
    hass.config_entries.async_update_entry(entry, options={"ui_hold_max": 0})
    await hass.async_block_till_done()
    await _switch(hass, "turn_on", hass_admin_user)
    await call(hass, "release", {"token": token["token"]})
    await _switch(hass, "turn_on", hass_admin_user)
    listed = await call(hass, "list", {"resource": "builder-1"})
    assert listed["resources"][0]["tokens"][0]["expires"] is None
    # on again with a hold that never ends changes nothing: not even a state write
    await advance(hass, freezer, 1)
    before = hass.states.get(HOLDERS)
    await _switch(hass, "turn_on", hass_admin_user)
    await advance(hass, freezer, 2)
    after = hass.states.get(HOLDERS)
    assert before is not None
    assert after is not None
    assert after.last_updated == before.last_updated


def _with_language(language: str, strings: dict[str, Any]) -> Any:
    """HA reading labpower's translations/<language>.json as if it held `strings`."""
    real = translation._load_translations_files_by_language

    def load(files: dict[str, dict[str, Path]]) -> dict[str, dict[str, Any]]:
        loaded = real(files)
        if "labpower" in files.get(language, {}):
            loaded.setdefault(language, {})["labpower"] = strings
        return loaded

    return patch.object(translation, "_load_translations_files_by_language", load)


@pytest.mark.usefixtures("disable_translations_once")
async def test_notifications_in_has_language(
    hass: HomeAssistant,
    hass_admin_user: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The reminder's texts are the translations' in HA's language, English where it has none."""
    await hass.config.async_update(language="de")
    german = {
        "common": {
            "hold_ending_title": "Deine Reservierung von {resource} endet bald",
            "action_keep": "4 h länger",
            "action_release": "Jetzt freigeben",
        }
    }
    with _with_language("de", german):
        await _lab(hass, ui_hold_max=1200)
    sent = _phone(hass, hass_admin_user, "Pixel")
    await _switch(hass, "turn_on", hass_admin_user)
    await advance(hass, freezer, 601)
    [notification] = _notifications(hass).values()
    assert notification["title"] == "Deine Reservierung von builder-1 endet bald"
    # no German for the message: HA's fallback, English
    assert notification["message"].startswith(
        COMMON["hold_ending_message"]
        .split("{resource}")[0]
        .format(holder=hass_admin_user.name)
    )
    [message] = sent
    assert message.data["title"] == notification["title"]
    assert [a["title"] for a in message.data["data"]["actions"]] == [
        "4 h länger",
        "Jetzt freigeben",
    ]


async def test_phone_keeps_or_releases(
    hass: HomeAssistant,
    hass_admin_user: User,
    hass_read_only_user: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _lab(hass, ui_hold_max=1200)
    sent = _phone(hass, hass_admin_user, "Pixel")
    others = _phone(hass, hass_read_only_user, "Other")
    await _switch(hass, "turn_on", hass_admin_user)
    await advance(hass, freezer, 601)
    [message] = sent
    assert not others
    actions = message.data["data"]["actions"]
    assert [a["title"] for a in actions] == [
        COMMON["action_keep"],
        COMMON["action_release"],
    ]
    assert COMMON["action_keep"] == "Keep 4 h more"
    keep, release = (a["action"] for a in actions)

    # another user's phone cannot answer for the holder
    await _answer(hass, release, hass_read_only_user)
    assert state(hass, HOLDERS) == "1"

    await _answer(hass, keep, hass_admin_user)
    await advance(hass, freezer, 1)  # a new expiry alone is shown within a second
    [token] = hass.states.get(HOLDERS).attributes["tokens"]  # type: ignore[union-attr]
    left = dt_util.parse_datetime(token["expires"]) - dt_util.utcnow()  # type: ignore[operator]
    assert left == timedelta(hours=4, seconds=598)
    assert not _notifications(hass)

    await advance(hass, freezer, 4 * 3600)
    assert len(sent) == 2
    release = sent[1].data["data"]["actions"][1]["action"]
    await _answer(hass, release, hass_admin_user)
    assert state(hass, HOLDERS) == "0"
    # an answer to a hold that is gone does nothing
    await _answer(hass, keep, hass_admin_user)
    await _answer(hass, "OTHER", hass_admin_user)
    assert state(hass, HOLDERS) == "0"


async def test_leases_keep_their_ttl_and_get_the_event(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await _lab(hass, ui_hold_max=60, expiring_warning=120)
    expiring = async_capture_events(hass, "labpower_token_expiring")
    await call(hass, "acquire", {"resource": "builder-1", "holder": "ci", "ttl": 600})
    await call(hass, "acquire", {"resource": "builder-2", "kind": "hold"})
    await advance(hass, freezer, 479)
    assert not expiring
    await advance(hass, freezer, 2)
    assert [(e.data["resource"], e.data["holder"]) for e in expiring] == [
        ("builder-1", "ci")
    ]
    assert not _notifications(hass)  # CI is not a person to remind
    await advance(hass, freezer, 120)
    assert state(hass, HOLDERS) == "0"
    # a hold from the actions is not a UI hold: it never ends
    assert state(hass, "sensor.builder_2_holders") == "1"


async def test_no_expiring_event_when_off(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    await _lab(hass, expiring_warning=0)
    expiring = async_capture_events(hass, "labpower_token_expiring")
    await call(hass, "acquire", {"resource": "builder-1", "ttl": 600})
    await advance(hass, freezer, 601)
    assert not expiring


async def test_told_when_available(
    hass: HomeAssistant,
    hass_admin_user: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_relays(hass, "builder-1", "builder-2")
    hass.states.async_set("binary_sensor.builder_1_up", "off")
    entry = lab_entry(
        resource_data(
            "builder-1",
            checker_type="entity",
            check_entity="binary_sensor.builder_1_up",
        ),
        resource_data("builder-2"),
        notify_when_available=True,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    sent = _phone(hass, hass_admin_user, "Pixel")
    await _switch(hass, "turn_on", hass_admin_user)
    assert state(hass, "sensor.builder_1_state") == "starting"
    assert not _notifications(hass)
    hass.states.async_set("binary_sensor.builder_1_up", "on")
    await advance(hass, freezer, 5)
    assert state(hass, "sensor.builder_1_state") == "available"
    assert "labpower_available_builder-1" in _notifications(hass)
    assert [m.data["title"] for m in sent] == ["builder-1 is available"]
    assert sent[0].data["message"] == COMMON["available_message"].format(
        holder=hass_admin_user.name, resource="builder-1"
    )
    # a resource already available when taken: nothing to tell
    await _switch(hass, "turn_on", hass_admin_user)
    assert len(sent) == 1


async def test_a_hold_not_written_does_not_stay(
    hass: HomeAssistant, hass_admin_user: User
) -> None:
    """A hold the disk did not take (fsync fails, as a dying disk's does) is given back.

    Turning the Power switch on fails, translated; once the disk writes, on again holds.
    """
    entry = await _lab(hass)
    with (
        patch("os.fsync", side_effect=OSError(5, "Input/output error")),
        pytest.raises(HomeAssistantError) as err,
    ):
        await _switch(hass, "turn_on", hass_admin_user)
    assert err.value.translation_key == "store_write_failed"
    assert entry.runtime_data.lab.ledger.tokens("builder-1") == []
    # the journal writes what it kept (the hold, then its release) once the disk does
    await entry.runtime_data.storage.async_committed()
    assert state(hass, HOLDERS) == "0"
    await _switch(hass, "turn_on", hass_admin_user)
    # the count changed twice within a second: the latest is written a second later
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1.1))
    await hass.async_block_till_done()
    assert state(hass, HOLDERS) == "1"
