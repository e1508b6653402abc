"""Unit of work: one database transaction per command, rolled back unless committed.

Write units on SQLite open with ``BEGIN IMMEDIATE`` (one writer at a time, so no check-then-act
race between reading a balance and spending it). On PostgreSQL writers lock the member's wallet
row (``LedgerRepository.lock_member``). Repositories never commit; the service does, once."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine


class UnitOfWork:
    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self._engine = engine
        self._write = write
        self._conn: Connection | None = None
        self._committed = False

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._conn

    def __enter__(self) -> UnitOfWork:
        mode = "IMMEDIATE" if self._write else "DEFERRED"
        self._conn = self._engine.connect().execution_options(sqlite_begin=mode)
        self._conn.begin()
        return self

    def commit(self) -> None:
        self.conn.commit()
        self._committed = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self.conn
        try:
            if not self._committed:
                conn.rollback()
        finally:
            conn.close()
            self._conn = None
