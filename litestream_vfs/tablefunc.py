"""Table-valued SQL functions from Python generators, e.g. ``SELECT * FROM litestream_history('main')``.

What `apsw.ext.make_virtual_module` does for the generators here (rows as
tuples, arguments as HIDDEN columns, eponymous), without importing apsw.ext,
which costs 15-35 ms at every process's first connection.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import apsw


def table_function(connection: apsw.Connection, name: str, function: Callable[..., Iterator[tuple]]) -> None:
    """Register `function` (with a `columns` attribute naming its row fields) as table `name`."""
    connection.create_module(name, _Module(function), use_bestindex_object=True, eponymous=True)


class _Module:
    """One table-valued function: its columns, then one HIDDEN column per parameter."""

    def __init__(self, function: Callable[..., Iterator[tuple]]) -> None:
        self.function = function
        self.columns: tuple[str, ...] = tuple(function.columns)  # type: ignore[attr-defined]
        code = function.__code__
        self.parameters = list(code.co_varnames[:code.co_argcount])
        given = list(function.__defaults__ or ())
        self.defaults = [None] * (len(self.parameters) - len(given)) + given
        self.required = [i < len(self.parameters) - len(given) for i in range(len(self.parameters))]
        names = [f'"{c}"' for c in self.columns] + [f'"{p}" HIDDEN' for p in self.parameters]
        self.schema = f"CREATE TABLE ignored({', '.join(names)})"

    def Create(self, connection: Any, module: str, database: str, table: str, *args: Any) -> tuple[str, _Table]:  # noqa: N802
        return self.schema, _Table(self)

    Connect = Create


class _Table:
    def __init__(self, module: _Module) -> None:
        self.module = module

    def BestIndexObject(self, info: apsw.IndexInfo) -> bool:  # noqa: N802
        """Arguments are equality constraints on the HIDDEN columns, passed in the order found."""
        first_parameter = len(self.module.columns)
        given: list[str] = []
        for c in range(info.nConstraint):
            column = info.get_aConstraint_iColumn(c)
            if column < first_parameter or not info.get_aConstraint_usable(c):
                continue
            name = self.module.parameters[column - first_parameter]
            if info.get_aConstraint_op(c) != apsw.SQLITE_INDEX_CONSTRAINT_EQ or name in given:
                return False
            info.set_aConstraintUsage_argvIndex(c, len(given) + 1)
            info.set_aConstraintUsage_omit(c, True)
            given.append(name)
        info.idxStr = ",".join(given)
        # Expensive, so the planner calls us once rather than in a loop; far more so without a
        # required argument (a join offers that plan first), which then fails naming the argument.
        missing = sum(1 for p, d in zip(self.module.parameters, self.module.required) if d and p not in given)
        info.estimatedRows = 2147483647
        info.estimatedCost = 1e12 * (1 + 1000 * missing)
        return True

    def Open(self) -> _Cursor:  # noqa: N802
        return _Cursor(self.module)

    def Disconnect(self) -> None:  # noqa: N802
        pass

    Destroy = Disconnect


class _Cursor:
    def __init__(self, module: _Module) -> None:
        self.module = module
        self.rows: Iterator[tuple] | None = None
        self.row: tuple = ()
        self.arguments: list[Any] = []

    def Filter(self, index: int, names: str, values: tuple[Any, ...]) -> None:  # noqa: N802
        given = dict(zip(names.split(","), values)) if names else {}
        self.arguments = [given.get(p, d) for p, d in zip(self.module.parameters, self.module.defaults)]
        self.rows = iter(self.module.function(**given))
        self.Next()

    def Next(self) -> None:  # noqa: N802
        try:
            self.row = next(self.rows)  # type: ignore[arg-type]
        except StopIteration:
            self.rows = None

    def Eof(self) -> bool:  # noqa: N802
        return self.rows is None

    def Column(self, which: int) -> Any:  # noqa: N802
        width = len(self.module.columns)
        return self.row[which] if which < width else self.arguments[which - width]

    def Rowid(self) -> int:  # noqa: N802
        return id(self.row)

    def Close(self) -> None:  # noqa: N802
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()
        self.rows = None
