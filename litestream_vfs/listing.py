"""The one owner of a replica's listing: immutable snapshots, published whole.

A `Listing` never changes once published; a new LIST publishes a new one.
Readers keep the listing (and the file metadata) their state was planned
from, so a newer listing that no longer names a file cannot take anything
away from them: it only stops new states from using that file.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from .damage import Damage
from .errors import ReplicaError
from .plan import Chains, build_chains
from .storage.base import LEVELS, Counters, LtxObject, Storage

Charge = Sequence[Counters]


@dataclass(frozen=True)
class Listing:
    """Every LTX file of one LIST of the replica, and the chains they form."""

    files: frozenset[LtxObject]
    chains: Chains
    #: Counts publications: 1 for the first listing of this process, then up.
    generation: int
    #: time.time() when the LIST that produced it finished.
    listed_at: float

    @property
    def latest(self) -> int:
        return self.chains.latest or 0

    def recreated_since(self, previous: "Listing") -> bool:
        """Whether the replica was deleted and created anew at its URL between the two listings:
        its history went backwards, or a file is listed as another version of the same name and size."""
        if self.newest_file < previous.newest_file:
            return True
        before = {o: o.tag for o in previous.files}
        return any(o.tag != before[o] for o in self.files if o in before)

    @property
    def newest_file(self) -> int:
        """The highest TXID any listed file reaches (damaged or not)."""
        return max((o.max_txid for o in self.files), default=0)


#: Damaged files an error message names at most.
DAMAGE_NAMED = 3


def damage_note(damage: Damage, txid: int) -> str:
    """'; damaged: L0/… (problem)' for damaged files that could have led to `txid` (0: any)."""
    hits = [(o, e) for o, e in damage.found() if not txid or o.min_txid <= txid]
    if not hits:
        return ""
    named = "; ".join(f"{e}" for _, e in hits[:DAMAGE_NAMED])
    more = f" and {len(hits) - DAMAGE_NAMED} more" if len(hits) > DAMAGE_NAMED else ""
    return f"; damaged: {named}{more}"


class Lister:
    """Lists one replica and publishes the result; tells subscribers what changed."""

    def __init__(self, storage: Storage, counters: Counters, damage: Damage,
                 on_publish: Callable[[Listing | None, Listing], None]) -> None:
        self.storage = storage
        self.counters = counters
        #: Files found damaged: the chains leave them out (see damage.py).
        self.damage = damage
        self._on_publish = on_publish
        self._lock = threading.Lock()
        self._current: Listing | None = None
        self._started = 0  # LISTs started; a listing older than the published one is never published
        self._published_from = 0
        #: When a poll last succeeded (time.time()), for staleness checks.
        self.last_success: float | None = None

    @property
    def current(self) -> Listing | None:
        """The last published listing, if any (a plain read: cheap enough for every transaction)."""
        return self._current

    def get(self, charge: Charge = ()) -> Listing:
        """The current listing, listing the replica first if it never was."""
        current = self._current
        return current if current is not None else self.refresh(charge)

    def fresh(self, max_age: float, charge: Charge = ()) -> Listing:
        """The current listing if a LIST confirmed it within `max_age` seconds, else a new one.

        While a connection follows the replica the poller keeps it fresh (no
        request here); a replica nobody polled for a while is listed again, so
        a new connection never starts from an old state, or from files of a
        replica since deleted and re-created at the same URL.
        """
        current, confirmed = self._current, self.last_success
        if current is not None and confirmed is not None and time.time() - confirmed <= max_age:
            return current
        return self.refresh(charge)

    def refresh(self, charge: Charge = ()) -> Listing:
        """List every level again (after compaction removed files, or at open)."""
        return self._publish(*self._list(LEVELS, charge))

    def adopt(self, files: frozenset[LtxObject]) -> Listing:
        """Publish a listing made elsewhere (a fleet lists a whole directory at once)."""
        with self._lock:
            self._started += 1
            started = self._started
        return self._publish(files, started)

    def poll(self, charge: Charge = ()) -> bool:
        """Re-list level 0 only (one request); re-list everything if level 0 alone breaks the chain.

        New files extend the history; a file whose size changed (an upload
        that was still in progress) replaces its old listing; files that
        compaction removed are dropped, which is fine as long as the chain
        to the newest state survives, else the full listing finds the
        compacted files that replace them.
        """
        before = self.get(charge)
        listed, started = self._list((0,), charge)
        known = {o for o in before.files if o.level == 0}
        if {(o, o.tag) for o in known} == {(o, o.tag) for o in listed}:
            self.last_success = time.time()
            return False
        files = (before.files - known) | listed
        candidate = build_chains(self.damage.intact(files))
        newest = max([o.max_txid for o in listed], default=0)
        if candidate.latest is not None and candidate.latest >= max(before.latest, newest):
            self._publish(files, started)
        else:
            self.refresh(charge)
        return True

    def _list(self, levels: tuple[int, ...], charge: Charge) -> tuple[frozenset[LtxObject], int]:
        """(files listed, sequence number of this LIST)."""
        with self._lock:
            self._started += 1
            started = self._started
        before = self.storage.counters.lists
        files = frozenset(self.storage.list_files(levels))
        for counters in (*charge, self.counters):
            counters.add(lists=max(1, self.storage.counters.lists - before))
        return files, started

    def republish(self) -> None:
        """Publish the current files again, with chains that leave out files found damaged since."""
        with self._lock:
            current = self._current
            if current is None:
                return
            listing = Listing(current.files, build_chains(self.damage.intact(current.files)),
                              current.generation + 1, current.listed_at)
            self._current = listing
        self._on_publish(current, listing)

    def _chains(self, files: frozenset[LtxObject]) -> Chains:
        """The chains of the intact `files`, or a clear ReplicaError when nothing can be restored."""
        url = self.storage.url
        if not files:
            raise ReplicaError(f"no LTX files at {url}: the replica is empty "
                               "(Litestream has not shipped a snapshot yet) or the URL is wrong")
        self.damage.retain(files)
        chains = build_chains(self.damage.intact(files))
        if not chains.states:
            raise ReplicaError(f"{url} holds LTX files but no snapshot to start from, "
                               f"so no state can be restored{damage_note(self.damage, 0)}")
        return chains

    def _publish(self, files: frozenset[LtxObject], started: int) -> Listing:
        chains = self._chains(files)
        with self._lock:
            previous = self._current
            if previous is not None and started < self._published_from:
                return previous  # a LIST that began later was published meanwhile: it is newer
            self._published_from = started
            generation = previous.generation + 1 if previous else 1
            listing = Listing(files, chains, generation, time.time())
            self._current = listing
            self.last_success = listing.listed_at
        self._on_publish(previous, listing)
        return listing
