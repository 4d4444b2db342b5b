"""One DuckDB connection kept across resolves: what `splink-er serve` keeps warm between requests.

Opening a DuckDB database costs about 40 ms, as much as a one-record resolve's replayed predict. Each use starts
from the state the connection had when it was made: every table, view and attached database a use created is
dropped after it (a failed use too), so nothing of one request can reach the next; when that cleaning fails,
the connection is replaced by a new one.

One database may be kept attached between uses (`keep`: the service's entity store). Attaching it again for
every request threw away what DuckDB had read of it, its indexes above all (entities/serving_indexes.py): about
130 ms of a one-record resolve at 1M records. Kept, it is attached at the first use and stays while uses keep
coming, with its file lock held (locks.py), so no other process writes it meanwhile; `idle_seconds` after the
last use it is detached and the lock released, and a batch run waiting for the lock goes on. Its tables are the
store's, never the use's: cleaning leaves them alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..sql import quote_ident, sql_literal


class WarmConnection:
    def __init__(
        self, keep: tuple[str, Path] | None = None, *, idle_seconds: float = 5.0, wait_seconds=None, attach=None
    ) -> None:
        """`keep`: (alias, path) of a database to keep attached between uses (see the module docstring);
        `wait_seconds`: how long a use waits for its file lock (then errors.Busy); `attach(con)`: attaches it
        (default: a plain ATTACH; the service's opens the entity store and makes sure of its indexes)."""
        self.keep, self.idle_seconds, self.wait_seconds = keep, idle_seconds, wait_seconds
        self.attach = attach or (
            lambda con: con.execute(f"ATTACH IF NOT EXISTS {sql_literal(keep[1])} AS {quote_ident(keep[0])}")
        )
        self._guard = threading.RLock()  # a use and the idle release never overlap
        self._kept_lock = None  # the file lock, while the kept database is attached
        self._release_timer: threading.Timer | None = None
        self._uses = 0  # a release timer that fired while a use ran is stale once that use ends
        self.con = self._connect()
        self._clean = self._objects()

    @staticmethod
    def _connect():
        import duckdb

        return duckdb.connect()

    def _objects(self) -> set[tuple[str, str, str, str]]:
        """(kind, database, schema, name) of every relation and attached database a use can create (the kept
        database's relations are its own business)."""
        kept = self.keep[0] if self.keep else ""
        return set(
            self.con.execute(
                """
                SELECT 'VIEW', database_name, schema_name, view_name FROM duckdb_views()
                WHERE NOT internal AND database_name <> $kept
                UNION ALL SELECT 'TABLE', database_name, schema_name, table_name FROM duckdb_tables()
                WHERE database_name <> $kept
                UNION ALL SELECT 'DATABASE', database_name, '', '' FROM duckdb_databases()
                WHERE NOT internal AND database_name <> $kept
            """,
                {"kept": kept},
            ).fetchall()
        )

    @contextmanager
    def use(self) -> Iterator:
        """The connection, cleaned after the block (see the module docstring)."""
        with self._guard:
            self._uses += 1
            if self._release_timer is not None:
                self._release_timer.cancel()
            try:
                self._attach_kept()
                yield self.con
            finally:
                self.reset()
                self._release_later()

    @contextmanager
    def peek(self) -> Iterator:
        """The connection while the kept database is attached (None when it is not), for reads that neither
        attach it nor keep it longer: the service's GET endpoints, which must not hold a batch run off."""
        with self._guard:
            yield self.con if self._kept_lock is not None else None

    def keeps(self, alias: str) -> bool:
        """Whether `alias` is the database this connection keeps attached between uses."""
        return bool(self.keep) and self.keep[0] == alias

    def _attach_kept(self) -> None:
        if not self.keep or self._kept_lock is not None:
            return
        from ..errors import InputError
        from ..locks import hold

        path = Path(self.keep[1])
        if not path.exists():  # ATTACH would make a new, empty one
            raise InputError(f"{path} not found: the store this service serves is gone")
        self._kept_lock = hold(path, "entity store", self.wait_seconds)
        try:
            self.attach(self.con)
        except BaseException:
            self._detach_and_unlock()
            raise

    def _release_later(self) -> None:
        if self._kept_lock is None:
            return
        self._release_timer = threading.Timer(self.idle_seconds, self._release_if_idle, [self._uses])
        self._release_timer.daemon = True
        self._release_timer.start()

    def _release_if_idle(self, uses: int) -> None:
        with self._guard:
            if uses == self._uses:  # no use began since this timer was set
                self.release()

    def release(self) -> None:
        """Detach the kept database and free its file lock (after `idle_seconds` without a use, and at the end)."""
        with self._guard:
            if self._kept_lock is not None:
                self._detach_and_unlock()

    def _detach_and_unlock(self) -> None:
        try:
            self.con.execute(f"DETACH DATABASE IF EXISTS {quote_ident(self.keep[0])}")
        except Exception:  # noqa: BLE001 - a broken connection: closed, a new one holds nothing
            self._close_connection()
            self.con = self._connect()
        self._release_lock()

    def _release_lock(self) -> None:
        lock, self._kept_lock = self._kept_lock, None
        if lock is not None:
            lock.release()

    def reset(self) -> None:
        try:
            self._drop_new()
            if self._objects() == self._clean:
                return
        except Exception:  # noqa: BLE001 - whatever went wrong, a new connection is clean
            pass
        self._close_connection()  # the file is closed before its lock goes (another process may take both)
        self._release_lock()
        self.con = self._connect()

    def _drop_new(self) -> None:
        con = self.con
        try:
            con.execute("ROLLBACK")  # a use that failed inside a transaction
        except Exception:  # noqa: BLE001 - none was open: the usual case
            pass
        order = {"VIEW": 0, "TABLE": 1, "DATABASE": 2}  # views read tables; attached databases go last
        own = {d for k, d, _, _ in self._clean if k == "DATABASE"} | {"temp", "memory"}  # not an attached file's
        for kind, db, schema, name in sorted(self._objects() - self._clean, key=lambda o: order[o[0]]):
            if kind == "DATABASE":
                con.execute(f"DETACH DATABASE IF EXISTS {quote_ident(db)}")
            elif db in own:
                con.execute(f"DROP {kind} IF EXISTS {quote_ident(db)}.{quote_ident(schema)}.{quote_ident(name)}")

    def close(self) -> None:
        with self._guard:
            if self._release_timer is not None:
                self._release_timer.cancel()
            self._close_connection()  # before the lock: the file is closed when another process may take it
            self._release_lock()

    def _close_connection(self) -> None:
        try:
            self.con.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
