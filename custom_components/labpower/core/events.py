"""What the lab tells the world: its events, for the glue to turn into HA's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .model import PowerAction, UsageToken


class EventKind(StrEnum):
    """What happened in the lab."""

    TOKEN_ACQUIRED = "token_acquired"
    TOKEN_RELEASED = "token_released"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    POWER_CHANGED = "power_changed"
    STATE_CHANGED = "state_changed"
    HOLDERS_CHANGED = "holders_changed"
    CONFIG_ERROR = "config_error"
    START_FAILED = "start_failed"
    RECOVERED = "recovered"
    HALTED = "halted"  # labpower stopped switching it (detail: why)
    RESUMED = "resumed"  # a person acknowledged a halt (cause: who)
    PERSIST = "persist"


@dataclass(frozen=True, slots=True)
class LabEvent:
    """One thing that happened, for the glue to turn into events, entities and repairs."""

    kind: EventKind
    resource: str | None = None
    token: UsageToken | None = None
    action: PowerAction | None = None
    cause: str | None = None
    detail: str | None = None
    count: int = 0


type Listener = Callable[[LabEvent], None]
