"""The domain vocabulary: power and resource states, tokens, policies and errors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .text import amount, duration


class PowerState(StrEnum):
    """What a feed (or all feeds of a resource together) reports."""

    ON = "on"
    OFF = "off"
    MIXED = "mixed"  # several feeds, not all in the same state
    UNKNOWN = "unknown"  # never read as off


class ResourceState(StrEnum):
    """The state of a resource as users see it."""

    OFF = "off"
    STARTING = "starting"
    AVAILABLE = "available"
    STOPPING = "stopping"
    FAULT = "fault"
    UNKNOWN = "unknown"


class TokenKind(StrEnum):
    """A lease expires after its ttl unless renewed; a hold never expires."""

    LEASE = "lease"
    HOLD = "hold"


class PowerAction(StrEnum):
    """A power action the reconciler performed (for events and the logbook)."""

    ON = "on"
    GRACEFUL_OFF = "graceful_off"
    OFF = "off"
    FORCED_OFF = "forced_off"
    CYCLE = "cycle"
    RESET = "reset"


@dataclass(slots=True)
class UsageToken:
    """A user's claim on a resource: while it lives, the resource stays on."""

    id: str
    resource: str
    holder: str
    kind: TokenKind
    created: float
    expires: float | None
    user_id: str | None = None
    # A hold that ends (taken from the UI): its length in seconds, again when renewed.
    limit: float | None = None
    # While it lives, nobody else gets a token on the resource (see Ledger.check_free).
    exclusive: bool = False

    def as_dict(self) -> dict[str, object]:
        """Return the token as plain data (for storage)."""
        return {
            "id": self.id,
            "resource": self.resource,
            "holder": self.holder,
            "kind": self.kind.value,
            "created": self.created,
            "expires": self.expires,
            "user_id": self.user_id,
            "limit": self.limit,
            "exclusive": self.exclusive,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> UsageToken:
        """Build a token from what as_dict returned."""
        expires = data["expires"]
        user_id = data.get("user_id")
        limit = data.get("limit")
        return cls(
            id=str(data["id"]),
            resource=str(data["resource"]),
            holder=str(data["holder"]),
            kind=TokenKind(str(data["kind"])),
            created=float(str(data["created"])),
            expires=None if expires is None else float(str(expires)),
            user_id=None if user_id is None else str(user_id),
            limit=None if limit is None else float(str(limit)),
            # Stores written before exclusive tokens have no such key: shared.
            exclusive=data.get("exclusive") is True,
        )


@dataclass(slots=True)
class QueuedRequest:
    """An acquire waiting its turn in a lab's queue (persisted with the tokens).

    Named `resources`, or `count` free resources carrying every one of `labels` (a
    pool). It is granted first come, first served (see core/queue.py) through the
    same acquire as any other, or given up at `deadline` (absolute UTC).
    """

    id: str
    holder: str
    created: float
    deadline: float
    resources: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    count: int = 1
    kind: TokenKind = TokenKind.LEASE
    ttl: float | None = None
    exclusive: bool = False
    user_id: str | None = None
    admin: bool = False
    # Once granted, also wait until available (within the deadline).
    wait: bool = False

    def as_dict(self) -> dict[str, object]:
        """Return the request as plain data (for storage)."""
        return {
            "id": self.id,
            "holder": self.holder,
            "created": self.created,
            "deadline": self.deadline,
            "resources": list(self.resources),
            "labels": list(self.labels),
            "count": self.count,
            "kind": self.kind.value,
            "ttl": self.ttl,
            "exclusive": self.exclusive,
            "user_id": self.user_id,
            "admin": self.admin,
            "wait": self.wait,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueuedRequest:
        """Build a request from what as_dict returned (raises on a malformed one)."""
        resources, labels = data.get("resources", []), data.get("labels", [])
        if not isinstance(resources, list) or not isinstance(labels, list):
            raise TypeError("resources and labels must be lists")
        ttl, user_id = data.get("ttl"), data.get("user_id")
        return cls(
            id=str(data["id"]),
            holder=str(data["holder"]),
            created=float(data["created"]),
            deadline=float(data["deadline"]),
            resources=tuple(map(str, resources)),
            labels=tuple(map(str, labels)),
            count=int(data.get("count", 1)),
            kind=TokenKind(str(data.get("kind", TokenKind.LEASE.value))),
            ttl=None if ttl is None else float(ttl),
            exclusive=data.get("exclusive") is True,
            user_id=None if user_id is None else str(user_id),
            admin=data.get("admin") is True,
            wait=data.get("wait") is True,
        )


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """How a resource is powered; all durations in seconds."""

    off_delay: float = 300.0
    min_off_time: float = 10.0
    start_timeout: float = 300.0
    stop_timeout: float = 120.0
    default_ttl: float = 3600.0
    max_ttl: float = 86400.0
    graceful_off: bool = True
    # An explicit off from a power client (a switch, MAAS) skips the off delay.
    off_now: bool = True
    # Hardware protection: at most this many power changes per 10 minutes (the
    # reconciler's guard window), whatever their cause; beyond, labpower stops switching.
    max_transitions: int = 6


class LabError(Exception):
    """An error the caller can act on; `key` names its translated message."""

    key = "lab_error"

    def __init__(self, message: str, **placeholders: str) -> None:
        """Keep the message and the values its translation needs."""
        super().__init__(message)
        self.placeholders = placeholders


class StoredStateError(LabError):
    """A stored ledger state (or journal) that cannot be loaded: says what is wrong."""

    key = "stored_state_invalid"

    def __init__(self, detail: str) -> None:
        """What is wrong with it."""
        super().__init__(f"Stored state not loaded: {detail}", detail=detail)


class StoreWriteError(LabError):
    """A change could not be written to disk: it is not acknowledged."""

    key = "store_write_failed"

    def __init__(self, detail: str) -> None:
        """Why the write failed."""
        super().__init__(f"Not written to disk: {detail}", detail=detail)


class LabsLoadingError(LabError):
    """Labs are still loading (Home Assistant is starting): ask again in a moment."""

    key = "labs_loading"

    def __init__(self, labs: list[str]) -> None:
        """Name the labs that have not loaded yet."""
        names = ", ".join(labs)
        super().__init__(f"Labs still loading: {names}", labs=names)


class UnknownResourceError(LabError):
    """No resource has this name."""

    key = "unknown_resource"

    def __init__(self, resource: str) -> None:
        """Name the resource that does not exist."""
        super().__init__(f"Unknown resource: {resource}", resource=resource)


class UnknownTokenError(LabError):
    """The token was never issued, or was forgotten long ago."""

    key = "unknown_token"

    def __init__(self, token: str) -> None:
        """Say so without repeating the id: ids are secrets and land in logs."""
        super().__init__("Unknown token")
        self.token = token


class NotTokenOwnerError(LabError):
    """Only the user who took a token (or an administrator) may renew or release it."""

    key = "not_token_owner"

    def __init__(self) -> None:
        """Say so without repeating the id or naming its owner."""
        super().__init__(
            "This token belongs to another user: only its owner or an administrator "
            "may renew or release it"
        )


class TokenLimitError(LabError):
    """A user already holds as many live tokens as the lab allows."""

    key = "token_limit"

    def __init__(self, limit: int) -> None:
        """Name the limit."""
        super().__init__(
            f"Token limit reached: at most {limit} live tokens per user in this lab",
            limit=str(limit),
        )


class InvalidTtlError(LabError):
    """A ttl that is not positive or above the resource's max_ttl."""

    key = "invalid_ttl"

    def __init__(self, resource: str, ttl: float, max_ttl: float) -> None:
        """Say what was asked and what is allowed."""
        super().__init__(
            f"ttl {amount(ttl)} s for {resource} must be above 0 and at most "
            f"{duration(max_ttl)}",
            resource=resource,
            ttl=amount(ttl),
            max_ttl=amount(max_ttl),
        )


class ResourceFaultError(LabError):
    """A resource went to fault while someone waited for it."""

    key = "resource_fault"

    def __init__(self, resource: str, reason: str) -> None:
        """Name the resource and why it failed."""
        super().__init__(
            f"{resource} is in fault: {reason}", resource=resource, reason=reason
        )


class WaitTimeoutError(LabError):
    """Resources did not become available within the time asked."""

    key = "wait_timeout"

    def __init__(self, resources: list[str], timeout: float) -> None:
        """Name the resources still not available."""
        names = ", ".join(resources)
        super().__init__(
            f"Not available within {duration(timeout)}: {names}",
            resources=names,
            timeout=amount(timeout),
        )


class NotEnoughFreeError(LabError):
    """Fewer free resources carry the labels than were asked for."""

    key = "not_enough_free"

    def __init__(self, labels: list[str], wanted: int, free: int) -> None:
        """Say what was asked and how many are free."""
        names = ", ".join(labels)
        super().__init__(
            f"{wanted} free resource(s) labelled {names} wanted, {free} free",
            labels=names,
            count=str(wanted),
            free=str(free),
        )


class TokenRevokedError(LabError):
    """A token ended (revoked by a forced off, or expired) while its holder waited."""

    key = "token_revoked"

    def __init__(self, resource: str) -> None:
        """Name the resource."""
        super().__init__(
            f"The token on {resource} ended while waiting (forced off, or its lease expired)",
            resource=resource,
        )


class DependencyCycleError(LabError):
    """Resources that depend on each other in a circle: none could ever come up first."""

    key = "dependency_cycle"

    def __init__(self, cycle: list[str]) -> None:
        """Name the cycle as the path that closes it: `a -> b -> a` (a depends on b)."""
        path = " -> ".join(cycle)
        super().__init__(f"Dependency cycle: {path}", cycle=path)
        self.cycle = cycle


class UnknownDependencyError(LabError):
    """A resource depends on a resource the lab does not have."""

    key = "unknown_dependency"

    def __init__(self, resource: str, dependency: str) -> None:
        """Name both."""
        super().__init__(
            f"{resource} depends on {dependency}, which is not a resource of this lab",
            resource=resource,
            dependency=dependency,
        )


class InvalidStaggerError(LabError):
    """A power-on limit below 1 or a negative spacing."""

    key = "invalid_stagger"

    def __init__(self, reason: str) -> None:
        """Say what is wrong."""
        super().__init__(f"Invalid power-on stagger: {reason}", reason=reason)


class AcquireRefusedError(LabError):
    """The lab takes no new tokens now (a UPS feeding it runs on battery)."""

    key = "acquire_refused"

    def __init__(self, reason: str) -> None:
        """Say why."""
        super().__init__(f"No new tokens: {reason}", reason=reason)


class HeldByOthersError(LabError):
    """An off that others' tokens, or resources depending on it, keep from happening."""

    key = "holders_remain"
    template = "{resource} stays on: still used by {holders}"

    def __init__(self, resource: str, holders: list[str]) -> None:
        """Name the resource and whoever keeps it on."""
        names = ", ".join(holders)
        super().__init__(
            self.template.format(resource=resource, holders=names),
            resource=resource,
            count=str(len(holders)),
            holders=names,
        )
        self.holders = holders


def duration_text(seconds: float) -> str:
    """A time left as people read it: 45 s, 12 min, 2 h 05 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = -(-seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class ExclusiveConflictError(LabError):
    """An exclusive token holds the resource: other acquires are refused (or queue).

    Names the holders and the time they have left: `seconds_left` is when the
    resource is free at the latest, None while a hold without an end holds it.
    """

    key = "held_exclusively"
    template = "{resource} is held exclusively by {holders} ({left})"

    def __init__(
        self, resource: str, holders: list[str], seconds_left: float | None
    ) -> None:
        """Name the resource, whoever holds it and how long they may keep it."""
        names = ", ".join(holders)
        left = (
            "until released"
            if seconds_left is None
            else f"{duration_text(seconds_left)} left"
        )
        super().__init__(
            self.template.format(resource=resource, holders=names, left=left),
            resource=resource,
            holders=names,
            left=left,
        )
        self.holders = holders
        self.seconds_left = seconds_left


class ExclusiveNeedsFreeError(ExclusiveConflictError):
    """An exclusive token asked for while others hold the resource."""

    key = "exclusive_needs_free"
    template = "{resource} cannot be taken exclusively: in use by {holders} ({left})"


class QueuedAheadError(LabError):
    """An acquire that would jump the queue: requests queued earlier wait for these."""

    key = "queued_ahead"

    def __init__(self, resource: str, count: int) -> None:
        """Name the resource and how many requests wait for it."""
        super().__init__(
            f"{count} queued request(s) wait for {resource}: queue to wait your turn",
            resource=resource,
            count=str(count),
        )
        self.count = count


class QueueTimeoutError(LabError):
    """A queued request's timeout passed before it was granted; it left the queue."""

    key = "queue_timeout"

    def __init__(self, timeout: float, position: int) -> None:
        """Say how long it waited and where it was in the queue."""
        super().__init__(
            f"Not granted within {timeout:g} s (position {position} in the queue); "
            "the request left the queue",
            timeout=f"{timeout:g}",
            position=str(position),
        )


class TicketInUseError(LabError):
    """A ticket that names a queued request for something else."""

    key = "ticket_in_use"

    def __init__(self) -> None:
        """Say so without repeating the ticket."""
        super().__init__(
            "This ticket names another queued request: choose a new one for this one"
        )


class QueueInterruptedError(LabError):
    """The lab stopped (a restart, a reload) while a request waited in its queue.

    The request keeps its place and deadline: asked again with the same ticket
    before the reattach time passes, it waits on from there.
    """

    key = "queue_interrupted"

    def __init__(self) -> None:
        """Say what to do."""
        super().__init__(
            "The lab stopped while this request waited in its queue: ask again with "
            "the same ticket to keep its place"
        )


class CycleRefusedError(HeldByOthersError):
    """A power cycle refused: others use the resource (or what depends on it)."""

    key = "held_by_others"
    template = (
        "{resource} is in use by {holders}: only an administrator can cycle it now"
    )


class NotPoweredError(LabError):
    """A power cycle or reset of a resource that is not powered."""

    key = "not_powered"

    def __init__(self, resource: str) -> None:
        """Name the resource."""
        super().__init__(f"{resource} is not powered", resource=resource)


class ResourceHaltedError(LabError):
    """labpower stopped switching the resource until a person acknowledges it."""

    key = "resource_halted"

    def __init__(self, resource: str, reason: str) -> None:
        """Name the resource and why it was stopped."""
        super().__init__(
            f"labpower stopped switching {resource}: {reason}",
            resource=resource,
            reason=reason,
        )
