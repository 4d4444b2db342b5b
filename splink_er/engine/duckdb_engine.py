"""Splink on DuckDB: the default engine, one process, the inputs already in the job's connection."""

from __future__ import annotations

import shutil

from ..model import make_linker
from ..sql import sql_literal
from ..training import bootstrap
from . import recorded_predict
from .base import Backend, Prediction


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
    if e.materialisation == "table":
        return DuckDBAPI(connection=con)
    path.mkdir(parents=True, exist_ok=True)
    return DuckDBAPI(connection=con, materialisation="parquet", materialisation_dir=str(path))


class DuckDBBackend(Backend):
    name = "duckdb"

    def bootstrap(self, untrained_model: dict) -> dict:
        return bootstrap(self.session.sdfs, self.settings, untrained_model)

    def predict(self, model: dict) -> Prediction:
        if self.replay_predict and self.settings.engine.materialisation == "table":
            tables = [sdf.physical_name for sdf in self.session.sdfs]
            key = recorded_predict.key(model, tables, self.tf_lookups)
            return recorded_predict.predict(self.session.db, key, lambda: self._splink_predict(model))
        return self._splink_predict(model)

    def _splink_predict(self, model: dict) -> Prediction:
        linker = make_linker(self.session.sdfs, model)
        for column, table in self.tf_lookups.items():
            linker.table_management.register_term_frequency_lookup(self.session.db.register(table), column)
        pred = linker.inference.predict()
        return Prediction(pred.physical_name, pred)

    def drop(self, prediction: Prediction) -> None:
        prediction.handle.drop_table_from_database_and_remove_from_cache()

    def cleanup(self) -> None:
        # Splink's parquet tables and DuckDB's spill files are scratch; the run's outputs are the results.
        e = self.settings.engine
        if e.materialisation == "parquet" or e.memory_limit:
            shutil.rmtree(self.settings.materialisation_path, ignore_errors=True)
