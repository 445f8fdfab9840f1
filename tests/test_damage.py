"""One damaged or missing file in a real Litestream replica is contained.

Each scenario cuts or deletes one file of a copy of a replica written by real
Litestream, as a half-finished upload or a lost object would. Whatever the
damage: `history` (CLI and `litestream_history`) works and lists exactly the
states a copy *without* the damaged file has; every listed state reads exactly
like `litestream restore` of that state; a state only the damaged file could
rebuild is refused with an error naming it; `validate` names it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import apsw
import pytest

from litestream_vfs import filemeta
from litestream_vfs.cli import main as cli_main
from litestream_vfs.connect import connect, open_replica
from litestream_vfs.damage import Damage, identity
from litestream_vfs.errors import LitestreamVFSError, LTXError
from litestream_vfs.restore import restore
from litestream_vfs.storage.base import LtxObject
from litestream_vfs.timeparse import format_time, format_txid
from support.corrupt import flip_page_body
from support.replicas import ReplicaFixture, run_restore
from support.truth import ground_truth, table_contents

CLEAN_ERRORS = (apsw.Error, LitestreamVFSError)


# -- replica views: subsets of one real replica's files -------------------------
def everything(obj: LtxObject) -> bool:
    return True


def uncompacted(obj: LtxObject) -> bool:
    """Snapshot + level 0 only: a replica whose L0 files no compaction covers yet."""
    return obj.level in (0, 9)


def uncompacted_to_large_l0(obj: LtxObject) -> bool:
    """As `uncompacted`, observed when the newest level-0 file was a large one (1.6 MB)."""
    return uncompacted(obj) and obj.max_txid <= 0x0A


def copy_view(source: ReplicaFixture, dest: Path, keep: Callable[[LtxObject], bool]) -> Path:
    for obj in source.ltx_files():
        if keep(obj):
            target = dest / "ltx" / str(obj.level) / obj.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(source.url) / "ltx" / str(obj.level) / obj.name, target)
    return dest


def files_of(root: Path) -> list[LtxObject]:
    return sorted(open_replica_fresh(root).files)


def open_replica_fresh(root: Path):
    return open_replica(str(root))


# -- damage ----------------------------------------------------------------------
def cut_to(size_of: Callable[[int], int]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        os.truncate(path, size_of(path.stat().st_size))
    return damage


HALF = cut_to(lambda size: size // 2)
HEADER_ONLY = cut_to(lambda size: 100)
EMPTY = cut_to(lambda size: 0)
EIGHT_SHORT = cut_to(lambda size: size - 8)


def delete(path: Path) -> None:
    path.unlink()


def newest_l0(files: list[LtxObject]) -> LtxObject:
    return max((o for o in files if o.level == 0), key=lambda o: o.max_txid)


def snapshot(files: list[LtxObject]) -> LtxObject:
    return next(o for o in files if o.level == 9)


def covered_l0(files: list[LtxObject]) -> LtxObject:
    """A level-0 file inside a level-1 file's span, not at its end."""
    l1 = [o for o in files if o.level == 1 and o.max_txid - o.min_txid >= 2]
    span = l1[-1]
    return next(o for o in files if o.level == 0 and o.max_txid == span.max_txid - 1)


def uncovered_l0(files: list[LtxObject]) -> LtxObject:
    """A level-0 file in the middle of an uncompacted run."""
    l0 = sorted((o for o in files if o.level == 0), key=lambda o: o.max_txid)
    return l0[len(l0) * 2 // 3]


@dataclass(frozen=True)
class Scenario:
    view: Callable[[LtxObject], bool]
    target: Callable[[list[LtxObject]], LtxObject]
    damage: Callable[[Path], None]

    @property
    def deletes(self) -> bool:
        return self.damage is delete


SCENARIOS = {
    "newest-small-l0-cut-half": Scenario(uncompacted, newest_l0, HALF),
    "newest-small-l0-cut-to-header": Scenario(uncompacted, newest_l0, HEADER_ONLY),
    "newest-small-l0-cut-to-empty": Scenario(uncompacted, newest_l0, EMPTY),
    "newest-small-l0-8-bytes-short": Scenario(uncompacted, newest_l0, EIGHT_SHORT),
    "newest-large-l0-cut-half": Scenario(uncompacted_to_large_l0, newest_l0, HALF),
    "newest-large-l0-cut-to-header": Scenario(uncompacted_to_large_l0, newest_l0, HEADER_ONLY),
    "newest-large-l0-8-bytes-short": Scenario(uncompacted_to_large_l0, newest_l0, EIGHT_SHORT),
    "newest-l0-cut-half-compacted-too": Scenario(everything, newest_l0, HALF),
    "snapshot-cut-half": Scenario(uncompacted, snapshot, HALF),
    "snapshot-8-bytes-short": Scenario(uncompacted, snapshot, EIGHT_SHORT),
    "covered-l0-deleted": Scenario(everything, covered_l0, delete),
    "uncovered-l0-deleted": Scenario(uncompacted, uncovered_l0, delete),
}


@dataclass
class Damaged:
    """A damaged copy of a replica view, the same view without the file, and what was hit."""

    root: Path
    reference: Path
    obj: LtxObject
    original_states: list[int]

    @property
    def path(self) -> Path:
        return self.root / "ltx" / str(self.obj.level) / self.obj.name


def make_damaged(source: ReplicaFixture, tmp_path: Path, scenario: Scenario) -> Damaged:
    root = copy_view(source, tmp_path / "damaged", scenario.view)
    reference = copy_view(source, tmp_path / "reference", scenario.view)
    pristine = open_replica(str(copy_view(source, tmp_path / "pristine", scenario.view)))
    obj = scenario.target(sorted(pristine.files))
    damaged = Damaged(root, reference, obj, list(pristine.chains_for().states))
    scenario.damage(damaged.path)
    (reference / "ltx" / str(obj.level) / obj.name).unlink()
    return damaged


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def history_txids(capsys, root: Path) -> list[int]:
    code, out, err = cli(capsys, "history", str(root), "--format", "json")
    assert code == 0, err
    return [int(row["txid"], 16) for row in json.loads(out)]


@pytest.fixture(scope="module", params=("0.5.15", "0.5.17"), ids=("v0.5.15", "v0.5.17"))
def source(request, replica_factory) -> ReplicaFixture:
    """Both frame flavours: LZ4 frames (0.5.15) and LZ4 blocks (0.5.17), file replicas."""
    return replica_factory.get(request.param, "file")


@pytest.mark.parametrize("name", SCENARIOS)
def test_damage_is_contained(source, tmp_path, capsys, name):
    scenario = SCENARIOS[name]
    case = make_damaged(source, tmp_path, scenario)
    expected = [entry.txid for entry in open_replica(str(case.reference)).history()]
    assert expected, "the reference copy must keep some state"

    # history: CLI and SQL agree with the copy that lacks the file, and name a damaged one
    code, out, err = cli(capsys, "history", str(case.root), "--format", "json")
    assert code == 0, err
    assert [int(row["txid"], 16) for row in json.loads(out)] == expected
    db = connect(str(case.root))
    sql_history = [int(t, 16) for (t,) in db.execute("SELECT txid FROM litestream_history")]
    assert sql_history == expected
    damaged = db.execute("SELECT file, size FROM litestream_damage").fetchall()
    if scenario.deletes:
        assert damaged == [] and "damaged" not in err
    else:
        assert damaged == [(str(case.obj), case.path.stat().st_size)]
        assert f"warning: {case.obj} is damaged" in err

    # latest, the oldest state, and a state in between read exactly, by TXID and by time
    assert db.execute("PRAGMA litestream_txid").fetchone()[0] == format_txid(expected[-1])
    assert table_contents(db) == ground_truth(source.restore(expected[-1]))
    for txid in (expected[0], expected[len(expected) // 2]):
        entry = next(e for e in open_replica(str(case.root)).history() if e.txid == txid)
        db.execute(f"PRAGMA litestream_time='{format_time(entry.timestamp)}'")
        assert db.execute("PRAGMA litestream_txid").fetchone()[0] == format_txid(txid)
        assert table_contents(db) == ground_truth(source.restore(txid)), format_txid(txid)

    # a state only the damaged file rebuilds is refused, naming the file
    for txid in sorted(set(case.original_states) - set(expected))[:2]:
        with pytest.raises(CLEAN_ERRORS, match=case.obj.name if not scenario.deletes else "not a restorable"):
            db.execute(f"PRAGMA litestream_txid='{txid:016x}'")
    db.close()

    # validate names the damaged file (a lost file: the gap it leaves, if any)
    code, out, err = cli(capsys, "validate", str(case.root))
    if not scenario.deletes:
        assert code == 1 and f"FAIL {case.obj}" in out, out
    elif expected[-1] != case.original_states[-1]:
        assert code == 1 and "gap" in out, out


def test_an_intact_state_reads_like_litestream_restore_of_the_copy_without_the_file(
        file_replica, tmp_path):
    """The issue's snapshot case: Litestream's own restore, given the copy without the
    cut snapshot, is the ground truth for the latest state we read around it."""
    case = make_damaged(file_replica, tmp_path, SCENARIOS["snapshot-cut-half"])
    truth = tmp_path / "truth.db"
    run_restore(file_replica.binary, f"file://{case.reference}", truth, {})
    db = connect(str(case.root))
    assert table_contents(db) == ground_truth(truth)
    out = tmp_path / "ours.db"
    replica = open_replica(str(case.root))
    restore(replica, replica.latest(), str(out))
    assert ground_truth(out) == ground_truth(truth)


def test_a_damaged_file_is_rechecked_when_its_upload_completes(file_replica, tmp_path, capsys):
    case = make_damaged(file_replica, tmp_path, SCENARIOS["newest-small-l0-cut-half"])
    replica = open_replica(str(case.root))
    assert case.obj.max_txid not in [e.txid for e in replica.history()]
    shutil.copyfile(Path(file_replica.url) / "ltx" / "0" / case.obj.name, case.path)
    replica.poll()
    assert replica.latest().txid == case.obj.max_txid
    assert history_txids(capsys, case.root)[-1] == case.obj.max_txid


def test_damage_is_remembered_by_identity():
    damage = Damage()
    cut = LtxObject(0, 5, 5, 100)
    damage.mark(cut, LTXError(str(cut), "page index is truncated"))
    assert damage.problem(cut) is not None and "truncated" in str(damage.problem(cut))
    regrown = LtxObject(0, 5, 5, 4000)
    assert identity(regrown) != identity(cut)
    assert damage.problem(regrown) is None
    assert damage.intact([cut, regrown]) == [regrown]
    damage.retain([regrown])
    assert damage.problem(cut) is None


def test_restore_routes_around_a_file_whose_checksum_fails(file_replica, tmp_path, monkeypatch):
    """A page body flipped in the snapshot (it still decodes: only the file checksum
    sees it), which planning read by ranges: restore finds it, leaves the snapshot out
    and rebuilds from level 0."""
    monkeypatch.setattr(filemeta, "WHOLE_FILE_LIMIT", 0)
    case = make_damaged(file_replica, tmp_path, Scenario(uncompacted, snapshot, lambda path: None))
    flip_page_body(case.path)
    replica = open_replica(str(case.root))
    latest = replica.latest()
    assert case.obj in latest.plan
    out = tmp_path / "ours.db"
    restore(replica, latest, str(out))
    assert ground_truth(out) == ground_truth(file_replica.restore(latest.txid))
    assert replica.damage.problem(case.obj) is not None
    assert case.obj not in replica.latest().plan
