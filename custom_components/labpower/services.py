"""The labpower actions: acquire, release, renew, list, book and force_off."""

from __future__ import annotations

from functools import partial
from typing import Any

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.helpers.target import (
    TargetSelection,
    async_extract_referenced_entity_ids,
)

from .bookings import async_book, booking_request
from .const import DOMAIN
from .core.model import (
    TokenKind,
)
from .helpers import labpower_errors
from .operations import (
    async_all_runtimes,
    async_force_off,
    async_found,
    async_release_tokens,
    async_reload_lab_files,
    async_renew,
    async_take,
    locate,
    new_request,
    resource_view,
    runtimes,
    token_view,
)
from .schema import (
    ACQUIRE_ACTION_SCHEMA,
    ATTR_COUNT,
    ATTR_EXCLUSIVE,
    ATTR_HOLDER,
    ATTR_KIND,
    ATTR_LAB,
    ATTR_LABELS,
    ATTR_POWER_OFF,
    ATTR_RESOURCE,
    ATTR_TICKET,
    ATTR_TIMEOUT,
    ATTR_TOKEN,
    ATTR_TTL,
    ATTR_WAIT,
    BOOK_ACTION_SCHEMA,
    FORCE_OFF_ACTION_SCHEMA,
    NAMES_ACTION_SCHEMA,
    RELEASE_ACTION_SCHEMA,
    RELOAD_ACTION_SCHEMA,
    RENEW_ACTION_SCHEMA,
    WAIT_NONE,
    WAIT_QUEUE,
)
from .users import async_caller_name, async_is_admin


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, for every lab)."""
    hass.services.async_register(
        DOMAIN, "acquire", _acquire, ACQUIRE_ACTION_SCHEMA, SupportsResponse.OPTIONAL
    )
    hass.services.async_register(
        DOMAIN, "release", _release, RELEASE_ACTION_SCHEMA, SupportsResponse.OPTIONAL
    )
    hass.services.async_register(
        DOMAIN, "renew", _renew, RENEW_ACTION_SCHEMA, SupportsResponse.OPTIONAL
    )
    hass.services.async_register(
        DOMAIN, "list", _list, NAMES_ACTION_SCHEMA, SupportsResponse.ONLY
    )
    hass.services.async_register(
        DOMAIN, "book", _book, BOOK_ACTION_SCHEMA, SupportsResponse.OPTIONAL
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        "reload_lab_file",
        _reload_lab_file,
        RELOAD_ACTION_SCHEMA,
        SupportsResponse.OPTIONAL,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        "force_off",
        _force_off,
        FORCE_OFF_ACTION_SCHEMA,
        SupportsResponse.OPTIONAL,
    )


def _targeted(hass: HomeAssistant, call: ServiceCall) -> list[str]:
    """Resource names from the `resource` field and from an entity/device target."""
    names = list(call.data.get(ATTR_RESOURCE, []))
    if any(key in call.data for key in cv.TARGET_SERVICE_FIELDS):
        selected = async_extract_referenced_entity_ids(hass, TargetSelection(call.data))
        registry = er.async_get(hass)
        devices = dr.async_get(hass)
        keys = {rt.subentry_of[n]: n for rt in runtimes(hass) for n in rt.subentry_of}
        for entity_id in selected.referenced | selected.indirectly_referenced:
            entry = registry.async_get(entity_id)
            device = (
                devices.async_get(entry.device_id)
                if entry and entry.device_id
                else None
            )
            for domain, key in device.identifiers if device else ():
                if domain == DOMAIN and key in keys:
                    names.append(keys[key])
    if not names:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="no_resource"
        )
    return list(dict.fromkeys(names))


@labpower_errors
async def _acquire(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    where: dict[str, Any]
    if labels := call.data.get(ATTR_LABELS):
        if call.data.get(ATTR_RESOURCE) or any(
            key in call.data for key in cv.TARGET_SERVICE_FIELDS
        ):
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="labels_and_resources"
            )
        where = {"labels": labels, "count": call.data[ATTR_COUNT]}
    else:
        where = {"resources": _targeted(hass, call)}
    wait = call.data[ATTR_WAIT]
    request = new_request(
        call.data.get(ATTR_HOLDER) or await async_caller_name(hass, call.context),
        ticket=call.data.get(ATTR_TICKET),
        kind=TokenKind(call.data[ATTR_KIND]),
        ttl=call.data.get(ATTR_TTL),
        user_id=call.context.user_id,
        admin=await async_is_admin(hass, call.context),
        exclusive=call.data[ATTR_EXCLUSIVE],
        wait=wait != WAIT_NONE,
        **where,
    )
    taken = await async_take(
        hass, request, timeout=call.data[ATTR_TIMEOUT], queue=wait == WAIT_QUEUE
    )
    return {"tokens": [token_view(runtime, token) for runtime, token in taken]}


@labpower_errors
async def _book(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    request = booking_request(call.data, await async_caller_name(hass, call.context))
    bookings, booking = await async_book(
        hass,
        request,
        call.context.user_id,
        admin=await async_is_admin(hass, call.context),
    )
    return {"booking": bookings.view(booking)}


@labpower_errors
async def _release(call: ServiceCall) -> ServiceResponse:
    released = await async_release_tokens(
        call.hass,
        call.data[ATTR_TOKEN],
        power_off=ATTR_POWER_OFF in call.data,
        who=await async_caller_name(call.hass, call.context),
        user_id=call.context.user_id,
        admin=await async_is_admin(call.hass, call.context),
    )
    return {"released": released}


@labpower_errors
async def _renew(call: ServiceCall) -> ServiceResponse:
    runtime, token = await async_renew(
        call.hass,
        call.data[ATTR_TOKEN],
        call.data.get(ATTR_TTL),
        call.context.user_id,
        admin=await async_is_admin(call.hass, call.context),
    )
    return {"tokens": [token_view(runtime, token)]}


@labpower_errors
async def _list(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    admin = await async_is_admin(hass, call.context)
    wanted = call.data.get(ATTR_RESOURCE)
    located = (
        await async_found(hass, partial(locate, hass, wanted))
        if wanted
        else {
            name: rt for rt in await async_all_runtimes(hass) for name in rt.lab.names
        }
    )
    return {
        "resources": [
            resource_view(
                runtime, name, tokens=True, shown_to=call.context.user_id, admin=admin
            )
            for name, runtime in located.items()
        ]
    }


@labpower_errors
async def _force_off(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    located = await async_found(hass, partial(locate, hass, call.data[ATTR_RESOURCE]))
    who = await async_caller_name(hass, call.context)
    return {"revoked": await async_force_off(located, who)}


@labpower_errors
async def _reload_lab_file(call: ServiceCall) -> ServiceResponse:
    return await async_reload_lab_files(call.hass, call.data.get(ATTR_LAB))
