"""The backend interface: bootstrap a model, predict every blocked pair, drop a prediction, clean up scratch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from .reweigh import vectors_key


@dataclass
class Prediction:
    """A backend's prediction of every blocked pair. `source_sql` is what DuckDB reads it from (a table name
    or a `read_parquet(...)` call); `handle` is the backend's own object, for dropping it; `model` the model it
    was made with (its comparison vectors serve every later model of the same blocking and comparisons);
    `vectors` the stored prediction whose vectors it re-weighs (None: it holds them itself); `parts` the
    predictions a union of stored vectors reads (engine/grown_blocking.py)."""

    source_sql: str
    handle: Any
    model: dict | None = None
    vectors: Prediction | None = None
    parts: tuple = ()


class Backend(ABC):
    """One job's engine. Subclasses implement the four steps whose cost grows with the number of pairs. A backend
    keeps the session, not a copy of its settings, so rules a run adopts reach it."""

    name: str = "backend"

    def __init__(self, session) -> None:
        self.session = session
        # column -> table of term frequencies (`<col>`, `tf_<col>`) to predict with instead of the inputs' own:
        # a resolve scores new records against part of the store, and must weigh a value by how common it is in
        # all of it. DuckDB only (resolve runs on DuckDB).
        self.tf_lookups: dict[str, str] = {}
        # Replay Splink's predict SQL recorded for the same model and tables (engine/recorded_predict.py): set by
        # resolve, whose inputs are small and whose predict would be mostly Splink building SQL.
        self.replay_predict = False
        # (rules, table): the pairs the last of `rules` add to the first ones, blocked in Splink's form by learned
        # blocking; a predict whose blocking is exactly `rules`, grown from the first ones, compares them instead of
        # blocking them again.
        self.appended_pairs: tuple[list, str] | None = None

    @property
    def settings(self):
        return self.session.settings

    @abstractmethod
    def bootstrap(self, untrained_model: dict) -> dict:
        """The unsupervised recipe (prior, u by random sampling, EM); returned as a DuckDB-SQL model."""

    @abstractmethod
    def predict(self, model: dict, previous: Prediction | None = None) -> Prediction:
        """Score every blocked pair with `model` (a DuckDB-SQL model dict). `previous`: the last prediction, still
        readable; when it holds the comparison vectors `model` needs, they are re-weighed (engine/reweigh.py)."""

    def can_reweigh(self, model: dict, previous: Prediction | None) -> bool:
        return (
            self.settings.engine.compare_once
            and previous is not None
            and previous.model is not None
            and vectors_key(previous.model) == vectors_key(model)
        )

    @abstractmethod
    def drop(self, prediction: Prediction) -> None:
        """Free a prediction that is no longer read."""

    def cleanup(self) -> None:
        """Remove scratch files (Splink's materialised tables, spill, Spark's Parquet)."""
