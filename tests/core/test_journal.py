"""The journal's files: what reading finds after crashes and damage, and compaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from custom_components.labpower.core.journal import (
    DurableFiles,
    decode_line,
    encode_batch,
)
from custom_components.labpower.core.ledger import Ledger, check_state, replay
from custom_components.labpower.core.model import (
    QueuedRequest,
    ResourcePolicy,
    StoredStateError,
    TokenKind,
)


def _ledger() -> Ledger:
    ledger = Ledger(clock=lambda: 1000.0)
    ledger.set_policy("a", ResourcePolicy(off_delay=60))
    return ledger


def _files(tmp_path: Path) -> DurableFiles:
    return DurableFiles(tmp_path, "labpower.x", 1)


def _read(files: DurableFiles) -> Any:
    def validate(data: dict[str, Any]) -> None:
        try:
            check_state(data)
        except StoredStateError as err:
            raise ValueError(str(err)) from None

    return files.read(validate)


def test_changes_replay_to_the_ledger_state(tmp_path: Path) -> None:
    ledger = _ledger()
    files = _files(tmp_path)
    assert _read(files).fresh
    files.compact(ledger.to_dict())
    kept = ledger.acquire("a", "ci")
    gone = ledger.acquire("a", "job")
    files.append(encode_batch(ledger.drain_changes()))
    ledger.release(gone.id)
    ledger.renew(kept.id, 30)
    files.append(encode_batch(ledger.drain_changes()))
    assert ledger.drain_changes() == []
    found = _read(files)
    assert found.complete
    assert not found.problems
    restored = _ledger()
    restored.load(found.data, found.batches)
    assert restored.to_dict() == {**ledger.to_dict(), "released": {gone.id: 1000.0}}
    assert restored.get(kept.id).expires == 1030.0


def test_a_torn_last_line_is_ignored_a_damaged_middle_reported(tmp_path: Path) -> None:
    files = _files(tmp_path)
    files.compact(_ledger().to_dict())
    good = encode_batch([["drop", "x", 1.0]])
    files.append(good + good[:-5])  # the second batch torn by a crash
    found = _read(files)
    assert found.complete
    assert found.batches == [[["drop", "x", 1.0]]]
    files.append(b"\n" + good)  # a damaged line before a good one: damage, not a crash
    found = _read(files)
    assert not found.complete
    assert found.problems == ["journal 1: line 2 of 3 damaged"]
    assert decode_line(b"00000000 []") is None


def test_compaction_keeps_the_good_copy_and_its_journal(tmp_path: Path) -> None:
    ledger = _ledger()
    files = _files(tmp_path)
    files.compact(ledger.to_dict())  # generation 1
    first = ledger.acquire("a", "one")
    files.append(encode_batch(ledger.drain_changes()))
    files.compact(
        ledger.to_dict()
    )  # generation 2: the store of 1 becomes the good copy
    second = ledger.acquire("a", "two")
    files.append(encode_batch(ledger.drain_changes()))
    names = {path.name for path in tmp_path.iterdir()}
    assert names == {
        "labpower.x",
        "labpower.x.good",
        "labpower.x.journal.1",
        "labpower.x.journal.2",
    }
    files.store_path.write_bytes(b"{trunc")
    found = _read(_files(tmp_path))
    assert found.source == "good"
    assert found.complete
    restored = _ledger()
    restored.load(found.data, found.batches)
    assert {t.id for t in restored.all_tokens()} == {first.id, second.id}
    assert found.problems == ["store: not valid JSON (truncated or damaged)"]


def test_a_store_read_rejected_is_kept_aside_not_made_the_good_copy(
    tmp_path: Path,
) -> None:
    ledger = _ledger()
    files = _files(tmp_path)
    files.compact(ledger.to_dict())
    held = ledger.acquire("a", "one")
    files.append(encode_batch(ledger.drain_changes()))
    files.compact(ledger.to_dict())
    good = files.good_path.read_bytes()
    # valid JSON of this version, but tokens read() must not load
    rejected = b'{"version": 1, "data": {"version": 1, "tokens": [{"id": 1}]}}'
    files.store_path.write_bytes(rejected)
    files = _files(tmp_path)
    found = _read(files)
    assert found.source == "good"
    assert "store: " in found.problems[0]
    files.compact(ledger.to_dict())
    assert files.good_path.read_bytes() == good
    assert files.damaged_path.read_bytes() == rejected
    found = _read(_files(tmp_path))
    assert (found.source, found.problems, found.complete) == ("store", [], True)
    files.store_path.write_bytes(b"")  # the good copy still recovers everything
    found = _read(_files(tmp_path))
    assert found.source == "good"
    assert found.complete
    restored = _ledger()
    restored.load(found.data, found.batches)
    assert [t.id for t in restored.all_tokens()] == [held.id]


def test_removing_deletes_every_file_of_the_key(tmp_path: Path) -> None:
    files = _files(tmp_path)
    files.store_path.write_bytes(b"{trunc")
    other = tmp_path / "labpower.y"
    other.write_bytes(b"{}")
    _read(files)
    files.compact(_ledger().to_dict())  # the damaged store kept aside
    files.compact(_ledger().to_dict())
    files.append(encode_batch([["drop", "x", 1.0]]))
    assert files.damaged_path.exists()
    files.remove()
    assert list(tmp_path.iterdir()) == [other]


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        (b"", "store: empty"),
        (b'{"version": 1, "data": []}', "store: not a labpower store"),
        (b'{"version": 1, "data": {"version": 1, "tokens": [{"id": 1}]}}', "malformed"),
    ],
)
def test_nothing_usable_is_incomplete(
    tmp_path: Path, store: bytes, problem: str
) -> None:
    files = _files(tmp_path)
    files.store_path.write_bytes(store)
    found = _read(files)
    assert found.data is None
    assert not found.complete
    assert problem in found.problems[0]


def test_a_newer_version_is_reported_and_nothing_read(tmp_path: Path) -> None:
    files = _files(tmp_path)
    files.store_path.write_bytes(b'{"version": 2, "data": {}}')
    found = _read(files)
    assert found.newer == 2
    assert found.data is None
    assert not found.complete


def test_a_journal_of_a_newer_version_is_refused() -> None:
    data = _ledger().to_dict()
    with pytest.raises(StoredStateError, match="unknown record"):
        replay(data, [[["grant", "x"]]])
    with pytest.raises(StoredStateError, match="unknown record"):
        replay(data, [[["put", {"no id": 1}]]])


def test_lost_tokens_keep_resources_until_confirmed() -> None:
    ledger = _ledger()
    ledger.mark_unknown(["a", "gone"], "store: empty")
    assert ledger.wants_on("a")
    assert ledger.release("never-seen") is None  # refuse nothing that was held
    ledger.check_known("never-seen")
    assert ledger.kept == {"a"}
    restored = _ledger()
    restored.load(ledger.to_dict())
    assert restored.unknown == "store: empty"
    assert restored.confirm_unknown() == ["a"]
    assert restored.off_deadline("a") == 1060.0  # off after its off delay
    assert not restored.kept


def test_the_queue_replays_from_the_journal(tmp_path: Path) -> None:
    ledger = _ledger()
    files = _files(tmp_path)
    files.compact(ledger.to_dict())
    for n in range(3):
        ledger.enqueue(
            QueuedRequest(
                id=f"r{n}",
                holder=f"job {n}",
                created=1000.0 + n,
                deadline=2000.0,
                labels=("arm",),
                count=2,
                kind=TokenKind.HOLD,
                ttl=None,
                exclusive=True,
                user_id="u",
                wait=True,
            )
        )
    files.append(encode_batch(ledger.drain_changes()))
    assert ledger.dequeue("r1") is not None
    assert ledger.dequeue("r1") is None
    ledger.enqueue(QueuedRequest(id="r3", holder="job 3", created=1.0, deadline=2.0))
    assert ledger.dequeue("r3") is not None  # put and gone in one batch
    files.append(encode_batch(ledger.drain_changes()))
    found = _read(files)
    assert found.complete
    restored = _ledger()
    restored.load(found.data, found.batches)
    assert [r.id for r in restored.queued()] == ["r0", "r2"]
    assert restored.queued() == ledger.queued()
    assert restored.to_dict()["queue"] == ledger.to_dict()["queue"]


def test_a_malformed_queue_is_refused() -> None:
    state = _ledger().to_dict()
    for queue in (
        "x",
        ["x"],
        [{"id": "r"}],
        [{"id": "r", "holder": "h", "created": 1.0, "deadline": float("nan")}],
    ):
        with pytest.raises(StoredStateError):
            check_state({**state, "queue": queue})
    with pytest.raises(StoredStateError):
        check_state(
            {
                **state,
                "queue": [
                    {
                        "id": "r",
                        "holder": "h",
                        "created": 1.0,
                        "deadline": 2.0,
                        "resources": "a",
                    }
                ],
            }
        )
    check_state({k: v for k, v in state.items() if k != "queue"})  # older stores
