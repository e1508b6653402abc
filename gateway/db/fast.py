"""The raw driver for prebuilt statements on SQLite: ~3 µs a statement instead of ~50.

SQLAlchemy's execution layer costs some 40 to 60 µs per statement even when the statement is
built once and its compiled form cached (DESIGN §11, issue 11); an earn runs about ten of them.
``FastConnection`` wraps the ``Connection`` of a unit of work: a statement it has seen before
(the same object: the repositories' module-level ``_SQL`` constants) is compiled once per
parameter shape into SQL text, parameter order and the bind and result processors of its
column types (``UTCDateTime`` among them), then run through the sqlite3 cursor of the very same
DBAPI connection, so in the same transaction. Everything else goes to ``Connection.execute``
unchanged: a statement seen for the first time (one built per call is never seen twice),
PostgreSQL, a statement whose compiled form needs the execution context (Python-side defaults,
post-compile parameters other than expanding IN lists), and any connection whose engine has
cursor-execute listeners (tests that record statements see all of them). Driver errors are
wrapped as SQLAlchemy's (``IntegrityError`` and the rest), as ``Connection.execute`` does."""

from __future__ import annotations

import collections
import keyword
import operator
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    # (parameter name, default value when not given, bind processor, expanding)
    params: tuple[tuple[str, Any, Processor, bool], ...]
    row: Callable[..., Any] | None  # a namedtuple class; None when no rows come back
    result_processors: tuple[Processor, ...]


UNSET = object()  # a bound parameter with no default: the caller must give it
P = TypeVar("P")
Compile = Callable[[ClauseElement, Mapping[str, Any], tuple[str, ...], Dialect], P | None]


class PlanCache(Generic[P]):
    """Prebuilt statements compiled once per parameter shape (the names given and each list's
    length: an expanding IN renders one placeholder per item) by a driver's ``compile``. A
    statement seen for the first time is not kept: it may be built per call. Shared by the
    SQLite raw driver (this module) and PostgreSQL's pipelined path (``gateway.db.pgfast``)."""

    def __init__(self, compile: Compile[P]) -> None:
        self._compile = compile
        self._plans: weakref.WeakKeyDictionary[ClauseElement, dict[tuple[Any, ...], P | None]] = (
            weakref.WeakKeyDictionary())
        self._seen: weakref.WeakSet[ClauseElement] = weakref.WeakSet()
        self._guard = threading.Lock()

    def plan_for(self, statement: Any, parameters: Mapping[str, Any] | None,
                 dialect: Dialect) -> P | None:
        if not isinstance(statement, Executable) or not isinstance(statement, ClauseElement):
            return None
        keys = tuple(sorted(parameters)) if parameters else ()
        shape = (dialect.server_version_info, keys,
                 tuple(len(parameters[k]) for k in keys
                       if isinstance(parameters[k], list | tuple)) if parameters else ())
        plans = self._plans.get(statement)
        if plans is not None and shape in plans:
            return plans[shape]
        with self._guard:
            if statement not in self._seen:  # first sight: maybe built per call; not kept
                self._seen.add(statement)
                return None
            plan = self._compile(statement, parameters or {}, keys, dialect)
            self._plans.setdefault(statement, {})[shape] = plan
            return plan


class FastResult:
    """The part of SQLAlchemy's ``Result`` the ledger's repositories use; rows are fetched
    eagerly (they are few: every hot statement is bounded by the request)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.first()

    def one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> FastResult:
        return FastResult([row[0] for row in self._rows], self.rowcount)


class FastConnection:
    """A ``Connection`` stand-in for repositories: ``execute`` takes the raw path when it can;
    ``dialect``, ``engine`` and every other attribute are the wrapped connection's."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect: Dialect = conn.dialect
        self.engine = conn.engine
        listened = bool(conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute)
        self._raw: sqlite3.Connection | None = None
        if conn.dialect.name == "sqlite" and not listened:
            driver = conn.connection.driver_connection
            if isinstance(driver, sqlite3.Connection):
                self._raw = driver

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, statement: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        raw = self._raw
        plan = None if raw is None else _PLANS.plan_for(statement, parameters, self.dialect)
        if raw is None or plan is None:
            return self._conn.execute(statement, parameters)
        args = _arguments(plan, parameters or {})
        cursor = raw.cursor()
        try:
            try:
                cursor.execute(plan.sql, args)
                raw_rows = cursor.fetchall() if plan.row is not None else []
            except sqlite3.Error as exc:
                raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error,
                                          dialect=self.dialect) from exc
            rowcount = cursor.rowcount
        finally:
            cursor.close()
        if plan.row is None:
            return FastResult([], rowcount)
        make, processors = plan.row, plan.result_processors
        if any(processors):
            rows = [make(*[value if p is None else p(value)
                           for p, value in zip(processors, raw, strict=True)])
                    for raw in raw_rows]
        else:
            rows = [make(*raw) for raw in raw_rows]
        return FastResult(rows, rowcount)


    def execute_rows(self, statement: Any, common: Mapping[str, Any], columns: tuple[str, ...],
                     rows: Sequence[tuple[Any, ...]]) -> bool:
        """:func:`execute_rows` on the raw path: False when it cannot take it (no raw
        connection, a statement seen for the first time, one that returns rows or expands a
        list), and nothing was run."""
        raw = self._raw
        if raw is None or not rows:
            return False
        first = {**common, **dict(zip(columns, rows[0], strict=True))}
        plan = _PLANS.plan_for(statement, first, self.dialect)
        if plan is None or plan.row is not None or any(p[3] for p in plan.params):
            return False
        base = tuple(_arguments(plan, first))  # ``common`` checked and processed once
        where = {name: n for n, name in enumerate(columns)}
        varying = [(position, where[name], process)
                   for position, (name, _, process, _) in enumerate(plan.params) if name in where]
        if any(process is not None for _, _, process in varying):
            args: list[Any] = []
            for row in rows:
                values = list(base)
                for position, n, process in varying:
                    values[position] = row[n] if process is None else process(row[n])
                args.append(values)
        else:  # the usual case: each row's values are bound as they are, picked out in C
            order = dict.fromkeys(range(len(base)))
            for position, n, _ in varying:
                order[position] = len(base) + n
            picked = [position if n is None else n for position, n in order.items()]
            pick = operator.itemgetter(*picked)  # one index: the value itself, not a tuple
            args = ([pick(base + row) for row in rows] if len(picked) > 1
                    else [(pick(base + row),) for row in rows])
        cursor = raw.cursor()
        try:
            cursor.executemany(plan.sql, args)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error,
                                      dialect=self.dialect) from exc
        finally:
            cursor.close()
        return True


# Rows per multi-row INSERT: 500 x 10 columns stays far under SQLite's 32,766 variables.
_VALUES_CHUNK = 500
_VALUES_SQL: dict[tuple[str, tuple[str, ...], int], str] = {}


def insert_values(conn: Connection, table: Table, columns: tuple[str, ...],
                  rows: Sequence[tuple[Any, ...]]) -> bool:
    """Append ``rows`` (values already as the driver binds them, in ``columns`` order) with
    one multi-row ``INSERT ... VALUES (...), (...)`` per 500 rows on the raw SQLite path: one
    statement bound once, instead of an ``executemany`` stepping and resetting it per row (35
    rows of an earn's awards: 0.12 instead of 0.15 ms of CPU, index upkeep included). False
    when there is no raw path (PostgreSQL, a recording engine) and nothing was run."""
    raw = conn._raw if isinstance(conn, FastConnection) else None
    if raw is None or not rows:
        return False
    cursor = raw.cursor()
    try:
        for start in range(0, len(rows), _VALUES_CHUNK):
            chunk = rows[start:start + _VALUES_CHUNK]
            key = (table.name, columns, len(chunk))
            sql = _VALUES_SQL.get(key)
            if sql is None:
                # Identifiers from the schema's own Table and its columns, never from input.
                names = ", ".join(table.c[column].name for column in columns)
                one = "(" + ", ".join("?" * len(columns)) + ")"
                sql = (f"INSERT INTO {table.name} ({names}) VALUES "  # noqa: S608
                       + ", ".join([one] * len(chunk)))
                if len(_VALUES_SQL) < 1024:  # bounded: one entry per (table, row count)
                    _VALUES_SQL[key] = sql
            args = [value for row in chunk for value in row]
            try:
                cursor.execute(sql, args)
            except sqlite3.Error as exc:
                raise DBAPIError.instance(sql, args, exc, sqlite3.Error,
                                          dialect=conn.dialect) from exc
    finally:
        cursor.close()
    return True


def execute_rows(conn: Connection, statement: Any, common: Mapping[str, Any],
                 columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    """Run ``statement`` once per row (one ``executemany``): ``common`` holds the parameters
    every row shares, each row the values of ``columns`` in that order. On the raw path the
    shared parameters are checked and processed once and the rows go to the driver as they
    are (35 rows of an earn's awards: about 3 µs each, index upkeep included); elsewhere it
    is SQLAlchemy's executemany with the same parameters."""
    if isinstance(conn, FastConnection) and conn.execute_rows(statement, common, columns, rows):
        return
    if rows:
        sqlalchemy_conn = conn._conn if isinstance(conn, FastConnection) else conn
        sqlalchemy_conn.execute(statement, [{**common, **dict(zip(columns, row, strict=True))}
                                            for row in rows])


def fast(conn: Connection) -> Connection:
    """``conn`` with the raw path for prebuilt statements (typed as a ``Connection`` for the
    repositories, which call only what ``FastConnection`` provides)."""
    if conn.dialect.name != "sqlite":
        return conn
    return FastConnection(conn)  # type: ignore[return-value]


def _arguments(plan: _Plan, given: Mapping[str, Any]) -> list[Any]:
    args: list[Any] = []
    for name, default, process, expanding in plan.params:
        value = given.get(name, default)
        if value is UNSET:
            raise KeyError(f"no value for the bound parameter {name!r}")
        if expanding:
            args.extend(value if process is None else [process(v) for v in value])
        else:
            args.append(value if process is None else process(value))
    return args


def _compile(statement: ClauseElement, parameters: Mapping[str, Any], keys: tuple[str, ...],
             dialect: Dialect) -> _Plan | None:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        return None
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.literal_execute_params:
        return None  # needs the execution context (Python-side defaults) or literal rendering
    sql = compiled.string
    processors = compiled._bind_processors
    params: list[tuple[str, Any, Processor, bool]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        default = UNSET if bind.required else bind.effective_value
        process = processors.get(name)
        if bind.expanding:
            values = parameters.get(name)
            if not isinstance(values, list | tuple) or not values:
                return None  # an empty IN list renders differently; leave it to SQLAlchemy
            marker = f"__[POSTCOMPILE_{name}]"
            if sql.count(marker) != 1:
                return None
            sql = sql.replace(marker, ", ".join("?" * len(values)))
        params.append((name, default, process if callable(process) else None, bind.expanding))
    if "__[POSTCOMPILE_" in sql:
        return None
    columns = compiled._result_columns
    if not columns:
        return _Plan(sql, tuple(params), None, ())
    names = [column.keyname for column in columns]
    if len(set(names)) != len(names) or not all(
            n.isidentifier() and not keyword.iskeyword(n) and not n.startswith("_")
            for n in names):
        return None
    row = collections.namedtuple("Row", names)  # type: ignore[misc]
    result_processors = tuple(column.type._cached_result_processor(dialect, None)
                              for column in columns)
    return _Plan(sql, tuple(params), row, result_processors)


_PLANS: PlanCache[_Plan] = PlanCache(_compile)
