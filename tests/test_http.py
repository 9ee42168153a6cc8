"""The REST API through Home Assistant's real HTTP server, and MAAS's webhook flow."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN, User
from homeassistant.core import HomeAssistant
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import advance, call, event_tokens, holders, state
from .peers.rest import Api, error_of, rest_api

# The defaults of MAAS's webhook power driver.
MAAS_POWER_ON_REGEX = r"status.*\:.*running"
MAAS_POWER_OFF_REGEX = r"status.*\:.*stopped"


@pytest.fixture
async def lab_http(hass: HomeAssistant) -> None:
    """A lab: builder-1/2 (arm64), slow-1 (waits for a sensor), all off."""
    await setup_relays(hass, "builder-1", "builder-2", "slow-1")
    hass.states.async_set("binary_sensor.slow_up", "off")
    entry = lab_entry(
        resource_data("builder-1", labels=["arm64", "builder"]),
        resource_data("builder-2", labels=["arm64"]),
        resource_data(
            "slow-1",
            checker_type="entity",
            check_entity="binary_sensor.slow_up",
            start_timeout=5,
        ),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def admin(
    hass_client_no_auth: ClientSessionGenerator, hass_access_token: str
) -> Api:
    """Requests as an administrator."""
    return await rest_api(hass_client_no_auth, hass_access_token)


@pytest.fixture
async def ci_token(hass: HomeAssistant, hass_admin_user: User) -> str:
    """A long-lived token of a non-admin CI user (the admin is the owner)."""
    user = await hass.auth.async_create_user("ci bot", group_ids=["system-users"])
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name="ci", token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
    )
    return hass.auth.async_create_access_token(refresh)


@pytest.fixture
async def ci(hass_client_no_auth: ClientSessionGenerator, ci_token: str) -> Api:
    """Requests as the non-admin CI user."""
    return await rest_api(hass_client_no_auth, ci_token)


@pytest.mark.usefixtures("lab_http")
async def test_unauthenticated(hass_client_no_auth: ClientSessionGenerator) -> None:
    anonymous = await rest_api(hass_client_no_auth, None)
    assert (await anonymous("GET", "/resources")).status == 401
    assert (await anonymous("POST", "/resources/builder-1/tokens")).status == 401
    assert (await anonymous("GET", "/maas/builder-1/query")).status == 401


@pytest.mark.usefixtures("lab_http")
async def test_acquire_renew_release(hass: HomeAssistant, ci: Api, admin: Api) -> None:
    listed = await (await ci("GET", "/resources")).json()
    assert [(r["name"], r["state"], r["holders"]) for r in listed["resources"]] == [
        ("builder-1", "off", 0),
        ("builder-2", "off", 0),
        ("slow-1", "off", 0),
    ]
    response = await ci(
        "POST", "/resources/builder-1/tokens", json={"holder": "job 9", "ttl": 60}
    )
    assert response.status == 201
    token = await response.json()
    assert token["resource"] == "builder-1"
    assert token["holder"] == "job 9"
    assert token["kind"] == "lease"
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"

    detail = await (await ci("GET", "/resources/builder-1")).json()
    assert detail["holders"] == 1
    assert detail["tokens"][0]["token"] == token["token"]
    assert detail["labels"] == ["arm64", "builder"]
    # an administrator sees the id; another non-admin user would not
    assert (await (await admin("GET", "/resources/builder-1")).json())["tokens"][0][
        "token"
    ]

    mine = {"token": token["token"]}
    renewed = await ci("POST", "/tokens/renew", json={**mine, "ttl": 600})
    assert renewed.status == 200
    assert (await renewed.json())["expires"] > token["expires"]
    assert (await ci("POST", "/tokens/release", json=mine)).status == 204
    assert (await ci("POST", "/tokens/release", json=mine)).status == 204  # idempotent
    unknown = {"token": "not-a-real-token"}
    error = await error_of(await ci("POST", "/tokens/release", json=unknown), 404)
    assert error["code"] == "unknown_token"
    await error_of(await ci("POST", "/tokens/renew", json=unknown), 404)
    # the id is required, in the body
    for path in ("/tokens/release", "/tokens/renew"):
        assert (await error_of(await ci("POST", path, json={}), 400))[
            "field"
        ] == "token"
        await error_of(await ci("POST", path), 400)


@pytest.mark.usefixtures("lab_http")
async def test_token_urls_of_old_are_gone(ci: Api) -> None:
    """The routes that put a token id in the URL answer 410 with a hint, not a 404."""
    token = (await (await ci("POST", "/resources/builder-1/tokens")).json())["token"]
    for method, path in (
        ("DELETE", f"/tokens/{token}"),
        ("POST", f"/tokens/{token}/renew"),
    ):
        error = await error_of(await ci(method, path), 410)
        assert error["code"] == "gone"
        assert "/api/labpower/tokens/release" in error["message"]
        assert token not in error["message"]
    # still held: nothing was released
    assert (await (await ci("GET", "/resources/builder-1")).json())["holders"] == 1


@pytest.mark.usefixtures("lab_http")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ttl": -1}, "ttl"),
        ({"ttl": "soon"}, "ttl"),
        ({"kind": "forever"}, "kind"),
        ({"wait": "yes"}, "wait"),
        ({"timeout": 0, "wait": True}, "timeout"),
        ({"holder": ""}, "holder"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_input_names_the_field(
    hass: HomeAssistant, ci: Api, body: dict[str, Any], field: str
) -> None:
    error = await error_of(
        await ci("POST", "/resources/builder-1/tokens", json=body), 400
    )
    assert error["field"] == field
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_holders") == "0"


@pytest.mark.usefixtures("lab_http")
async def test_ttl_above_max_ttl_is_a_conflict(hass: HomeAssistant, ci: Api) -> None:
    """Valid by the schema, refused by this resource's policy: 409 naming the field."""
    body = {"ttl": 99999}
    error = await error_of(
        await ci("POST", "/resources/builder-1/tokens", json=body), 409
    )
    assert (error["code"], error["field"]) == ("invalid_ttl", "ttl")
    token = (await (await ci("POST", "/resources/builder-1/tokens")).json())["token"]
    renew = await ci("POST", "/tokens/renew", json={**body, "token": token})
    assert (await error_of(renew, 409))["field"] == "ttl"
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_holders") == "1"


@pytest.mark.usefixtures("lab_http")
async def test_bad_bodies_and_unknown_resource(ci: Api) -> None:
    error = await error_of(
        await ci("POST", "/resources/builder-1/tokens", data="{nope"), 400
    )
    assert "JSON" in error["message"]
    await error_of(await ci("POST", "/resources/builder-1/tokens", data="[1]"), 400)
    await error_of(await ci("POST", "/resources/builder-1/tokens", data="NaN"), 400)
    error = await error_of(await ci("POST", "/resources/nope/tokens"), 404)
    assert error == {
        "code": "unknown_resource",
        "message": "Unknown resource: nope",
        "field": None,
    }
    await error_of(await ci("GET", "/resources/nope"), 404)


@pytest.mark.usefixtures("lab_http")
async def test_wait_available_and_timeout(hass: HomeAssistant, ci: Api) -> None:
    response = await ci(
        "POST", "/resources/builder-1/tokens", json={"wait": True, "timeout": 5}
    )
    assert response.status == 201
    assert (await response.json())["state"] == "available"
    error = await error_of(
        await ci(
            "POST", "/resources/slow-1/tokens", json={"wait": True, "timeout": 0.05}
        ),
        504,
    )
    assert error["code"] == "wait_timeout"
    await hass.async_block_till_done()
    assert await holders(hass, "slow-1") == "0"


@pytest.mark.usefixtures("lab_http")
async def test_wait_ends_on_fault(
    hass: HomeAssistant, ci: Api, freezer: FrozenDateTimeFactory
) -> None:
    pending = asyncio.ensure_future(
        ci("POST", "/resources/slow-1/tokens", json={"wait": True, "timeout": 600})
    )
    # The request travels over a real socket: let it arrive before time moves.
    for _ in range(1000):
        await asyncio.sleep(0)
        if state(hass, "sensor.slow_1_state") == "starting":
            break
    assert state(hass, "sensor.slow_1_state") == "starting"
    await advance(hass, freezer, 6)
    await advance(hass, freezer, 2)
    error = await error_of(await pending, 409)
    assert error["code"] == "resource_fault"
    assert await holders(hass, "slow-1") == "0"


@pytest.mark.usefixtures("lab_http")
async def test_pool_by_label(hass: HomeAssistant, ci: Api) -> None:
    await (await ci("POST", "/resources/builder-1/tokens")).json()
    response = await ci(
        "POST", "/tokens", json={"labels": ["arm64"], "holder": "pool job"}
    )
    assert response.status == 201
    [token] = (await response.json())["tokens"]
    assert token["resource"] == "builder-2"  # builder-1 is taken
    error = await error_of(await ci("POST", "/tokens", json={"labels": ["arm64"]}), 409)
    assert error["code"] == "not_enough_free"
    for body, field in (
        ({"labels": []}, "labels"),
        ({"labels": ["arm64"], "count": 0}, "count"),
        ({"labels": [1]}, "labels"),
    ):
        assert (await error_of(await ci("POST", "/tokens", json=body), 400))[
            "field"
        ] == field
    await error_of(await ci("POST", "/tokens"), 400)


@pytest.mark.usefixtures("lab_http")
async def test_force_off_admin_only(hass: HomeAssistant, ci: Api, admin: Api) -> None:
    await ci("POST", "/resources/builder-1/tokens")
    await hass.async_block_till_done()
    error = await error_of(await ci("POST", "/resources/builder-1/force_off"), 403)
    assert error["code"] == "admin_required"
    assert state(hass, "sensor.builder_1_holders") == "1"
    response = await admin("POST", "/resources/builder-1/force_off")
    assert await response.json() == {"revoked": 1}
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "off"


@pytest.mark.usefixtures("lab_http")
async def test_maas_webhook_flow(
    hass: HomeAssistant, ci: Api, freezer: FrozenDateTimeFactory
) -> None:
    """As MAAS does it: query, on, on again, query until running, off, query until stopped."""
    acquired = async_capture_events(hass, "labpower_token_acquired")
    assert await (await ci("GET", "/maas/builder-1/query")).json() == {
        "status": "stopped"
    }
    assert (await ci("POST", "/maas/builder-1/on")).status == 200
    assert (await ci("POST", "/maas/builder-1/on")).status == 200  # MAAS re-sends
    assert event_tokens(acquired) == ["MAAS"]
    await hass.async_block_till_done()
    body = await (await ci("GET", "/maas/builder-1/query")).text()
    assert re.search(MAAS_POWER_ON_REGEX, body)
    assert not re.search(MAAS_POWER_OFF_REGEX, body)
    assert (await ci("POST", "/maas/builder-1/off")).status == 200
    assert (await ci("POST", "/maas/builder-1/off")).status == 200
    assert await holders(hass, "builder-1") == "0"
    await advance(hass, freezer, 31)  # off delay
    body = await (await ci("GET", "/maas/builder-1/query")).text()
    assert re.search(MAAS_POWER_OFF_REGEX, body)
    assert not re.search(MAAS_POWER_ON_REGEX, body)
    await error_of(await ci("POST", "/maas/builder-1/reboot"), 404)
    await error_of(await ci("GET", "/maas/builder-1/status"), 404)
    # 400, not 404: MAAS's driver reads a 404 as success (see tests/maas.py)
    await error_of(await ci("GET", "/maas/nope/query"), 400)


# issue 15: the action accepted these, the REST API refused them; now both refuse them,
# naming the same field (issue 20: kind [] / {} was a 500 with a traceback).
_BAD_ACQUIRES = [
    ({"ttl": True}, "ttl"),
    ({"ttl": "60"}, "ttl"),
    ({"ttl": 1e-320}, "ttl"),
    ({"timeout": 10_000_000, "wait": True}, "timeout"),
    ({"holder": "x" * 10_000}, "holder"),
    ({"holder": "x" * 1_000_000}, "holder"),
    ({"kind": []}, "kind"),
    ({"kind": {}}, "kind"),
]


def _as_action(body: dict[str, Any]) -> dict[str, Any]:
    """A REST body as the action's data (the action's wait is a word)."""
    return {**body, "wait": "available"} if body.get("wait") is True else body


@pytest.mark.usefixtures("lab_http")
@pytest.mark.parametrize(("body", "field"), _BAD_ACQUIRES)
async def test_action_and_rest_refuse_alike(
    hass: HomeAssistant,
    ci: Api,
    body: dict[str, Any],
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(vol.Invalid) as err:
        await call(hass, "acquire", {"resource": "builder-1", **_as_action(body)})
    assert [list(e.path) for e in err.value.errors] == [[field]]
    error = await error_of(
        await ci("POST", "/resources/builder-1/tokens", json=body), 400
    )
    assert error["field"] == field
    # The same words: schema.py's refusal, bounds as written (86400 s, not 8.64e+04).
    assert error["message"] == f"{field}: {err.value.errors[0].msg}"
    assert "e+" not in error["message"]
    assert "Traceback" not in caplog.text
    await hass.async_block_till_done()
    assert state(hass, "sensor.builder_1_holders") == "0"


@pytest.mark.usefixtures("lab_http")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"count": True}, "count"),
        ({"count": 1001}, "count"),
        ({"count": 2.0}, "count"),
        *_BAD_ACQUIRES,
    ],
)
async def test_pool_action_and_rest_refuse_alike(
    hass: HomeAssistant, ci: Api, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(vol.Invalid) as err:
        await call(hass, "acquire", {"labels": ["arm64"], **_as_action(body)})
    assert [list(e.path) for e in err.value.errors] == [[field]]
    error = await error_of(
        await ci("POST", "/tokens", json={"labels": ["arm64"], **body}), 400
    )
    assert error["field"] == field


@pytest.mark.usefixtures("lab_http")
async def test_renew_refuses_alike(hass: HomeAssistant, ci: Api) -> None:
    token = (await (await ci("POST", "/resources/builder-1/tokens")).json())["token"]
    for ttl in (True, "60", 0.5, 10**12):
        with pytest.raises(vol.Invalid):
            await call(hass, "renew", {"token": token, "ttl": ttl})
        error = await error_of(
            await ci("POST", "/tokens/renew", json={"token": token, "ttl": ttl}), 400
        )
        assert error["field"] == "ttl"


@pytest.mark.usefixtures("lab_http")
async def test_holder_loses_control_characters(hass: HomeAssistant, ci: Api) -> None:
    response = await ci(
        "POST", "/resources/builder-1/tokens", json={"holder": "job\n[ERROR] 7\x1b"}
    )
    assert (await response.json())["holder"] == "job[ERROR] 7"
    [token] = (
        await call(hass, "acquire", {"resource": "builder-2", "holder": "job\r\n8\x00"})
    )["tokens"]
    assert token["holder"] == "job8"


@pytest.mark.usefixtures("lab_http")
@pytest.mark.parametrize(
    ("method", "path", "status", "code", "allow"),
    [
        # what HA's security filter lets through reaches labpower: a JSON answer
        ("GET", "/resources/%2e%2e", 404, "unknown_resource", None),
        ("POST", "/resources/%2e%2e", 405, "method_not_allowed", "GET"),
        ("DELETE", "/tokens/%2e%2e", 410, "gone", None),
        ("GET", "/tokens/release", 405, "method_not_allowed", "POST"),
        ("DELETE", "/tokens/renew", 405, "method_not_allowed", "POST"),
        ("PUT", "/resources", 405, "method_not_allowed", "GET"),
        ("PATCH", "/maas/builder-1/on", 405, "method_not_allowed", "POST"),
        ("POST", "/maas/builder-1/query", 405, "method_not_allowed", "GET"),
        ("GET", "/nothing", 404, "not_found", None),
        ("POST", "/resources/builder-1/nothing", 404, "not_found", None),
        ("GET", "/", 404, "not_found", None),
    ],
)
async def test_path_errors_are_json(
    hass_client_no_auth: ClientSessionGenerator,
    ci_token: str,
    *,
    method: str,
    path: str,
    status: int,
    code: str,
    allow: str | None,
) -> None:
    client = await hass_client_no_auth()
    response = await client.request(
        method,
        URL(f"/api/labpower{path}", encoded=True),  # as sent: no client normalising
        headers={"Authorization": f"Bearer {ci_token}"},
    )
    assert (await error_of(response, status))["code"] == code
    assert response.headers.get("Allow") == allow


@pytest.mark.usefixtures("lab_http")
async def test_security_filter_answers_before_labpower(
    hass_client_no_auth: ClientSessionGenerator, ci_token: str
) -> None:
    # Path traversal (`../` and its encodings): HA's filter refuses it in text/plain,
    # before any view, as docs/openapi.yaml's Filtered response says.
    client = await hass_client_no_auth()
    for path in ("/resources/..%2F", "/resources/%2e%2e%2f/tokens", "/tokens/..%2F"):
        response = await client.request(
            "GET",
            URL(f"/api/labpower{path}", encoded=True),
            headers={"Authorization": f"Bearer {ci_token}"},
        )
        assert response.status == 400
        assert response.content_type == "text/plain"
