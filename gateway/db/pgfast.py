"""Pipelined write transactions on PostgreSQL: the round trips of a command are the points where
Python needs an answer, not one per statement (issue 11; decision 018).

A ledger command on PostgreSQL used to send each statement, BEGIN and COMMIT as its own round
trip through SQLAlchemy's execution layer (some 15 for an earn). ``PipelinedConnection`` wraps
the ``Connection`` of a write unit of work and runs each prebuilt statement it has seen before
(the repositories' module-level ``_SQL`` constants, compiled once per parameter shape, as
``gateway.db.fast`` does for SQLite) on the psycopg connection underneath, *lazily*: the
statement is queued and its result is a :class:`LazyResult`. The queue goes to the server in
one psycopg pipeline (one round trip, the BEGIN psycopg opens the transaction with included)
when Python first needs an answer: a row, a ``rowcount``, any attribute of the wrapped
connection, a statement that is not prebuilt (it goes to SQLAlchemy after the queue), a
savepoint's end, or the COMMIT, which travels with the last writes. A statement whose result is
never read (an advisory lock, a row lock, an INSERT, an UPDATE) therefore costs no round trip
of its own. The server runs the queue in order, so every statement sees exactly what it would
have seen run alone; only the moment an error surfaces moves, to the next answer Python asks
for, within the same transaction (a UNIQUE violation still fails the transaction, and the
runner's retry-as-replay still catches it; a savepoint flushes before it is released, so code
that catches an ``IntegrityError`` around a savepoint sees it inside).

Falls back to plain ``Connection.execute`` (no pipelining) when the engine has cursor-execute
listeners (tests that record statements see all of them) and for statements whose compiled
form needs the execution context. Prepared statements: psycopg prepares a query after
``prepare_threshold`` (5) runs, on the connection, also in pipeline mode."""

from __future__ import annotations

import collections
import keyword
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from gateway.db.fast import UNSET, PlanCache
from gateway.db.uow import UnitOfWork

R = TypeVar("R")
Processor = Callable[[Any], Any] | None

# A ledger transaction stamps its 'now' when it starts, before it waits for the key and member
# locks; settlement treats a day as final 15 minutes after it ends (decision 016). This bounds
# the wait (sent in the BEGIN's pipeline: no round trip of its own), far below that margin; a
# transaction that hits it fails whole (SQLSTATE 55P03) and stores nothing.
LOCK_TIMEOUT = "SET LOCAL lock_timeout = '60s'"


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    # (parameter name in the SQL, name given by the caller, default, bind processor, index)
    # index is None for a plain parameter, i for the i-th item of an expanding IN list.
    params: tuple[tuple[str, str, Any, Processor, int | None], ...]
    row: Callable[..., Any] | None  # a namedtuple class; None when no rows come back
    result_processors: tuple[Processor, ...]




class _Pending:
    """One queued statement: its plan, arguments and, once the queue is flushed, its rows."""

    __slots__ = ("args", "cursor", "plan", "rowcount", "rows")

    def __init__(self, plan: _Plan, args: dict[str, Any]) -> None:
        self.plan = plan
        self.args = args
        self.cursor: psycopg.Cursor[Any] | None = None
        self.rows: list[Any] | None = None
        self.rowcount = -1

    def collect(self) -> None:
        cursor = self.cursor
        assert cursor is not None
        plan = self.plan
        self.rowcount = cursor.rowcount
        raw_rows = cursor.fetchall() if plan.row is not None else []
        cursor.close()
        self.cursor = None
        if plan.row is None:
            self.rows = []
            return
        make, processors = plan.row, plan.result_processors
        if any(processors):
            self.rows = [make(*[value if p is None else p(value)
                                for p, value in zip(processors, raw, strict=True)])
                         for raw in raw_rows]
        else:
            self.rows = [make(*raw) for raw in raw_rows]


class LazyResult:
    """The part of SQLAlchemy's ``Result`` the repositories use, for a queued statement: the
    first use sends the queue (this statement and every one queued before it) and waits."""

    __slots__ = ("_owner", "_pending")

    def __init__(self, owner: PipelinedConnection, pending: _Pending) -> None:
        self._owner = owner
        self._pending = pending

    def _rows(self) -> list[Any]:
        if self._pending.rows is None:
            self._owner.flush()
        rows = self._pending.rows
        assert rows is not None
        return rows

    @property
    def rowcount(self) -> int:
        self._rows()
        return self._pending.rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows())

    def all(self) -> list[Any]:
        return self._rows()

    def first(self) -> Any:
        rows = self._rows()
        return rows[0] if rows else None

    def one_or_none(self) -> Any:
        if len(self._rows()) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.first()

    def one(self) -> Any:
        if not self._rows():
            raise NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar(self) -> Any:
        rows = self._rows()
        return rows[0][0] if rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> _Scalars:
        return _Scalars([row[0] for row in self._rows()])


class _Scalars:
    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def all(self) -> list[Any]:
        return self._values

    def first(self) -> Any:
        return self._values[0] if self._values else None

    def one(self) -> Any:
        if not self._values:
            raise NoResultFound("No row was found when one was required")
        if len(self._values) > 1:
            raise MultipleResultsFound("Multiple rows were found when one was required")
        return self._values[0]


class _FlushingNested:
    """``begin_nested()``: the queue is sent before the savepoint is released, so an error of a
    statement inside it surfaces inside the ``with`` block (and rolls the savepoint back)."""

    def __init__(self, owner: PipelinedConnection, nested: Any) -> None:
        self._owner = owner
        self._nested = nested

    def __enter__(self) -> Any:
        return self._nested.__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:
        if exc_type is None:
            try:
                self._owner.flush()
            except BaseException:
                kind, error, trace = sys.exc_info()
                if not self._nested.__exit__(kind, error, trace):
                    raise
                return None
        else:
            self._owner.discard()
        return self._nested.__exit__(exc_type, exc, tb)


class PipelinedConnection:
    """A ``Connection`` stand-in for repositories: ``execute`` queues prebuilt statements (see
    the module docstring); everything else is the wrapped connection's, after the queue."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect: Dialect = conn.dialect
        self.engine = conn.engine
        self._queue: list[_Pending] = []
        self._raw: psycopg.Connection[Any] | None = None
        self._begun = True  # see begin_in_pipeline
        self.round_trips = 0  # the flushes this connection sent (tests, benchmarks)
        listened = bool(conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute)
        if conn.dialect.name == "postgresql" and not listened:
            driver = conn.connection.driver_connection
            if isinstance(driver, psycopg.Connection):
                self._raw = driver

    def begin_in_pipeline(self) -> bool:
        """Send BEGIN with the first queue, not on its own: psycopg, which opens a transaction
        itself, syncs its pipeline right after the BEGIN (a round trip). The psycopg connection
        is switched to autocommit while idle (psycopg then opens nothing) and the BEGIN is ours;
        :func:`transact` switches it back once the transaction is over. False when the raw path
        is off or a transaction is already open."""
        raw = self._raw
        if raw is None or raw.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return False
        raw.autocommit = True
        self._begun = False
        return True

    def __getattr__(self, name: str) -> Any:
        self.flush()
        return getattr(self._conn, name)

    def begin_nested(self) -> Any:
        self.flush()
        return _FlushingNested(self, self._conn.begin_nested())

    def execute(self, statement: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        plan = None if self._raw is None else _PLANS.plan_for(statement, parameters, self.dialect)
        if plan is None:
            self.flush()
            return self._conn.execute(statement, parameters)
        pending = _Pending(plan, _arguments(plan, parameters or {}))
        self._queue.append(pending)
        return LazyResult(self, pending)

    def end_pipeline_transaction(self) -> None:
        """Undo :meth:`begin_in_pipeline` (the transaction is over: committed or rolled back)."""
        raw = self._raw
        if raw is not None and not raw.closed:
            if raw.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raw.rollback()
            raw.autocommit = False

    def discard(self) -> None:
        """Drop what is queued (the transaction is being rolled back)."""
        self._queue.clear()

    def flush(self, *, commit: bool = False) -> None:
        """Send the queue (and COMMIT, when asked) in one pipeline: one round trip."""
        queue = self._queue
        raw = self._raw
        if raw is None or (not queue and not commit and self._begun):
            if commit:
                self._conn.commit()
            return
        self._queue = []
        statement = queue[-1].plan.sql if queue else "COMMIT"
        try:
            with raw.pipeline():
                if not self._begun:
                    self._begun = True
                    if not queue and commit:  # nothing was sent: no transaction to open
                        commit = False
                    else:
                        raw.cursor().execute("BEGIN")
                        raw.cursor().execute(LOCK_TIMEOUT)
                for pending in queue:
                    cursor = pending.cursor = raw.cursor()
                    statement = pending.plan.sql
                    cursor.execute(statement, pending.args)
                if commit:
                    statement = "COMMIT"
                    raw.cursor().execute("COMMIT")
        except psycopg.Error as exc:
            raise DBAPIError.instance(statement, None, exc, psycopg.Error,
                                      dialect=self.dialect) from exc
        finally:
            self.round_trips += 1
        for pending in queue:
            pending.collect()
        if commit:
            self._conn.commit()  # psycopg sees no open transaction: sends nothing


def transact(engine: Engine, body: Callable[[Connection], R]) -> R:
    """One write transaction on PostgreSQL with the body's statements pipelined: the writes
    after the body's last read travel with the COMMIT."""
    with UnitOfWork(engine, write=True) as uow:
        conn = pipelined(uow.conn)
        ours = conn.begin_in_pipeline()
        try:
            result = body(conn)  # type: ignore[arg-type]
            conn.flush(commit=True)
            uow.commit()
            return result
        except BaseException:
            conn.discard()
            uow.conn.rollback()  # before autocommit goes back off (refused mid-transaction)
            raise
        finally:
            if ours:
                conn.end_pipeline_transaction()


def pipelined(conn: Connection) -> PipelinedConnection:
    return PipelinedConnection(conn)


def _arguments(plan: _Plan, given: Mapping[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for sql_name, name, default, process, index in plan.params:
        value = given.get(name, default)
        if value is UNSET:
            raise KeyError(f"no value for the bound parameter {name!r}")
        if index is not None:
            value = value[index]
        args[sql_name] = value if process is None else process(value)
    return args


def _compile(statement: ClauseElement, parameters: Mapping[str, Any], keys: tuple[str, ...],
             dialect: Dialect) -> _Plan | None:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if not isinstance(compiled, SQLCompiler) or compiled.positional:
        return None
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.literal_execute_params:
        return None  # needs the execution context (Python-side defaults) or literal rendering
    if compiled.escaped_bind_names:
        return None
    sql = compiled.string
    processors = compiled._bind_processors
    params: list[tuple[str, str, Any, Processor, int | None]] = []
    for name, bind in compiled.binds.items():
        default = UNSET if bind.required else bind.effective_value
        process = processors.get(name)
        process = process if callable(process) else None
        if bind.expanding:
            values = parameters.get(name)
            if not isinstance(values, list | tuple) or not values:
                return None  # an empty IN list renders differently; leave it to SQLAlchemy
            marker = f"__[POSTCOMPILE_{name}]"
            if sql.count(marker) != 1:
                return None
            names = [f"{name}__{i}" for i in range(len(values))]
            sql = sql.replace(marker, ", ".join(f"%({n})s" for n in names))
            params.extend((n, name, default, process, i) for i, n in enumerate(names))
        elif f"%({name})s" in sql:
            params.append((name, name, default, process, None))
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
