"""Which state of its replica one connection reads: the newest (following) or a fixed TXID,
pinned for the length of each read transaction.

`vfs.ReplicaFile` calls `begin` when SQLite starts a read transaction and clears
`pinned` when it ends; every read in between comes from `pinned`. Between
transactions `state` is what the next one will see (at `latest`: the newest
state of the current listing, which the poller keeps fresh).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import ObjectNotFound

if TYPE_CHECKING:
    from .poller import Poller
    from .replica import Charge, Replica, State
    from .staleness import Freshness


class ReadPosition:
    """One connection's place in a replica's history: following `latest`, or at a TXID."""

    def __init__(self, replica: Replica, poller: Poller, freshness: Freshness, target: int | None,
                 charge: Charge, listing_age: float | None = None) -> None:
        self.replica = replica
        self.poller = poller
        self.freshness = freshness
        self.charge = charge
        self._lock = threading.Lock()
        self._target = target  # None: follow the newest state
        self._following = False
        self._set_following(target is None)
        if listing_age is not None:  # a listing nobody confirmed lately is listed again
            replica.lister.fresh(listing_age, charge)
        #: The state of the running read transaction: set by `begin`; the file sets it back
        #: to None when the transaction ends (a plain store: xUnlock runs per transaction).
        self.pinned: State | None = None
        #: The listing `current` was resolved from while following (unchanged: no need to look again).
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
        state = self.replica.state(txid, self.charge)
        self._target = txid
        self._set_following(False)
        self.current = state
        return state

    def travel_to_time(self, when: datetime) -> State:
        return self.travel_to_txid(self.replica.state_at(when, self.charge).txid)

    def follow_latest(self) -> State:
        self._target = None
        self._set_following(True)
        self.current = self._resolve()
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
        if replica.damage_count == self._damage_seen and (self._target is not None or (
                self.freshness.max_lag is None
                and replica.listed is self._resolved_from is not None)):  # the listing it came from
            self.pinned = self.current
            return
        with self._lock:
            before = self.current
            self._next_state()  # at latest: resolved again when the listing changed
            self._leave_damaged(before)
            if self._target is None:
                self.freshness.check(self.current)
            self.pinned = self.current

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
                return self.replica.state(self._target, self.charge)
            except ObjectNotFound:
                if attempt:
                    raise
                self.replica.refresh(self.charge)
        raise AssertionError("unreachable")

    def _next_state(self) -> State:
        """At `latest`, the newest state of the current listing (resolved again only when it changed)."""
        if self._target is None:
            listing = self.replica.listed  # no lock, no request: the poller keeps it fresh
            if listing is None or listing is not self._resolved_from:
                self.current = self._resolve()
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
