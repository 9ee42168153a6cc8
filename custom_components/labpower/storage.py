"""A lab's durable storage: token changes acknowledged only once they are on disk.

Every change of the ledger goes into an fsynced journal before the action or request
that made it is answered (LabStorage.async_committed). Changes that arrive while a
batch is being written share the next write and fsync (group commit), so a burst of
acquires costs a few fsyncs, not one each. The journal is compacted into the Store's
file now and then (and at unload), which keeps its previous version as the last good
copy. All file work runs in the executor. See core/journal.py for the files.

Loading never trusts a damaged file and never powers anything off because of one:
a damaged snapshot is restored from the good copy and the journal (a repair says so);
with nothing good left, the lab starts with its ledger marked unknown (resources kept
as found, releases of lost tokens accepted) and a repair lets an administrator
confirm; a snapshot of a newer version is left untouched, the lab loads read-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import STORAGE_DIR

from .const import DOMAIN, LOGGER, STORAGE_VERSION
from .core.journal import DurableFiles, Recovered, encode_batch
from .core.lab import Lab
from .core.ledger import check_state
from .core.model import LabError, StoredStateError, StoreWriteError
from .helpers import raise_repair

# Energy counters and pinned host keys are not journaled: they are compacted within
# this many seconds of a change (and at unload), as the whole store used to be.
SAVE_DELAY = 1.0
# The journal is compacted into the snapshot once it holds this much.
COMPACT_CHANGES = 20_000
COMPACT_BYTES = 4 * 1024 * 1024

ISSUE_RECOVERED = "store_recovered"
ISSUE_LOST = "store_lost"
ISSUE_NEWER = "store_newer"
CONFIRMED = "loss confirmed in Repairs"


def _validate(data: dict[str, Any]) -> None:
    try:
        check_state(data)
    except StoredStateError as err:
        raise ValueError(err.placeholders["detail"]) from None


class LabStorage:
    """The journal, snapshot and good copy of one lab, written off the event loop."""

    # False: answer at once and journal within SAVE_DELAY, as labpower did before the
    # journal (a crash loses that last second). Only the benchmark's baseline sets it.
    acknowledge_on_disk = True

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        title: str,
        lab: Lab,
        snapshot: Callable[[], dict[str, Any]],
    ) -> None:
        """`snapshot` returns everything the store holds (called on the event loop)."""
        self.hass = hass
        self.entry_id = entry_id
        self.title = title
        self.lab = lab
        self._snapshot = snapshot
        self.files = storage_files(hass, entry_id)
        self.writable = True
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._compact = False
        self._closing = False  # unloading: a failed write is not retried
        self._waiters: list[asyncio.Future[None]] = []
        self._unwritten: list[bytes] = []
        self._found = Recovered()
        self._changes = 0  # journaled since the last compaction
        self._save_timer: CALLBACK_TYPE | None = None  # save_soon's compaction
        self._journal_timer: CALLBACK_TYPE | None = None  # acknowledge_on_disk False
        self.commits = 0  # batches written (the benchmark reads it)
        # Called after each batch is on disk (entities showing lab totals).
        self.on_commit: Callable[[], None] | None = None

    # Loading

    async def async_read(self) -> dict[str, Any]:
        """Read the files (first); returns the stored data besides the ledger."""
        self._found = found = await self.hass.async_add_executor_job(
            self.files.read, _validate
        )
        return {
            key: value
            for key, value in (found.data or {}).items()
            if key in ("energy", "host_keys")
        }

    async def async_restore(self) -> None:
        """Restore the ledger from what async_read found.

        Call after the resources were added to the lab (and the other stored data
        loaded), before the lab starts.
        """
        found = self._found
        ledger = self.lab.ledger
        for issue in (ISSUE_RECOVERED, ISSUE_LOST, ISSUE_NEWER):
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id(issue))
        if found.newer is not None:
            self._refuse_newer(found)
            return
        try:
            self.lab.load(found.data, found.batches)
        except LabError as err:  # a journal this version cannot replay
            found.problems.append(str(err))
            found.complete = False
            self.lab.load(found.data)
        if not found.complete:
            self._mark_lost(found)
        elif found.problems and found.source == "store":
            LOGGER.warning("%s: %s", self.title, "; ".join(found.problems))
        elif found.problems:
            LOGGER.warning(
                "%s: stored tokens restored from %s: %s",
                self.title,
                found.source or "the journal",
                "; ".join(found.problems),
            )
            raise_repair(
                self.hass,
                self.issue_id(ISSUE_RECOVERED),
                ISSUE_RECOVERED,
                self._placeholders(found),
            )
        if ledger.unknown is not None:
            self._raise_lost(ledger.unknown)
        if found.fresh or found.problems:
            # A fresh lab gets its snapshot and good copy at once (a store deleted
            # later is then noticed); a recovered one gets both written again.
            await self._async_compact()
            await self._async_compact()
        elif found.changes:
            await self._async_compact()

    def _placeholders(self, found: Recovered) -> dict[str, str]:
        return {
            "lab": self.title,
            "detail": "; ".join(found.problems) or "-",
            "tokens": str(self.lab.ledger.token_count),
            "changes": str(found.changes),
        }

    def _refuse_newer(self, found: Recovered) -> None:
        """Leave the files and the power as they are; give out no token."""
        self.writable = False
        reason = f"its store was written by a newer labpower (version {found.newer})"
        LOGGER.error("%s: %s; it is left untouched", self.title, reason)
        self.lab.ledger.frozen = reason
        self.lab.ledger.mark_unknown(self.lab.names, reason)
        raise_repair(
            self.hass,
            self.issue_id(ISSUE_NEWER),
            ISSUE_NEWER,
            {
                "lab": self.title,
                "version": str(found.newer),
                "supported": str(STORAGE_VERSION),
                "path": self.files.store_path.name,
            },
        )

    def _mark_lost(self, found: Recovered) -> None:
        detail = "; ".join(found.problems) or "no stored state"
        LOGGER.error(
            "%s: stored tokens lost (%s); %d restored from what was left; every "
            "resource is kept as found until an administrator confirms in Repairs",
            self.title,
            detail,
            self.lab.ledger.token_count,
        )
        self.lab.ledger.mark_unknown(
            self.lab.names,
            f"{detail}; {self.lab.ledger.token_count} tokens restored "
            f"from {found.changes} journaled changes",
        )

    def _raise_lost(self, detail: str) -> None:
        raise_repair(
            self.hass,
            self.issue_id(ISSUE_LOST),
            ISSUE_LOST,
            {"lab": self.title, "detail": detail},
            data={"entry_id": self.entry_id, "confirm": ISSUE_LOST},
        )

    def issue_id(self, issue: str) -> str:
        """The id of one of this lab's storage issues."""
        return f"{issue}_{self.entry_id}"

    def confirm_lost(self, cause: str = CONFIRMED) -> list[str]:
        """An administrator confirmed the loss: manage the kept resources again."""
        kept = self.lab.confirm_unknown(cause)
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id(ISSUE_LOST))
        self.request_compaction()
        return kept

    # Writing

    @callback
    def changed(self) -> None:
        """The ledger changed: journal it now (it is answered once on disk)."""
        if not self.acknowledge_on_disk and self._task is None:
            if self._journal_timer is None:
                self._journal_timer = async_call_later(
                    self.hass, SAVE_DELAY, self._journal_due
                )
            return
        self._start()

    @callback
    def _journal_due(self, _now: object) -> None:
        self._journal_timer = None
        self._start()

    def _start(self) -> None:
        if self._task is None:
            self._task = self.hass.async_create_background_task(
                self._async_run(),
                f"{DOMAIN} journal {self.entry_id}",
                eager_start=False,
            )
        else:
            self._again = True

    async def async_committed(self) -> None:
        """Return once every change made so far is on disk (raises StoreWriteError)."""
        if not self.acknowledge_on_disk or (
            self._task is None and not self.lab.ledger.has_changes
        ):
            return
        future = self.hass.loop.create_future()
        self._waiters.append(future)
        self._start()
        await future

    @callback
    def save_soon(self) -> None:
        """Things that are not journaled changed: compact within SAVE_DELAY."""
        if self._save_timer is None:
            self._save_timer = async_call_later(self.hass, SAVE_DELAY, self._save_due)

    @callback
    def _save_due(self, _now: object) -> None:
        self._save_timer = None
        self.request_compaction()

    def request_compaction(self) -> None:
        """Write a snapshot soon (after the journal's pending changes)."""
        self._compact = True
        self._start()

    async def _async_run(self) -> None:
        try:
            while True:
                self._again = False
                waiters, self._waiters = self._waiters, []
                records = self.lab.ledger.drain_changes()
                try:
                    if self.writable:
                        if records:
                            self._unwritten.append(encode_batch(records))
                            self._changes += len(records)
                        if self._unwritten:
                            await self._async_append()
                except OSError as err:
                    LOGGER.error("%s: journal not written: %s", self.title, err)
                    if self._closing:  # unload: the final compaction gets one try
                        waiters += self._waiters
                        self._waiters = []
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(StoreWriteError(str(err)))
                    if self._closing:
                        return
                    await asyncio.sleep(SAVE_DELAY)  # then try again
                    self._again = True
                    continue
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                if self.on_commit is not None and records:
                    self.on_commit()
                if self.writable and (
                    self._compact
                    or self._changes >= COMPACT_CHANGES
                    or self.files.journal_bytes >= COMPACT_BYTES
                ):
                    await self._async_compact()
                if not (self._again or self._waiters or self.lab.ledger.has_changes):
                    return
        finally:
            self._task = None

    async def _async_append(self) -> None:
        payload = b"".join(self._unwritten)
        await self.hass.async_add_executor_job(self.files.append, payload)
        self._unwritten.clear()
        self.commits += 1

    async def _async_compact(self) -> None:
        if not self.writable:
            return
        self._compact = False
        data = self._snapshot()
        try:
            await self.hass.async_add_executor_job(self.files.compact, data)
        except OSError as err:
            LOGGER.error("%s: store not written: %s", self.title, err)
            return
        self._changes = 0

    async def async_close(self) -> None:
        """Write everything now (unload): the journal, then a snapshot.

        A write that fails now is not retried: the snapshot gets one try.
        """
        self._closing = True
        for cancel in (self._save_timer, self._journal_timer):
            if cancel is not None:
                cancel()
        self._save_timer = self._journal_timer = None
        while self._task is not None:
            await asyncio.shield(self._task)
        if self.writable:
            self.lab.ledger.drain_changes()  # all in the snapshot below
            await self._async_compact()
        await self.hass.async_add_executor_job(self.files.close)


async def async_committed(storages: Iterable[LabStorage]) -> None:
    """Return once every change of these labs is on disk (each lab once)."""
    await asyncio.gather(
        *(storage.async_committed() for storage in dict.fromkeys(storages))
    )


def storage_files(hass: HomeAssistant, entry_id: str) -> DurableFiles:
    """The files of a lab's store (in Home Assistant's storage directory)."""
    return DurableFiles(
        Path(hass.config.path(STORAGE_DIR)), f"{DOMAIN}.{entry_id}", STORAGE_VERSION
    )


async def async_remove_storage(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a removed lab's files."""
    await hass.async_add_executor_job(storage_files(hass, entry_id).remove)
