"""Bookings: resources reserved for a time slot, powered up before it starts.

A booking names resources (or labels and a count), a holder, a start and an end, and
whether it is exclusive. Before its start (its lead time: how long the resources take
to become available, learned from their measured boot times) it takes one hold per
resource, through the same acquire as everybody (the glue, bookings.py), and releases
them at its end. Two bookings that overlap in time and share a resource conflict when
either is exclusive. Pure: time is passed in, nothing here imports Home Assistant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import secrets
from typing import Any

from .model import LabError, ResourceState

# How a measured boot time becomes a lead time: a quarter more, plus half a minute
# (the power-on stagger, a slow DHCP). Without a measurement: the resource's
# start_timeout, which bounds how long a start may take.
LEAD_FACTOR = 1.25
LEAD_MARGIN = 30.0
# The boot times kept per resource; the longest of them counts.
BOOT_SAMPLES = 5

BOOKINGS_VERSION = 1


class BookingStatus(StrEnum):
    """Where a booking is: waiting for its power-up, holding, or refused."""

    SCHEDULED = "scheduled"  # its tokens are taken at start minus its lead time
    TAKEN = "taken"  # it holds its resources (powering up, then in use) until its end
    REFUSED = "refused"  # taking them was refused (reason); it stays until its end


class BookingTimesError(LabError):
    """A booking that ends before it starts, or in the past."""

    key = "booking_times"

    def __init__(self) -> None:
        """No detail: the rule is the message."""
        super().__init__("A booking must end after it starts, and in the future")


class BookingTargetError(LabError):
    """A booking must name resources, or labels (with a count), not both."""

    key = "booking_target"

    def __init__(self) -> None:
        """No detail: the rule is the message."""
        super().__init__("A booking names resources, or labels and a count, not both")


class BookingConflictError(LabError):
    """An exclusive booking (this one or another) overlaps on a resource."""

    key = "booking_conflict"

    def __init__(self, resources: str, holders: str, start: str, end: str) -> None:
        """Name what is booked, by whom, and when."""
        super().__init__(
            f"{resources} is booked exclusively by {holders} from {start} to {end}",
            resources=resources,
            holders=holders,
            start=start,
            end=end,
        )


class UnknownBookingError(LabError):
    """No booking has this id."""

    key = "unknown_booking"

    def __init__(self, booking: str) -> None:
        """Name the id."""
        super().__init__(f"Unknown booking {booking}", booking=booking)


class NotBookingOwnerError(LabError):
    """Only who made a booking (or an administrator) may delete it."""

    key = "not_booking_owner"

    def __init__(self) -> None:
        """No detail."""
        super().__init__("This booking belongs to another user")


class BookingAcrossLabsError(LabError):
    """The resources of one booking belong to different labs."""

    key = "booking_across_labs"

    def __init__(self, resources: list[str]) -> None:
        """Name the resources."""
        names = ", ".join(resources)
        super().__init__(
            f"{names} belong to different labs: a booking is one lab's",
            resources=names,
        )


class BookingTextError(LabError):
    """A calendar event whose text does not say what to book."""

    key = "booking_text"

    def __init__(self, detail: str) -> None:
        """Say what is wrong with it."""
        super().__init__(
            f"The event does not say what to book: {detail}", detail=detail
        )


@dataclass(slots=True)
class Booking:
    """A slot on resources: by name, or `count` of those carrying every label."""

    id: str
    holder: str
    start: float
    end: float
    resources: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    count: int = 1
    exclusive: bool = False
    user_id: str | None = None
    admin: bool = False  # made by an administrator (no per-user token limit)
    created: float = 0.0
    status: BookingStatus = BookingStatus.SCHEDULED
    reason: str | None = None  # why it was refused
    tokens: tuple[str, ...] = ()  # the token ids it holds
    taken: tuple[str, ...] = ()  # the resources they are on
    power_on_at: float = 0.0  # when it takes its tokens (start minus its lead time)

    @property
    def booked(self) -> tuple[str, ...]:
        """The resources it is known to use: those named, else those it took."""
        return self.resources or self.taken

    def overlaps(self, start: float, end: float) -> bool:
        """Whether it overlaps [start, end)."""
        return self.start < end and start < self.end

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for the store."""
        return {
            "id": self.id,
            "holder": self.holder,
            "start": self.start,
            "end": self.end,
            "resources": list(self.resources),
            "labels": list(self.labels),
            "count": self.count,
            "exclusive": self.exclusive,
            "user_id": self.user_id,
            "admin": self.admin,
            "created": self.created,
            "status": self.status.value,
            "reason": self.reason,
            "tokens": list(self.tokens),
            "taken": list(self.taken),
            "power_on_at": self.power_on_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Booking:
        """What as_dict returned."""
        return cls(
            id=str(data["id"]),
            holder=str(data["holder"]),
            start=float(data["start"]),
            end=float(data["end"]),
            resources=tuple(map(str, data.get("resources", ()))),
            labels=tuple(map(str, data.get("labels", ()))),
            count=int(data.get("count", 1)),
            exclusive=data.get("exclusive") is True,
            user_id=None if data.get("user_id") is None else str(data["user_id"]),
            admin=data.get("admin") is True,
            created=float(data.get("created", 0.0)),
            status=BookingStatus(data.get("status", BookingStatus.SCHEDULED.value)),
            reason=None if data.get("reason") is None else str(data["reason"]),
            tokens=tuple(map(str, data.get("tokens", ()))),
            taken=tuple(map(str, data.get("taken", ()))),
            power_on_at=float(data.get("power_on_at", data["start"])),
        )


def new_booking_id() -> str:
    """A booking's id (the calendar event's uid; not a secret)."""
    return secrets.token_hex(8)


class BookingBook:
    """A lab's bookings, and the conflicts between them."""

    def __init__(self) -> None:
        """Start empty."""
        self._bookings: dict[str, Booking] = {}

    def __len__(self) -> int:
        """How many bookings there are."""
        return len(self._bookings)

    def __contains__(self, booking_id: object) -> bool:
        """Whether a booking has this id."""
        return booking_id in self._bookings

    def all(self) -> list[Booking]:
        """Every booking, the earliest first."""
        return sorted(self._bookings.values(), key=lambda b: (b.start, b.id))

    def get(self, booking_id: str) -> Booking:
        """A booking by id."""
        try:
            return self._bookings[booking_id]
        except KeyError:
            raise UnknownBookingError(booking_id) from None

    def add(self, booking: Booking) -> None:
        """Keep a booking (checked with `check` first)."""
        self._bookings[booking.id] = booking

    def remove(self, booking_id: str) -> Booking:
        """Forget a booking."""
        booking = self.get(booking_id)
        del self._bookings[booking_id]
        return booking

    def check(
        self,
        new: Booking,
        carrying: Callable[[tuple[str, ...]], list[str]],
        when: Callable[[float], str] = str,
    ) -> None:
        """Raise BookingConflictError where `new` and an overlapping booking collide.

        Bookings collide when either is exclusive. Named resources (or those a booking
        by labels has taken) collide when shared. A booking by labels not taken yet
        counts as holding `count` of the resources carrying its labels (`carrying`
        lists them): it collides when too few of those would be left to it.
        """
        blocking = [
            other
            for other in self._bookings.values()
            if other.id != new.id
            and other.overlaps(new.start, new.end)
            and (new.exclusive or other.exclusive)
        ]

        def conflict(other: Booking, what: Iterable[str]) -> BookingConflictError:
            return BookingConflictError(
                ", ".join(what), other.holder, when(other.start), when(other.end)
            )

        for other in blocking:
            if shared := [name for name in new.booked if name in other.booked]:
                raise conflict(other, shared)
        held = {name for other in blocking for name in other.booked}
        if new.booked:
            for other in blocking:
                if other.booked:
                    continue
                pool = carrying(other.labels)
                if any(name in pool for name in new.booked) and (
                    len(set(pool) - set(new.booked) - held) < other.count
                ):
                    raise conflict(other, new.booked)
            return
        pool = carrying(new.labels)
        pending = [
            other
            for other in blocking
            if not other.booked and set(carrying(other.labels)) & set(pool)
        ]
        left = len(set(pool) - held) - sum(other.count for other in pending)
        if left < new.count and (pending or held):
            first = (pending or blocking)[0]
            raise conflict(first, sorted(held) or [", ".join(new.labels)])

    def to_list(self) -> list[dict[str, Any]]:
        """Plain data of every booking."""
        return [booking.as_dict() for booking in self.all()]

    def load(self, data: Iterable[Any]) -> list[str]:
        """Restore what to_list returned; returns why items were left out (damaged)."""
        problems: list[str] = []
        for item in data:
            try:
                booking = Booking.from_dict(item)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                problems.append(f"{str(item)[:80]}: {err!r}")
                continue
            self._bookings[booking.id] = booking
        return problems


@dataclass(slots=True)
class BootTimes:
    """How long each resource took from `starting` to `available`, measured."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    _since: dict[str, float] = field(default_factory=dict)

    def observe(self, name: str, state: ResourceState, now: float) -> bool:
        """A resource is in `state` now; True when that completed a measurement."""
        if state is ResourceState.STARTING:
            self._since.setdefault(name, now)
            return False
        began = self._since.pop(name, None)
        if state is not ResourceState.AVAILABLE or began is None:
            return False
        kept = self.samples.setdefault(name, [])
        kept.append(round(now - began, 3))
        del kept[:-BOOT_SAMPLES]
        return True

    def boot_time(self, name: str) -> float | None:
        """The longest of the recent measurements (None: never measured)."""
        kept = self.samples.get(name)
        return max(kept) if kept else None

    def lead(
        self,
        name: str,
        parents: Callable[[str], Iterable[str]],
        default: Callable[[str], float],
    ) -> float:
        """Seconds before a start to power `name` on: its chain, parents first.

        A child is switched on once its parents are available, so the lead of a
        resource is its own (LEAD_FACTOR times its boot time plus LEAD_MARGIN; its
        `default` when not measured) plus the longest lead of its parents.
        """
        memo: dict[str, float] = {}

        def lead_of(current: str) -> float:
            if current not in memo:
                boot = self.boot_time(current)
                own = (default(current) if boot is None else boot) * LEAD_FACTOR
                memo[current] = (
                    own
                    + LEAD_MARGIN
                    + max((lead_of(p) for p in parents(current)), default=0.0)
                )
            return memo[current]

        return lead_of(name)

    def to_dict(self) -> dict[str, list[float]]:
        """The measurements, for the store."""
        return {name: list(kept) for name, kept in self.samples.items()}

    def load(self, data: Mapping[str, Iterable[float]]) -> None:
        """Restore what to_dict returned (what cannot be read is measured again)."""
        for name, kept in data.items():
            try:
                self.samples[str(name)] = [float(v) for v in kept][-BOOT_SAMPLES:]
            except TypeError, ValueError:
                continue


# The text of a calendar event: what to book, on lines of its description.
KEY_RESOURCE = "resource"
KEY_LABELS = "labels"
KEY_COUNT = "count"
KEY_HOLDER = "holder"
KEY_EXCLUSIVE = "exclusive"
EXCLUSIVE_MARK = "(exclusive)"
_YES = frozenset({"yes", "true", "on", "1"})
_NO = frozenset({"no", "false", "off", "0"})
DEFAULT_HOLDER = "calendar"


@dataclass(frozen=True, slots=True)
class BookingText:
    """What a calendar event's summary and description ask for."""

    holder: str
    resources: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    count: int = 1
    exclusive: bool = False


def _names(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))


def parse_event_text(summary: str, description: str | None) -> BookingText:
    """Read a booking from a calendar event (README: Bookings from the calendar).

    The description may hold lines `resource: a, b`, `labels: x, y`, `count: 2`,
    `holder: ...` and `exclusive: yes`; other lines are notes. Without resource or
    labels lines the summary names the resources ("builder-1, builder-2"), and a
    summary ending in "(exclusive)" books them exclusively. The holder is the
    `holder` line, else the summary when the description named what to book, else
    "calendar". An event this integration wrote ("holder: what") reads back the same.
    """
    fields: dict[str, str] = {}
    for line in (description or "").splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().casefold()
        if sep and key in (
            KEY_RESOURCE,
            KEY_LABELS,
            KEY_COUNT,
            KEY_HOLDER,
            KEY_EXCLUSIVE,
        ):
            fields[key] = value.strip()
    summary = summary.strip()
    exclusive = False
    if summary.casefold().endswith(EXCLUSIVE_MARK):
        exclusive = True
        summary = summary[: -len(EXCLUSIVE_MARK)].strip()
    if KEY_EXCLUSIVE in fields:
        flag = fields[KEY_EXCLUSIVE].casefold()
        if flag not in _YES | _NO:
            raise BookingTextError(
                f"exclusive is '{fields[KEY_EXCLUSIVE]}', not yes or no"
            )
        exclusive = flag in _YES
    resources = _names(fields.get(KEY_RESOURCE, ""))
    labels = _names(fields.get(KEY_LABELS, ""))
    if resources and labels:
        raise BookingTextError("it names both resources and labels")
    count = 1
    if KEY_COUNT in fields:
        if not labels:
            raise BookingTextError("a count needs labels")
        try:
            count = int(fields[KEY_COUNT])
        except ValueError:
            count = 0
        if count < 1:
            raise BookingTextError(
                f"count is '{fields[KEY_COUNT]}', not a whole number"
            )
    holder = fields.get(KEY_HOLDER, "")
    if resources or labels:
        holder = holder or summary
    else:
        named, _, what = summary.rpartition(": ")
        holder = holder or named
        resources = _names(what)
        if not resources:
            raise BookingTextError("no resource named")
    return BookingText(
        holder=holder.strip() or DEFAULT_HOLDER,
        resources=resources,
        labels=labels,
        count=count,
        exclusive=exclusive,
    )


def booking_summary(booking: Booking) -> str:
    """How a booking reads in the calendar: "holder: what" (parse_event_text reads it)."""
    what = (
        ", ".join(booking.resources)
        if booking.resources
        else f"{booking.count} x {', '.join(booking.labels)}"
    )
    mark = f" {EXCLUSIVE_MARK}" if booking.exclusive else ""
    refused = "refused: " if booking.status is BookingStatus.REFUSED else ""
    return f"{refused}{booking.holder}: {what}{mark}"


def booking_description(booking: Booking) -> str:
    """The lines parse_event_text reads, and what the booking did."""
    lines = [
        f"{KEY_RESOURCE}: {', '.join(booking.resources)}"
        if booking.resources
        else f"{KEY_LABELS}: {', '.join(booking.labels)}\n{KEY_COUNT}: {booking.count}",
        f"{KEY_HOLDER}: {booking.holder}",
        f"{KEY_EXCLUSIVE}: {'yes' if booking.exclusive else 'no'}",
        f"status: {booking.status.value}",
    ]
    if booking.taken and not booking.resources:
        lines.append(f"taken: {', '.join(booking.taken)}")
    if booking.reason:
        lines.append(f"reason: {booking.reason}")
    return "\n".join(lines)
