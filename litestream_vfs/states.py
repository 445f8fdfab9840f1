"""Finding states in a replica: exactly a TXID, the newest, the last at a time, all of them.

`StateQueries` is the part of `Replica` that answers these from the published
listing; it relies on the replica's listing (`chains_for`, `refresh`,
`lister`), file metadata (`metas`, `headers`) and damage handling
(`_around_damage`, `damage_note`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

from .errors import OutOfHistory, ReplicaError
from .pages import FileMeta
from .storage.base import Counters, LtxObject
from .timeparse import format_time, format_txid

if TYPE_CHECKING:
    from . import ltx
    from .executors import Executors
    from .listing import Lister
    from .plan import Chains
    from .storage.base import Storage

Charge = Sequence[Counters]
T = TypeVar("T")
#: Headers fetched concurrently per round of a time search.
TIME_SEARCH_FANOUT = 16


@dataclass(frozen=True)
class State:
    """One restorable database state, how to rebuild it, and the metadata of its files."""

    txid: int
    timestamp: datetime
    level: int
    page_size: int
    commit: int
    plan: tuple[LtxObject, ...]
    #: FileMeta of each planned file: held by the state, so it can never vanish under a reader.
    metas: tuple[FileMeta, ...] = field(default=(), compare=False, repr=False)
    #: The replica's epoch when planned: a replica re-created at its URL starts a new one.
    epoch: int = field(default=0, compare=False)

    @property
    def db_size(self) -> int:
        return self.page_size * self.commit

    def describe(self) -> str:
        return f"TXID {format_txid(self.txid)} ({format_time(self.timestamp)})"


@dataclass(frozen=True)
class HistoryEntry:
    """A row of `history`: a restorable state, the file that dates it, and the database size."""

    txid: int
    timestamp: datetime
    level: int
    file_size: int
    db_size: int


class StateQueries:
    """state(), latest(), state_at(), history(), describe_range() of a `Replica`."""

    storage: Storage
    executors: Executors
    lister: Lister
    epoch: int
    chains_for: Callable[..., Chains]
    refresh: Callable[..., Chains]
    metas: Callable[..., list[FileMeta]]
    headers: Callable[..., list[ltx.Header]]
    _around_damage: Callable[..., object]
    damage_note: Callable[[int], str]

    def state(self, txid: int, charge: Charge = ()) -> State:
        """The state at exactly `txid` from intact files, or OutOfHistory naming what is available."""
        return self._around_damage(lambda: self._state(txid, charge))

    def _state(self, txid: int, charge: Charge) -> State:
        chains = self.chains_for(charge)
        if txid not in chains and txid > (chains.latest or 0):  # newer than we listed: look again
            chains = self.refresh(charge)
        if txid not in chains:
            raise OutOfHistory(f"TXID {format_txid(txid)} is not a restorable state of "
                               f"{self.storage.url}{self.damage_note(txid)}; {self.describe_range()}")
        return self._planned(chains, txid, charge)

    def _planned(self, chains: Chains, txid: int, charge: Charge) -> State:
        """State `txid` planned from `chains` (a file of them since gone raises ObjectNotFound)."""
        epoch = self.epoch
        plan = chains.plan(txid)
        finest = chains.finest(txid)
        # One concurrent round: every planned file's index (needed for the first
        # read anyway) and the header that dates the state.
        jobs = [lambda: self.metas(plan, charge)]
        if finest not in plan:
            jobs.append(lambda: self.headers([finest], charge))
        metas = self.executors.run_all(jobs)[0]
        dating = metas[plan.index(finest)].header if finest in plan else self.headers([finest], charge)[0]
        last = metas[-1].header
        return State(txid, dating.timestamp, finest.level, last.page_size, last.commit, plan,
                     tuple(metas), epoch)

    def latest(self, charge: Charge = ()) -> State:
        """The newest state whose files read cleanly.

        A file that fails its checks (cut short, corrupt, or listed while a
        store without atomic uploads is still writing it) is left out and the
        newest state the other files reach is returned; the file is tried again
        once a listing shows it changed.
        """
        return self._around_damage(lambda: self._state(self._newest(charge), charge))

    def _newest(self, charge: Charge) -> int:
        newest = self.chains_for(charge).latest
        if newest is None:
            raise ReplicaError(f"no state of {self.storage.url} can be restored{self.damage_note(0)}")
        return newest

    def state_at(self, when: datetime, charge: Charge = ()) -> State:
        """The last state whose timestamp is at or before `when` (timestamps of the finest files)."""
        return self._around_damage(lambda: self._state_at(when, charge))

    def _state_at(self, when: datetime, charge: Charge) -> State:
        """Timestamps grow with TXIDs, so a k-ary search fetches only a few headers
        per round instead of every one. A time after the last listing may have newer
        states: the replica is listed again first."""
        confirmed = self.lister.last_success
        chains = self.chains_for(charge) if confirmed is not None and when.timestamp() <= confirmed \
            else self.refresh(charge)
        states = chains.states
        lo, hi = -1, len(states)  # time(states[lo]) <= when < time(states[hi])
        while hi - lo > 1:
            count = hi - lo - 1
            probes = sorted({lo + 1 + count * k // TIME_SEARCH_FANOUT for k in range(TIME_SEARCH_FANOUT)})
            stamps = self.headers([chains.finest(states[i]) for i in probes], charge)
            for i, header in zip(probes, stamps):
                if header.timestamp <= when:
                    lo = i
                else:
                    hi = i
                    break
        if lo < 0:
            raise OutOfHistory(f"no state of {self.storage.url} at or before {format_time(when)}; "
                               f"{self.describe_range()}")
        # Planned from the listing searched: a newer one may no longer restore that TXID
        # (compaction replaced its L0 file), and then the search runs again on it.
        return self._planned(chains, states[lo], charge)

    def history(self, charge: Charge = ()) -> list[HistoryEntry]:
        """Every state the intact files rebuild, oldest first.

        The header and page index of every file a state's plan uses or its
        time comes from is read (once per file), so a file cut short or
        corrupt in its structure is found and its states left out here rather
        than failing the first read of them.
        """
        return self._around_damage(lambda: self._history(charge))

    def _history(self, charge: Charge) -> list[HistoryEntry]:
        chains = self.chains_for(charge)
        finest = [chains.finest(t) for t in chains.states]
        needed = set(finest).union(*(chains.plan(t) for t in chains.states))
        self.metas(sorted(needed), charge)
        headers = self.headers(finest, charge)
        return [HistoryEntry(t, h.timestamp, f.level, f.size, h.page_size * h.commit)
                for t, f, h in zip(chains.states, finest, headers)]

    def describe_range(self) -> str:
        """'available states: TXID a (time) to TXID b (time)', for error messages."""
        return self._around_damage(self._describe_range)

    def _describe_range(self) -> str:
        chains = self.chains_for()
        if not chains.states:
            return "no state can be restored"
        ends = [chains.states[0], chains.states[-1]]
        first, last = self.headers([chains.finest(t) for t in ends])
        return (f"available states: TXID {format_txid(ends[0])} ({format_time(first.timestamp)}) "
                f"to TXID {format_txid(ends[1])} ({format_time(last.timestamp)})")
