"""Arrow types for SQLite columns: values first, declared types for NULLs, two widenings only."""

from __future__ import annotations

import pyarrow as pa
import pytest

from litestream_vfs.arrow_types import ColumnTypeError, infer, reconcile, typed_array, widen


@pytest.mark.parametrize("declared, values, expected", [
    ("INTEGER", [1, None, 2**63 - 1], pa.int64()),
    ("NUMERIC(10,2)", [1, 2], pa.float64()),  # whole numbers in a decimal column stay float64
    ("REAL", [1], pa.float64()),
    (None, [1, 0.5], pa.float64()),
    ("TEXT", ["a", None], pa.string()),
    ("BLOB", [b"\x00"], pa.binary()),
    ("DATETIME", ["2024-01-01 00:00:00"], pa.string()),
    ("DATETIME", [1700000000], pa.int64()),  # unix times in a DATETIME column are integers
    ("INTEGER", [None], pa.int64()),
    ("NVARCHAR(20)", [], pa.string()),
    ("DATE", [None], pa.string()),
    ("DECIMAL", [], pa.float64()),
    ("BLOB", [], pa.binary()),
    (None, [None, None], pa.null()),
])
def test_infer(declared, values, expected) -> None:
    assert infer("c", declared, values) == expected


def test_mixed_values_name_the_column() -> None:
    with pytest.raises(ColumnTypeError, match=r"column 'v' \(declared INTEGER\).*int, str"):
        infer("v", "INTEGER", [1, "one"])
    with pytest.raises(ColumnTypeError, match="'n'"):
        typed_array("n", "NUMERIC", [0.5, 2**60 + 1])
    assert typed_array("b", None, [b"x", None]).to_pylist() == [b"x", None]


def test_reconcile_and_widen() -> None:
    assert reconcile("c", "INTEGER", [pa.null(), pa.int64()]) == pa.int64()
    assert reconcile("c", None, [pa.int64(), pa.float64(), pa.null()]) == pa.float64()
    assert reconcile("c", "TEXT", []) == pa.string() and reconcile("c", None, [pa.null()]) == pa.null()
    with pytest.raises(ColumnTypeError, match="'c'"):
        reconcile("c", None, [pa.int64(), pa.string()])
    assert widen("c", pa.array([None, None]), pa.int64()).to_pylist() == [None, None]
    assert widen("c", pa.array([1, 2]), pa.float64()).type == pa.float64()
    with pytest.raises(ColumnTypeError, match="schema="):
        widen("c", pa.array(["12"]), pa.int64())  # text is never parsed into numbers unasked
    assert widen("c", pa.array(["12"]), pa.int64(), chosen=True).to_pylist() == [12]
    with pytest.raises(ColumnTypeError, match="'c'"):
        widen("c", pa.array([2**60 + 1]), pa.float64())
