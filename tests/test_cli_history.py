"""`history` lists exactly the states `litestream restore` can rebuild; `validate` checks every file."""

from __future__ import annotations

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
