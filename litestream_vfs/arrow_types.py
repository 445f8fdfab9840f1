"""One Arrow type per result column, from SQLite values that may each have their own type.

A column's type comes from the values it holds (integers -> int64, reals or
integers mixed with reals -> float64, text -> string, blobs -> binary) and,
where there are none (NULLs, an empty result), from its declared type by
SQLite's affinity rules (DATE/DATETIME columns, text in SQLite, are strings).
REAL and NUMERIC(p,s)/DECIMAL columns are float64 even when a chunk holds
only whole numbers, so chunks agree. Chunks typed apart are reconciled with
two widenings only: NULL-only to anything, int64 to float64 (exactly, or an
error). Anything else (text in an INTEGER column, say) is an error naming the
column: values are never silently converted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .sqltypes import BLOB, INTEGER, REAL, TEXT, affinity, is_decimal, is_temporal

if TYPE_CHECKING:
    import pyarrow

_NONE = type(None)


class ColumnTypeError(TypeError):
    """A column's values fit no single Arrow type (or not the one chosen for it)."""


def typed_array(name: str, declared: str | None, values: Sequence[Any]) -> "pyarrow.Array":
    """`values` of one column as an Arrow array of the type they (or the declared type) call for."""
    import pyarrow as pa

    try:
        return pa.array(values, type=infer(name, declared, values))
    except (pa.ArrowInvalid, OverflowError) as exc:  # e.g. an integer past 2**53 in a float column
        raise ColumnTypeError(f"column {name!r}: {exc}") from exc


def infer(name: str, declared: str | None, values: Sequence[Any]) -> "pyarrow.DataType":
    """The Arrow type of one column of a chunk: from its values, else its declared type."""
    import pyarrow as pa

    kinds = set(map(type, values))
    kinds.discard(_NONE)
    wants_float = affinity(declared) == REAL or is_decimal(declared)
    if not kinds:
        if wants_float or is_temporal(declared):
            return pa.float64() if wants_float else pa.string()
        by_affinity = {INTEGER: pa.int64(), TEXT: pa.string(), BLOB: pa.binary(), REAL: pa.float64()}
        return by_affinity.get(affinity(declared), pa.null())
    if kinds == {int}:
        return pa.float64() if wants_float else pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    if kinds == {str}:
        return pa.string()
    if kinds == {bytes}:
        return pa.binary()
    found = ", ".join(sorted(kind.__name__ for kind in kinds))
    raise ColumnTypeError(f"column {name!r} (declared {declared or 'without a type'}) holds values of "
                          f"several types ({found}); CAST it in the SQL to pick one")


def reconcile(name: str, declared: str | None, kinds: list["pyarrow.DataType"]) -> "pyarrow.DataType":
    """One type for a column whose chunks were typed apart."""
    import pyarrow as pa

    found = set(kinds) - {pa.null()}
    if not found:
        return infer(name, declared, ())
    if found == {pa.int64(), pa.float64()}:
        return pa.float64()
    if len(found) == 1:
        return found.pop()
    raise ColumnTypeError(f"column {name!r} holds values of several types "
                          f"({', '.join(sorted(map(str, found)))}); CAST it in the SQL to pick one")


def widen(name: str, array: "pyarrow.Array", kind: "pyarrow.DataType", *, chosen: bool = False) -> "pyarrow.Array":
    """`array` as `kind` by one of the two widenings; any cast when the caller `chosen` the type."""
    import pyarrow as pa

    if array.type == kind:
        return array
    if array.type == pa.null():
        return pa.nulls(len(array), kind)
    if chosen or (array.type == pa.int64() and kind == pa.float64()):
        try:
            return array.cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ColumnTypeError(f"column {name!r}: {exc}") from exc
    raise ColumnTypeError(f"column {name!r} is {kind} (from the first batch) but later holds {array.type} "
                          "values; pass schema= or use arrow(), which reads every row first")
