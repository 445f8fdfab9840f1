"""Reading the pages of a state: re-planned when a planned file vanished or is damaged.

`ReadPath` is the part of a `Replica` between a state and the page fetcher:
it follows the re-plans recorded for a state, gates each file through the
verifier, and when a planned file vanished (compaction, retention) or turns
out damaged, re-plans the same TXID from the files that remain. Connections
still holding the old state use the re-planned one from then on.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Iterable, Sequence

from .errors import LTXError, ObjectNotFound, ReplicaError
from .pages import FileMeta, PageLocation
from .readahead import ReadAhead
from .states import State
from .storage.base import Counters, LtxObject
from .timeparse import format_txid

if TYPE_CHECKING:
    from .replica import Replica

Charge = Sequence[Counters]


class ReadPath:
    """read_pages() and serve() of one `Replica`, and the re-plans of its states."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._lock = threading.Lock()
        #: A state whose file vanished -> the same TXID re-planned from the files that remain,
        #: kept exactly as long as a connection still holds the old state.
        self._replans: weakref.WeakKeyDictionary[State, State] = weakref.WeakKeyDictionary()

    def read_pages(self, state: State, pgnos: Iterable[int], charge: Charge = (),
                   readahead: ReadAhead | None = None, verify: str | None = None) -> dict[int, bytes]:
        """Decoded pages of `state`; a pgno missing from the result was never written (zeros).

        `verify` (default: the replica's `verify_mode`) says which files must
        be verified before their pages are served (verify.py). If a planned
        file vanished (compaction or retention removed it), list again, once;
        if one turns out damaged, leave it out. Either way the same TXID is
        rebuilt from the files that remain, or OutOfHistory names why not.
        """
        replica = self.replica
        pgnos = list(pgnos)
        with self._lock:
            while (newer := self._replans.get(state)) is not None:
                state = newer
        relisted = False
        for _ in range(len(replica.files) + 2):  # each round drops at least one planned file
            self._check_epoch(state)
            try:
                return self._read_planned(state, pgnos, charge, readahead, verify or replica.verify_mode)
            except ObjectNotFound:
                if relisted:
                    raise
                relisted = True
                replica.refresh(charge)
            except LTXError as exc:
                hit = next((o for o in state.plan if str(o) == exc.name), None)
                if hit is None:
                    raise
                replica.mark_damaged(hit, exc)
            self._check_epoch(state)
            replanned = replica.state(state.txid, charge)  # OutOfHistory if the state itself is gone
            if replanned != state:
                with self._lock:  # connections pinned to the old plan use the new one from now on
                    self._replans[state] = replanned
            state = replanned
        raise ReplicaError(f"TXID {format_txid(state.txid)} of {replica.storage.url} could not be read"
                           f"{replica.damage_note(state.txid)}")

    def forget_replans(self) -> None:
        """Drop every recorded re-plan (the replica was re-created, or closed)."""
        with self._lock:
            self._replans.clear()

    def _check_epoch(self, state: State) -> None:
        if state.epoch != self.replica.epoch:
            raise ReplicaError(f"{self.replica.storage.url} was re-created since TXID {format_txid(state.txid)} "
                               "was opened: that state no longer exists; reopen the connection")

    def _read_planned(self, state: State, pgnos: list[int], charge: Charge,
                      readahead: ReadAhead | None, verify: str) -> dict[int, bytes]:
        page_map = self.replica.page_map(state, charge)
        wanted = {p: loc for p in pgnos if (loc := page_map.get(p)) is not None}
        return self.serve(wanted, charge, readahead, verify)

    def serve(self, wanted: dict[int, PageLocation], charge: Charge = (), readahead: ReadAhead | None = None,
              verify: str | None = None) -> dict[int, bytes]:
        """The pages at these locations, once their files passed what `verify` asks (verify.py):
        the one place where pages are about to be served from a file."""
        replica = self.replica
        metas = list({id(loc.meta): loc.meta for loc in wanted.values()}.values())
        unverified: set[LtxObject] = set()
        if not replica.verifier.all_verified(metas):  # the warm path: one dict read per file
            self._refuse_damaged(metas)  # (a verified file is never a damaged one)
            unverified = replica.verifier.gate(metas, verify or replica.verify_mode, charge)
        pages = replica.fetcher.pages(wanted, (*charge, replica.counters), readahead)
        if unverified:
            served = sum(len(pages[p]) for p, loc in wanted.items() if loc.obj in unverified and p in pages)
            for counters in (*charge, replica.counters):
                counters.add(bytes_served_unverified=served)
        return pages

    def _refuse_damaged(self, metas: Iterable[FileMeta]) -> None:
        if self.replica.damage_count:
            for meta in metas:
                problem = self.replica.damage.problem(meta.obj)
                if problem is not None:
                    raise LTXError(problem.name, problem.problem)
