"""Where Splink runs: one `Backend` interface, a DuckDB and a Spark implementation.

splink_er's own per-pair steps (sampling, training, routing, decisions, audit, clustering) always run in DuckDB
over a view of the backend's prediction, so both engines share every step after predict.
"""

from .base import Backend, Prediction, make_backend

__all__ = ["Backend", "Prediction", "make_backend"]
