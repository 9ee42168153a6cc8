"""The lab runtime: the core Lab wired to Home Assistant (storage, events, repairs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import (
    CALLBACK_TYPE,
    CoreState,
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
)
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .build import (
    ResourceBuilder,
    bmc_client,
    file_key,
    stagger_policy,
    subentry_data,
)
from .const import (
    CHECKER_ICMP,
    CONF_BMC_NAME,
    CONF_CHECKER,
    CONF_LAB_FILE,
    CONF_METER_ENTITY,
    CONF_UI_HOLD_EXCLUSIVE,
    CONF_UI_HOLD_MAX,
    CONF_UNIT_NAME,
    CONF_UPS_ENTITIES,
    DOMAIN,
    EVENT_HALTED,
    EVENT_POWER_CHANGED,
    EVENT_RESUMED,
    EVENT_TOKEN_ACQUIRED,
    EVENT_TOKEN_EXPIRED,
    EVENT_TOKEN_RELEASED,
    EVENT_TOKEN_REVOKED,
    FEED_SHARED,
    ISSUE_HALTED,
    LOGGER,
    START_FAILURES_FOR_REPAIR,
    SUBENTRY_BMC,
    SUBENTRY_PDU,
    SUBENTRY_RESOURCE,
)
from .coordinator import CREDENTIAL_ISSUES, PDU_INVALID, PduCoordinator, unit_issue_id
from .core.events import EventKind, LabEvent
from .core.feeds import FeedUse, SharedFeed, shared_feeds
from .core.lab import Lab, ResourceSpec
from .core.model import LabError, ResourceState
from .core.reconciler import Timing
from .core.switching import (
    ConfigurationSwitchError,
    SwitchError,
)
from .drivers.bmc import BmcClient
from .drivers.icmp import (
    ICMP_UNAVAILABLE,
    IcmpSweeper,
    IcmpUnavailableError,
    detect_privileged,
)
from .energy import EnergyTracker
from .feeds import feed_uses
from .helpers import config_subentry_of, raise_repair
from .labfile import LabFile, LabFileError, async_load
from .reminders import Reminders
from .schema import LAB_OPTION_DEFAULTS
from .storage import LabStorage
from .token_events import TokenEvents
from .ups import UpsPolicy

if TYPE_CHECKING:
    from .bookings import LabBookings

type LabpowerConfigEntry = ConfigEntry[LabRuntime]


class Topic(StrEnum):
    """What changed, so only the entities showing it are recomputed."""

    STATE = "state"  # power, availability, state and reason
    HOLDERS = "holders"  # tokens: holder counts and what the resource should be
    ENERGY = "energy"  # energy counters
    # token changes on disk: what an answered request changed (one per group commit)
    COMMITTED = "committed"


ENERGY_INTERVAL = timedelta(seconds=60)

POWERED_STATES = frozenset(
    {ResourceState.STARTING, ResourceState.AVAILABLE, ResourceState.STOPPING}
)

# A renewal is not an event on the bus: it changes an expiry only, and every bus event
# is a row in the recorder's database (a CI job renews every few minutes for hours).
_TOKEN_EVENTS = {
    EventKind.TOKEN_ACQUIRED: EVENT_TOKEN_ACQUIRED,
    EventKind.TOKEN_RELEASED: EVENT_TOKEN_RELEASED,
    EventKind.TOKEN_EXPIRED: EVENT_TOKEN_EXPIRED,
    EventKind.TOKEN_REVOKED: EVENT_TOKEN_REVOKED,
}


@dataclass(slots=True, repr=False)
class LabRuntime:
    """What a loaded Lab entry holds: the lab and its Home Assistant wiring.

    No generated repr: Home Assistant names a timer's job after its callback, and the repr
    of a bound method of a runtime with every field of a 5,000-resource lab took tens of
    MiB and most of a second (benchmarks/test_scale.py).
    """

    hass: HomeAssistant
    entry: LabpowerConfigEntry
    lab_device_id: str
    lab: Lab = field(init=False)
    storage: LabStorage = field(init=False)
    icmp: IcmpSweeper = field(init=False)
    energy: EnergyTracker = field(init=False)
    subentry_of: dict[str, str] = field(default_factory=dict)  # resource -> subentry id
    name_of: dict[str, str] = field(default_factory=dict)  # subentry id -> resource
    powered: set[str] = field(default_factory=set)
    bmcs: dict[str, BmcClient] = field(default_factory=dict)  # subentry id -> client
    bmc_of: dict[str, str] = field(default_factory=dict)  # resource -> BMC subentry id
    bmc_keys: dict[str, str] = field(default_factory=dict)  # BMC name -> its key
    units: dict[str, PduCoordinator] = field(default_factory=dict)  # name -> PDU unit
    settings: dict[str, Any] = field(
        default_factory=dict
    )  # options + lab file policies
    ups: UpsPolicy = field(init=False)
    reminders: Reminders = field(init=False)
    token_events: TokenEvents = field(init=False)
    # Set up after the lab has started (bookings.py imports this module).
    bookings: LabBookings = field(init=False, repr=False)
    host_keys: dict[str, str] = field(default_factory=dict)
    # The resources the lab file defines (subentry data), for the feed check.
    file_resources: list[dict[str, Any]] = field(default_factory=list)
    # Resources whose feed another resource uses too: neither is switched.
    blocked: dict[str, SharedFeed] = field(default_factory=dict)
    _listeners: dict[tuple[str | None, Topic], list[CALLBACK_TYPE]] = field(
        default_factory=dict
    )
    _unsubscribe: list[CALLBACK_TYPE] = field(default_factory=list)
    _state_observers: list[Callable[[str], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Create the lab and its store."""
        clock = _utc_timestamp
        self.lab = Lab(
            clock=clock,
            listener=self._on_lab_event,
            timing=Timing(start_failures_for_repair=START_FAILURES_FOR_REPAIR),
            scheduler=self,
        )
        self.storage = LabStorage(
            self.hass, self.entry.entry_id, self.entry.title, self.lab, self._stored
        )
        self.storage.on_commit = lambda: self._notify((), Topic.COMMITTED)
        self.settings = {**LAB_OPTION_DEFAULTS, **self.entry.options}
        self.energy = EnergyTracker(self.hass, self.lab, clock, self.settings)
        self.reminders = Reminders(self.hass, self.lab, self.settings, clock)
        self.token_events = TokenEvents(self.hass, self.device_id_of)

    async def async_start(self) -> None:
        """Build every resource, restore tokens, read real states, then reconcile."""
        lab_file = await self._async_load_lab_file()
        units = subentry_data(self.entry, SUBENTRY_PDU)
        resources = subentry_data(self.entry, SUBENTRY_RESOURCE)
        if lab_file is not None:
            units.extend((file_key("unit", d), d) for d in lab_file.units)
            resources.extend((file_key("resource", d), d) for d in lab_file.resources)
            self.settings.update(lab_file.policies)
            self.file_resources = lab_file.resources
        self.blocked = self._block_shared_feeds()
        uses_icmp = any(data.get(CONF_CHECKER) == CHECKER_ICMP for _, data in resources)
        privileged: bool | None = None
        if uses_icmp:
            with contextlib.suppress(IcmpUnavailableError):
                privileged = await detect_privileged()
        self.icmp = IcmpSweeper(privileged=privileged)
        stored = await self.storage.async_read()
        self.host_keys.update(stored.get("host_keys", {}))
        bmcs = subentry_data(self.entry, SUBENTRY_BMC)
        if lab_file is not None:
            bmcs.extend((file_key("bmc", data), data) for data in lab_file.bmcs)
        for key, data in bmcs:
            self.bmcs[key] = bmc_client(self.hass, data)
            self.bmc_keys[data[CONF_BMC_NAME]] = key
        self._forget_unit_issues()
        for key, data in units:
            try:
                unit = PduCoordinator(self.hass, self.entry, key, data)
            except ConfigurationSwitchError as err:
                # Its resources get a feed that reports the unit missing.
                raise_repair(
                    self.hass,
                    unit_issue_id(PDU_INVALID, self.entry.entry_id, key),
                    PDU_INVALID,
                    {"unit": data[CONF_UNIT_NAME], "detail": str(err)},
                )
                continue
            self.units[unit.name_of_unit] = unit
        watched: dict[str, list[str]] = {}
        specs: list[ResourceSpec] = []
        build = ResourceBuilder(
            self.hass,
            self.icmp,
            self.units,
            self.bmcs,
            self.bmc_keys,
            self.blocked,
            self.host_keys,
            self._remember_host_key,
            self.bmc_of,
        )
        for key, data in resources:
            spec, entities = build.spec(data)
            specs.append(spec)
            self.subentry_of[spec.name] = key
            self.name_of[key] = spec.name
            for entity_id in entities:
                watched.setdefault(entity_id, []).append(spec.name)
            if meter := data.get(CONF_METER_ENTITY):
                self.energy.link_meter(spec.name, meter)
        try:
            self.lab.add_all(self._without_missing_parents(specs))
        except LabError as err:  # a cycle through the lab file and the UI's resources
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key=err.key,
                translation_placeholders=err.placeholders,
            ) from err
        try:
            self.lab.set_stagger(stagger_policy(self.settings))
        except LabError as err:
            LOGGER.error("Power-on stagger ignored: %s", err)
        self._sync_icmp_issue(needed=uses_icmp)
        self.energy.accountant.load(stored.get("energy"))
        await self.energy.async_start()
        await self.storage.async_restore()
        for name, reason in self.lab.halts().items():
            self._raise_halt_issue(name, reason)  # issues are not kept over a restart
        if watched:
            self._unsubscribe.append(
                async_track_state_change_event(
                    self.hass, list(watched), self._entity_changed(watched)
                )
            )
        if self.energy.meter_of:
            self._unsubscribe.append(
                async_track_state_change_event(
                    self.hass, list(self.energy.meter_of.values()), self._meter_changed
                )
            )
        # While Home Assistant starts, the entities a resource is switched by or checked
        # through may not exist yet and their actions may not be registered: read and
        # switch nothing before it runs (resources stay unknown, tokens can be taken).
        if self.hass.state is CoreState.running:
            await self.lab.start()
        else:
            self._unsubscribe.append(
                async_at_started(self.hass, self._async_hass_started)
            )
        for unit in self.units.values():
            self._unsubscribe.append(
                unit.async_add_listener(self._unit_power_listener(unit))
            )
            await unit.async_refresh()
        self.ups = UpsPolicy(
            self.hass,
            self.lab,
            [
                *(unit.ups_entity for unit in self.units.values() if unit.ups_entity),
                *self.settings.get(CONF_UPS_ENTITIES, ()),
            ],
            self.settings,
        )
        self.ups.start()
        self._unsubscribe.append(self.ups.stop)
        if self.bmc_of:
            await self._async_poll_bmc_power()
            self._unsubscribe.append(
                async_track_time_interval(
                    self.hass, self._async_poll_bmc_power, ENERGY_INTERVAL
                )
            )
        self.energy.tick_all()
        self._unsubscribe.append(
            async_track_time_interval(self.hass, self._tick_energy, ENERGY_INTERVAL)
        )
        self._unsubscribe.append(self.reminders.start())

    async def _async_hass_started(self, _hass: HomeAssistant) -> None:
        """Home Assistant runs: read every resource's real state, then reconcile."""
        await self.lab.start()

    async def _async_load_lab_file(self) -> LabFile | None:
        """The lab file named in the options; a repair issue (and None) if it is invalid."""
        path = self.settings.get(CONF_LAB_FILE)
        issue_id = f"lab_file_invalid_{self.entry.entry_id}"
        if not path:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return None
        try:
            lab_file = await async_load(
                self.hass, self.entry, self.hass.config.path(path)
            )
        except (LabFileError, OSError) as err:
            # Starting without the file would drop its resources' tokens and devices
            # and leave their machines as they are, unmanaged: wait for a good file.
            raise_repair(
                self.hass,
                issue_id,
                "lab_file_invalid",
                {"path": path, "detail": str(err)},
            )
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="lab_file_invalid",
                translation_placeholders={"lab": self.entry.title, "detail": str(err)},
            ) from err
        ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        return lab_file

    def _without_missing_parents(self, specs: list[ResourceSpec]) -> list[ResourceSpec]:
        """Drop dependencies on resources that no longer exist, with a repair issue.

        A parent removed in the UI must not keep the lab from starting; the resource
        runs without it until the user fixes (or confirms) the dependency.
        """
        names = {spec.name for spec in specs}
        kept: list[ResourceSpec] = []
        for spec in specs:
            missing = [parent for parent in spec.depends_on if parent not in names]
            if not missing:
                ir.async_delete_issue(
                    self.hass, DOMAIN, self._issue_id("dependency_missing", spec.name)
                )
                kept.append(spec)
                continue
            self._create_issue("dependency_missing", spec.name, ", ".join(missing))
            parents = tuple(p for p in spec.depends_on if p in names)
            kept.append(replace(spec, depends_on=parents))
        return kept

    def device_id_of(self, name: str | None) -> str | None:
        """The resource's device (its logbook entries show on the device's page)."""
        key = self.subentry_of.get(name or "")
        device = (
            None
            if key is None
            else dr.async_get(self.hass).async_get_device_by_identifier(
                (DOMAIN, key), self.entry.entry_id
            )
        )
        return None if device is None else device.id

    def config_subentry_id(self, name: str) -> str | None:
        """The subentry a resource's entities belong to (None: defined in the lab file)."""
        return config_subentry_of(self.subentry_of[name])

    async def async_stop(self) -> None:
        """Stop the workers and write the ledger now."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.lab.stop()
        self.token_events.flush()
        self.energy.tick_all()
        for client in self.bmcs.values():
            await client.close()
        for unit in self.units.values():
            await unit.async_shutdown()
        await self.storage.async_close()

    def _stored(self) -> dict[str, Any]:
        """What the store holds: the ledger, the energy counters, pinned SSH host keys."""
        return {
            **self.lab.ledger.to_dict(),
            "energy": self.energy.accountant.to_dict(),
            "host_keys": dict(self.host_keys),
        }

    @callback
    def _tick_energy(self, _now: datetime) -> None:
        self.energy.tick_all()
        self._notify(self.lab.names, Topic.ENERGY)
        self.storage.save_soon()

    @callback
    def _meter_changed(self, event: Event[EventStateChangedData]) -> None:
        entity_id = event.data["entity_id"]
        for name, meter in self.energy.meter_of.items():
            if meter == entity_id:
                self.energy.tick(name)
                self._notify([name], Topic.ENERGY)

    def _block_shared_feeds(self) -> dict[str, SharedFeed]:
        """Resources whose feed target another resource uses too (one feed, one owner).

        The config flows and the lab file refuse this; a configuration made before that
        check, or by editing storage, still loads: neither resource is switched, and a
        repair issue names them. Another loaded lab whose share of such conflicts
        changed with this one's configuration is reloaded.
        """
        own = self.entry.entry_id
        prefix = f"{FEED_SHARED}_{own}_"
        for domain, issue_id in list(ir.async_get(self.hass).issues):
            if domain == DOMAIN and issue_id.startswith(prefix):
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        shared = shared_feeds(feed_uses(self.hass, (self.entry, self.file_resources)))
        blocked: dict[str, SharedFeed] = {}
        for target, uses in shared.items():
            if not any(use.lab == own for use in uses):
                continue
            names = {use: self._name_in_lab(use) for use in uses}
            LOGGER.error(
                "%s feeds %s: none of them is switched",
                target,
                ", ".join(names.values()),
            )
            raise_repair(
                self.hass,
                f"{prefix}{target.kind}_{target.key}",
                FEED_SHARED,
                {"feed": str(target), "resources": ", ".join(names.values())},
            )
            for use in uses:
                if use.lab == own:
                    others = [name for other, name in names.items() if other != use]
                    blocked.setdefault(use.resource, SharedFeed(target, others))
        for entry in self.hass.config_entries.async_loaded_entries(DOMAIN):
            involved = {
                use.resource
                for uses in shared.values()
                for use in uses
                if use.lab == entry.entry_id
            }
            if entry.entry_id != own and involved != entry.runtime_data.blocked.keys():
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return blocked

    def _name_in_lab(self, use: FeedUse) -> str:
        """A resource's name, and its lab's name when that is another lab."""
        if use.lab == self.entry.entry_id:
            return use.resource
        return f"{use.resource} ({use.title})"

    def _forget_unit_issues(self) -> None:
        """A (re)started lab finds its units' problems anew: clear the old issues."""
        prefixes = tuple(
            unit_issue_id(issue, self.entry.entry_id, "")
            for issue in (*CREDENTIAL_ISSUES, PDU_INVALID)
        )
        for domain, issue_id in list(ir.async_get(self.hass).issues):
            if domain == DOMAIN and issue_id.startswith(prefixes):
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)

    def _unit_power_listener(self, unit: PduCoordinator) -> CALLBACK_TYPE:
        """Measured outlet power becomes the draw of the resources the outlets feed."""

        answering = True

        @callback
        def update() -> None:
            nonlocal answering
            if unit.last_update_success != answering:
                # The unit went away or came back: its resources look again now.
                answering = unit.last_update_success
                for resource in set(unit.fed.values()):
                    self.lab.wake(resource)
            status = unit.data
            if status is None or not answering:
                return
            fed: dict[str, list[float | None]] = {}
            for outlet, resource in unit.fed.items():
                found = status.outlets.get(outlet)
                fed.setdefault(resource, []).append(found.power_w if found else None)
            changed = []
            for resource, watts in fed.items():
                if None in watts or len(self.lab.spec(resource).feeds) != len(watts):
                    continue  # a draw is only known when every feed reports it
                self.energy.set_power_reading(resource, sum(w for w in watts if w))
                self.energy.tick(resource)
                changed.append(resource)
            if changed:
                self._notify(changed, Topic.ENERGY)

        return update

    def _remember_host_key(self, resource: str, key: str) -> None:
        """Pin an SSH host key seen on first use (stored with the ledger)."""
        self.host_keys[resource] = key
        self.storage.save_soon()

    async def _async_poll_bmc_power(self, _now: datetime | None = None) -> None:
        """Read each BMC's draw once, for the resources it feeds; energy integrates it."""
        readings: dict[str, float | None] = {}
        for bmc_id in set(self.bmc_of.values()):
            try:
                readings[bmc_id] = await self.bmcs[bmc_id].power_reading()
            except SwitchError:
                readings[bmc_id] = None
        for name, bmc_id in self.bmc_of.items():
            self.energy.set_power_reading(name, readings[bmc_id])
            self.energy.tick(name)
        self._notify(self.bmc_of, Topic.ENERGY)

    def _entity_changed(
        self, watched: dict[str, list[str]]
    ) -> Callable[[Event[EventStateChangedData]], None]:
        @callback
        def changed(event: Event[EventStateChangedData]) -> None:
            for name in watched.get(event.data["entity_id"], ()):
                self.lab.wake(name)

        return changed

    # The lab's scheduler: HA's timers (time can be moved in tests) and entry tasks

    def call_later(self, delay: float, action: Callable[[], None]) -> CALLBACK_TYPE:
        """Run `action` after `delay` seconds."""
        return async_call_later(self.hass, delay, callback(lambda _now: action()))

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A pass of a reconciler, tracked with the entry."""
        return self.entry.async_create_task(self.hass, coro, name, eager_start=False)

    # Listeners of entities

    @callback
    def async_add_state_observer(
        self, observer: Callable[[str], None]
    ) -> CALLBACK_TYPE:
        """Call `observer` with a resource's name when its state changes.

        One for the lab, not a listener per resource: a lab of thousands keeps one.
        """
        self._state_observers.append(observer)
        return lambda: self._state_observers.remove(observer)

    @callback
    def async_add_listener(
        self, resource: str | None, topics: Iterable[Topic], update: CALLBACK_TYPE
    ) -> CALLBACK_TYPE:
        """Call `update` when these topics of the resource (None: the lab) change."""
        added = [self._listeners.setdefault((resource, topic), []) for topic in topics]
        for listeners in added:
            listeners.append(update)

        def remove() -> None:
            for listeners in added:
                listeners.remove(update)

        return remove

    def _notify(self, resources: Iterable[str], topic: Topic) -> None:
        """Tell the entities of these resources, then the lab's, that `topic` changed.

        A resource's state and holders also go to the watchers (the cards' websocket
        subscriptions), which work without the resource's entities.
        """
        for resource in resources:
            for update in list(self._listeners.get((resource, topic), ())):
                update()
        for update in list(self._listeners.get((None, topic), ())):
            update()
        if topic in _WATCHED and (watchers := resource_watchers(self.hass)):
            for watcher in list(watchers):
                watcher(self, resources)

    # Events of the lab

    def _on_lab_event(self, event: LabEvent) -> None:
        kind = event.kind
        self.reminders.on_event(event)
        if kind is EventKind.PERSIST:
            self.storage.changed()
        elif kind in _TOKEN_EVENTS:
            token = event.token
            assert token is not None
            # What stays the same through the token's life, so its acquire and its end
            # (`since` pairs them) share one data row in the recorder's database.
            self.token_events.add(
                _TOKEN_EVENTS[kind],
                token.resource,
                {
                    "holder": token.holder,
                    "kind": token.kind.value,
                    "since": iso_time(token.created),
                    "user_id": token.user_id,
                    "cause": event.cause,
                },
            )
        elif kind is EventKind.POWER_CHANGED:
            assert event.action is not None
            self.hass.bus.async_fire(
                EVENT_POWER_CHANGED,
                {
                    "resource": event.resource,
                    "action": event.action.value,
                    "cause": event.cause,
                    "device_id": self.device_id_of(event.resource),
                },
            )
        elif kind is EventKind.STATE_CHANGED:
            assert event.resource is not None
            # account the time up to this change at the power state it ends
            self.energy.tick(event.resource)
            if self.lab.state(event.resource) in POWERED_STATES:
                self.powered.add(event.resource)
            else:
                self.powered.discard(event.resource)
            self._notify([event.resource], Topic.STATE)
            self._notify([event.resource], Topic.ENERGY)
            for observer in list(self._state_observers):
                observer(event.resource)
        elif kind is EventKind.HOLDERS_CHANGED:
            assert event.resource is not None
            self._notify([event.resource], Topic.HOLDERS)
        elif kind is EventKind.CONFIG_ERROR and event.cause in CREDENTIAL_ISSUES:
            pass  # the unit raises its own repair issue, once for all its resources
        elif kind is EventKind.CONFIG_ERROR and self.hass.is_running:
            # Before HA runs, other integrations may still be making their entities.
            self._create_issue(
                event.cause or "switcher_misconfigured", event.resource, event.detail
            )
        elif kind is EventKind.START_FAILED:
            if event.count >= START_FAILURES_FOR_REPAIR:
                self._create_issue("start_failures", event.resource, str(event.count))
        elif kind is EventKind.HALTED:
            assert event.resource is not None
            self.hass.bus.async_fire(
                EVENT_HALTED,
                {
                    "resource": event.resource,
                    "reason": event.detail,
                    "device_id": self.device_id_of(event.resource),
                },
            )
            self._raise_halt_issue(event.resource, str(event.detail))
        elif kind is EventKind.RESUMED:
            self.hass.bus.async_fire(
                EVENT_RESUMED,
                {
                    "resource": event.resource,
                    "cause": event.cause,
                    "device_id": self.device_id_of(event.resource),
                },
            )
            ir.async_delete_issue(
                self.hass, DOMAIN, self._issue_id(ISSUE_HALTED, event.resource)
            )
        elif kind is EventKind.RECOVERED:
            for issue in ("start_failures", "entity_missing", "switcher_misconfigured"):
                ir.async_delete_issue(
                    self.hass, DOMAIN, self._issue_id(issue, event.resource)
                )

    def _issue_id(self, issue: str, resource: str | None) -> str:
        return f"{issue}_{self.entry.entry_id}_{resource}"

    def _create_issue(
        self, issue: str, resource: str | None, detail: str | None
    ) -> None:
        if issue == ICMP_UNAVAILABLE:
            self._sync_icmp_issue(needed=True)
            return
        LOGGER.warning("%s: %s (%s)", resource, issue, detail)
        raise_repair(
            self.hass,
            self._issue_id(issue, resource),
            issue,
            {"resource": str(resource), "detail": str(detail)},
        )

    def _raise_halt_issue(self, resource: str, reason: str) -> None:
        """A repair issue whose fix flow (repairs.py) lets labpower switch it again."""
        raise_repair(
            self.hass,
            self._issue_id(ISSUE_HALTED, resource),
            ISSUE_HALTED,
            {"resource": resource, "reason": reason},
            data={"entry_id": self.entry.entry_id, "resource": resource},
        )

    def _sync_icmp_issue(self, *, needed: bool) -> None:
        if needed and self.icmp.privileged is None:
            raise_repair(self.hass, ICMP_UNAVAILABLE, ICMP_UNAVAILABLE)
        else:
            ir.async_delete_issue(self.hass, DOMAIN, ICMP_UNAVAILABLE)

    # Views for entities and actions

    def resources_on(self) -> int:
        """How many resources are powered (starting, available or stopping)."""
        return len(self.powered)

    def holders_total(self) -> int:
        """How many live tokens the lab has."""
        return self.lab.ledger.token_count

    def ui_hold_exclusive(self) -> bool:
        """Whether holds taken from the UI are exclusive (the ui_hold_exclusive option)."""
        return bool(self.settings.get(CONF_UI_HOLD_EXCLUSIVE))

    def ui_hold_limit(self) -> float | None:
        """How long a hold taken from the UI lasts (None: until released)."""
        limit = float(self.settings.get(CONF_UI_HOLD_MAX) or 0)
        return limit or None


_WATCHED = frozenset({Topic.STATE, Topic.HOLDERS})
_WATCHERS: HassKey[list[ResourceWatcher]] = HassKey(f"{DOMAIN}_watchers")

# Called with a lab and the resources whose state or holders changed; with None for
# every resource when the lab was set up or unloaded.
type ResourceWatcher = Callable[[LabRuntime, Iterable[str] | None], None]


@callback
def resource_watchers(hass: HomeAssistant) -> list[ResourceWatcher]:
    """Who follows every lab's resources (the cards' subscriptions)."""
    return hass.data.setdefault(_WATCHERS, [])


@callback
def lab_changed(hass: HomeAssistant, runtime: LabRuntime) -> None:
    """A lab was set up or unloaded: its watchers fetch every resource again."""
    for watcher in list(resource_watchers(hass)):
        watcher(runtime, None)


def _utc_timestamp() -> float:
    return dt_util.utcnow().timestamp()


def iso_time(timestamp: float | None) -> str | None:
    """An epoch time as an ISO 8601 UTC string (None stays None)."""
    if timestamp is None:
        return None
    return dt_util.utc_from_timestamp(timestamp).isoformat()
