"""`validate`: read every file of a replica in full and check what can be checked.

Per file: structure, index/frame consistency, the name against the header, and
the file checksum; a file that fails is named, and marked damaged for the
replica's plans. For the replica: the newest file must be reachable from a
snapshot by a contiguous chain of intact files, i.e. the latest state can be
restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import LitestreamVFSError
from .replica import Replica
from .restore import verified_pages
from .storage.base import LtxObject
from .timeparse import format_txid


@dataclass
class ValidationReport:
    files_checked: int = 0
    bytes_checked: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"FAILED ({len(self.failures)} problem(s))"
        return f"{verdict}: {self.files_checked} files, {self.bytes_checked} bytes checked"


def _check_file(replica: Replica, obj: LtxObject) -> str | None:
    try:
        for _ in verified_pages(replica, obj, ()):
            pass
    except LitestreamVFSError as exc:
        return str(exc)
    return None


def validate(replica: Replica, progress: Callable[[str], None] = lambda line: None) -> ValidationReport:
    report = ValidationReport()
    replica.refresh()
    files = sorted(replica.files, key=lambda o: (o.level, o.min_txid, o.max_txid))
    futures = [(obj, replica.executors.tasks.submit(_check_file, replica, obj)) for obj in files]
    for obj, future in futures:
        problem = future.result()
        report.files_checked += 1
        report.bytes_checked += obj.size
        if problem:
            report.failures.append(problem)
            progress(f"FAIL {obj}: {problem}")
        else:
            progress(f"ok   {obj} ({obj.size} bytes)")
    chains = replica.chains_for()
    newest = max(obj.max_txid for obj in files)
    if newest not in chains:
        cause = replica.damage_note(newest).removeprefix("; ") or "the chain has a gap"
        problem = (f"the newest file ends at TXID {format_txid(newest)} but the latest restorable state is "
                   f"{format_txid(chains.latest or 0)}: {cause}")
        report.failures.append(problem)
        progress(f"FAIL plan: {problem}")
    else:
        plan = chains.plan(newest)
        progress(f"ok   plan for latest TXID {format_txid(newest)}: "
                 + " + ".join(str(o) for o in plan))
    return report
