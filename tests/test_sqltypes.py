"""SQLite's affinity rules for declared types (datatype3.html, section 3.1), in their order."""

from __future__ import annotations

import pytest

from litestream_vfs.sqltypes import BLOB, INTEGER, NUMERIC, REAL, TEXT, affinity, is_decimal, is_temporal


@pytest.mark.parametrize("declared, expected", [
    ("INTEGER", INTEGER), ("BIGINT", INTEGER), ("unsigned big int", INTEGER), ("POINT", INTEGER),
    ("NVARCHAR(120)", TEXT), ("CLOB", TEXT), ("text", TEXT), ("CHARINT", INTEGER),
    ("BLOB", BLOB), ("", BLOB), ("REAL", REAL), ("DOUBLE PRECISION", REAL), ("FLOAT", REAL),
    ("NUMERIC(10,2)", NUMERIC), ("DECIMAL", NUMERIC), ("DATETIME", NUMERIC), ("BOOLEAN", NUMERIC),
    ("STRING", NUMERIC), (None, None),
])
def test_affinity(declared, expected) -> None:
    assert affinity(declared) == expected


def test_decimal_and_temporal_are_numeric_kinds() -> None:
    assert is_decimal("NUMERIC(10,2)") and is_decimal("decimal") and not is_decimal("DATETIME")
    assert is_temporal("DATETIME") and is_temporal("date") and is_temporal("TIMESTAMP")
    assert not is_temporal("TEXT_DATE") and not is_temporal(None) and not is_decimal("INTEGER")
