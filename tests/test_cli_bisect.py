"""`litestream-vfs bisect` (cli/bisect.py)."""

from __future__ import annotations

import json

import pytest
from support.incidents import IncidentReplica

import litestream_vfs
from litestream_vfs import cli
from litestream_vfs.timeparse import format_txid


def test_cli_bisect(incident_replica: IncidentReplica, capsys: pytest.CaptureFixture) -> None:
    url, sql = incident_replica.url, "SELECT Name FROM Artist WHERE ArtistId = 50"
    assert cli.main(["bisect", url, sql, "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == litestream_vfs.bisect(url, sql).to_json()
    assert printed["txid"] == format_txid(incident_replica.step("rename artist"))
    assert printed["before"] == [{"Name": "Metallica"}] and printed["after"] == [{"Name": "Metallica (renamed)"}]
    assert cli.main(["bisect", url, "SELECT count(*) AS n FROM Genre"]) == 0
    assert capsys.readouterr().out.startswith("no change")
    assert cli.main(["bisect", url, sql, "--to", format_txid(incident_replica.step("unrelated tracks"))]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"first change: TXID {printed['txid']}") and "Metallica (renamed)" in out
