"""Who may renew or release a token, MAAS's hold, and the per-user token limit."""

from __future__ import annotations

from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN, User
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .conftest import lab_entry, resource_data, setup_relays
from .peers.ha import call, state
from .peers.rest import Api, error_of, rest_api


async def _lab(hass: HomeAssistant, **options: object) -> None:
    await setup_relays(hass, "builder-1", "builder-2")
    entry = lab_entry(
        resource_data("builder-1", off_delay=0, off_now=True),
        resource_data("builder-2"),
        **options,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def lab_owned(hass: HomeAssistant, hass_admin_user: User) -> None:
    """A lab of two relays with the default options."""
    await _lab(hass)


async def _user(hass: HomeAssistant, name: str) -> User:
    user = await hass.auth.async_create_user(name, group_ids=["system-users"])
    assert not user.is_admin  # the first user made is the owner: an administrator
    return user


async def _client(
    hass: HomeAssistant, factory: ClientSessionGenerator, user: User
) -> Api:
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name=user.name, token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
    )
    return await rest_api(factory, hass.auth.async_create_access_token(refresh))


async def _release(api: Api, token: str, power_off: bool = False) -> int:
    body = {"token": token} | ({"power_off": "now"} if power_off else {})
    return (await api("POST", "/tokens/release", json=body)).status


async def _renew(api: Api, token: str) -> int:
    body = {"token": token, "ttl": 60}
    return (await api("POST", "/tokens/renew", json=body)).status


@pytest.mark.usefixtures("lab_owned")
async def test_only_owner_or_admin_renews_and_releases(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_access_token: str,
) -> None:
    alice = await _client(hass, hass_client_no_auth, await _user(hass, "alice"))
    bob = await _client(hass, hass_client_no_auth, await _user(hass, "bob"))
    admin = await rest_api(hass_client_no_auth, hass_access_token)
    taken = await (await alice("POST", "/resources/builder-1/tokens")).json()
    token = taken["token"]

    for status in (await _renew(bob, token), await _release(bob, token, True)):
        assert status == 403
    body = {"token": token}
    error = await error_of(await bob("POST", "/tokens/release", json=body), 403)
    assert error["code"] == "not_token_owner"
    assert token not in error["message"]
    # refused: the token lives, the machine stays on
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    listed = await (await alice("GET", "/resources/builder-1")).json()
    assert listed["holders"] == 1

    assert await _renew(alice, token) == 200
    assert await _release(admin, token) == 204
    # once released it is nobody's: releasing twice stays fine, for anyone
    assert await _release(bob, token) == 204
    # the admin's token is the admin's
    mine = await (await admin("POST", "/resources/builder-2/tokens")).json()
    assert await _release(alice, mine["token"]) == 403
    assert await _release(admin, mine["token"]) == 204


@pytest.mark.usefixtures("lab_owned")
async def test_actions_refuse_another_users_token(
    hass: HomeAssistant, hass_admin_user: User
) -> None:
    alice, bob = await _user(hass, "alice"), await _user(hass, "bob")
    as_alice, as_bob = Context(user_id=alice.id), Context(user_id=bob.id)
    taken = await call(hass, "acquire", {"resource": "builder-1"}, context=as_alice)
    token = taken["tokens"][0]["token"]
    for action, data in (
        ("renew", {"token": token}),
        ("release", {"token": token}),
        ("release", {"token": [token], "power_off": "now"}),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, action, data, context=as_bob)
        assert err.value.translation_key == "not_token_owner"
    # all or none: a list with a token of another user releases nothing
    own = (await call(hass, "acquire", {"resource": "builder-2"}, context=as_bob))[
        "tokens"
    ][0]["token"]
    with pytest.raises(ServiceValidationError):
        await call(hass, "release", {"token": [own, token]}, context=as_bob)
    listed = await call(hass, "list", {}, context=Context(user_id=hass_admin_user.id))
    assert [r["holders"] for r in listed["resources"]] == [1, 1]

    await call(hass, "renew", {"token": token}, context=as_alice)
    # an administrator, and an automation (no user), may
    admin = Context(user_id=hass_admin_user.id)
    assert (await call(hass, "release", {"token": token}, context=admin))[
        "released"
    ] == 1
    assert (await call(hass, "release", {"token": own}))["released"] == 1


@pytest.mark.usefixtures("lab_owned")
async def test_maas_hold_is_the_maas_users(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    maas = await _client(hass, hass_client_no_auth, await _user(hass, "maas"))
    other = await _client(hass, hass_client_no_auth, await _user(hass, "mallory"))
    assert (await maas("POST", "/maas/builder-1/on")).status == 200
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"

    # another user's off does not drop MAAS's hold: 409 naming it, the machine stays on
    error = await error_of(await other("POST", "/maas/builder-1/off"), 409)
    assert error["holders"] == ["MAAS"]
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "on"
    # the other user's on takes a hold of its own, not MAAS's
    assert (await other("POST", "/maas/builder-1/on")).status == 200
    assert (await (await other("GET", "/resources/builder-1")).json())["holders"] == 2
    assert (await other("POST", "/maas/builder-1/off")).status == 409

    assert (await maas("POST", "/maas/builder-1/off")).status == 200
    await hass.async_block_till_done()
    assert state(hass, "input_boolean.builder_1_relay") == "off"


async def test_token_limit(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_access_token: str,
    hass_admin_user: User,
) -> None:
    await _lab(hass, token_limit=2)
    alice = await _user(hass, "alice")
    api = await _client(hass, hass_client_no_auth, alice)
    first = await (await api("POST", "/resources/builder-1/tokens")).json()
    assert (await api("POST", "/resources/builder-2/tokens")).status == 201
    error = await error_of(await api("POST", "/resources/builder-1/tokens"), 429)
    assert error["code"] == "token_limit"
    # the action says so too, translated
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            "acquire",
            {"resource": "builder-2"},
            context=Context(user_id=alice.id),
        )
    assert err.value.translation_key == "token_limit"
    assert err.value.translation_placeholders == {"limit": "2"}
    # another user has a limit of their own; administrators and automations have none
    bob = await _client(hass, hass_client_no_auth, await _user(hass, "bob"))
    assert (await bob("POST", "/resources/builder-1/tokens")).status == 201
    admin = await rest_api(hass_client_no_auth, hass_access_token)
    for _ in range(3):
        assert (await admin("POST", "/resources/builder-1/tokens")).status == 201
        await call(hass, "acquire", {"resource": "builder-1"})
    # a released token frees a place
    assert await _release(api, first["token"]) == 204
    assert (await api("POST", "/resources/builder-1/tokens")).status == 201


@pytest.mark.usefixtures("hass_admin_user")
async def test_token_limit_counts_a_whole_request(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """All or none: an acquire of more than the room left takes nothing."""
    await _lab(hass, token_limit=1)
    alice = await _user(hass, "alice")
    with pytest.raises(ServiceValidationError):
        await call(
            hass,
            "acquire",
            {"resource": ["builder-1", "builder-2"]},
            context=Context(user_id=alice.id),
        )
    api = await _client(hass, hass_client_no_auth, alice)
    listed = await (await api("GET", "/resources")).json()
    assert [r["holders"] for r in listed["resources"]] == [0, 0]


@pytest.mark.usefixtures("hass_admin_user")
async def test_no_token_limit(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    await _lab(hass, token_limit=0)
    api = await _client(hass, hass_client_no_auth, await _user(hass, "alice"))
    for _ in range(120):
        assert (await api("POST", "/resources/builder-1/tokens")).status == 201
