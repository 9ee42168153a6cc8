"""The token ledger: who holds which resource, until when, and when it may go off."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
import heapq
import math
import secrets
from typing import Any

from .model import (
    ExclusiveConflictError,
    ExclusiveNeedsFreeError,
    InvalidTtlError,
    QueuedRequest,
    ResourcePolicy,
    StoredStateError,
    TokenKind,
    UnknownResourceError,
    UnknownTokenError,
    UsageToken,
)

type Clock = Callable[[], float]

STATE_VERSION = 1
# Released ids are remembered so that releasing twice is not an error.
RELEASED_MEMORY_SECONDS = 7 * 86400.0
RELEASED_MEMORY_MAX = 100_000


class Ledger:
    """Tokens, reference counts, expiry and off-delay deadlines. Pure and synchronous."""

    def __init__(self, clock: Clock) -> None:
        """Start empty; `clock` returns the current UTC time as epoch seconds."""
        self._clock = clock
        self._policies: dict[str, ResourcePolicy] = {}
        self._tokens: dict[str, UsageToken] = {}
        self._by_resource: dict[str, dict[str, UsageToken]] = {}
        self._by_user: Counter[str | None] = Counter()  # live tokens per user id
        self._off_at: dict[str, float] = {}
        self._last_off: dict[str, float] = {}
        # Oldest first. An OrderedDict drops its oldest entry in O(1); a dict needs
        # next(iter()), which skips every entry deleted before it: O(n) once it is full.
        self._released: OrderedDict[str, float] = OrderedDict()
        self._expiry_heap: list[tuple[float, str]] = []
        self._last_cause: dict[str, str] = {}
        # Resources a child needs (derived by the lab, never persisted).
        self._demand: set[str] = set()
        # Forced off: losing the last child's demand starts no off delay.
        self._forced: set[str] = set()
        # A power client asked for off: not wanted on until it is seen off (persisted).
        self._off_requested: set[str] = set()
        # While set (a UPS runs on battery), off delays are skipped: idle means off.
        self.shedding = False
        # Resources labpower stopped switching until a person acknowledges (the reason).
        self._halted: dict[str, str] = {}
        # Resources kept as they were found because the stored tokens were lost: they
        # are wanted on (never switched off) until an administrator confirms (persisted).
        self._kept: set[str] = set()
        # Why no token may be taken (a store too new to write over), if so.
        self.frozen: str | None = None
        self._unknown: str | None = None
        # Changes not yet journaled (see drain_changes): tokens put, tokens dropped
        # (with when), resources whose own fields changed.
        self._put: set[str] = set()
        self._dropped: dict[str, float] = {}
        self._touched: set[str] = set()
        # Acquires waiting their turn, oldest first (persisted; see core/queue.py),
        # and the queue's changes not yet journaled: requests put, requests gone.
        self._queue: dict[str, QueuedRequest] = {}
        self._queue_put: set[str] = set()
        self._queue_gone: set[str] = set()

    # Resources

    def set_policy(self, resource: str, policy: ResourcePolicy) -> None:
        """Register a resource or change its policy; tokens are kept."""
        self._policies[resource] = policy
        self._by_resource.setdefault(resource, {})

    def policy(self, resource: str) -> ResourcePolicy:
        """Return a resource's policy, or raise UnknownResourceError."""
        try:
            return self._policies[resource]
        except KeyError:
            raise UnknownResourceError(resource) from None

    def remove_resource(self, resource: str) -> list[UsageToken]:
        """Forget a resource; returns the tokens that were revoked with it."""
        revoked = self._drop_all(resource)
        self._policies.pop(resource, None)
        self._by_resource.pop(resource, None)
        self._off_at.pop(resource, None)
        self._last_off.pop(resource, None)
        self._last_cause.pop(resource, None)
        self._demand.discard(resource)
        self._forced.discard(resource)
        self._off_requested.discard(resource)
        self._halted.pop(resource, None)
        self._kept.discard(resource)
        return revoked

    @property
    def resources(self) -> list[str]:
        """Names of the known resources."""
        return list(self._policies)

    # Tokens

    def acquire(
        self,
        resource: str,
        holder: str,
        *,
        kind: TokenKind = TokenKind.LEASE,
        ttl: float | None = None,
        user_id: str | None = None,
        limit: float | None = None,
        exclusive: bool = False,
    ) -> UsageToken:
        """Issue a token for a resource; a lease gets the default ttl if none is given.

        A hold never expires unless it has a `limit` (seconds, > 0): a hold taken from
        the UI ends then, unless renewed. The lease rules (max_ttl) do not apply to it.
        An exclusive token needs the resource free and keeps it so (see check_free).
        """
        policy = self.policy(resource)
        self.check_free(resource, exclusive=exclusive)
        now = self._clock()
        expires: float | None = None
        if kind is TokenKind.LEASE:
            expires = now + self._check_ttl(resource, policy, ttl)
        elif limit is not None and limit > 0:
            expires = now + limit
        else:
            limit = None
        token = UsageToken(
            id=secrets.token_urlsafe(16),
            resource=resource,
            holder=holder,
            kind=kind,
            created=now,
            expires=expires,
            user_id=user_id,
            limit=None if kind is TokenKind.LEASE else limit,
            exclusive=exclusive,
        )
        self._tokens[token.id] = token
        self._by_resource[resource][token.id] = token
        self._by_user[token.user_id] += 1
        if expires is not None:
            heapq.heappush(self._expiry_heap, (expires, token.id))
        self._off_at.pop(resource, None)
        self._forced.discard(resource)
        self._last_cause[resource] = f"acquired by {holder}"
        self._put.add(token.id)
        self._touched.add(resource)
        return token

    def check_free(self, resource: str, *, exclusive: bool) -> None:
        """Raise ExclusiveConflictError unless a token (exclusive or not) may be taken.

        (ExclusiveNeedsFreeError when an exclusive token is asked for.)

        An exclusive token refuses every other token on its resource; an exclusive
        token is refused while anybody holds the resource. The error names the holders
        and when the resource is free at the latest (None: a hold without an end).
        """
        held = self._by_resource.get(resource)
        if not held:
            return
        blocking = (
            list(held.values())
            if exclusive
            else [token for token in held.values() if token.exclusive]
        )
        if not blocking:
            return
        ends = [token.expires for token in blocking]
        left = (
            None
            if None in ends
            else max(end for end in ends if end is not None) - self._clock()
        )
        error = ExclusiveNeedsFreeError if exclusive else ExclusiveConflictError
        raise error(
            resource, list(dict.fromkeys(token.holder for token in blocking)), left
        )

    def validate_ttl(self, resource: str, ttl: float | None) -> None:
        """Raise what acquire would raise for this resource and ttl, issuing nothing."""
        self._check_ttl(resource, self.policy(resource), ttl)

    @staticmethod
    def _check_ttl(resource: str, policy: ResourcePolicy, ttl: float | None) -> float:
        ttl = policy.default_ttl if ttl is None else ttl
        if not 0 < ttl <= policy.max_ttl:
            raise InvalidTtlError(resource, ttl, policy.max_ttl)
        return ttl

    def release(self, token_id: str) -> UsageToken | None:
        """Release a token; None when it was already released or expired."""
        token = self._tokens.get(token_id)
        if token is None:
            if token_id in self._released or self._unknown is not None:
                return None
            raise UnknownTokenError(token_id)
        self._drop(token, f"released by {token.holder}")
        return token

    def check_known(self, token_id: str) -> None:
        """Raise UnknownTokenError unless the token is live or was released."""
        if (
            token_id not in self._tokens
            and token_id not in self._released
            and self._unknown is None
        ):
            raise UnknownTokenError(token_id)

    def renew(self, token_id: str, ttl: float | None = None) -> UsageToken:
        """Extend a live lease to now + ttl; a hold with a limit to now + ttl or limit.

        A hold without a limit is returned unchanged.
        """
        token = self._tokens.get(token_id)
        if token is None:
            raise UnknownTokenError(token_id)
        if token.kind is TokenKind.LEASE:
            ttl = self._check_ttl(token.resource, self.policy(token.resource), ttl)
        elif token.limit is None:
            return token
        elif ttl is None:
            ttl = token.limit
        token.expires = self._clock() + ttl
        heapq.heappush(self._expiry_heap, (token.expires, token.id))
        self._put.add(token.id)
        return token

    def is_live(self, token_id: str) -> bool:
        """Whether a token is live (not released, expired or revoked)."""
        return token_id in self._tokens

    def get(self, token_id: str) -> UsageToken:
        """Return a live token, or raise UnknownTokenError."""
        try:
            return self._tokens[token_id]
        except KeyError:
            raise UnknownTokenError(token_id) from None

    def expire(self) -> list[UsageToken]:
        """Release every lease whose expiry has passed; returns them."""
        now = self._clock()
        heap = self._expiry_heap
        expired: list[UsageToken] = []
        while heap and heap[0][0] <= now:
            expires, token_id = heapq.heappop(heap)
            token = self._tokens.get(token_id)
            # The heap keeps stale entries of renewed or released tokens: skip them.
            if token is None or token.expires != expires:
                continue
            self._drop(token, f"token of {token.holder} expired")
            expired.append(token)
        self._forget_old_releases(now)
        return expired

    def next_expiry(self) -> float | None:
        """When the next lease expires, if any."""
        heap = self._expiry_heap
        while heap:
            expires, token_id = heap[0]
            token = self._tokens.get(token_id)
            if token is not None and token.expires == expires:
                return expires
            heapq.heappop(heap)
        return None

    def revoke_all(self, resource: str, cause: str) -> list[UsageToken]:
        """Revoke every token of a resource and skip its off delay (forced off).

        The off delay is also skipped when the demand of its children ends later, until
        the resource is seen off or wanted again.
        """
        self.policy(resource)
        revoked = self._drop_all(resource)
        self._off_at.pop(resource, None)
        self._forced.add(resource)
        self._last_cause[resource] = cause
        self._touched.add(resource)
        return revoked

    def tokens(self, resource: str) -> list[UsageToken]:
        """The live tokens of a resource."""
        return list(self._by_resource.get(resource, {}).values())

    def all_tokens(self) -> Iterator[UsageToken]:
        """Every live token."""
        return iter(self._tokens.values())

    @property
    def token_count(self) -> int:
        """How many live tokens exist in the whole lab."""
        return len(self._tokens)

    def user_token_count(self, user_id: str | None) -> int:
        """How many live tokens a user holds in the whole lab."""
        return self._by_user[user_id]

    def holder_count(self, resource: str) -> int:
        """How many live tokens a resource has."""
        return len(self._by_resource.get(resource, ()))

    def find_hold(
        self, resource: str, user_id: str | None, holder: str
    ) -> list[UsageToken]:
        """The holds a user took on a resource under this holder name."""
        return [
            token
            for token in self._by_resource.get(resource, {}).values()
            if token.kind is TokenKind.HOLD
            and token.user_id == user_id
            and token.holder == holder
        ]

    # The queue (kept here so that it is journaled with the tokens)

    def enqueue(self, request: QueuedRequest) -> None:
        """Put a request at the end of the queue."""
        self._queue[request.id] = request
        self._queue_put.add(request.id)

    def dequeue(self, request_id: str) -> QueuedRequest | None:
        """Take a request out of the queue; None when it is not in it."""
        request = self._queue.pop(request_id, None)
        if request is not None:
            self._queue_put.discard(request_id)
            self._queue_gone.add(request_id)
        return request

    def queued(self) -> list[QueuedRequest]:
        """The queued requests, oldest first."""
        return list(self._queue.values())

    def queued_request(self, request_id: str) -> QueuedRequest | None:
        """A queued request by id."""
        return self._queue.get(request_id)

    # Desired state

    def wants_on(self, resource: str) -> bool:
        """True while a live token exists, a child needs it, or the off delay runs.

        Never while a requested off has not been seen yet (see request_off).
        """
        if resource in self._off_requested:
            return False
        if (
            self._by_resource.get(resource)
            or resource in self._demand
            or resource in self._kept
        ):
            return True
        off_at = self._off_at.get(resource)
        return off_at is not None and self._clock() < off_at

    def set_demand(
        self, resource: str, demanded: bool, *, start_delay: bool = True
    ) -> None:
        """Whether a child needs the resource; demand counts as wanting it on.

        Gaining demand ends a running off delay. Losing it with no token left starts
        the off delay, as the last release does (not when `start_delay` is False: the
        demand was only derived at start, or the resource was forced off).
        """
        if demanded:
            if resource not in self._demand:
                self._demand.add(resource)
                if self._off_at.pop(resource, None) is not None:
                    self._touched.add(resource)
                self._forced.discard(resource)
            return
        if resource not in self._demand:
            return
        self._demand.discard(resource)
        if (
            start_delay
            and resource not in self._forced
            and not self._by_resource.get(resource)
        ):
            self._start_off_delay(resource)

    def has_demand(self, resource: str) -> bool:
        """Whether a child needs the resource."""
        return resource in self._demand

    def off_deadline(self, resource: str) -> float | None:
        """When the off delay after the last release ends, if one is running."""
        return self._off_at.get(resource)

    def set_cause(self, resource: str, cause: str) -> None:
        """Record what changed a resource's desired state (for the logbook)."""
        self._last_cause[resource] = cause
        self._touched.add(resource)

    def last_cause(self, resource: str) -> str:
        """Who or what last changed the resource's desired state."""
        return self._last_cause.get(resource, "labpower")

    def note_off(self, resource: str) -> None:
        """Record that the resource was seen going off (starts min_off_time)."""
        self._last_off[resource] = self._clock()
        self._forced.discard(resource)
        self._off_requested.discard(resource)
        self._touched.add(resource)

    def request_off(self, resource: str, cause: str) -> bool:
        """Power off now, skipping the off delay, if no token and no child holds it.

        Until it is seen off (note_off, or clear_off_request when it already is), the
        resource is not wanted on, whoever acquires it: an off then an on is a power
        cycle. Returns whether the request was taken.
        """
        self.policy(resource)
        if self._by_resource.get(resource) or resource in self._demand:
            return False
        self._off_at[resource] = self._clock()
        self._off_requested.add(resource)
        self._last_cause[resource] = cause
        self._touched.add(resource)
        return True

    def off_requested(self, resource: str) -> bool:
        """Whether a requested off has not been seen yet."""
        return resource in self._off_requested

    def clear_off_request(self, resource: str) -> None:
        """The resource is known to be off: a requested off is done."""
        if resource in self._off_requested:
            self._off_requested.discard(resource)
            self._touched.add(resource)

    def last_off(self, resource: str) -> float | None:
        """When the resource was last seen going off, if ever (persisted)."""
        return self._last_off.get(resource)

    def min_off_remaining(self, resource: str) -> float:
        """Seconds until the resource may be switched on again after its last off."""
        last_off = self._last_off.get(resource)
        if last_off is None:
            return 0.0
        return max(0.0, last_off + self.policy(resource).min_off_time - self._clock())

    def set_halted(self, resource: str, reason: str | None) -> None:
        """Record that labpower stopped switching a resource (None: it switches again)."""
        if reason is None:
            self._halted.pop(resource, None)
        else:
            self._halted[resource] = reason
        self._touched.add(resource)

    @property
    def halted(self) -> dict[str, str]:
        """The resources labpower stopped switching, with the reason (persisted)."""
        return dict(self._halted)

    # Tokens lost with the store

    def mark_unknown(self, resources: Iterable[str], reason: str) -> None:
        """The stored tokens were lost: keep these resources as found, refuse no id.

        Until confirm_unknown, each kept resource is wanted on (it is never switched
        off; one seen off is let go with forget_kept), and releasing an unknown token
        id succeeds: it may have been one of the lost tokens.
        """
        self._unknown = reason
        for name in resources:
            if name in self._policies:
                self._kept.add(name)
                self._touched.add(name)

    @property
    def unknown(self) -> str | None:
        """What was lost, while no administrator confirmed it (persisted)."""
        return self._unknown

    @property
    def kept(self) -> set[str]:
        """The resources kept as found until confirmed."""
        return set(self._kept)

    def is_kept(self, resource: str) -> bool:
        """Whether a resource is kept as found until confirmed."""
        return resource in self._kept

    def forget_kept(self, resource: str) -> None:
        """A kept resource was seen off: nothing keeps it any more."""
        if resource in self._kept:
            self._kept.discard(resource)
            self._touched.add(resource)

    def confirm_unknown(self) -> list[str]:
        """An administrator confirmed the loss; returns the resources that were kept.

        Kept resources with no token nor demand start their off delay.
        """
        kept = sorted(self._kept)
        self._unknown = None
        self._kept.clear()
        for name in kept:
            self._touched.add(name)
            if not self._by_resource.get(name) and name not in self._demand:
                self._start_off_delay(name)
        return kept

    # Persistence

    def to_dict(self) -> dict[str, Any]:
        """Serialise tokens, deadlines and released ids (versioned)."""
        return {
            "version": STATE_VERSION,
            "tokens": [token.as_dict() for token in self._tokens.values()],
            "off_at": dict(self._off_at),
            "last_off": dict(self._last_off),
            "released": dict(self._released),
            "last_cause": dict(self._last_cause),
            "off_requested": sorted(self._off_requested),
            "halted": dict(self._halted),
            "kept": sorted(self._kept),
            "unknown": self._unknown,
            "queue": [request.as_dict() for request in self._queue.values()],
        }

    @property
    def has_changes(self) -> bool:
        """Whether changes wait for drain_changes."""
        return bool(
            self._put
            or self._dropped
            or self._touched
            or self._queue_put
            or self._queue_gone
        )

    def drain_changes(self) -> list[Any]:
        """The changes since the last drain, as journal records (see replay).

        Records are absolute: a token as it is now, a token dropped (and when), a
        resource's own fields as they are now; replaying them in order over the state
        they followed gives this ledger's state. The released-id memory is not in them
        (only each dropped id), so a change costs the same however much is remembered.
        """
        records: list[Any] = [
            ["put", token.as_dict()]
            for token_id in self._put
            if (token := self._tokens.get(token_id)) is not None
        ]
        records.extend(["drop", token_id, at] for token_id, at in self._dropped.items())
        records.extend(
            ["res", name, self._fields(name)]
            for name in self._touched
            if name in self._policies
        )
        records.extend(["unqueue", request_id] for request_id in self._queue_gone)
        records.extend(
            ["queue", self._queue[request_id].as_dict()]
            for request_id in self._queue
            if request_id in self._queue_put
        )
        self._put.clear()
        self._dropped.clear()
        self._touched.clear()
        self._queue_put.clear()
        self._queue_gone.clear()
        return records

    def _fields(self, name: str) -> dict[str, Any]:
        return {
            "off_at": self._off_at.get(name),
            "last_off": self._last_off.get(name),
            "last_cause": self._last_cause.get(name),
            "off_requested": name in self._off_requested,
            "halted": self._halted.get(name),
            "kept": name in self._kept,
        }

    def load(
        self, data: dict[str, Any], journal: Iterable[list[Any]] = ()
    ) -> list[UsageToken]:
        """Restore what to_dict wrote, then the journal's batches of drain_changes.

        Returns the tokens of resources no longer known. Raises LabError on data
        check_state refuses.
        """
        data = replay(data, journal)
        check_state(data)
        # Oldest first, as _forget_old_releases expects (orphans below are newest).
        self._released.update(sorted(data["released"].items(), key=lambda i: i[1]))
        orphans: list[UsageToken] = []
        for raw in data["tokens"]:
            token = UsageToken.from_dict(raw)
            if token.resource not in self._policies:
                orphans.append(token)
                self._released[token.id] = self._clock()
                continue
            self._tokens[token.id] = token
            self._by_resource[token.resource][token.id] = token
            self._by_user[token.user_id] += 1
            if token.expires is not None:
                heapq.heappush(self._expiry_heap, (token.expires, token.id))
        known = self._policies.keys()
        self._off_at.update({k: v for k, v in data["off_at"].items() if k in known})
        self._last_off.update({k: v for k, v in data["last_off"].items() if k in known})
        self._last_cause.update(
            {k: v for k, v in data.get("last_cause", {}).items() if k in known}
        )
        self._off_requested.update(
            name for name in data.get("off_requested", ()) if name in known
        )
        self._halted.update(
            {k: v for k, v in data.get("halted", {}).items() if k in known}
        )
        self._kept.update(name for name in data.get("kept", ()) if name in known)
        self._unknown = self._unknown or data.get("unknown") or None
        for raw in data.get("queue", ()):
            request = QueuedRequest.from_dict(raw)
            # A request for a resource no longer known could never be granted.
            if all(name in known for name in request.resources):
                self._queue[request.id] = request
        return orphans

    # Internals

    def _drop(self, token: UsageToken, cause: str) -> None:
        del self._tokens[token.id]
        self._by_user[token.user_id] -= 1
        remaining = self._by_resource[token.resource]
        del remaining[token.id]
        self._released[token.id] = self._dropped[token.id] = self._clock()
        self._put.discard(token.id)
        self._touched.add(token.resource)
        if len(self._released) > RELEASED_MEMORY_MAX:
            self._released.popitem(last=False)
        self._last_cause[token.resource] = cause
        if not remaining and token.resource not in self._demand:
            self._start_off_delay(token.resource)

    def _start_off_delay(self, resource: str) -> None:
        delay = 0.0 if self.shedding else self._policies[resource].off_delay
        self._off_at[resource] = self._clock() + delay
        self._touched.add(resource)

    def end_off_delays(self) -> list[str]:
        """End every running off delay now (load shedding); the resources it ended."""
        now = self._clock()
        ended = [name for name, off_at in self._off_at.items() if off_at > now]
        for name in ended:
            self._off_at[name] = now
        self._touched.update(ended)
        return ended

    def _drop_all(self, resource: str) -> list[UsageToken]:
        tokens = list(self._by_resource.get(resource, {}).values())
        now = self._clock()
        for token in tokens:
            del self._tokens[token.id]
            self._by_user[token.user_id] -= 1
            self._released[token.id] = self._dropped[token.id] = now
            self._put.discard(token.id)
        self._by_resource.get(resource, {}).clear()
        return tokens

    def _forget_old_releases(self, now: float) -> None:
        released = self._released
        while released:
            token_id, when = next(iter(released.items()))
            if now - when < RELEASED_MEMORY_SECONDS:
                break
            del released[token_id]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_state(data: dict[str, Any]) -> None:
    """Raise LabError (StoredStateError) unless `data` is a ledger state load can read."""
    try:
        _check_state(data)
    except (KeyError, TypeError, ValueError) as err:
        raise StoredStateError(f"malformed: {err}") from None


def _objects(items: Any, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """A stored list's objects, numbered; TypeError on anything else."""
    if not isinstance(items, list):
        raise TypeError(f"the {what}s are not a list")
    for number, raw in enumerate(items):
        if not isinstance(raw, dict):
            raise TypeError(f"{what} {number} is not an object")
        yield number, raw


def _check_state(data: dict[str, Any]) -> None:
    version = data.get("version")
    if version != STATE_VERSION:
        raise ValueError(f"ledger state version {version!r}")
    for number, raw in _objects(data["tokens"], "token"):
        token = UsageToken.from_dict(raw)
        if not (token.id and token.resource) or not math.isfinite(token.created):
            raise ValueError(f"token {number} has no id, resource or time")
        if token.expires is not None and not math.isfinite(token.expires):
            raise ValueError(f"token {number} expires at {token.expires}")
        # A lease always expires; a hold only when it has a limit (a hold from the UI).
        ends = token.kind is TokenKind.LEASE or token.limit is not None
        if ends != (token.expires is not None):
            raise ValueError(f"token {number}: a {token.kind} expiring {token.expires}")
    for key in ("off_at", "last_off", "released"):
        mapping = data[key]
        if not isinstance(mapping, dict) or not all(map(_number, mapping.values())):
            raise TypeError(f"{key} is not a map of times")
    for key in ("last_cause", "halted"):
        mapping = data.get(key, {})
        if not isinstance(mapping, dict) or not all(
            isinstance(v, str) for v in mapping.values()
        ):
            raise TypeError(f"{key} is not a map of texts")
    if not isinstance(data.get("unknown"), (str, type(None))):
        raise TypeError("unknown is not a text")
    for key in ("off_requested", "kept"):
        names = data.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"{key} is not a list of names")
    for number, raw in _objects(data.get("queue", []), "queued request"):
        request = QueuedRequest.from_dict(raw)
        if not math.isfinite(request.created) or not math.isfinite(request.deadline):
            raise ValueError(f"queued request {number} has no time")


def replay(data: dict[str, Any], journal: Iterable[list[Any]]) -> dict[str, Any]:
    """The state `data` (as to_dict wrote it) after the journal's batches of changes.

    Unknown records are refused (LabError): they come from a newer version.
    """
    batches = list(journal)
    if not batches:
        return data
    tokens = {raw["id"]: raw for raw in data["tokens"] if isinstance(raw, dict)}
    released = dict(data["released"])
    maps = {key: dict(data.get(key, {})) for key in _MAP_FIELDS}
    sets = {key: set(data.get(key, ())) for key in _SET_FIELDS}
    queue = {
        str(raw["id"]): raw for raw in data.get("queue", ()) if isinstance(raw, dict)
    }

    def apply(record: Any) -> bool:
        match record:
            case ["put", dict() as raw]:
                tokens[str(raw["id"])] = raw
            case ["drop", str() as token_id, at] if _number(at):
                tokens.pop(token_id, None)
                released[token_id] = at
            case ["res", str() as name, dict() as fields]:
                for key in _MAP_FIELDS:
                    if fields.get(key) is None:
                        maps[key].pop(name, None)
                    else:
                        maps[key][name] = fields[key]
                for key in _SET_FIELDS:
                    if fields.get(key):
                        sets[key].add(name)
                    else:
                        sets[key].discard(name)
            case ["queue", dict() as raw]:
                queue[str(raw["id"])] = raw
            case ["unqueue", str() as request_id]:
                queue.pop(request_id, None)
            case _:
                return False
        return True

    for batch in batches:
        for record in batch:
            try:
                applied = apply(record)
            except KeyError, TypeError:
                applied = False
            if not applied:
                raise StoredStateError(f"journal: unknown record {record!r:.80}")
    return {
        **data,
        "tokens": list(tokens.values()),
        "released": released,
        **maps,
        **{key: sorted(names) for key, names in sets.items()},
        "queue": list(queue.values()),
    }


_MAP_FIELDS = ("off_at", "last_off", "last_cause", "halted")
_SET_FIELDS = ("off_requested", "kept")
