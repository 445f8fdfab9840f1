"""`litestream-vfs blame` (cli/blame.py); its SQL form `litestream_blame` is in test_changes_sql.py."""

from __future__ import annotations

import json

import pytest
from support.incidents import IncidentReplica

import litestream_vfs
from litestream_vfs import cli
from litestream_vfs.timeparse import format_txid


def test_cli_blame_json_and_table(incident_replica: IncidentReplica, capsys: pytest.CaptureFixture) -> None:
    url = incident_replica.url
    assert cli.main(["blame", url, "PlaylistTrack", '{"PlaylistId": 5, "TrackId": 3}', "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == [v.to_json() for v in litestream_vfs.blame(url, "PlaylistTrack", {"PlaylistId": 5, "TrackId": 3})]
    assert [e["change"] for e in printed] == ["present", "deleted", "inserted", "updated", "updated"]
    assert all(set(e) == {"txid", "time", "change", "row"} for e in printed)
    since = format_txid(incident_replica.step("rename artist"))
    assert cli.main(["blame", url, "Artist", "50", "--from", since]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["txid", "time", "(UTC)"] and "present" in lines[2] and since in lines[2]


def test_cli_blame_errors_name_the_culprit(incident_replica: IncidentReplica, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["blame", incident_replica.url, "Artist", "fifty"]) == 1
    err = capsys.readouterr().err
    assert "fifty" in err and "ArtistId" in err and "Traceback" not in err
