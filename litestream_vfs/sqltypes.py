"""SQLite's column affinity of a declared type, the one rule DB-API type objects and Arrow share.

SQLite stores any value in any column; the declared type only gives an
affinity (https://www.sqlite.org/datatype3.html, section 3.1), applied by
these rules in this order.
"""

from __future__ import annotations

INTEGER, TEXT, BLOB, REAL, NUMERIC = "INTEGER", "TEXT", "BLOB", "REAL", "NUMERIC"


def affinity(declared: str | None) -> str | None:
    """The affinity of a declared column type; None for an expression (no declared type)."""
    if declared is None:
        return None
    name = declared.upper()
    if "INT" in name:
        return INTEGER
    if "CHAR" in name or "CLOB" in name or "TEXT" in name:
        return TEXT
    if "BLOB" in name or not name.strip():
        return BLOB
    if "REAL" in name or "FLOA" in name or "DOUB" in name:
        return REAL
    return NUMERIC


def is_decimal(declared: str | None) -> bool:
    """A NUMERIC-affinity type meant for fractional numbers (NUMERIC(10,2), DECIMAL), not DATE or BOOLEAN."""
    name = (declared or "").upper()
    return affinity(declared) == NUMERIC and ("NUM" in name or "DEC" in name)


def is_temporal(declared: str | None) -> bool:
    """A NUMERIC-affinity type naming a date or time (DATE, DATETIME, TIMESTAMP): SQLite keeps these as text."""
    name = (declared or "").upper()
    return affinity(declared) == NUMERIC and ("DATE" in name or "TIME" in name)
