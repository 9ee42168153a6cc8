"""A calendar per lab: its leases, holds and bookings; bookings made from the calendar.

Every live token is an event ("holder: resource", from when it was taken to its
expiry; a hold without an end reaches OPEN_END past now, its description says "until
released"), except the tokens of bookings, which show as their booking's event. A
booking is an event from its start to its end; creating an event books (the text is
read by core/bookings.parse_event_text), changing one changes the booking and deleting
one deletes it, which releases its holds. Tokens are released with labpower.release, not from the calendar.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
import hashlib
from typing import Any, override

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.components.calendar.const import (
    EVENT_DESCRIPTION,
    EVENT_END,
    EVENT_RRULE,
    EVENT_START,
    EVENT_SUMMARY,
    CalendarEntityFeature,
)
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .bookings import BookingRequest
from .const import DOMAIN
from .core.bookings import (
    Booking,
    booking_description,
    booking_summary,
    parse_event_text,
)
from .core.model import UsageToken
from .entity import LabEntity
from .helpers import labpower_errors
from .runtime import LabpowerConfigEntry, Topic

PARALLEL_UPDATES = 0

# How far past now an open-ended hold reaches in the calendar.
OPEN_END = timedelta(hours=1)
TOKEN_UID_PREFIX = "token-"

CALENDAR = CalendarEntityDescription(key="calendar", translation_key="calendar")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LabpowerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One calendar per lab."""
    async_add_entities([LabCalendar(entry.runtime_data, CALENDAR)])


def _utc(timestamp: float) -> datetime:
    return dt_util.utc_from_timestamp(timestamp)


def token_uid(token: UsageToken) -> str:
    """A token's event uid: derived from its id, which it does not reveal."""
    digest = hashlib.sha256(token.id.encode()).hexdigest()[:16]
    return f"{TOKEN_UID_PREFIX}{digest}"


def token_event(token: UsageToken, now: datetime) -> CalendarEvent:
    """A live lease or hold as an event."""
    mark = " (exclusive)" if token.exclusive else ""
    start = _utc(token.created)
    end = now + OPEN_END if token.expires is None else _utc(token.expires)
    until = "until released" if token.expires is None else end.isoformat()
    return CalendarEvent(
        start=start,
        end=max(end, start + timedelta(seconds=1)),
        summary=f"{token.holder}: {token.resource}{mark}",
        description=(
            f"resource: {token.resource}\nholder: {token.holder}\n"
            f"kind: {token.kind.value}\nexclusive: {'yes' if token.exclusive else 'no'}"
            f"\nends: {until}"
        ),
        uid=token_uid(token),
    )


def booking_event(booking: Booking) -> CalendarEvent:
    """A booking as an event (its uid is the booking's id)."""
    return CalendarEvent(
        start=_utc(booking.start),
        end=_utc(booking.end),
        summary=booking_summary(booking),
        description=booking_description(booking),
        uid=booking.id,
    )


def _moment(value: date | datetime) -> datetime:
    """An event's start or end; a date (all day) is local midnight."""
    if isinstance(value, datetime):
        return dt_util.as_utc(value if value.tzinfo else dt_util.as_local(value))
    return dt_util.as_utc(
        datetime.combine(value, time(), tzinfo=dt_util.get_default_time_zone())
    )


def _request(event: dict[str, Any]) -> BookingRequest:
    """The booking an event's fields ask for (the text: parse_event_text)."""
    if event.get(EVENT_RRULE):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="booking_recurring"
        )
    text = parse_event_text(event[EVENT_SUMMARY], event.get(EVENT_DESCRIPTION))
    return BookingRequest(
        holder=text.holder,
        start=_moment(event[EVENT_START]),
        end=_moment(event[EVENT_END]),
        resources=text.resources,
        labels=text.labels,
        count=text.count,
        exclusive=text.exclusive,
    )


def _check_booking_uid(uid: str) -> None:
    """A token's event is not changed or deleted from the calendar: it is released."""
    if uid.startswith(TOKEN_UID_PREFIX):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="calendar_token_event"
        )


class LabCalendar(LabEntity, CalendarEntity):
    """The lab's leases, holds and bookings."""

    topics = frozenset({Topic.COMMITTED})
    _first: CalendarEvent | None = None
    _first_known = False
    _first_token: str | None = None  # the id of the token `_first` shows, if one
    _first_expires: float | None = None  # that token's expiry when `_first` was made
    _attr_supported_features = (
        CalendarEntityFeature.CREATE_EVENT
        | CalendarEntityFeature.DELETE_EVENT
        | CalendarEntityFeature.UPDATE_EVENT
    )

    def _events(self) -> list[CalendarEvent]:
        now = dt_util.utcnow()
        bookings = self.runtime.bookings.book.all()
        booked = {token for booking in bookings for token in booking.tokens}
        lab = self.runtime.lab
        events = [booking_event(booking) for booking in bookings]
        events.extend(
            token_event(token, now)
            for name in lab.names
            for token in lab.ledger.tokens(name)
            if token.id not in booked
        )
        return sorted(events, key=lambda event: (event.start, event.uid or ""))

    @override
    def shown(self) -> tuple[Any, ...]:
        # The description, not the end: an open hold's end moves with now
        event = self.event
        return () if event is None else (event.uid, event.summary, event.description)

    @property
    @override
    def event(self) -> CalendarEvent | None:
        """The event going on now, else the next one.

        Asked several times per state write, after each journal commit: kept until it
        ends, its token ends or the bookings change (`_changed`).
        """
        now = dt_util.utcnow()
        first = self._first
        if not self._first_known or (
            first is not None and first.end_datetime_local <= now
        ):
            self._first = first = self._coming(now)
            self._first_known = True
        return first

    def _coming(self, now: datetime) -> CalendarEvent | None:
        """The first event by start (then uid) that has not ended, in one pass.

        Only that token becomes an event: a lab of thousands holds thousands of tokens.
        """
        bookings = self.runtime.bookings.book.all()
        booked = {token for booking in bookings for token in booking.tokens}
        coming = [
            event
            for event in map(booking_event, bookings)
            if event.end_datetime_local > now
        ]
        stamp = now.timestamp()
        first: list[UsageToken] = []  # the tokens that started first (ties: the uid)
        for token in self.runtime.lab.ledger.all_tokens():
            if token.id in booked or (
                token.expires is not None
                and max(token.expires, token.created + 1) <= stamp
            ):
                continue
            if not first or token.created < first[0].created:
                first = [token]
            elif token.created == first[0].created:
                first.append(token)
        candidates: list[tuple[CalendarEvent, UsageToken | None]] = [
            (event, None) for event in coming
        ]
        candidates.extend((token_event(token, now), token) for token in first)
        event, shown = min(
            candidates,
            key=lambda pair: (pair[0].start, pair[0].uid or ""),
            default=(None, None),
        )
        self._first_token = None if shown is None else shown.id
        self._first_expires = None if shown is None else shown.expires
        return event

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the bookings too; drop the alarms when Home Assistant stops."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.runtime.bookings.async_add_listener(self._bookings_changed)
        )
        self.async_on_remove(
            self.hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, self._async_stopping)
        )

    async def _async_stopping(self, _event: Event) -> None:
        await CalendarEntity.async_will_remove_from_hass(self)

    @callback
    def _bookings_changed(self) -> None:
        self._first_token = None
        self._changed()

    @callback
    @override
    def _changed(self) -> None:
        self._first_known = self._first_token_still_first()
        self.async_update_event_listeners()
        super()._changed()

    def _first_token_still_first(self) -> bool:
        """After a change of the tokens: whether the token shown is still the first.

        A token taken since started after it (a token starts when it is taken), so the
        first event moves only when its token ends or a booking changes: a lab of
        thousands in use looks at one token per change, not at all of them. Its event is
        made again when a renewal moved its end (Home Assistant validates each event
        made: a tenth of a millisecond).
        """
        token_id = self._first_token
        ledger = self.runtime.lab.ledger
        if not self._first_known or token_id is None or not ledger.is_live(token_id):
            return False
        token = ledger.get(token_id)
        if token.expires != self._first_expires:
            self._first = token_event(token, dt_util.utcnow())
            self._first_expires = token.expires
        return True

    @override
    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """The events overlapping the range."""
        return [
            event
            for event in self._events()
            if event.start_datetime_local < end_date
            and event.end_datetime_local > start_date
        ]

    @labpower_errors
    @override
    async def async_create_event(self, **kwargs: Any) -> None:
        """Book what the event's summary and description say, for its time."""
        # The calendar's caller is not known (its websocket command passes no user):
        # a booking made here is the calendar's, and anyone who may use it may delete it.
        await self.runtime.bookings.async_book(_request(kwargs), None, admin=False)

    @labpower_errors
    @override
    async def async_update_event(
        self,
        uid: str,
        event: dict[str, Any],
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Change a booking made here, as the event now says; never a token."""
        _check_booking_uid(uid)
        await self.runtime.bookings.async_update(
            uid, _request(event), None, admin=False
        )

    @labpower_errors
    @override
    async def async_delete_event(
        self,
        uid: str,
        recurrence_id: str | None = None,
        recurrence_range: str | None = None,
    ) -> None:
        """Delete a booking made here (its holds are released); never a token."""
        _check_booking_uid(uid)
        # Only the calendar's own bookings: one made through the action or REST
        # belongs to its user, who deletes it there.
        await self.runtime.bookings.async_delete(uid, None, admin=False)
