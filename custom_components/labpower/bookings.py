"""Bookings in Home Assistant: stored, timed, and taken through the same acquire.

Each lab keeps its bookings in a Store of its own (`labpower.<entry id>.bookings`),
written before a booking is acknowledged. At a booking's power-on time (its start
minus its lead time, see core/bookings.py) it takes one hold per resource through
operations.async_acquire, as any caller would, so the reconciler, the power-on
stagger, the UPS policy and the safety rules all apply; a refusal (a UPS on battery, an
exclusive token, a fault) marks the booking refused with the reason, and fires
`labpower_booking_refused`. At its end its holds are released; the off delay follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, EVENT_BOOKING_REFUSED, LOGGER
from .core.bookings import (
    BOOKINGS_VERSION,
    Booking,
    BookingAcrossLabsError,
    BookingBook,
    BookingStatus,
    BookingTargetError,
    BookingTimesError,
    BootTimes,
    NotBookingOwnerError,
    UnknownBookingError,
    new_booking_id,
)
from .core.model import (
    ExclusiveConflictError,
    LabError,
    NotEnoughFreeError,
    QueuedAheadError,
    TokenKind,
)
from .operations import (
    async_acquire,
    async_found,
    async_labs_loaded,
    locate,
    pool,
    runtimes,
)
from .runtime import LabRuntime, iso_time
from .schema import (
    ATTR_COUNT,
    ATTR_END,
    ATTR_EXCLUSIVE,
    ATTR_HOLDER,
    ATTR_LABELS,
    ATTR_RESOURCE,
    ATTR_START,
)

# Measured boot times are written within this many seconds (they are not acknowledged).
BOOT_SAVE_DELAY = 10.0
# Refusals that end when others release or are served (an exclusive token, the queue,
# a full pool): a booking tries again this often until its start, then is refused.
_BUSY = (ExclusiveConflictError, QueuedAheadError, NotEnoughFreeError)
BUSY_RETRY = 60.0


@dataclass(frozen=True, slots=True)
class BookingRequest:
    """What the book action, REST or the calendar asks for."""

    holder: str
    start: datetime
    end: datetime
    resources: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    count: int = 1
    exclusive: bool = False


def booking_request(data: Mapping[str, Any], holder: str) -> BookingRequest:
    """A request from the action's or the REST body's validated fields."""
    if bool(data.get(ATTR_LABELS)) == bool(data.get(ATTR_RESOURCE)):
        raise BookingTargetError
    return BookingRequest(
        holder=data.get(ATTR_HOLDER) or holder,
        start=data[ATTR_START],
        end=data[ATTR_END],
        resources=tuple(data.get(ATTR_RESOURCE) or ()),
        labels=tuple(data.get(ATTR_LABELS) or ()),
        count=data[ATTR_COUNT],
        exclusive=data[ATTR_EXCLUSIVE],
    )


def local_text(timestamp: float) -> str:
    """A time as people of this Home Assistant read it (its time zone, to the minute)."""
    return dt_util.as_local(dt_util.utc_from_timestamp(timestamp)).strftime(
        "%Y-%m-%d %H:%M"
    )


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, BOOKINGS_VERSION, f"{DOMAIN}.{entry_id}.bookings")


async def async_remove_bookings(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a removed lab's bookings."""
    await _store(hass, entry_id).async_remove()


class LabBookings:
    """One lab's bookings: their store, their timers, the boot times they learn from."""

    def __init__(self, runtime: LabRuntime) -> None:
        """Empty until async_start reads the store."""
        self.runtime = runtime
        self.hass: HomeAssistant = runtime.hass
        self.book = BookingBook()
        self.boot = BootTimes()
        self._store = _store(runtime.hass, runtime.entry.entry_id)
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._listeners: list[CALLBACK_TYPE] = []
        self._taking: set[asyncio.Future[None]] = set()  # takes under way
        self._stopped = False

    # Life cycle

    async def async_start(self) -> None:
        """Read the store, follow every resource's state, and plan every booking."""
        stored = await self._store.async_load() or {}
        if problems := self.book.load(stored.get("bookings", ())):
            LOGGER.error(
                "%s: damaged bookings left out: %s",
                self.runtime.entry.title,
                "; ".join(problems),
            )
        self.boot.load(stored.get("boot_times", {}))
        self._unsubscribe.append(
            self.runtime.async_add_state_observer(self._state_changed)
        )
        # Stopping, the timers go (a restart plans them again from the store).
        self._unsubscribe.append(
            self.hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, self._stopping)
        )
        for booking in self.book.all():
            self._plan(booking)

    @callback
    def _stopping(self, _event: Event | None = None) -> None:
        self._stopped = True
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()

    async def async_stop(self) -> None:
        """Cancel the timers, let takes under way end, and write the store."""
        self._stopping()
        for cancel in self._unsubscribe:
            cancel()
        self._unsubscribe.clear()
        # A take under way ends with its holds and its booking both written.
        await asyncio.gather(*self._taking, return_exceptions=True)
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {"bookings": self.book.to_list(), "boot_times": self.boot.to_dict()}

    async def _async_save(self) -> None:
        """Write the store now: a change is answered once written."""
        await self._store.async_save(self._data())

    @callback
    def _state_changed(self, name: str) -> None:
        if self.boot.observe(name, self.runtime.lab.state(name), self._now()):
            self._store.async_delay_save(self._data, BOOT_SAVE_DELAY)

    def _now(self) -> float:
        return self.runtime.lab.clock()

    # Listeners (the calendar)

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` when a booking is added, changes or goes."""
        self._listeners.append(update)
        return lambda: self._listeners.remove(update)

    def _notify(self) -> None:
        for update in list(self._listeners):
            update()

    # Lead times

    def lead(self, name: str) -> float:
        """Seconds before a start to power a resource on (see BootTimes.lead)."""
        lab = self.runtime.lab
        return self.boot.lead(
            name, lab.parents, lambda n: lab.spec(n).policy.start_timeout
        )

    def candidates(self, labels: tuple[str, ...]) -> list[str]:
        """The lab's resources carrying every label."""
        lab = self.runtime.lab
        return [n for n in lab.names if set(labels) <= lab.spec(n).labels]

    # Booking, deleting

    def _checked(
        self,
        request: BookingRequest,
        user_id: str | None,
        *,
        admin: bool,
        booking_id: str | None = None,
    ) -> Booking:
        """The request's booking, checked: times, resources, conflicts.

        Its power-on time is not before now (one whose time has come is taken at
        once). `booking_id`: the booking it replaces (an edit), not collided with.
        """
        now = self._now()
        start, end = request.start.timestamp(), request.end.timestamp()
        if end <= start or end <= now:
            raise BookingTimesError
        lab = self.runtime.lab
        if request.resources:
            for name in request.resources:
                lab.spec(name)  # UnknownResourceError
            candidates = list(request.resources)
        else:
            candidates = self.candidates(request.labels)
            if len(candidates) < request.count:
                raise NotEnoughFreeError(
                    sorted(request.labels), request.count, len(candidates)
                )
        booking = Booking(
            id=booking_id or new_booking_id(),
            holder=request.holder,
            start=start,
            end=end,
            resources=request.resources,
            labels=request.labels,
            count=request.count,
            exclusive=request.exclusive,
            user_id=user_id,
            admin=admin,
            created=now,
        )
        self.book.check(booking, self.candidates, local_text)
        booking.power_on_at = max(
            now, start - max(self.lead(name) for name in candidates)
        )
        return booking

    async def async_book(
        self, request: BookingRequest, user_id: str | None, *, admin: bool
    ) -> Booking:
        """Check, store and plan a booking; taken at once when its power-on time is due.

        A booking taken at once is refused with the acquire's own error, and kept
        nowhere; one planned for later is answered once it is on disk.
        """
        booking = self._checked(request, user_id, admin=admin)
        await self._async_keep(booking)
        return booking

    async def _async_keep(self, booking: Booking) -> None:
        """Take it if due (a refusal raises, nothing kept), then store and plan it."""
        if (
            booking.status is BookingStatus.SCHEDULED
            and booking.power_on_at <= self._now()
            and (refusal := await self._async_try_take(booking, self._now()))
        ):
            raise refusal
        self.book.add(booking)
        await self._async_save()
        self._plan(booking)
        self._notify()

    async def async_update(
        self,
        booking_id: str,
        request: BookingRequest,
        user_id: str | None,
        *,
        admin: bool,
    ) -> Booking:
        """Change a booking (as its maker may delete it): checked as a new one.

        Under way, with the same resources (or labels and count) and exclusivity, it
        keeps its holds; otherwise they are released and it is planned (or taken) anew.
        """
        old = self._owned(booking_id, user_id, admin=admin)
        new = self._checked(request, old.user_id, admin=old.admin, booking_id=old.id)
        keeps = (
            old.status is BookingStatus.TAKEN
            and new.power_on_at <= self._now()
            and (new.resources, new.labels, new.count, new.exclusive)
            == (old.resources, old.labels, old.count, old.exclusive)
        )
        if (cancel := self._timers.pop(old.id, None)) is not None:
            cancel()
        self.book.remove(old.id)
        if keeps:
            new.status, new.tokens, new.taken = old.status, old.tokens, old.taken
        else:
            self._release(old)
            await self.runtime.storage.async_committed()
        try:
            await self._async_keep(new)
        except LabError:
            await self._async_save()  # the old one is gone: refused, nothing kept
            self._notify()
            raise
        return new

    def _owned(self, booking_id: str, user_id: str | None, *, admin: bool) -> Booking:
        """A booking its maker (or an administrator) may change or delete."""
        booking = self.book.get(booking_id)
        if not admin and booking.user_id is not None and booking.user_id != user_id:
            raise NotBookingOwnerError
        return booking

    async def async_delete(
        self, booking_id: str, user_id: str | None, *, admin: bool
    ) -> Booking:
        """Delete a booking (its maker's or, for an administrator, anyone's): release it."""
        booking = self._owned(booking_id, user_id, admin=admin)
        await self._async_finish(booking)
        return booking

    # Timers

    def _plan(self, booking: Booking) -> None:
        """Arm the booking's next timer: its power-on time, else its end."""
        if self._stopped:
            return  # planned again from the store when the lab starts again
        due = (
            booking.power_on_at
            if booking.status is BookingStatus.SCHEDULED
            else booking.end
        )
        self._timers[booking.id] = async_track_point_in_utc_time(
            self.hass,
            partial(self._async_due, booking.id),
            dt_util.utc_from_timestamp(min(due, booking.end)),
        )

    async def _async_due(self, booking_id: str, _now: datetime) -> None:
        del self._timers[booking_id]  # a deletion cancels it
        booking = self.book.get(booking_id)
        if booking.end <= self._now():
            await self._async_finish(booking)
            return
        taking = self.hass.loop.create_future()
        self._taking.add(taking)
        try:
            if refusal := await self._async_try_take(booking, self._now()):
                self._refuse(booking, refusal)
        finally:
            self._taking.discard(taking)
            taking.set_result(None)
        if booking.id not in self.book:  # deleted while its holds were taken
            self._release(booking)
            await self.runtime.storage.async_committed()
            return
        await self._async_save()
        self._plan(booking)
        self._notify()

    async def _async_try_take(self, booking: Booking, now: float) -> LabError | None:
        """Take its holds; the refusal, unless it is worth trying again before its start.

        Busy (somebody else's turn first): it stays scheduled, trying again a little
        later, until its start.
        """
        try:
            await self._async_take(booking)
        except _BUSY as err:
            if now >= booking.start:
                return err
            booking.reason = str(err)
            booking.power_on_at = min(booking.start, now + BUSY_RETRY)
        except LabError as err:
            return err
        return None

    def _refuse(self, booking: Booking, err: LabError) -> None:
        """Its holds cannot be taken: refused until its end, and said so."""
        booking.status = BookingStatus.REFUSED
        booking.reason = str(err)
        LOGGER.warning("Booking of %s refused: %s", booking.holder, err)
        self.hass.bus.async_fire(
            EVENT_BOOKING_REFUSED,
            {
                "lab": self.runtime.entry.title,
                "booking": booking.id,
                "holder": booking.holder,
                "resources": list(booking.resources),
                "labels": list(booking.labels),
                "start": iso_time(booking.start),
                "reason": str(err),
            },
        )

    async def _async_take(self, booking: Booking) -> None:
        """Take the booking's holds (as its maker would), on disk."""
        runtime = self.runtime
        located = (
            dict.fromkeys(booking.resources, runtime)
            if booking.resources
            else pool(self.hass, booking.labels, booking.count, within=[runtime])
        )
        taken = await async_acquire(
            located,
            booking.holder,
            kind=TokenKind.HOLD,
            ttl=None,
            user_id=booking.user_id,
            admin=booking.admin,
            wait_timeout=None,
            exclusive=booking.exclusive,
        )
        booking.tokens = tuple(token.id for _, token in taken)
        booking.taken = tuple(token.resource for _, token in taken)
        booking.status = BookingStatus.TAKEN
        booking.reason = None

    def _release(self, booking: Booking) -> None:
        ledger = self.runtime.lab.ledger
        if live := [token for token in booking.tokens if ledger.is_live(token)]:
            self.runtime.lab.release(live)

    async def _async_finish(self, booking: Booking) -> None:
        """Its end (or its deletion): release its holds and forget it, on disk."""
        if (cancel := self._timers.pop(booking.id, None)) is not None:
            cancel()
        self._release(booking)
        self.book.remove(booking.id)
        await self.runtime.storage.async_committed()
        await self._async_save()
        self._notify()

    def view(self, booking: Booking) -> dict[str, Any]:
        """A booking as the action and the REST API return it."""
        return {
            "id": booking.id,
            "lab": self.runtime.entry.title,
            "holder": booking.holder,
            "start": iso_time(booking.start),
            "end": iso_time(booking.end),
            "resources": list(booking.resources),
            "labels": list(booking.labels),
            "count": booking.count,
            "exclusive": booking.exclusive,
            "status": booking.status.value,
            "reason": booking.reason,
            "taken": list(booking.taken),
            "power_on_at": iso_time(booking.power_on_at),
        }


# Across labs: the action and the REST API


async def async_book(
    hass: HomeAssistant, request: BookingRequest, user_id: str | None, *, admin: bool
) -> tuple[LabBookings, Booking]:
    """Book in the lab of the named resources, or the first lab with enough labelled."""
    if request.resources:
        located = await async_found(hass, partial(locate, hass, request.resources))
        labs = {id(runtime): runtime for runtime in located.values()}
        if len(labs) > 1:
            raise BookingAcrossLabsError(list(request.resources))
        [runtime] = labs.values()
    else:
        await async_labs_loaded(hass)
        found = [
            (len(rt.bookings.candidates(request.labels)), rt) for rt in runtimes(hass)
        ]
        enough = [rt for carrying, rt in found if carrying >= request.count]
        if not enough:
            most = max((carrying for carrying, _ in found), default=0)
            raise NotEnoughFreeError(sorted(request.labels), request.count, most)
        runtime = enough[0]
    bookings = runtime.bookings
    return bookings, await bookings.async_book(request, user_id, admin=admin)


def all_bookings(hass: HomeAssistant) -> list[tuple[LabBookings, Booking]]:
    """Every lab's bookings, the earliest first."""
    found = [
        (runtime.bookings, booking)
        for runtime in runtimes(hass)
        for booking in runtime.bookings.book.all()
    ]
    return sorted(found, key=lambda pair: pair[1].start)


async def async_delete_booking(
    hass: HomeAssistant, booking_id: str, user_id: str | None, *, admin: bool
) -> None:
    """Delete a booking of any lab (once labs still loading have loaded)."""
    await async_labs_loaded(hass)
    for runtime in runtimes(hass):
        if booking_id in runtime.bookings.book:
            await runtime.bookings.async_delete(booking_id, user_id, admin=admin)
            return
    raise UnknownBookingError(booking_id)
