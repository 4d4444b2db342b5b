"""Splink's predict, recorded once and replayed: for `resolve`, which predicts a few pairs many times.

A Splink predict spends about 0.45 s in Python building its SQL (a Linker validating the settings, sqlglot
parsing every level) whatever the number of pairs; for a service resolving one record at a time that is most of
each request. The SQL depends only on the settings, the model, the input table names and the term-frequency
tables, never on the rows. So the first predict for a (model, tables) key runs through Splink with every
statement it sends to DuckDB recorded; later ones send the same statements to a new session's tables. The
predictions are Splink's own, bit for bit (tests/test_resolve.py compares them pair by pair).

Recorded only with table materialisation (parquet materialisation writes into a per-session folder).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .base import Prediction

_RECORDED: dict[str, Recording] = {}
_MAX = 16  # settings x models one process resolves with; more is a notebook trying things


@dataclass
class Recording:
    statements: list[str]
    table: str  # the predictions' physical table name (the statements create it)


class _ReplayedTable:
    """What `Backend.drop` needs of a prediction handle."""

    def __init__(self, con, table: str) -> None:
        self.con, self.table = con, table

    def drop_table_from_database_and_remove_from_cache(self) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {self.table}")


def key(model: dict, input_tables: list[str], tf_lookups: dict[str, str]) -> str:
    from importlib.metadata import version

    payload = json.dumps([model, input_tables, sorted(tf_lookups.items()), version("splink")], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def predict(db, key_: str, run_splink) -> Prediction:
    """The prediction for `key_`: replayed when recorded, else `run_splink()` (a Splink predict on `db`, the
    session's DuckDBAPI) with its statements recorded."""
    found = _RECORDED.get(key_)
    con = db._con
    if found is not None:
        for sql in found.statements:
            con.execute(sql)
        return Prediction(found.table, _ReplayedTable(con, found.table))
    statements: list[str] = []
    send = db._execute_sql_against_backend

    def recording(sql: str):
        out = send(sql)
        statements.append(sql)  # only what ran: a statement Splink tried and caught is not replayed
        return out

    db._execute_sql_against_backend = recording  # this session's DuckDBAPI only
    try:
        prediction = run_splink()
    finally:
        del db._execute_sql_against_backend
    if len(_RECORDED) >= _MAX:
        _RECORDED.clear()
    _RECORDED[key_] = Recording(statements, prediction.source_sql)
    return prediction


def forget() -> None:
    """Drop every recording (tests compare a replay with Splink's own predict)."""
    _RECORDED.clear()
