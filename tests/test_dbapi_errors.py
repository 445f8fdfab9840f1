"""Every APSW and package error maps onto one PEP 249 class, the original kept as the cause."""

from __future__ import annotations

import apsw
import pytest

from litestream_vfs import dbapi_errors as pep
from litestream_vfs.errors import ChecksumMismatch, OutOfHistory, ReplicaError, TimeParseError


@pytest.mark.parametrize("raised, expected", [
    (apsw.ReadOnlyError("attempt to write a readonly database"), pep.OperationalError),
    (apsw.SQLError("no such table: x"), pep.ProgrammingError),
    (apsw.BindingsError("wrong number"), pep.ProgrammingError),
    (apsw.ConstraintError("UNIQUE"), pep.IntegrityError),
    (apsw.TooBigError("big"), pep.DataError),
    (apsw.CorruptError("bad page"), pep.DatabaseError),
    (apsw.InternalError("oops"), pep.InternalError),
    (apsw.MisuseError("misuse"), pep.InterfaceError),
    (apsw.InterruptError("interrupted"), pep.OperationalError),
    (ReplicaError("no replica"), pep.OperationalError),
    (OutOfHistory("before the first snapshot"), pep.OperationalError),
    (TimeParseError("blorp"), pep.ProgrammingError),
])
def test_translation(raised: Exception, expected: type) -> None:
    with pytest.raises(expected) as info:
        with pep.translated():
            raise raised
    assert type(info.value) is expected and info.value.__cause__ is raised
    assert str(raised) in str(info.value)


def test_checksum_errors_are_database_errors_and_others_pass_untouched() -> None:
    assert pep.pep249_class(ChecksumMismatch("0000000000000001-0000000000000002.ltx", "checksum mismatch")) is pep.DatabaseError
    with pytest.raises(KeyError):
        with pep.translated():
            raise KeyError("not a database error")
    with pytest.raises(pep.ProgrammingError):
        with pep.translated():
            raise pep.ProgrammingError("already translated")
