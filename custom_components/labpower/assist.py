"""Assist: lab questions and actions in English, answered from labpower's own data.

Each question is an intent (LabpowerAvailable, LabpowerWhoUses...) with a handler. Its
sentences reach Home Assistant's default conversation agent as sentence triggers, the way
the conversation trigger registers its own: custom integrations cannot add sentences to
the agent's language files, and a trigger is matched before the built-in intents. The
sentences name each resource whose Power switch is exposed to Assist (never a wildcard,
so "is the front door available" still goes to Home Assistant's own intents), and they are
made again when labs load or unload or the exposure changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
import re
from typing import Any, override

from hassil.recognize import RecognizeResult
from homeassistant.components.conversation import DOMAIN as CONVERSATION_DOMAIN
from homeassistant.components.conversation.agent_manager import get_agent_manager
from homeassistant.components.conversation.models import ConversationInput
from homeassistant.components.homeassistant.const import DATA_EXPOSED_ENTITIES
from homeassistant.components.homeassistant.exposed_entities import (
    async_listen_entity_updates,
    async_should_expose,
)
from homeassistant.const import SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, intent
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey
import probatio as vol

from .const import DOMAIN
from .core.model import LabError, ResourceState, TokenKind
from .operations import async_acquire, runtimes
from .runtime import POWERED_STATES, LabRuntime
from .users import async_caller_name, async_is_admin

DATA_ASSIST: HassKey[LabAssist] = HassKey(f"{DOMAIN}_assist")
SLOT_RESOURCE = "resource"
SLOT_HOURS = "hours"
RESOURCE = "<resource>"  # where a sentence names the resource

# Numbers said as words, up to a day: "reserve builder-1 for two hours".
_NUMBERS = {
    word: value
    for value, words in enumerate(
        (
            (),
            ("one", "a", "an"),
            ("two",),
            ("three",),
            ("four",),
            ("five",),
            ("six",),
            ("seven",),
            ("eight",),
            ("nine",),
            ("ten",),
            ("eleven",),
            ("twelve",),
        )
    )
    for word in words
}
_SPOKEN_SAFE = re.compile(r"[a-z0-9 ]+")


def spoken(text: str) -> str:
    """A name or a sentence as it is matched: lower case, words only."""
    return " ".join(re.sub(r"[^\w]+|_", " ", text.lower()).split())


def join_names(names: Iterable[str]) -> str:
    """English list: "a", "a and b", "a, b and c"."""
    items = list(names)
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True, slots=True)
class _Found:
    """The resource a sentence names, and its lab."""

    name: str
    runtime: LabRuntime


class _ResourceIntent(intent.IntentHandler):
    """An intent about one resource; its answer comes from `answer`."""

    @property
    @override
    def slot_schema(self) -> dict[Any, Any]:
        return {vol.Required(SLOT_RESOURCE): str}

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        """Answer from the lab; a lab's refusal is the spoken answer."""
        name = intent_obj.slots[SLOT_RESOURCE]["value"]
        runtime = next(
            (rt for rt in runtimes(intent_obj.hass) if name in rt.subentry_of), None
        )
        if runtime is None:
            raise intent.IntentHandleError(f"There is no lab resource named {name}")
        response = intent_obj.create_response()
        try:
            speech = await self.answer(intent_obj, _Found(name, runtime))
        except (LabError, HomeAssistantError) as err:
            speech = f"{err}."
        response.async_set_speech(speech)
        return response

    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        """The sentence to say."""
        raise NotImplementedError


class AvailableIntent(_ResourceIntent):
    """Answers "is X available"."""

    intent_type = "LabpowerAvailable"
    description = "Tells whether a lab resource is available, and who uses it"

    @override
    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        state = _state_words(found)
        holders = _holders(found)
        using = (
            f"{join_names(holders)} {'is' if len(holders) == 1 else 'are'} using it"
            if holders
            else "Nobody is using it"
        )
        if found.runtime.lab.state(found.name) is ResourceState.AVAILABLE:
            return f"Yes, {found.name} is available. {using}."
        return f"No, {found.name} is {state}. {using}."


class WhoUsesIntent(_ResourceIntent):
    """Answers "who is using X"."""

    intent_type = "LabpowerWhoUses"
    description = "Names the holders of a lab resource"

    @override
    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        holders = _holders(found)
        if not holders:
            return f"Nobody is using {found.name}."
        verb = "is" if len(holders) == 1 else "are"
        return f"{join_names(holders)} {verb} using {found.name}."


class HolderCountIntent(_ResourceIntent):
    """Answers "how many people use X"."""

    intent_type = "LabpowerHolderCount"
    description = "Counts the holders of a lab resource"

    @override
    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        count = found.runtime.lab.ledger.holder_count(found.name)
        if not count:
            return f"{found.name} has no holder."
        return f"{found.name} has {_plural(count, 'holder')}."


class StateIntent(_ResourceIntent):
    """Answers "what is the state of X"."""

    intent_type = "LabpowerState"
    description = "Tells the state of a lab resource"

    @override
    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        return f"{found.name} is {_state_words(found)}."


class ReserveIntent(_ResourceIntent):
    """Reserve X for N hours: a lease for the caller."""

    intent_type = "LabpowerReserve"
    description = "Takes a lease on a lab resource for some hours"

    @property
    @override
    def slot_schema(self) -> dict[Any, Any]:
        return {
            vol.Required(SLOT_RESOURCE): str,
            vol.Optional(SLOT_HOURS): vol.All(
                vol.Coerce(float), vol.Range(min=0, min_included=False)
            ),
        }

    @override
    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        hours = intent_obj.slots.get(SLOT_HOURS, {}).get("value")
        context = intent_obj.context
        [(_, token)] = await async_acquire(
            {found.name: found.runtime},
            await async_caller_name(intent_obj.hass, context),
            kind=TokenKind.LEASE,
            ttl=None if hours is None else hours * 3600,
            user_id=context.user_id,
            admin=await async_is_admin(intent_obj.hass, context),
            wait_timeout=None,
        )
        assert token.expires is not None
        until = dt_util.as_local(dt_util.utc_from_timestamp(token.expires))
        length = (token.expires - token.created) / 3600
        return (
            f"Reserved {found.name} for you for {_plural_hours(length)}, "
            f"until {until:%H:%M}. It is {_state_words(found)}."
        )


class ReleaseIntent(_ResourceIntent):
    """Release X: the caller's tokens on it go (a CI-style release: off delay)."""

    intent_type = "LabpowerRelease"
    description = "Releases what the caller holds on a lab resource"

    @override
    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        lab = found.runtime.lab
        context = intent_obj.context
        holder = await async_caller_name(intent_obj.hass, context)
        mine = [
            token.id
            for token in lab.ledger.tokens(found.name)
            if token.user_id == context.user_id
            and (context.user_id is not None or token.holder == holder)
        ]
        if not mine:
            return f"You hold nothing on {found.name}."
        lab.release(mine)
        await found.runtime.storage.async_committed()
        if claims := lab.claims(found.name):
            return f"Released {found.name}. It stays on for {join_names(claims)}."
        off_at = lab.ledger.off_deadline(found.name)
        if off_at is not None and off_at > lab.clock():
            minutes = max(1, round((off_at - lab.clock()) / 60))
            return (
                f"Released {found.name}. It goes off in {_plural(minutes, 'minute')} "
                "unless somebody takes it."
            )
        return f"Released {found.name}."


class _SwitchIntent(_ResourceIntent):
    """Turn X on or off through its Power switch (holds, refusals, power clients)."""

    service: str

    @override
    async def answer(self, intent_obj: intent.Intent, found: _Found) -> str:
        await intent_obj.hass.services.async_call(
            "switch",
            self.service,
            {"entity_id": power_switch(intent_obj.hass, found.runtime, found.name)},
            blocking=True,
            context=intent_obj.context,
        )
        verb = "on" if self.service == SERVICE_TURN_ON else "off"
        return f"Turned {verb} {found.name}."


class TurnOnIntent(_SwitchIntent):
    """Turn X on: a hold for the caller."""

    intent_type = "LabpowerTurnOn"
    description = "Takes a hold on a lab resource (powers it on)"
    service = SERVICE_TURN_ON


class TurnOffIntent(_SwitchIntent):
    """Turn X off: the caller's hold goes; off at once unless others use it."""

    intent_type = "LabpowerTurnOff"
    description = "Releases the caller's hold on a lab resource (powers it off)"
    service = SERVICE_TURN_OFF


class ResourcesOnIntent(intent.IntentHandler):
    """Answers "which lab machines are on"."""

    intent_type = "LabpowerResourcesOn"
    description = "Names the lab resources that are powered"

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        """The powered resources Assist may talk about."""
        hass = intent_obj.hass
        on = [
            name
            for runtime in runtimes(hass)
            for name in runtime.lab.names
            if runtime.lab.state(name) in POWERED_STATES
            and _exposed(hass, runtime, name)
        ]
        response = intent_obj.create_response()
        if not on:
            response.async_set_speech("No lab machine is on.")
        elif len(on) == 1:
            response.async_set_speech(f"1 lab machine is on: {on[0]}.")
        else:
            response.async_set_speech(
                f"{len(on)} lab machines are on: {join_names(on)}."
            )
        return response


# The English sentences of each intent; RESOURCE stands for the resource's name.
SENTENCES: dict[type[intent.IntentHandler], list[str]] = {
    AvailableIntent: [f"is {RESOURCE} (available|up|ready)"],
    WhoUsesIntent: [
        f"who is using {RESOURCE}",
        f"who (uses|holds|has) {RESOURCE}",
    ],
    HolderCountIntent: [
        f"how many (people|holders|users|jobs) (use|are using|hold) {RESOURCE}",
        f"how many holders does {RESOURCE} have",
    ],
    StateIntent: [
        f"what is the state of {RESOURCE}",
        f"what state is {RESOURCE} in",
    ],
    ReserveIntent: [
        f"reserve {RESOURCE} for {{{SLOT_HOURS}}} hour[s]",
        f"reserve {RESOURCE}",
    ],
    ReleaseIntent: [f"release {RESOURCE}", f"(I am|I'm) done with {RESOURCE}"],
    TurnOnIntent: [f"turn on {RESOURCE} [power]", f"turn {RESOURCE} [power] on"],
    TurnOffIntent: [f"turn off {RESOURCE} [power]", f"turn {RESOURCE} [power] off"],
    ResourcesOnIntent: [
        "(which|what) (lab machines|lab resources|resources) are (on|powered|running)"
    ],
}


def power_switch(hass: HomeAssistant, runtime: LabRuntime, name: str) -> str | None:
    """The entity id of a resource's Power switch."""
    return er.async_get(hass).async_get_entity_id(
        "switch", DOMAIN, f"{runtime.subentry_of[name]}_power"
    )


def _exposed(hass: HomeAssistant, runtime: LabRuntime, name: str) -> bool:
    """Whether Assist may talk about a resource: its Power switch is exposed."""
    entity_id = power_switch(hass, runtime, name)
    return entity_id is not None and async_should_expose(
        hass, CONVERSATION_DOMAIN, entity_id
    )


def _holders(found: _Found) -> list[str]:
    return list(
        dict.fromkeys(t.holder for t in found.runtime.lab.ledger.tokens(found.name))
    )


def _state_words(found: _Found) -> str:
    reconciler = found.runtime.lab.reconciler(found.name)
    state = reconciler.state
    if (
        state is ResourceState.OFF
        and reconciler.reason is None
        and found.runtime.lab.desired_on(found.name)
    ):
        return "powering on"  # wanted on, its next pass switches it
    words = {
        ResourceState.OFF: "off",
        ResourceState.STARTING: "starting",
        ResourceState.AVAILABLE: "available",
        ResourceState.STOPPING: "stopping",
        ResourceState.FAULT: "in fault",
        ResourceState.UNKNOWN: "in an unknown state",
    }[state]
    if reconciler.reason and state in (ResourceState.FAULT, ResourceState.OFF):
        return f"{words} ({reconciler.reason})"
    return words


def _plural_hours(hours: float) -> str:
    value = f"{hours:g}"
    return f"{value} hour" if hours == 1 else f"{value} hours"


def parse_hours(text: str) -> float | None:
    """A number of hours as said: "2", "1.5", "two", "an"; None if it is none."""
    text = text.strip().lower()
    if text in _NUMBERS:
        return float(_NUMBERS[text])
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


class LabAssist:
    """Registers the intents once and keeps their sentences in step with the labs."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Register every intent handler."""
        self.hass = hass
        self._unregister: list[CALLBACK_TYPE] = []
        self._pending = False
        self._names: tuple[str, ...] | None = None
        for handler in SENTENCES:
            intent.async_register(hass, handler())

    @callback
    def schedule_refresh(self) -> None:
        """Make the sentences again soon (once for a burst of changes)."""
        if not self._pending:
            self._pending = True
            self.hass.loop.call_soon(self._refresh)

    @callback
    def _refresh(self) -> None:
        self._pending = False
        hass = self.hass
        labs = runtimes(hass)
        exposure_known = DATA_EXPOSED_ENTITIES in hass.data
        names = tuple(
            sorted(
                name
                for runtime in labs
                for name in runtime.lab.names
                if _SPOKEN_SAFE.fullmatch(spoken(name))
                and (not exposure_known or _exposed(hass, runtime, name))
            )
        )
        if names == self._names and (self._unregister or not labs):
            return
        self._names = names
        self.unload()
        if not labs:
            return
        manager = get_agent_manager(hass)
        alternatives = "(" + "|".join(dict.fromkeys(map(spoken, names))) + ")"
        for handler, sentences in SENTENCES.items():
            if handler is not ResourcesOnIntent and not names:
                continue
            self._unregister.append(
                manager.register_trigger(
                    [s.replace(RESOURCE, alternatives) for s in sentences],
                    self._answerer(handler.intent_type, names),
                )
            )

    def _answerer(
        self, intent_type: str, names: tuple[str, ...]
    ) -> Callable[[ConversationInput, RecognizeResult], Any]:
        # The longest name said wins: "builder-10" is not "builder-1".
        by_length = sorted(names, key=lambda name: -len(spoken(name)))

        async def answer(
            user_input: ConversationInput, result: RecognizeResult
        ) -> str | None:
            slots: dict[str, Any] = {}
            said = f" {spoken(user_input.text)} "
            if resource := next(
                (name for name in by_length if f" {spoken(name)} " in said), None
            ):
                slots[SLOT_RESOURCE] = {"value": resource, "text": resource}
            if (hours := result.entities.get(SLOT_HOURS)) is not None:
                value = parse_hours(str(hours.value))
                if value is None:
                    return f"I did not understand {hours.value} hours."
                slots[SLOT_HOURS] = {"value": value}
            response = await intent.async_handle(
                self.hass,
                DOMAIN,
                intent_type,
                slots,
                text_input=user_input.text,
                context=user_input.context,
                language=user_input.language,
                assistant=CONVERSATION_DOMAIN,
                device_id=user_input.device_id,
                satellite_id=user_input.satellite_id,
                conversation_agent_id=user_input.agent_id,
            )
            speech: str = response.speech["plain"]["speech"]
            return speech

        return answer

    @callback
    def unload(self) -> None:
        """Take the sentences away."""
        for unregister in self._unregister:
            unregister()
        self._unregister.clear()


@callback
def async_setup_assist(hass: HomeAssistant) -> None:
    """Register the intents; sentences follow the labs and Assist's exposure."""
    assist = hass.data[DATA_ASSIST] = LabAssist(hass)
    if DATA_EXPOSED_ENTITIES in hass.data:
        async_listen_entity_updates(hass, CONVERSATION_DOMAIN, assist.schedule_refresh)


@callback
def async_refresh_assist(hass: HomeAssistant) -> None:
    """A lab loaded or unloaded: its resources' names change."""
    if (assist := hass.data.get(DATA_ASSIST)) is not None:
        assist.schedule_refresh()
