"""Inference: score every blocked pair with a model, route the scored pairs, decide them.

Each step returns a `Relation` handle (the scores, the routed pairs, the decisions) that the next step, the
evaluation and the outputs take; no caller needs to know a table name.
"""

from __future__ import annotations

import pandas as pd

from . import routing
from .sql import Relation, drop_relation, sql_literal


class Inference:
    """The inference component of a job (see `Job.inference`)."""

    def __init__(self, session) -> None:
        self.session = session
        self.scores: Relation | None = None
        self.routed: Relation | None = None
        self.decisions: Relation | None = None
        self._prediction = None  # the backend's prediction under the scores view

    def score(self, model: dict) -> Relation:
        """Predict every blocked pair; the scores view reads the backend's prediction with the full pair key for
        every job type. A view, not a copy: at 10M pairs a copy cost as much time as predict and most of the
        memory. The previous prediction is dropped once the view has moved on."""
        s = self.session
        with s.clock.stage("score"), s.reporter.status("scoring blocked pairs"):
            prediction = s.backend.predict(model)
            extra = ""
            if s.settings.link_type == "dedupe_only":
                # Splink omits source_dataset for one input; add it so the pair key is the same for every job type.
                name = sql_literal(s.settings.sources[0].name)
                extra = f"{name} AS source_dataset_l, {name} AS source_dataset_r, "
            drop_relation(s.con, "scores")
            s.con.execute(f"CREATE VIEW scores AS SELECT {extra}* FROM {prediction.source_sql}")
            if self._prediction is not None:
                s.backend.drop(self._prediction)
            self._prediction = prediction
            self.scores = Relation(s.con, "scores")
        return self.scores

    def route(self, labels: pd.DataFrame) -> dict[str, int]:
        """Route every scored pair (gates, labels, conflicts, thresholds); returns the number of pairs per route."""
        s = self.session
        with s.clock.stage("route"):
            self.routed = Relation(s.con, routing.route(s.con, self.scores.name, labels, s.settings))
            return self.route_counts()

    def route_counts(self) -> dict[str, int]:
        return routing.route_counts(self.session.con, self.routed.name)

    def judge_queue(self, limit: int) -> pd.DataFrame:
        """The band and conflict pairs the judge should see next (conflicts first, then nearest p = 0.5)."""
        return routing.pairs_to_judge(self.session.con, self.routed.name, limit=limit)

    def decide(self, round_no: int) -> Relation:
        """Final decisions over the routed pairs (needs_review for unjudged band pairs; one-to-one if set)."""
        s = self.session
        name = routing.decide(s.con, self.routed.name, round_no, one_to_one=s.settings.routing.one_to_one)
        self.decisions = Relation(s.con, name)
        return self.decisions

    def read_back_decisions(self, path, rejects_written: bool) -> Relation:
        """After decisions.parquet is written, later steps that look only at matches, judged and review pairs
        read the compact columnar file (`decisions_kept`); with every reject written it is all decisions too."""
        con = self.session.con
        drop_relation(con, "decisions_kept")
        con.execute(f"CREATE VIEW decisions_kept AS SELECT * FROM read_parquet({sql_literal(path)})")
        if rejects_written:
            drop_relation(con, "decisions")
            con.execute("CREATE VIEW decisions AS SELECT * FROM decisions_kept")
            self.decisions = Relation(con, "decisions")
        return Relation(con, "decisions_kept")


__all__ = ["Inference"]
