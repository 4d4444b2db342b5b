"""Where Splink runs: one `Backend` interface, a DuckDB and a Spark implementation.

splink_er's own per-pair steps (sampling, training, routing, decisions, audit, clustering) always run in DuckDB
over a view of the backend's prediction, so both engines share every step after predict.
"""

from .base import Backend, Prediction


def make_backend(session, spark=None) -> Backend:
    """The backend `engine.kind` names, for a session whose sources are loaded. `spark`: a running SparkSession
    to use instead of starting one. Each backend's module loads only when its engine is used."""
    if session.settings.engine.kind == "spark":
        from .spark import SparkBackend

        return SparkBackend(session, spark)
    from .duckdb_engine import DuckDBBackend

    return DuckDBBackend(session)


__all__ = ["Backend", "Prediction", "make_backend"]
