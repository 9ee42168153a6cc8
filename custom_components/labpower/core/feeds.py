"""One feed, one owner: what a resource's switcher drives, and who else drives it.

A feed target is the thing a switcher switches or reads: an entity (a plug's switch, a
front-panel button's relay, reset relay or power LED), a PDU outlet, a BMC or a network
card's MAC address. Switching a target for one resource switches it for every resource
that uses it, so a target feeds at most one resource across all labs; machines that share
power (a Pi stack's relay) express it as a dependency on a resource of its own. The config
flows, the lab file and the lab at start all apply this one rule, through feed_targets and
shared_feeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import re
from typing import Any

from ..const import (
    CONF_BMC,
    CONF_LED_ENTITY,
    CONF_MAC,
    CONF_OUTLETS,
    CONF_POWER_ENTITY,
    CONF_RELAY_ENTITY,
    CONF_RESET_ENTITY,
    CONF_SWITCHER,
    SWITCHER_BMC,
    SWITCHER_BUTTON,
    SWITCHER_ENTITY,
    SWITCHER_PDU,
    SWITCHER_WOL,
)
from .model import PowerState
from .switching import SwitcherCapabilities, SwitchError

# aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff (Cisco) or aabbccddeeff.
MAC_PATTERN = re.compile(
    r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}|[0-9a-f]{2}(?:-[0-9a-f]{2}){5}"
    r"|[0-9a-f]{4}(?:\.[0-9a-f]{4}){2}|[0-9a-f]{12}",
    re.IGNORECASE,
)

# The entity fields of each switcher that switch or read its feed.
_ENTITY_FIELDS: Mapping[str, tuple[str, ...]] = {
    SWITCHER_ENTITY: (CONF_POWER_ENTITY,),
    SWITCHER_BUTTON: (CONF_RELAY_ENTITY, CONF_LED_ENTITY, CONF_RESET_ENTITY),
}


def normalise_mac(text: str) -> str | None:
    """A MAC address as aa:bb:cc:dd:ee:ff, whichever usual form it was written in."""
    text = text.strip()
    if not MAC_PATTERN.fullmatch(text):
        return None
    return bytes.fromhex(re.sub(r"[:.\-]", "", text)).hex(":")


class FeedKind(StrEnum):
    """What kind of thing a feed target is."""

    ENTITY = "entity"
    OUTLET = "outlet"
    BMC = "bmc"
    MAC = "mac"


@dataclass(frozen=True, slots=True)
class FeedTarget:
    """One thing a switcher switches or reads; equal targets are the same device.

    Entities and MAC addresses are global; outlets ("pdu1:3") and BMCs are named within
    their lab, so they carry the lab's id as `scope`. `label` is for people.
    """

    kind: FeedKind
    key: str
    scope: str = ""
    label: str = field(default="", compare=False)

    def __str__(self) -> str:
        """How messages name it: the entity id, `outlet pdu1:3`, `BMC bmc1`, `MAC ...`."""
        return self.label or self.key


def outlet_target(outlet: str, scope: str) -> FeedTarget:
    """The target of a PDU outlet "unit:N" of a lab."""
    return FeedTarget(FeedKind.OUTLET, outlet.casefold(), scope, f"outlet {outlet}")


def feed_targets(
    data: Mapping[str, Any],
    *,
    scope: str,
    bmc_names: Mapping[str, str] | None = None,
) -> list[tuple[str, FeedTarget]]:
    """What a resource's switcher drives, each with the field that names it.

    `data` is a resource's subentry data (as the config flow and the lab file make it);
    `scope` is its lab's id; `bmc_names` turns a BMC's subentry id into its name (the UI
    stores the id, the lab file the name).
    """
    switcher = data.get(CONF_SWITCHER)
    found: dict[FeedTarget, str] = {}
    for key in _ENTITY_FIELDS.get(str(switcher), ()):
        if entity := str(data.get(key) or "").strip():
            found.setdefault(
                FeedTarget(FeedKind.ENTITY, entity.casefold(), "", entity), key
            )
    if switcher == SWITCHER_PDU:
        for outlet in data.get(CONF_OUTLETS, ()):
            found.setdefault(outlet_target(str(outlet), scope), CONF_OUTLETS)
    if switcher == SWITCHER_BMC and (bmc := data.get(CONF_BMC)):
        name = (bmc_names or {}).get(bmc, str(bmc))
        found.setdefault(
            FeedTarget(FeedKind.BMC, name.casefold(), scope, f"BMC {name}"), CONF_BMC
        )
    if switcher == SWITCHER_WOL and (mac := normalise_mac(str(data.get(CONF_MAC, "")))):
        found.setdefault(FeedTarget(FeedKind.MAC, mac, "", f"MAC {mac}"), CONF_MAC)
    return [(key, target) for target, key in found.items()]


@dataclass(frozen=True, slots=True)
class FeedUse:
    """A resource that uses a feed target, and where it is defined."""

    target: FeedTarget
    resource: str
    lab: str  # the lab's id
    title: str  # the lab's name, for messages
    in_file: bool = False  # defined by the lab's lab file (else made in the UI)

    @property
    def owner(self) -> tuple[str, str]:
        """The resource as (lab id, name): one owner may use a target once."""
        return self.lab, self.resource


def shared_feeds(uses: Iterable[FeedUse]) -> dict[FeedTarget, list[FeedUse]]:
    """The targets that more than one resource uses, with every use of each."""
    by_target: dict[FeedTarget, dict[tuple[str, str], FeedUse]] = {}
    for use in uses:
        by_target.setdefault(use.target, {}).setdefault(use.owner, use)
    return {
        target: list(owners.values())
        for target, owners in by_target.items()
        if len(owners) > 1
    }


class SharedFeed:
    """The feed of a resource whose target another resource uses too.

    Switching it for one would switch it for the other, so labpower switches neither:
    every read fails (the resource is in fault with the reason) and nothing is sent.
    """

    _capabilities = SwitcherCapabilities(can_read_state=False, can_cycle=False)

    def __init__(self, target: FeedTarget, others: Iterable[str]) -> None:
        """`others` names the resources the target also feeds."""
        self.target = target
        self.others = list(others)

    @property
    def capabilities(self) -> SwitcherCapabilities:
        """Nothing can be done with it."""
        return self._capabilities

    @property
    def description(self) -> str:
        """The target."""
        return str(self.target)

    def _refuse(self) -> SwitchError:
        return SwitchError(
            f"also feeds {', '.join(self.others)}: labpower switches none of them"
        )

    async def read_state(self) -> PowerState:
        """Refuse."""
        raise self._refuse()

    async def turn_on(self) -> None:
        """Refuse."""
        raise self._refuse()

    async def turn_off(self, *, graceful: bool) -> None:
        """Refuse."""
        raise self._refuse()

    async def reset(self) -> None:
        """Refuse."""
        raise self._refuse()
