"""Splink on DuckDB: the default engine, one process, the inputs already in the job's connection."""

from __future__ import annotations

import copy
import shutil
import threading
from contextlib import contextmanager
from types import SimpleNamespace

from ..model import linker_for
from ..sql import sql_literal
from ..training import bootstrap
from . import grown_blocking, recorded_predict
from .base import Backend, Prediction
from .reweigh import reweigh


def make_db(settings, con=None):
    """Splink's DuckDB engine as `engine` configures it: materialisation, memory limit, threads; on `con` when
    given (a connection kept warm across resolves, engine/warm.py), else on a new in-memory database."""
    import duckdb
    from splink import DuckDBAPI

    e, path = settings.engine, settings.materialisation_path
    con = con or duckdb.connect()
    if e.memory_limit:
        path.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET memory_limit = {sql_literal(e.memory_limit)}")
        con.execute(f"SET temp_directory = {sql_literal(path / 'spill')}")
    if e.threads:
        con.execute(f"SET threads = {int(e.threads)}")
    with _no_spare_database(con):
        if e.materialisation == "table":
            return DuckDBAPI(connection=con)
        path.mkdir(parents=True, exist_ok=True)
        return DuckDBAPI(connection=con, materialisation="parquet", materialisation_dir=str(path))


_SPLINK_MODULE_SWAP = threading.Lock()


@contextmanager
def _no_spare_database(con):
    """Splink 5's DatabaseAPI.__init__ opens an in-memory DuckDB database for backends without one of their own;
    DuckDBAPI never reads it (its `duckdb_con` is the job's connection), and opening it costs about 20 ms, 5% of
    a one-record resolve. While the engine is made, that opening hands back the job's connection instead."""
    import duckdb
    from splink.internals import database_api

    with _SPLINK_MODULE_SWAP:  # one engine made at a time: the swap is Splink's module, shared by threads
        if database_api.duckdb is not duckdb:  # not Splink 5.0's layout: leave it alone
            yield
            return
        database_api.duckdb = SimpleNamespace(connect=lambda *args, **kwargs: con)
        try:
            yield
        finally:
            database_api.duckdb = duckdb


class _View:
    """A re-weighed prediction (a view over the stored one), as `Backend.drop` handles it."""

    def __init__(self, con, name: str) -> None:
        self.con, self.name = con, name

    def drop_table_from_database_and_remove_from_cache(self) -> None:
        self.con.execute(f"DROP VIEW IF EXISTS {self.name}")


class DuckDBBackend(Backend):
    name = "duckdb"

    def __init__(self, session) -> None:
        super().__init__(session)
        self._stored: Prediction | None = None  # the prediction whose comparison vectors are re-weighed
        self._views = 0

    def bootstrap(self, untrained_model: dict) -> dict:
        return bootstrap(self.session.sdfs, self.settings, untrained_model)

    def predict(self, model: dict, previous: Prediction | None = None) -> Prediction:
        if self.replay_predict and self.settings.engine.materialisation == "table":
            tables = [sdf.physical_name for sdf in self.session.sdfs]
            key = recorded_predict.key(model, tables, self.tf_lookups)
            return recorded_predict.predict(self.session.db, key, lambda: self._splink_predict(model))
        if self.can_reweigh(model, previous):
            return self._reweighed(model, previous.vectors or previous)
        grown = self._grown(model, previous)
        if grown is not None:
            return self._reweighed(model, grown)
        prediction = self._splink_predict(model)
        if self.settings.engine.compare_once:
            self._stored = prediction
        return prediction

    def _reweighed(self, model: dict, stored: Prediction) -> Prediction:
        vectors = self.session.db.table_to_splink_dataframe("__splink_er_vectors", stored.source_sql)
        sql = reweigh(self.session.sdfs, vectors, stored.model, model).generate_cte_pipeline_sql()
        self._views += 1
        name = f"__splink_er_reweighed_{self._views}"
        self.session.con.execute(f"CREATE VIEW {name} AS {sql}")
        return Prediction(name, _View(self.session.con, name), copy.deepcopy(model), vectors=stored)

    def _grown(self, model: dict, previous: Prediction | None) -> Prediction | None:
        """When `model` only appends blocking rules to the stored prediction's (learned blocking), the stored
        vectors plus Splink's predict of the appended rules' pairs, stored in its place (grown_blocking.py)."""
        stored = self._stored
        current = previous is not None and stored is not None and (previous is stored or previous.vectors is stored)
        if not self.settings.engine.compare_once or not current:
            return None
        kept = grown_blocking.rules_appended(stored.model, model)
        if kept is None:
            return None
        s = self.session
        known, self.appended_pairs = self.appended_pairs, None
        table = known[1] if known and known[0] == self.settings.blocking_rules else None
        added = grown_blocking.predict_appended_rules(linker_for(s.sdfs, model, s.db, self.tf_lookups), kept, table)
        if added is None:
            return None
        added = Prediction(added.physical_name, added, copy.deepcopy(model))
        self._views += 1
        name = f"__splink_er_vectors_grown_{self._views}"
        s.con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM {stored.source_sql} UNION ALL BY NAME SELECT * FROM {added.source_sql}"
        )
        handle = grown_blocking.UnionHandle(s.con, name, [stored, added])
        self._stored = union = Prediction(name, handle, copy.deepcopy(model), parts=(stored, added))
        return union

    def _splink_predict(self, model: dict) -> Prediction:
        s = self.session
        pred = linker_for(s.sdfs, model, s.db, self.tf_lookups).inference.predict()
        return Prediction(pred.physical_name, pred, copy.deepcopy(model))

    def drop(self, prediction: Prediction) -> None:
        """Drop a prediction no longer read; the stored vectors of the current blocking stay while later
        predictions re-weigh them."""
        if not self._keeps(prediction):
            prediction.handle.drop_table_from_database_and_remove_from_cache()
        if prediction.vectors is not None and not self._keeps(prediction.vectors):
            self.drop(prediction.vectors)

    def _keeps(self, prediction: Prediction) -> bool:
        """The stored vectors, or a part of them (a grown blocking's union reads the old stored prediction)."""

        def within(stored: Prediction | None) -> bool:
            return stored is not None and (prediction is stored or any(within(p) for p in stored.parts))

        return within(self._stored)

    def cleanup(self) -> None:
        # Splink's parquet tables and DuckDB's spill files are scratch; the run's outputs are the results.
        e = self.settings.engine
        if e.materialisation == "parquet" or e.memory_limit:
            shutil.rmtree(self.settings.materialisation_path, ignore_errors=True)
