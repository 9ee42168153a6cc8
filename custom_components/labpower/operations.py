"""What the actions and the REST API both do: find resources and tokens, acquire and wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
import secrets
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from .const import (
    CONF_LAB_FILE,
    CONF_RESOURCE_NAME,
    CONF_TOKEN_LIMIT,
    DOMAIN,
    FILE_KEY_PREFIX,
)
from .core.model import (
    CycleRefusedError,
    ExclusiveConflictError,
    HeldByOthersError,
    LabError,
    LabsLoadingError,
    NotEnoughFreeError,
    NotPoweredError,
    NotTokenOwnerError,
    QueuedAheadError,
    QueuedRequest,
    ResourceFaultError,
    ResourceState,
    StoreWriteError,
    TicketInUseError,
    TokenKind,
    TokenLimitError,
    UnknownResourceError,
    UnknownTokenError,
    UsageToken,
)
from .labfile import LabFileError, async_load
from .runtime import POWERED_STATES, LabRuntime, iso_time
from .storage import async_committed

type Taken = list[tuple[LabRuntime, UsageToken]]


# How long an action or a REST request waits for labs that are still loading (Home
# Assistant starting, a lab reloading) before it answers "try again" instead.
LOAD_WAIT = 30.0
_LOAD_POLL = 0.1
# States of an enabled lab entry on its way to loaded (a lab file retried, a reload).
_LOADING_STATES = frozenset(
    {
        ConfigEntryState.SETUP_IN_PROGRESS,
        ConfigEntryState.SETUP_RETRY,
        ConfigEntryState.UNLOAD_IN_PROGRESS,
    }
)


def runtimes(hass: HomeAssistant) -> list[LabRuntime]:
    """Every loaded lab."""
    return [
        entry.runtime_data for entry in hass.config_entries.async_loaded_entries(DOMAIN)
    ]


def labs_loading(hass: HomeAssistant) -> list[str]:
    """The names of enabled labs that have not loaded yet but are about to.

    A lab not loaded at all is about to while Home Assistant starts, or while it is
    reloaded (its setup lock is held from the unload to the setup).
    """
    return [
        entry.title
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.disabled_by is None
        and (
            entry.state in _LOADING_STATES
            or (
                entry.state is ConfigEntryState.NOT_LOADED
                and (hass.state is not CoreState.running or entry.setup_lock.locked())
            )
        )
    ]


async def async_labs_loaded(hass: HomeAssistant) -> None:
    """Wait until no lab is loading; LabsLoadingError if some still are after LOAD_WAIT."""
    deadline = asyncio.get_running_loop().time() + LOAD_WAIT
    while loading := labs_loading(hass):
        if asyncio.get_running_loop().time() >= deadline:
            raise LabsLoadingError(loading)
        await asyncio.sleep(_LOAD_POLL)


async def async_found[T](hass: HomeAssistant, find: Callable[[], T]) -> T:
    """`find()`; if it finds nothing while labs are loading, again once they have loaded.

    Right after a restart a resource or a token may belong to a lab that has not loaded
    yet: "unknown" would be wrong, so the caller waits (bounded) instead.
    """
    try:
        return find()
    except UnknownResourceError, UnknownTokenError, NotEnoughFreeError:
        if not labs_loading(hass):
            raise
    await async_labs_loaded(hass)
    return find()


async def async_all_runtimes(hass: HomeAssistant) -> list[LabRuntime]:
    """Every lab, once none is loading (a list never leaves out a lab still starting)."""
    await async_labs_loaded(hass)
    return runtimes(hass)


def locate(hass: HomeAssistant, names: Iterable[str]) -> dict[str, LabRuntime]:
    """The lab of each resource named (names are unique across labs)."""
    labs = runtimes(hass)
    located: dict[str, LabRuntime] = {}
    for name in names:
        for runtime in labs:
            if name in runtime.subentry_of:
                located[name] = runtime
                break
        else:
            raise UnknownResourceError(name)
    return located


def lab_of_token(hass: HomeAssistant, token_id: str) -> LabRuntime:
    """The lab that issued a token (live or released)."""
    for runtime in runtimes(hass):
        try:
            runtime.lab.ledger.check_known(token_id)
        except UnknownTokenError:
            continue
        return runtime
    raise UnknownTokenError(token_id)


def pool(
    hass: HomeAssistant,
    labels: Iterable[str],
    count: int,
    within: Iterable[LabRuntime] | None = None,
) -> dict[str, LabRuntime]:
    """`count` free resources carrying every label, chosen to switch on the least.

    From every lab, or from those `within` (a booking's own lab).
    """
    wanted = frozenset(labels)
    candidates = [
        (*candidate, runtime)
        for runtime in (runtimes(hass) if within is None else within)
        for candidate in runtime.lab.pool_candidates(wanted)
    ]
    if len(candidates) < count:
        raise NotEnoughFreeError(sorted(wanted), count, len(candidates))
    candidates.sort(key=lambda candidate: candidate[:3])
    return {name: runtime for _, _, name, runtime in candidates[:count]}


async def async_reload_lab_files(
    hass: HomeAssistant, labs: list[str] | None
) -> dict[str, Any]:
    """Check each lab's file, refuse one that drops held resources, then reload the labs.

    Tokens survive: a reload writes the ledger and reads it back.
    """
    chosen = [
        runtime
        for runtime in runtimes(hass)
        if runtime.settings.get(CONF_LAB_FILE)
        and (not labs or runtime.entry.title in labs)
    ]
    if not chosen:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="no_lab_file"
        )
    for runtime in chosen:
        path = hass.config.path(runtime.settings[CONF_LAB_FILE])
        try:
            lab_file = await async_load(hass, runtime.entry, path, claim=False)
        except (LabFileError, OSError) as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="lab_file_invalid",
                translation_placeholders={
                    "lab": runtime.entry.title,
                    "detail": str(err),
                },
            ) from err
        defined = {data[CONF_RESOURCE_NAME] for data in lab_file.resources}
        held = sorted(
            name
            for name, key in runtime.subentry_of.items()
            if key.startswith(FILE_KEY_PREFIX)
            and name not in defined
            and runtime.lab.ledger.holder_count(name)
        )
        if held:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="lab_file_removes_held",
                translation_placeholders={
                    "lab": runtime.entry.title,
                    "resources": ", ".join(held),
                },
            )
    reloaded = []
    for runtime in chosen:
        await hass.config_entries.async_reload(runtime.entry.entry_id)
        reloaded.append(runtime.entry.title)
    return {"reloaded": reloaded}


async def async_acquire(
    located: dict[str, LabRuntime],
    holder: str,
    *,
    kind: TokenKind,
    ttl: float | None,
    user_id: str | None,
    admin: bool,
    wait_timeout: float | None,
    exclusive: bool = False,
    ticket: str | None = None,
) -> Taken:
    """Take a token on every resource, all or none; with a timeout, wait until available.

    Exclusive tokens only on resources nobody holds, and nobody jumps the queue
    (see Lab.acquire; `ticket`: the queued request this grants). A wait that fails
    (timeout, fault) releases everything this call took.
    """
    by_lab: dict[int, tuple[LabRuntime, list[str]]] = {}
    for name, runtime in located.items():
        by_lab.setdefault(id(runtime), (runtime, []))[1].append(name)
    # All or nothing, across labs too: check everything before taking anything.
    for runtime, names in by_lab.values():
        runtime.lab.check_accepting()
        if not admin:
            check_token_limit(runtime, user_id, len(names))
    for runtime, names in by_lab.values():
        lab = runtime.lab
        lab.check_acquire(names, kind=kind, ttl=ttl, exclusive=exclusive, ticket=ticket)
        for name in names:
            # A token on a broken machine helps nobody: say so now, not after a wait.
            for broken in (name, *lab.ancestors(name)):
                reconciler = lab.reconciler(broken)
                if reconciler.state is ResourceState.FAULT:
                    raise ResourceFaultError(broken, reconciler.reason or "fault")
    taken: Taken = []
    for runtime, names in by_lab.values():
        tokens = runtime.lab.acquire(
            names,
            holder,
            kind=kind,
            ttl=ttl,
            user_id=user_id,
            exclusive=exclusive,
            ticket=ticket,
        )
        taken.extend((runtime, token) for token in tokens)
    waits: list[asyncio.Future[None]] = []
    try:
        # Answered once on disk (and while waiting, the tokens are).
        await async_committed(runtime.storage for runtime, _ in by_lab.values())
        if wait_timeout is None:
            return taken
        waits.extend(
            asyncio.ensure_future(
                runtime.lab.wait_available(
                    [token for owner, token in taken if owner is runtime], wait_timeout
                )
            )
            for runtime, _ in by_lab.values()
        )
        await asyncio.gather(*waits)
    except LabError, asyncio.CancelledError:
        # Also when the caller went away (a closed connection cancels the request):
        # nobody will use these tokens, so they must not keep the machines on.
        for wait in waits:
            wait.cancel()
        for runtime, token in taken:
            runtime.lab.release([token.id])
        raise
    return taken


async def async_take(
    hass: HomeAssistant,
    request: QueuedRequest,
    *,
    timeout: float,  # noqa: ASYNC109
    queue: bool,
) -> Taken:
    """Acquire what `request` asks for (the acquire action and REST share it).

    Named resources or a pool (labels and count). Without `queue`, now or refused;
    with `request.wait`, then until available within `timeout`. With `queue`, a
    request that cannot be granted now (an exclusive token in the way, too few free,
    others queued first) waits its turn in the queue (see core/queue.py) within
    `timeout`, all waits included; asked again with the id of a request still queued
    (after a restart, a dropped connection), it waits on in its place.
    """
    common: dict[str, Any] = {
        "kind": request.kind,
        "ttl": request.ttl,
        "user_id": request.user_id,
        "admin": request.admin,
        "exclusive": request.exclusive,
    }
    if queue and (found := _queued(hass, request.id)) is not None:
        runtime, queued = found
        if not request.admin and queued.user_id != request.user_id:
            raise NotTokenOwnerError
        if (queued.resources, queued.labels, queued.count) != (
            request.resources,
            request.labels,
            request.count,
        ):
            raise TicketInUseError
        return await _async_wait_turn(hass, runtime, queued)
    try:
        if request.resources:
            names = list(request.resources)
            located = await async_found(hass, partial(locate, hass, names))
        else:
            labels, count = request.labels, request.count
            located = await async_found(hass, partial(pool, hass, labels, count))
        return await async_acquire(
            located,
            request.holder,
            wait_timeout=timeout if request.wait else None,
            **common,
        )
    except (ExclusiveConflictError, QueuedAheadError, NotEnoughFreeError) as err:
        if not queue:
            raise
        runtime = _queue_lab(hass, request, err)
    now = runtime.lab.clock()
    request.created, request.deadline = now, now + timeout
    if request.resources:
        for name in request.resources:
            if request.kind is TokenKind.LEASE:
                runtime.lab.ledger.validate_ttl(name, request.ttl)
    if not request.admin:
        check_token_limit(runtime, request.user_id, request.count)
    runtime.lab.enqueue(request)
    # Not on disk, not queued: a failed write withdraws it like any failure.
    return await _async_wait_turn(
        hass, runtime, request, runtime.storage.async_committed()
    )


def new_request(
    holder: str,
    *,
    resources: Iterable[str] = (),
    labels: Iterable[str] = (),
    count: int = 1,
    ticket: str | None = None,
    **fields: Any,
) -> QueuedRequest:
    """A request as async_take reads it (its times are set if it is queued)."""
    resources = tuple(resources)
    return QueuedRequest(
        id=ticket or secrets.token_urlsafe(16),
        holder=holder,
        created=0.0,
        deadline=0.0,
        resources=resources,
        labels=tuple(labels),
        count=len(resources) or count,
        **fields,
    )


def _queued(
    hass: HomeAssistant, request_id: str
) -> tuple[LabRuntime, QueuedRequest] | None:
    """The lab queueing a request, and the request, if it is still queued."""
    for runtime in runtimes(hass):
        if (request := runtime.lab.ledger.queued_request(request_id)) is not None:
            return runtime, request
    return None


def _queue_lab(
    hass: HomeAssistant, request: QueuedRequest, refusal: LabError
) -> LabRuntime:
    """The lab whose queue a request waits in (`refusal` when none could serve it).

    Named resources must be of one lab; a pool is served from one lab, the one with
    the most resources carrying its labels, refused at once when even that one has
    too few (the request could never be granted).
    """
    if request.resources:
        located = locate(hass, request.resources)
        labs = {id(runtime): runtime for runtime in located.values()}
        if len(labs) > 1:
            raise refusal
        return next(iter(labs.values()))
    wanted = frozenset(request.labels)
    sizes = [
        (sum(wanted <= runtime.lab.spec(n).labels for n in runtime.lab.names), runtime)
        for runtime in runtimes(hass)
    ]
    size, runtime = max(sizes, key=lambda item: item[0], default=(0, None))
    if runtime is None or size < request.count:
        raise NotEnoughFreeError(sorted(wanted), request.count, size)
    return runtime


async def _async_wait_turn(
    hass: HomeAssistant,
    runtime: LabRuntime,
    request: QueuedRequest,
    committed: Awaitable[None] | None = None,
) -> Taken:
    """Wait for the request's turn (once `committed`), then grant it as any acquire.

    A caller that goes away (a closed connection cancels the request) gives its
    place up, unless Home Assistant is stopping: then it keeps it for the restart.
    """
    lab = runtime.lab
    try:
        names = await lab.queue.wait_turn(request.id, committed)
    except asyncio.CancelledError:
        if not hass.is_stopping and lab.running:
            lab.queue.withdraw(request.id)
        raise
    except StoreWriteError:
        lab.queue.withdraw(request.id)
        raise
    remaining = max(request.deadline - lab.clock(), 1.0)
    try:
        return await async_acquire(
            dict.fromkeys(names, runtime),
            request.holder,
            kind=request.kind,
            ttl=request.ttl,
            user_id=request.user_id,
            admin=request.admin,
            wait_timeout=remaining if request.wait else None,
            exclusive=request.exclusive,
            ticket=request.id,
        )
    except LabError, asyncio.CancelledError:
        lab.queue.withdraw(request.id)  # refused before the grant: it ends here
        raise


def queue_view(
    runtime: LabRuntime,
    request: QueuedRequest,
    *,
    shown_to: str | None,
    admin: bool,
) -> dict[str, Any]:
    """A queued request as everyone may see it; its id only for its owner or an admin."""
    mine = shown_to is not None and request.user_id == shown_to
    return {
        "ticket": request.id if admin or mine else None,
        "holder": request.holder,
        "position": runtime.lab.queue.position(request.id),
        "resources": list(request.resources),
        "labels": list(request.labels),
        "count": request.count,
        "exclusive": request.exclusive,
        "kind": request.kind.value,
        "since": iso_time(request.created),
        "deadline": iso_time(request.deadline),
        "waiting": runtime.lab.queue.is_attached(request.id),
        "mine": mine,
    }


def queue_list(runtime: LabRuntime, name: str) -> list[dict[str, Any]]:
    """Who waits for a resource in the queue, as everyone may see it (no tickets)."""
    return [
        queue_view(runtime, request, shown_to=None, admin=False)
        for request in runtime.lab.queue.waiting_for(name)
    ]


def check_token_limit(runtime: LabRuntime, user_id: str | None, wanted: int) -> None:
    """Refuse `wanted` more tokens to a user at the lab's limit of live tokens per user.

    The limit (the `token_limit` lab option, 0: none) binds users, not administrators
    or calls without a user (automations, the system); the caller decides who is which.
    """
    limit = int(runtime.settings.get(CONF_TOKEN_LIMIT) or 0)
    if not limit or user_id is None:
        return
    if runtime.lab.ledger.user_token_count(user_id) + wanted > limit:
        raise TokenLimitError(limit)


def token_lab(
    hass: HomeAssistant, token_id: str, user_id: str | None, *, admin: bool
) -> LabRuntime:
    """The lab that issued a token, if the caller may renew or release it.

    A live token is the business of the user who took it and of administrators only;
    one already released is nobody's (releasing twice is fine).
    """
    runtime = lab_of_token(hass, token_id)
    ledger = runtime.lab.ledger
    if (
        not admin
        and ledger.is_live(token_id)
        and ledger.get(token_id).user_id != user_id
    ):
        raise NotTokenOwnerError
    return runtime


async def async_token_lab(
    hass: HomeAssistant, token_id: str, user_id: str | None, *, admin: bool
) -> LabRuntime:
    """`token_lab` once labs still loading have loaded."""
    return await async_found(
        hass, partial(token_lab, hass, token_id, user_id, admin=admin)
    )


async def async_renew(
    hass: HomeAssistant,
    token_id: str,
    ttl: float | None,
    user_id: str | None,
    *,
    admin: bool,
) -> tuple[LabRuntime, UsageToken]:
    """Extend a lease of the caller's (or, for an administrator, anyone's); on disk."""
    runtime = await async_token_lab(hass, token_id, user_id, admin=admin)
    token = runtime.lab.renew(token_id, ttl)
    await runtime.storage.async_committed()
    return runtime, token


async def async_release_tokens(
    hass: HomeAssistant,
    token_ids: Iterable[str],
    *,
    power_off: bool,
    who: str,
    user_id: str | None,
    admin: bool,
) -> int:
    """Release tokens (twice is fine); with power_off, as a power client's off.

    All or none: a token of another user (for one who is not an administrator) refuses
    the whole call before anything is released. A power-off leaves each resource off
    at once where nobody else holds it (see Lab.power_off) and raises
    HeldByOthersError, after releasing, where somebody does.
    """
    owners = [
        (token_id, await async_token_lab(hass, token_id, user_id, admin=admin))
        for token_id in token_ids
    ]
    released = 0
    held: HeldByOthersError | None = None
    try:
        for token_id, runtime in owners:
            lab = runtime.lab
            if power_off and lab.ledger.is_live(token_id):
                resource = lab.ledger.get(token_id).resource
                try:
                    off = lab.power_off(resource, [token_id], f"turned off by {who}")
                except HeldByOthersError as err:
                    # Released all the same; the other tokens are released too.
                    held = held or err
                    continue
                released += len(off)
            else:
                released += len(lab.release([token_id]))
        if held is not None:
            raise held
    finally:
        await async_committed(runtime.storage for _, runtime in owners)
    return released


async def async_force_off(located: dict[str, LabRuntime], who: str) -> int:
    """Revoke every token of these resources and power them off (administrators).

    Answered once on disk, also when a later resource fails; returns how many tokens
    were revoked.
    """
    revoked = 0
    try:
        for name, runtime in located.items():
            revoked += len(runtime.lab.force_off(name, f"forced off by {who}"))
    finally:
        await async_committed(runtime.storage for runtime in located.values())
    return revoked


def check_cycle(
    runtime: LabRuntime, name: str, user_id: str | None, *, admin: bool
) -> None:
    """Refuse to cycle (or reset) a resource that is off, or that others use.

    Cycling a parent (a stack's relay, the network switch) cuts its children too, so
    their holders count; an administrator may cycle all the same.
    """
    lab = runtime.lab
    if lab.state(name) not in POWERED_STATES:
        raise NotPoweredError(name)
    others = [
        token.holder
        for resource in (name, *lab.descendants(name))
        for token in lab.ledger.tokens(resource)
        if token.user_id != user_id
    ]
    if others and not admin:
        raise CycleRefusedError(name, list(dict.fromkeys(others)))


def token_view(runtime: LabRuntime, token: UsageToken) -> dict[str, Any]:
    """A token as the actions and the REST API return it."""
    return {
        "token": token.id,
        "resource": token.resource,
        "kind": token.kind.value,
        "holder": token.holder,
        "expires": iso_time(token.expires),
        "exclusive": token.exclusive,
        "state": runtime.lab.state(token.resource).value,
    }


def resource_view(
    runtime: LabRuntime, name: str, *, tokens: bool, shown_to: str | None, admin: bool
) -> dict[str, Any]:
    """A resource with its state; with its tokens (ids only for their owner or an admin)."""
    lab = runtime.lab
    reconciler = lab.reconciler(name)
    live = lab.ledger.tokens(name)
    view: dict[str, Any] = {
        "name": name,
        "state": reconciler.state.value,
        "reason": reconciler.reason,
        "holders": len(live),
        "labels": sorted(lab.spec(name).labels),
    }
    waiting = lab.queue.waiting_for(name)
    view["queued"] = len(waiting)
    if tokens:
        view["queue"] = [
            queue_view(runtime, request, shown_to=shown_to, admin=admin)
            for request in waiting
        ]
        view["tokens"] = [
            {
                "token": token.id if admin or mine else None,
                **holder_entry(token),
                "mine": mine,
            }
            for token in live
            for mine in (shown_to is not None and token.user_id == shown_to,)
        ]
    return view


def holder_entry(token: UsageToken) -> dict[str, Any]:
    """Who holds with a token, as everyone may see it: holder, kind, since, expires."""
    return {
        "holder": token.holder,
        "kind": token.kind.value,
        "since": iso_time(token.created),
        "expires": iso_time(token.expires),
        "exclusive": token.exclusive,
    }
