"""`history` lists exactly the states `litestream restore` can rebuild; `validate` checks every file."""

from __future__ import annotations

import csv
import io

from support.cli import cli, history


def test_history_for_programs_and_people(file_replica):
    entries = history(file_replica)
    assert [int(e["txid"], 16) for e in entries] == file_replica.litestream_txids()
    assert all(set(e) == {"txid", "time", "level", "size", "db_size"} for e in entries)
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)

    lines = cli("history", file_replica.url).stdout.splitlines()
    assert lines[0].split()[:4] == ["txid", "time", "(UTC)", "local"]
    rows = lines[2:]
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries):
        assert row.startswith(f"{entry['txid']}  {entry['time']}  ")
        assert " ago " in row
    assert len({len(row) for row in rows}) == 1  # aligned: numbers right-aligned to one width


def test_validate_passes_on_a_real_replica(file_replica):
    result = cli("validate", file_replica.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("OK:")
    assert sum(line.startswith("ok   L") for line in result.stdout.splitlines()) == len(file_replica.ltx_files())


def test_history_as_csv_has_the_rows_of_the_json(file_replica):
    entries = history(file_replica)
    result = cli("history", file_replica.url, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["txid"], r["time (UTC)"], int(r["level"]), int(r["file size"]), int(r["db size"])) for r in rows] == \
        [(e["txid"], e["time"], e["level"], e["size"], e["db_size"]) for e in entries]


def test_validate_fails_naming_a_damaged_file(replica_copy):
    """A byte only the file checksum covers (the header's timestamp) changed in one L0 file."""
    victim = sorted((replica_copy / "ltx" / "0").glob("*.ltx"))[1]
    damaged = bytearray(victim.read_bytes())
    damaged[39] ^= 0x01
    victim.write_bytes(bytes(damaged))
    result = cli("validate", str(replica_copy))
    assert result.returncode == 1, result.stdout
    assert victim.name in result.stdout
    assert not result.stdout.splitlines()[-1].startswith("OK:")
