"""Which state of its replica one connection reads: the newest (following), a fixed TXID,
or the state at a time, pinned for the length of each read transaction.

`vfs.ReplicaFile` calls `begin` when SQLite starts a read transaction and clears
`pinned` when it ends; every read in between comes from `pinned`. Between
transactions `state` is what the next one will see (at `latest`: the newest
state of the current listing, which the poller keeps fresh; at a time: the last
state at or before it that the current listing restores, which changes when
compaction and retention remove the finer one).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import ObjectNotFound

#: What a connection reads: None follows `latest`, an int is a TXID, a datetime a time.
Target = int | datetime | None

if TYPE_CHECKING:
    from .poller import Poller
    from .replica import Charge, Replica, State
    from .staleness import Freshness


class ReadPosition:
    """One connection's place in a replica's history: following `latest`, at a TXID or at a time."""

    def __init__(self, replica: Replica, poller: Poller, freshness: Freshness, target: Target,
                 charge: Charge, listing_age: float | None = None) -> None:
        self.replica = replica
        self.poller = poller
        self.freshness = freshness
        self.charge = charge
        self._lock = threading.Lock()
        self._target = target
        self._following = False
        self._set_following(target is None)
        if listing_age is not None:  # a listing nobody confirmed lately is listed again
            replica.lister.fresh(listing_age, charge)
        #: The state of the running read transaction: set by `begin`; the file sets it back
        #: to None when the transaction ends (a plain store: xUnlock runs per transaction).
        self.pinned: State | None = None
        #: Whether SQLite got an answer (a size, a page) in the running transaction: until it
        #: has, the pinned state may still be replaced (see `move_unanswered`).
        self.answered = False
        #: The listing `current` was resolved from at `latest` or a time (unchanged: no need to look again).
        self._resolved_from: object = None
        #: The state the last transaction began at (what a new one starts from).
        self.current = self._resolve()  # open-time errors (empty replica, bad TXID) surface here
        #: Damaged files the replica knew of at the last check, and how often pages SQLite may
        #: have cached from a damaged file were dropped (part of the version SQLite sees).
        self._damage_seen = -1
        self.generation = 0

    @property
    def following(self) -> bool:
        return self._target is None

    @property
    def state(self) -> State:
        """The pinned state inside a transaction, else the one the next transaction will see."""
        return self.pinned or self._next_state()

    # -- moving ------------------------------------------------------------
    def travel_to_txid(self, txid: int) -> State:
        return self._travel(txid)

    def travel_to_time(self, when: datetime) -> State:
        return self._travel(when)

    def follow_latest(self) -> State:
        return self._travel(None)

    def _travel(self, target: Target) -> State:
        """Move to `target`; if it has no state, raise and stay where the position was."""
        before = self._target
        self._target = target
        try:
            self.current = self._resolve()
        except BaseException:
            self._target = before
            raise
        self._set_following(target is None)
        return self.current

    def close(self) -> None:
        """The connection is gone: stop following (the poller may stop)."""
        self._set_following(False)

    # -- transactions ------------------------------------------------------
    def begin(self) -> None:
        """A read transaction begins: pin the state it reads (raises if none can be read).

        The common case is a few attribute reads (a warm query's transaction costs little):
        no damage found since the last transaction, and at `latest` no lag limit to check
        and no new listing to follow.
        """
        replica = self.replica
        self.answered = False
        if replica.damage_count == self._damage_seen and (isinstance(self._target, int) or (
                (self._target is not None or self.freshness.max_lag is None)
                and replica.listed is self._resolved_from is not None)):  # the listing it came from
            self.pinned = self.current
            return
        with self._lock:
            before = self.current
            self._next_state()  # at latest or a time: resolved again when the listing changed
            self._leave_damaged(before)
            if self._target is None:
                self.freshness.check(self.current)
            self.pinned = self.current

    def move_unanswered(self) -> bool:
        """The pinned state is no longer restorable (retention removed its files). At a time, and
        before SQLite got any answer in this transaction, the transaction may still start from
        the state at that time now; returns whether it moved (False: the error stands)."""
        if not isinstance(self._target, datetime) or self.answered or self.pinned is None:
            return False
        with self._lock:
            gone = self.pinned
            self.current = self._resolve()
            if self.current.txid == gone.txid:
                return False
            self.pinned = self.current
        return True

    # -- choosing ----------------------------------------------------------
    def _set_following(self, follow: bool) -> None:
        if follow and not self._following:
            self.poller.follow()
        elif not follow and self._following:
            self.poller.unfollow()
        self._following = follow

    def _resolve(self) -> State:
        """The state the next read transaction should see (re-planned once if files vanished)."""
        for attempt in (0, 1):
            try:
                self._resolved_from = self.replica.listed
                if self._target is None:
                    return self.replica.latest(self.charge)
                if isinstance(self._target, datetime):
                    return self.replica.state_at(self._target, self.charge)
                return self.replica.state(self._target, self.charge)
            except ObjectNotFound:
                if attempt:
                    raise
                self.replica.refresh(self.charge)
        raise AssertionError("unreachable")

    def _next_state(self) -> State:
        """At `latest`, the newest state of the current listing; at a time, the state at that
        time if the current listing no longer restores the one found before (looked at again
        only when the listing changed; no lock, no request: the poller keeps it fresh)."""
        if isinstance(self._target, int):
            return self.current
        listing = self.replica.listed
        if listing is None or listing is not self._resolved_from:
            if self._target is None or listing is None or self.current.txid not in listing.chains:
                self.current = self._resolve()
            else:
                self._resolved_from = listing
        return self.current

    def _leave_damaged(self, before: State) -> None:
        """If a file of the last state's plan was found damaged since, re-plan (an error naming
        it if nothing else rebuilds the state) and make SQLite drop the pages it cached."""
        found = self.replica.damage_count
        if found == self._damage_seen:
            return
        if any(self.replica.damage.problem(obj) is not None for obj in before.plan):
            self.generation += 1  # first: if re-planning fails, SQLite still never reuses those pages
            if self.current is before:
                self.current = self._resolve()  # raises every transaction while nothing rebuilds it
        self._damage_seen = found
