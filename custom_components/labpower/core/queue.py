"""The fair queue: acquires that cannot be granted now wait their turn.

Policy: strict first come, first served with head-of-line blocking. A request's
*scope* is the resources it could be given: the ones it names, or, for a pool, every
resource of the lab carrying all its labels. A request is granted only when no request
queued before it has a scope that overlaps its own, and when it can be granted as any
acquire would be (exclusive tokens, free pool members, the lab accepting tokens). So a
request for 2 resources of a pool is never overtaken by later requests for 1 of the same
pool: they wait behind it, even when one machine is free, until it has its 2. Requests
on resources that do not overlap do not wait for each other. An acquire that does not
queue is refused (QueuedAheadError) on a resource a queued request waits for.

Requests are persisted in the ledger (journaled like tokens). Their callers wait in
`wait_turn`; the grant itself is the lab's ordinary acquire (Lab.acquire with the
request's id), so the reconciler, the power-on stagger and a UPS's refusal apply as to
any other token. A request leaves the queue when granted, when its deadline passes,
or when its caller goes away (the glue withdraws it). After a restart nobody waits for
the restored requests: each keeps its place and its deadline, and is given up when no
caller has come back for it (asking again with its id) within REATTACH_SECONDS of the
lab's start (or at its deadline, if sooner). Until then it blocks what overlaps it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
import logging
from typing import TYPE_CHECKING

from .events import EventKind
from .model import (
    ExclusiveConflictError,
    LabError,
    QueuedAheadError,
    QueuedRequest,
    QueueInterruptedError,
    QueueTimeoutError,
)

if TYPE_CHECKING:
    from .lab import Lab

_LOGGER = logging.getLogger(__name__)

# How long after a lab starts a restored request waits for its caller to come back.
REATTACH_SECONDS = 120.0

type Cancel = Callable[[], None]


class WaitQueue:
    """The queue of one lab: order, turns, deadlines and the callers waiting."""

    def __init__(self, lab: Lab) -> None:
        """The queue of `lab` (its requests live in the lab's ledger)."""
        self._lab = lab
        self._futures: set[asyncio.Future[None]] = set()
        self._attached: Counter[str] = Counter()  # callers waiting, by request id
        self._ended: dict[str, LabError] = {}  # why a waited-for request left
        self._timers: dict[str, Cancel] = {}
        self._reattach_by: dict[str, float] = {}
        self._pools: dict[frozenset[str], frozenset[str]] = {}  # labels -> scope

    # Order and turns

    def scope(self, request: QueuedRequest) -> frozenset[str]:
        """The resources a request could be given."""
        if request.resources:
            return frozenset(request.resources)
        wanted = frozenset(request.labels)
        if (found := self._pools.get(wanted)) is None:
            lab = self._lab
            found = self._pools[wanted] = frozenset(
                name for name in lab.names if wanted <= lab.spec(name).labels
            )
        return found

    def forget_scopes(self) -> None:
        """Resources were added or redefined: pools are worked out again."""
        self._pools.clear()

    def requests(self) -> list[QueuedRequest]:
        """The queued requests, oldest first."""
        return self._lab.ledger.queued()

    def ahead(self, request_id: str) -> list[QueuedRequest]:
        """The requests queued before this one that it waits for (overlapping)."""
        request = self._lab.ledger.queued_request(request_id)
        if request is None:
            return []
        mine = self.scope(request)
        before: list[QueuedRequest] = []
        for other in self.requests():
            if other.id == request_id:
                break
            if not mine.isdisjoint(self.scope(other)):
                before.append(other)
        return before

    def position(self, request_id: str) -> int | None:
        """1 for the request served next among those it overlaps; None: not queued."""
        if self._lab.ledger.queued_request(request_id) is None:
            return None
        return 1 + len(self.ahead(request_id))

    def waiting_for(self, name: str) -> list[QueuedRequest]:
        """The queued requests whose scope holds this resource."""
        return [r for r in self.requests() if name in self.scope(r)]

    def check_turn(self, names: Iterable[str], request_id: str | None) -> None:
        """Raise QueuedAheadError when a grant of these resources would jump the queue.

        Without a request id (an acquire that does not queue), any queued request on
        them is ahead; with one, the requests queued before it that overlap.
        """
        if request_id is not None:
            if before := self.ahead(request_id):
                request = self._lab.ledger.queued_request(request_id)
                assert request is not None
                name = min(self.scope(request) & self.scope(before[0]))
                raise QueuedAheadError(name, len(before))
            return
        for name in names:
            if waiting := self.waiting_for(name):
                raise QueuedAheadError(name, len(waiting))

    def grantable(self, request: QueuedRequest) -> list[str] | None:
        """The resources to grant the request now, if it could be (its turn aside)."""
        lab = self._lab
        if lab.refusing:
            return None
        if request.resources:
            try:
                for name in request.resources:
                    lab.ledger.check_free(name, exclusive=request.exclusive)
            except ExclusiveConflictError:
                return None
            return list(request.resources)
        free = lab.pool_candidates(frozenset(request.labels))
        if len(free) < request.count:
            return None
        return [name for *_, name in sorted(free)[: request.count]]

    def ready(self, request_id: str) -> list[str] | None:
        """The resources to grant now if it is the request's turn, else None."""
        request = self._lab.ledger.queued_request(request_id)
        if request is None or self.ahead(request_id):
            return None
        return self.grantable(request)

    # Changes

    def enqueue(self, request: QueuedRequest) -> None:
        """Put a request at the end of the queue (persisted; its deadline armed)."""
        self._lab.ledger.enqueue(request)
        self._arm(request)
        self._changed(request)

    def withdraw(self, request_id: str, error: LabError | None = None) -> bool:
        """Take a request out without granting it; a waiting caller gets `error`.

        Returns whether it was queued.
        """
        request = self._lab.ledger.dequeue(request_id)
        if request is None:
            return False
        self._disarm(request_id)
        self._reattach_by.pop(request_id, None)
        if error is not None and self._attached[request_id]:
            self._ended[request_id] = error
        self._changed(request)
        return True

    def granted(self, request_id: str) -> None:
        """The request got its tokens (Lab.acquire): it leaves the queue."""
        request = self._lab.ledger.dequeue(request_id)
        if request is not None:
            self._disarm(request_id)
            self._reattach_by.pop(request_id, None)
            self._changed(request)

    def _changed(self, request: QueuedRequest) -> None:
        lab = self._lab
        for name in sorted(self.scope(request)):
            lab.emit(EventKind.HOLDERS_CHANGED, name)  # positions shown change
        lab.emit(EventKind.PERSIST)
        self.wake()

    def wake(self) -> None:
        """Something changed that may give a waiting request its turn."""
        futures, self._futures = self._futures, set()
        for future in futures:
            if not future.done():
                future.set_result(None)

    # Waiting

    def is_attached(self, request_id: str) -> bool:
        """Whether a caller waits for the request now."""
        return self._attached[request_id] > 0

    async def wait_turn(
        self, request_id: str, first: Awaitable[None] | None = None
    ) -> list[str]:
        """Wait until the request may be granted; the resources to grant it.

        `first` is awaited once the caller counts as waiting (the request's journal
        write: its deadline may pass meanwhile). Raises the error it was withdrawn with
        (its deadline: QueueTimeoutError; the lab stopping: QueueInterruptedError).
        Cancelled, it stays queued: whether the caller is gone for good is the glue's
        to say (withdraw).
        """
        loop = asyncio.get_running_loop()
        self._attached[request_id] += 1
        self._reattach_by.pop(request_id, None)
        try:
            if first is not None:
                await first
            while True:
                if (error := self._ended.pop(request_id, None)) is not None:
                    raise error
                if self._lab.ledger.queued_request(request_id) is None:
                    raise QueueInterruptedError
                if (names := self.ready(request_id)) is not None:
                    return names
                future: asyncio.Future[None] = loop.create_future()
                self._futures.add(future)
                await future
        finally:
            self._attached[request_id] -= 1
            if not self._attached[request_id]:
                del self._attached[request_id]

    # Deadlines and callers that do not come back

    def start(self) -> None:
        """The lab runs: arm every deadline; restored requests wait for their callers."""
        reattach_by = self._lab.clock() + REATTACH_SECONDS
        for request in self.requests():
            if not self.is_attached(request.id):
                self._reattach_by[request.id] = reattach_by
            self._arm(request)

    def stop(self) -> None:
        """The lab stops: no timers; waiting callers get QueueInterruptedError.

        The requests stay queued (and persisted) for the lab's next start.
        """
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        for request_id in self._attached:
            self._ended[request_id] = QueueInterruptedError()
        self.wake()

    def _arm(self, request: QueuedRequest) -> None:
        self._disarm(request.id)
        lab = self._lab
        if not lab.running:
            return
        due = min(request.deadline, self._reattach_by.get(request.id, request.deadline))
        self._timers[request.id] = lab.call_later(
            max(0.0, due - lab.clock()), lambda: self._due(request.id)
        )

    def _disarm(self, request_id: str) -> None:
        if (cancel := self._timers.pop(request_id, None)) is not None:
            cancel()

    def _due(self, request_id: str) -> None:
        self._timers.pop(request_id, None)
        request = self._lab.ledger.queued_request(request_id)
        if request is None:
            return
        if self._lab.clock() >= request.deadline:
            timeout = request.deadline - request.created
            position = self.position(request_id) or 0
            _LOGGER.info("Queued request of %s timed out", request.holder)
            self.withdraw(request_id, QueueTimeoutError(timeout, position))
        elif not self.is_attached(request_id):
            _LOGGER.warning(
                "Queued request of %s given up: its caller did not come back after "
                "the restart",
                request.holder,
            )
            self.withdraw(request_id)
        else:
            self._reattach_by.pop(request_id, None)
            self._arm(request)
