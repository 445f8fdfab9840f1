"""How commands print rows: an aligned table, CSV or JSON, with one convention for NULLs and blobs.

NULL is `NULL` in a table, an empty field in CSV and `null` in JSON. A blob is its SQL
literal, `x'00ff'`, in all three (a JSON string). JSON keeps non-ASCII text as it is.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import timedelta
from typing import Any, Iterable, Sequence, TextIO


def age_text(delta: timedelta) -> str:
    """A short relative age ('42s ago', '5m ago', '3h ago', '2d ago')."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


Result = tuple[Sequence[str], Iterable[Sequence[Any]]]


def write_results(results: Sequence[Result], fmt: str, out: TextIO | None = None) -> None:
    """Several statements' (columns, rows), each under its own columns.

    Table and CSV: one block per statement, blocks separated by an empty line. JSON: one
    statement gives a list of objects; several give a list holding one such list per statement.
    """
    out = out or sys.stdout
    if fmt == "json" and len(results) > 1:
        write_json([[dict(zip(columns, map(jsonable, row))) for row in rows] for columns, rows in results], out)
        return
    for i, (columns, rows) in enumerate(results):
        if i:
            out.write("\n")
        write_rows(columns, rows, fmt, out)


def write_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, out: TextIO | None = None) -> None:
    """Rows as an aligned table, CSV, or a JSON list of objects."""
    out = out or sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([blob_text(v) if isinstance(v, bytes) else v for v in row] for row in rows)
        return
    if fmt == "json":
        write_json([dict(zip(columns, map(jsonable, row))) for row in rows], out)
        return
    values = [list(row) for row in rows]
    text = [[cell(v) for v in row] for row in values]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r[i], (int, float)) for r in values if r[i] is not None)
               for i in range(len(columns))]
    out.write("  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(columns, widths, numeric)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in text:
        out.write("  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(row, widths, numeric)).rstrip() + "\n")


def write_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(value, out, indent=1, ensure_ascii=False)
    out.write("\n")


def cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return blob_text(value)
    return str(value)


def blob_text(value: bytes) -> str:
    return "x'" + value.hex() + "'"


def jsonable(value: Any) -> Any:
    return blob_text(value) if isinstance(value, bytes) else value


def json_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {k: jsonable(v) for k, v in row.items()}


def text_row(row: dict[str, Any] | None) -> str | None:
    """`col=value, ...` for table and CSV output (NULL row: None, shown as NULL)."""
    return None if row is None else ", ".join(f"{k}={cell(v)}" for k, v in row.items())
