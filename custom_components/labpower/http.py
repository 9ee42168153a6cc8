"""The REST API under /api/labpower/ (see docs/openapi.yaml)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
import functools
from functools import partial
from http import HTTPStatus
import re
from typing import Any

from aiohttp import web
from homeassistant.auth.models import User
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util.json import json_loads
import probatio as vol

from .bookings import (
    all_bookings,
    async_book,
    async_delete_booking,
    booking_request,
)
from .core.bookings import (
    BookingTargetError,
    BookingTimesError,
    NotBookingOwnerError,
    UnknownBookingError,
)
from .core.model import (
    AcquireRefusedError,
    ExclusiveConflictError,
    HeldByOthersError,
    InvalidTtlError,
    LabError,
    LabsLoadingError,
    NotEnoughFreeError,
    NotTokenOwnerError,
    QueueInterruptedError,
    QueueTimeoutError,
    ResourceFaultError,
    StoreWriteError,
    TokenKind,
    TokenLimitError,
    UnknownResourceError,
    UnknownTokenError,
    WaitTimeoutError,
)
from .operations import (
    LOAD_WAIT,
    Taken,
    async_all_runtimes,
    async_force_off,
    async_found,
    async_release_tokens,
    async_renew,
    async_take,
    check_cycle,
    locate,
    new_request,
    queue_view,
    resource_view,
    token_view,
)
from .runtime import LabRuntime
from .schema import (
    ACQUIRE_REST_SCHEMA,
    ATTR_COUNT,
    ATTR_EXCLUSIVE,
    ATTR_HOLDER,
    ATTR_KIND,
    ATTR_LABELS,
    ATTR_POWER_OFF,
    ATTR_QUEUE,
    ATTR_TICKET,
    ATTR_TIMEOUT,
    ATTR_TOKEN,
    ATTR_TTL,
    ATTR_WAIT,
    BOOK_REST_SCHEMA,
    POOL_REST_SCHEMA,
    RELEASE_REST_SCHEMA,
    RENEW_REST_SCHEMA,
)

_STATUS_OF: dict[type[LabError], HTTPStatus] = {
    UnknownResourceError: HTTPStatus.NOT_FOUND,
    UnknownTokenError: HTTPStatus.NOT_FOUND,
    # Valid by the schema, beyond this resource's max_ttl: refused by its policy.
    InvalidTtlError: HTTPStatus.CONFLICT,
    ResourceFaultError: HTTPStatus.CONFLICT,
    NotEnoughFreeError: HTTPStatus.CONFLICT,
    WaitTimeoutError: HTTPStatus.GATEWAY_TIMEOUT,
    QueueTimeoutError: HTTPStatus.GATEWAY_TIMEOUT,
    QueueInterruptedError: HTTPStatus.SERVICE_UNAVAILABLE,
    AcquireRefusedError: HTTPStatus.SERVICE_UNAVAILABLE,
    LabsLoadingError: HTTPStatus.SERVICE_UNAVAILABLE,
    StoreWriteError: HTTPStatus.SERVICE_UNAVAILABLE,
    NotTokenOwnerError: HTTPStatus.FORBIDDEN,
    TokenLimitError: HTTPStatus.TOO_MANY_REQUESTS,
    UnknownBookingError: HTTPStatus.NOT_FOUND,
    NotBookingOwnerError: HTTPStatus.FORBIDDEN,
    # Valid by the schema, refused by a rule between its fields.
    BookingTimesError: HTTPStatus.CONFLICT,
    BookingTargetError: HTTPStatus.CONFLICT,
}
# Seconds a client is told to wait before asking again while labs are loading.
_RETRY_AFTER: dict[type[LabError], str] = {
    LabsLoadingError: str(round(LOAD_WAIT)),
    QueueInterruptedError: "5",
}
_FIELD_OF: dict[type[LabError], str] = {
    InvalidTtlError: "ttl",
    BookingTimesError: "end",
    BookingTargetError: "resource",
}

type Handler = Callable[..., Awaitable[web.Response]]


async def resource_lab(hass: HomeAssistant, name: str) -> LabRuntime:
    """The lab of a resource, once labs still loading have loaded."""
    return (await async_found(hass, partial(locate, hass, [name])))[name]


class BadRequestError(Exception):
    """The caller sent something we cannot use; `field` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        """Keep the message and the field."""
        super().__init__(message)
        self.field = field


def error_response(
    status: HTTPStatus,
    code: str,
    message: str,
    field: str | None = None,
    retry_after: str | None = None,
    **extra: Any,
) -> web.Response:
    """A JSON error body: never a stack trace."""
    return web.json_response(
        {"error": {"code": code, "message": message, "field": field, **extra}},
        status=status,
        headers={"Retry-After": retry_after} if retry_after else None,
    )


def json_errors(handler: Handler) -> Handler:
    """Turn lab errors and bad input into JSON errors with meaningful status codes."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> web.Response:
        try:
            return await handler(*args, **kwargs)
        except BadRequestError as err:
            return error_response(
                HTTPStatus.BAD_REQUEST, "bad_request", str(err), err.field
            )
        except HeldByOthersError as err:
            return error_response(
                HTTPStatus.CONFLICT, err.key, str(err), holders=err.holders
            )
        except ExclusiveConflictError as err:
            return error_response(
                HTTPStatus.CONFLICT,
                err.key,
                str(err),
                holders=err.holders,
                seconds_left=err.seconds_left,
            )
        except LabError as err:
            status = _STATUS_OF.get(type(err), HTTPStatus.CONFLICT)
            return error_response(
                status,
                err.key,
                str(err),
                _FIELD_OF.get(type(err)),
                _RETRY_AFTER.get(type(err)),
            )

    return wrapper


async def _body(request: web.Request, *, required: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BadRequestError("A JSON object body is required")
        return {}
    # orjson, strict where json.loads is not: it refuses a lone surrogate ("\\ud800", which
    # no response or store could encode again), nesting deeper than 1024 (json.loads: a
    # RecursionError), NaN, Infinity and anything but UTF-8.
    try:
        body = json_loads(raw)
    except ValueError as err:
        raise BadRequestError(f"Body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise BadRequestError("Body must be a JSON object")
    return body


def _validated(schema: vol.Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """The data as the shared schema (schema.py) reads it; its refusal is a 400."""
    try:
        return dict(schema(dict(data)))
    except vol.Invalid as err:
        first = err.errors[0] if isinstance(err, vol.MultipleInvalid) else err
        field = str(first.path[0]) if first.path else None
        message = first.msg if field is None else f"{field}: {first.msg}"
        raise BadRequestError(message, field) from None


async def _async_take(
    request: web.Request, body: Mapping[str, Any], **where: Any
) -> Taken:
    """Acquire (or queue) as the body says, for the calling user."""
    user: User = request[KEY_HASS_USER]
    wanted = new_request(
        body.get(ATTR_HOLDER) or user.name or "REST API",
        ticket=body.get(ATTR_TICKET),
        kind=TokenKind(body[ATTR_KIND]),
        ttl=body.get(ATTR_TTL),
        user_id=user.id,
        admin=user.is_admin,
        exclusive=body[ATTR_EXCLUSIVE],
        wait=body[ATTR_WAIT],
        **where,
    )
    return await async_take(
        request.app[KEY_HASS],
        wanted,
        timeout=body[ATTR_TIMEOUT],
        queue=body[ATTR_QUEUE],
    )


class ResourcesView(HomeAssistantView):
    """GET every resource."""

    url = "/api/labpower/resources"
    name = "api:labpower:resources"

    @json_errors
    async def get(self, request: web.Request) -> web.Response:
        """The resources with state and holder count."""
        hass: HomeAssistant = request.app[KEY_HASS]
        resources = [
            resource_view(runtime, name, tokens=False, shown_to=None, admin=False)
            for runtime in await async_all_runtimes(hass)
            for name in runtime.lab.names
        ]
        return self.json({"resources": resources})


class ResourceView(HomeAssistantView):
    """GET one resource."""

    url = "/api/labpower/resources/{name}"
    name = "api:labpower:resource"

    @json_errors
    async def get(self, request: web.Request, name: str) -> web.Response:
        """The resource with its tokens."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        runtime = await resource_lab(hass, name)
        return self.json(
            resource_view(
                runtime, name, tokens=True, shown_to=user.id, admin=user.is_admin
            )
        )


class TokensView(HomeAssistantView):
    """POST a token on one resource."""

    url = "/api/labpower/resources/{name}/tokens"
    name = "api:labpower:resource:tokens"

    @json_errors
    async def post(self, request: web.Request, name: str) -> web.Response:
        """Acquire, optionally waiting until available."""
        body = _validated(ACQUIRE_REST_SCHEMA, await _body(request))
        [(runtime, token)] = await _async_take(request, body, resources=[name])
        return self.json(token_view(runtime, token), HTTPStatus.CREATED)


class PoolView(HomeAssistantView):
    """POST tokens on free resources chosen by label."""

    url = "/api/labpower/tokens"
    name = "api:labpower:tokens"

    @json_errors
    async def post(self, request: web.Request) -> web.Response:
        """Acquire `count` free resources carrying every label."""
        body = _validated(POOL_REST_SCHEMA, await _body(request, required=True))
        taken = await _async_take(
            request, body, labels=body[ATTR_LABELS], count=body[ATTR_COUNT]
        )
        return self.json(
            {"tokens": [token_view(runtime, token) for runtime, token in taken]},
            HTTPStatus.CREATED,
        )


class QueueView(HomeAssistantView):
    """GET the queued requests of every lab."""

    url = "/api/labpower/queue"
    name = "api:labpower:queue"

    @json_errors
    async def get(self, request: web.Request) -> web.Response:
        """Every queued request with its position (ids only for their owner or admins)."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        return self.json(
            {
                "queue": [
                    queue_view(runtime, queued, shown_to=user.id, admin=user.is_admin)
                    for runtime in await async_all_runtimes(hass)
                    for queued in runtime.lab.queue.requests()
                ]
            }
        )


class ReleaseView(HomeAssistantView):
    """POST release a token named in the body."""

    url = "/api/labpower/tokens/release"
    name = "api:labpower:tokens:release"

    @json_errors
    async def post(self, request: web.Request) -> web.Response:
        """Release; twice is fine, unknown is 404; power_off "now": off at once."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        body = _validated(RELEASE_REST_SCHEMA, await _body(request, required=True))
        await async_release_tokens(
            hass,
            [body[ATTR_TOKEN]],
            power_off=ATTR_POWER_OFF in body,
            who=user.name or "REST API",
            user_id=user.id,
            admin=user.is_admin,
        )
        return web.Response(status=HTTPStatus.NO_CONTENT)


class RenewView(HomeAssistantView):
    """POST renew a token named in the body."""

    url = "/api/labpower/tokens/renew"
    name = "api:labpower:tokens:renew"

    @json_errors
    async def post(self, request: web.Request) -> web.Response:
        """Extend a lease."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        body = _validated(RENEW_REST_SCHEMA, await _body(request, required=True))
        runtime, renewed = await async_renew(
            hass, body[ATTR_TOKEN], body.get(ATTR_TTL), user.id, admin=user.is_admin
        )
        return self.json(token_view(runtime, renewed))


class ForceOffView(HomeAssistantView):
    """POST force off (administrators)."""

    url = "/api/labpower/resources/{name}/force_off"
    name = "api:labpower:resource:force_off"

    @json_errors
    async def post(self, request: web.Request, name: str) -> web.Response:
        """Revoke every token and power off."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        if not user.is_admin:
            return error_response(
                HTTPStatus.FORBIDDEN,
                "admin_required",
                "Only administrators may force off",
            )
        located = {name: await resource_lab(hass, name)}
        revoked = await async_force_off(located, user.name or "REST API")
        return self.json({"revoked": revoked})


class PowerCycleView(HomeAssistantView):
    """POST power cycle a resource: verified off, a delay, verified on."""

    url = "/api/labpower/resources/{name}/power_cycle"
    name = "api:labpower:resource:power_cycle"

    @json_errors
    async def post(self, request: web.Request, name: str) -> web.Response:
        """Refused while off or used by others (administrators may); done when on."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        runtime = await resource_lab(hass, name)
        check_cycle(runtime, name, user.id, admin=user.is_admin)
        await runtime.lab.power_cycle(name, f"cycled by {user.name or 'REST API'}")
        return self.json(
            resource_view(
                runtime, name, tokens=True, shown_to=user.id, admin=user.is_admin
            )
        )


class BookingsView(HomeAssistantView):
    """GET every booking, POST a booking."""

    url = "/api/labpower/bookings"
    name = "api:labpower:bookings"

    @json_errors
    async def get(self, request: web.Request) -> web.Response:
        """Every lab's bookings, the earliest first."""
        hass: HomeAssistant = request.app[KEY_HASS]
        await async_all_runtimes(hass)
        return self.json(
            {
                "bookings": [
                    bookings.view(booking) for bookings, booking in all_bookings(hass)
                ]
            }
        )

    @json_errors
    async def post(self, request: web.Request) -> web.Response:
        """Book resources (or labels and a count) from start to end."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        body = _validated(BOOK_REST_SCHEMA, await _body(request, required=True))
        wanted = booking_request(body, user.name or "REST API")
        bookings, booking = await async_book(hass, wanted, user.id, admin=user.is_admin)
        return self.json(bookings.view(booking), HTTPStatus.CREATED)


class BookingView(HomeAssistantView):
    """DELETE a booking."""

    url = "/api/labpower/bookings/{booking_id}"
    name = "api:labpower:booking"

    @json_errors
    async def delete(self, request: web.Request, booking_id: str) -> web.Response:
        """Delete (its maker or an administrator): its holds are released."""
        hass: HomeAssistant = request.app[KEY_HASS]
        user: User = request[KEY_HASS_USER]
        await async_delete_booking(hass, booking_id, user.id, admin=user.is_admin)
        return web.Response(status=HTTPStatus.NO_CONTENT)


_METHODS = ("get", "post", "put", "patch", "delete")


class FallbackView(HomeAssistantView):
    """Any other URL or method under /api/labpower/: a JSON 404 or 405, as documented."""

    url = "/api/labpower/{path:.*}"
    name = "api:labpower:fallback"

    def __init__(self, views: Iterable[type[HomeAssistantView]]) -> None:
        """Answer for the paths of these views (their methods go into Allow)."""
        self._views = tuple(views)

    async def _answer(self, request: web.Request, path: str) -> web.Response:
        allowed = sorted(
            {
                method.upper()
                for view in self._views
                if _pattern(view.url).fullmatch(request.path)
                for method in _METHODS
                if hasattr(view, method)
            }
        )
        if not allowed and any(
            request.method == method and pattern.fullmatch(request.path)
            for method, pattern in _GONE
        ):
            # The token-in-the-URL routes of old: a JSON hint, not a 404 an old client
            # could read as "already released" while its token keeps the machine on.
            return error_response(
                HTTPStatus.GONE,
                "gone",
                "Token ids no longer go in URLs: POST /api/labpower/tokens/release "
                'or /api/labpower/tokens/renew with {"token": ...} in the body',
            )
        if allowed:
            response = error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(
            HTTPStatus.NOT_FOUND, "not_found", "No such labpower API path"
        )

    get = post = put = patch = delete = _answer


# The routes that carried a token id in the URL (before the id moved into the body).
_GONE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("DELETE", re.compile(r"/api/labpower/tokens/[^/]+")),
    ("POST", re.compile(r"/api/labpower/tokens/[^/]+/renew")),
)


@functools.cache
def _pattern(url: str) -> re.Pattern[str]:
    """A view's URL as a pattern of paths ({name} is one path segment)."""
    return re.compile(re.sub(r"\{[^}]+\}", "[^/]+", url))


VIEWS: tuple[type[HomeAssistantView], ...] = (
    ResourcesView,
    ResourceView,
    TokensView,
    PoolView,
    QueueView,
    ReleaseView,
    RenewView,
    ForceOffView,
    PowerCycleView,
    BookingsView,
    BookingView,
)


def async_register_views(hass: HomeAssistant, *others: type[HomeAssistantView]) -> None:
    """Serve the REST API and the other views under /api/labpower/ (MAAS's webhook).

    The fallback is registered last: it answers only what no view before it does.
    """
    views: tuple[type[HomeAssistantView], ...] = (*VIEWS, *others)
    for view in views:
        hass.http.register_view(view())
    hass.http.register_view(FallbackView(views))
