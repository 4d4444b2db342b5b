"""Where Splink runs: one `Backend` interface, a DuckDB and a Spark implementation.

splink_er's own per-pair steps (sampling, training, routing, decisions, audit, clustering) always run in DuckDB
over a view of the backend's prediction, so both engines share every step after predict.
"""

from .base import Backend, Prediction


def make_backend(settings, db, sdfs: list, con, loaded, spark=None) -> Backend:
    """The backend `engine.kind` names. `spark`: a running SparkSession to use instead of starting one."""
    if settings.engine.kind == "spark":
        try:
            import pyspark  # noqa: F401  (loaded only for Spark jobs)
        except ImportError:
            from ..errors import DependencyMissing

            raise DependencyMissing(
                "engine.kind is spark but pyspark is not installed: pip install "
                "'splink-er[spark]' (and Java 17), or set engine.kind: duckdb."
            ) from None
        from .spark import SparkBackend

        return SparkBackend(settings, con, loaded, spark)
    from .duckdb_engine import DuckDBBackend

    return DuckDBBackend(settings, db, sdfs)


__all__ = ["Backend", "Prediction", "make_backend"]
