"""The token ledger: acquire, release, renew, expiry, off delay, persistence."""

from __future__ import annotations

import pytest

from custom_components.labpower.core.ledger import RELEASED_MEMORY_SECONDS, Ledger
from custom_components.labpower.core.model import (
    InvalidTtlError,
    LabError,
    ResourcePolicy,
    TokenKind,
    UnknownResourceError,
    UnknownTokenError,
)

from .fakes import FakeClock

POLICY = ResourcePolicy(off_delay=60, min_off_time=30, default_ttl=600, max_ttl=3600)


@pytest.fixture
def clock() -> FakeClock:
    """A frozen clock."""
    return FakeClock()


@pytest.fixture
def ledger(clock: FakeClock) -> Ledger:
    """A ledger with resources a and b."""
    ledger = Ledger(clock)
    ledger.set_policy("a", POLICY)
    ledger.set_policy("b", POLICY)
    return ledger


def test_acquire_counts_and_ids(ledger: Ledger, clock: FakeClock) -> None:
    first = ledger.acquire("a", "ci")
    second = ledger.acquire("a", "alice", kind=TokenKind.HOLD, user_id="u1")
    assert ledger.holder_count("a") == 2
    assert ledger.token_count == 2
    assert first.expires == clock.now + POLICY.default_ttl
    assert second.expires is None
    # 16 random bytes, url-safe base64: 22 characters, all distinct
    assert len(first.id) == 22
    assert len({ledger.acquire("b", "x").id for _ in range(200)}) == 200
    assert ledger.find_hold("a", "u1", "alice") == [second]
    assert ledger.find_hold("a", "u1", "bob") == []
    assert ledger.find_hold("a", "u2", "alice") == []
    assert ledger.get(first.id) is first
    assert ledger.wants_on("a")
    assert ledger.last_cause("a") == "acquired by alice"


def test_ttl_limits(ledger: Ledger) -> None:
    with pytest.raises(InvalidTtlError) as err:
        ledger.acquire("a", "ci", ttl=3601)
    assert err.value.placeholders == {"resource": "a", "ttl": "3601", "max_ttl": "3600"}
    with pytest.raises(InvalidTtlError):
        ledger.acquire("a", "ci", ttl=0)
    with pytest.raises(UnknownResourceError):
        ledger.acquire("nope", "ci")
    assert ledger.holder_count("a") == 0
    assert ledger.acquire("a", "ci", ttl=3600).expires is not None


def test_release_is_idempotent_unknown_refused(
    ledger: Ledger, clock: FakeClock
) -> None:
    token = ledger.acquire("a", "ci")
    assert ledger.release(token.id) is token
    assert ledger.release(token.id) is None
    with pytest.raises(UnknownTokenError):
        ledger.release("never-issued-token")
    with pytest.raises(UnknownTokenError):
        ledger.check_known("never-issued-token")
    with pytest.raises(UnknownTokenError):
        ledger.get(token.id)
    ledger.check_known(token.id)
    # the off delay runs after the last release
    assert ledger.wants_on("a")
    assert ledger.off_deadline("a") == clock.now + 60
    assert ledger.last_cause("a") == "released by ci"
    clock.advance(60)
    assert not ledger.wants_on("a")


def test_off_delay_only_after_last_token(ledger: Ledger) -> None:
    one = ledger.acquire("a", "one")
    ledger.acquire("a", "two")
    ledger.release(one.id)
    assert ledger.off_deadline("a") is None
    # a new token cancels a running off delay
    three = ledger.acquire("b", "three")
    ledger.release(three.id)
    assert ledger.off_deadline("b") is not None
    ledger.acquire("b", "four")
    assert ledger.off_deadline("b") is None


def test_renew_and_expire(ledger: Ledger, clock: FakeClock) -> None:
    lease = ledger.acquire("a", "ci", ttl=100)
    hold = ledger.acquire("a", "alice", kind=TokenKind.HOLD)
    short = ledger.acquire("b", "short", ttl=10)
    assert ledger.next_expiry() == clock.now + 10
    clock.advance(50)
    assert ledger.renew(lease.id, 200) is lease
    assert lease.expires == clock.now + 200
    assert ledger.renew(hold.id) is hold
    assert hold.expires is None
    with pytest.raises(InvalidTtlError):
        ledger.renew(lease.id, 5000)
    expired = ledger.expire()
    assert expired == [short]
    assert ledger.last_cause("b") == "token of short expired"
    with pytest.raises(UnknownTokenError):
        ledger.renew(short.id)
    # the stale heap entry of the renewed lease is skipped
    clock.advance(100)
    assert ledger.expire() == []
    assert ledger.next_expiry() == lease.expires
    clock.advance(100)
    assert ledger.expire() == [lease]
    assert ledger.next_expiry() is None
    assert ledger.tokens("a") == [hold]
    # an expired token may be released again without error
    assert ledger.release(short.id) is None


def test_hold_with_a_limit_ends_unless_renewed(
    ledger: Ledger, clock: FakeClock
) -> None:
    # A limit longer than max_ttl is fine: the lease rules are not a hold's.
    ui = ledger.acquire("a", "alice", kind=TokenKind.HOLD, user_id="u1", limit=7200)
    forever = ledger.acquire("a", "bob", kind=TokenKind.HOLD, limit=0)
    assert ui.expires == clock.now + 7200
    assert forever.expires is None
    clock.advance(7000)
    assert ledger.renew(ui.id) is ui  # no ttl: its limit again
    assert ui.expires == clock.now + 7200
    ledger.renew(ui.id, 14400)  # "Keep 4 h more" passes the time it wants
    assert ui.expires == clock.now + 14400
    assert ledger.renew(forever.id, 60).expires is None
    clock.advance(14399)
    assert ledger.expire() == []
    clock.advance(1)
    assert ledger.expire() == [ui]
    assert ledger.last_cause("a") == "token of alice expired"
    assert ledger.tokens("a") == [forever]
    # the limit survives a restart
    restored = Ledger(clock)
    restored.set_policy("a", POLICY)
    again = ledger.acquire("a", "carol", kind=TokenKind.HOLD, limit=60)
    restored.load(ledger.to_dict())
    assert restored.get(again.id).limit == 60
    assert restored.get(forever.id).limit is None


def test_min_off_time(ledger: Ledger, clock: FakeClock) -> None:
    assert ledger.min_off_remaining("a") == 0
    ledger.note_off("a")
    assert ledger.min_off_remaining("a") == 30
    clock.advance(20)
    assert ledger.min_off_remaining("a") == 10
    clock.advance(20)
    assert ledger.min_off_remaining("a") == 0


def test_revoke_all_and_remove(ledger: Ledger) -> None:
    ledger.acquire("a", "one")
    ledger.acquire("a", "two", kind=TokenKind.HOLD)
    revoked = ledger.revoke_all("a", "forced off by admin")
    assert {t.holder for t in revoked} == {"one", "two"}
    assert ledger.holder_count("a") == 0
    assert ledger.off_deadline("a") is None
    assert not ledger.wants_on("a")
    assert ledger.last_cause("a") == "forced off by admin"
    token = ledger.acquire("b", "x")
    assert ledger.remove_resource("b") == [token]
    assert ledger.resources == ["a"]
    with pytest.raises(UnknownResourceError):
        ledger.policy("b")


def test_persistence_round_trip(ledger: Ledger, clock: FakeClock) -> None:
    lease = ledger.acquire("a", "ci", user_id="u1")
    hold = ledger.acquire("a", "alice", kind=TokenKind.HOLD)
    gone = ledger.acquire("b", "gone")
    ledger.release(gone.id)
    ledger.note_off("b")
    data = ledger.to_dict()
    assert data["version"] == 1

    restored = Ledger(clock)
    restored.set_policy("a", POLICY)
    restored.set_policy("b", POLICY)
    assert restored.load(data) == []
    assert {t.id for t in restored.tokens("a")} == {lease.id, hold.id}
    assert restored.get(lease.id).user_id == "u1"
    assert restored.off_deadline("b") == ledger.off_deadline("b")
    assert restored.min_off_remaining("b") == 30
    assert restored.release(gone.id) is None
    assert restored.next_expiry() == lease.expires
    assert restored.last_cause("a") == "acquired by alice"


def test_load_orphans_and_version(clock: FakeClock, ledger: Ledger) -> None:
    token = ledger.acquire("b", "ci")
    data = ledger.to_dict()
    only_a = Ledger(clock)
    only_a.set_policy("a", POLICY)
    orphans = only_a.load(data)
    assert [t.id for t in orphans] == [token.id]
    assert only_a.release(token.id) is None
    with pytest.raises(LabError):
        only_a.load({**data, "version": 99})


def test_released_ids_forgotten_after_a_week(ledger: Ledger, clock: FakeClock) -> None:
    token = ledger.acquire("a", "ci")
    ledger.release(token.id)
    clock.advance(RELEASED_MEMORY_SECONDS + 1)
    ledger.expire()
    with pytest.raises(UnknownTokenError):
        ledger.release(token.id)


def test_demand_counts_as_wanting_and_starts_the_off_delay(
    ledger: Ledger, clock: FakeClock
) -> None:
    ledger.set_demand("a", True)
    assert ledger.wants_on("a")
    assert ledger.has_demand("a")
    assert ledger.off_deadline("a") is None
    token = ledger.acquire("a", "ci")
    ledger.release(token.id)
    assert ledger.off_deadline("a") is None  # still needed: no off delay yet
    ledger.set_demand("a", False)
    assert ledger.off_deadline("a") == clock.now + POLICY.off_delay
    assert ledger.wants_on("a")
    ledger.set_demand("a", False)  # no change, no new deadline
    clock.advance(POLICY.off_delay)
    assert not ledger.wants_on("a")
    # Demand ends a running off delay.
    ledger.set_demand("a", True)
    ledger.set_demand("a", True)
    assert ledger.off_deadline("a") is None
    # A token outlives the demand: no off delay until it goes.
    held = ledger.acquire("a", "ci")
    ledger.set_demand("a", False)
    assert ledger.off_deadline("a") is None
    assert ledger.release(held.id) is held
    assert ledger.off_deadline("a") == clock.now + POLICY.off_delay


def test_demand_without_off_delay(ledger: Ledger, clock: FakeClock) -> None:
    ledger.set_demand("a", True)
    ledger.set_demand("a", False, start_delay=False)
    assert not ledger.wants_on("a")
    # Forced off: the demand that ends afterwards starts no off delay either...
    ledger.set_demand("b", True)
    ledger.revoke_all("b", "forced")
    ledger.set_demand("b", False)
    assert ledger.off_deadline("b") is None
    assert not ledger.wants_on("b")
    # ...until the resource is wanted again.
    ledger.set_demand("b", True)
    ledger.set_demand("b", False)
    assert ledger.off_deadline("b") == clock.now + POLICY.off_delay
    ledger.revoke_all("a", "forced")
    ledger.note_off("a")
    assert ledger.last_off("a") == clock.now
    ledger.set_demand("a", True)
    ledger.set_demand("a", False)
    assert ledger.off_deadline("a") is not None
    assert ledger.last_off("b") is None
    ledger.remove_resource("a")
    assert not ledger.has_demand("a")


def test_live_tokens_counted_per_user(ledger: Ledger, clock: FakeClock) -> None:
    """What the per-user token limit reads: every way a token ends takes it off."""
    released = ledger.acquire("a", "ci", user_id="u1")
    expiring = ledger.acquire("a", "ci", ttl=10, user_id="u1")
    ledger.acquire("b", "ci", user_id="u1")
    ledger.acquire("b", "alice", kind=TokenKind.HOLD, user_id="u2")
    ledger.acquire("a", "automation")
    assert [ledger.user_token_count(u) for u in ("u1", "u2", None)] == [3, 1, 1]
    ledger.release(released.id)
    ledger.release(released.id)  # twice is fine, counted once
    clock.now += 11
    assert ledger.expire() == [expiring]
    assert ledger.user_token_count("u1") == 1
    ledger.revoke_all("b", "forced off")
    assert [ledger.user_token_count(u) for u in ("u1", "u2", None)] == [0, 0, 1]
    # a ledger loaded from the stored state counts the same
    again = Ledger(clock)
    for name in ("a", "b"):
        again.set_policy(name, POLICY)
    ledger.acquire("b", "ci", user_id="u1")
    again.load(ledger.to_dict())
    assert [again.user_token_count(u) for u in ("u1", "u2", None)] == [1, 0, 1]
