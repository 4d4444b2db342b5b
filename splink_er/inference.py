"""Inference: score every blocked pair with a model, route the scored pairs, decide them.

Each step returns a `Relation` handle (the scores, the routed pairs, the decisions) that the next step, the
evaluation and the outputs take; no caller needs to know a table name.
"""

from __future__ import annotations

import json

import pandas as pd

from . import routing
from .model import make_linker
from .pairs import PAIR_KEY
from .sources import record_lookup
from .sql import Relation, drop_relation, registered, sql_literal

_PAIRS_PER_CALL = 25  # a call compares 25 x 25 records at most


def score_pairs(session, linker, keys: list[tuple]) -> dict[tuple, tuple[dict, dict, dict]]:
    """Score pairs with `linker` for their waterfalls: key -> (left record, right record, scored row).
    Records carry every input column (the model may read any); a key whose record is missing is left out.
    Splink scores a batch of keys in one call (its score_pairs: every left record against every right one), not
    one call per pair: each call costs about 0.35 s of SQL building, most of a report's ten waterfalls."""
    cols = sorted({c for cols in session.loaded.columns.values() for c in cols})
    recs = record_lookup(session.con, session.loaded, [k[:2] for k in keys] + [k[2:] for k in keys], cols)
    keys = [k for k in dict.fromkeys(keys) if k[:2] in recs and k[2:] in recs]
    out = {}
    for start in range(0, len(keys), _PAIRS_PER_CALL):
        batch = keys[start : start + _PAIRS_PER_CALL]
        lefts = {k[:2]: {"unique_id": k[1], "source_dataset": k[0]} | recs[k[:2]] for k in batch}
        rights = {k[2:]: {"unique_id": k[3], "source_dataset": k[2]} | recs[k[2:]] for k in batch}
        rows = linker.inference.score_pairs(list(lefts.values()), list(rights.values())).as_pandas_dataframe()
        # Splink writes source_dataset_l/_r only when a job has several sources (ids are unique within one).
        one_source = batch[0][0]
        by_key = {
            (
                r.get("source_dataset_l", one_source),
                r["unique_id_l"],
                r.get("source_dataset_r", one_source),
                r["unique_id_r"],
            ): r
            for r in rows.to_dict("records")
        }
        for key in batch:
            row = by_key[key]
            clean = {k: (None if pd.api.types.is_scalar(v) and pd.isna(v) else v) for k, v in row.items()}
            out[key] = (lefts[key[:2]], rights[key[2:]], clean)
    return out


# The match_key of a scored human-labelled pair the blocking rules do not propose.
OUTSIDE_BLOCKING = "human label outside blocking"


class Inference:
    """The inference component of a job (see `Job.inference`)."""

    def __init__(self, session) -> None:
        self.session = session
        self.scores: Relation | None = None
        self.pair_scores: Relation | None = None  # what routing reads of the scores (routing.pair_scores)
        self.routed: Relation | None = None
        self.decisions: Relation | None = None
        self._prediction = None  # the backend's prediction under the scores view
        self._labels: pd.DataFrame | None = None  # what the last route read
        self._counts: dict[str, int] | None = None  # pairs per route of the last route
        self._hashed = False  # pair_scores is a table with key hashes (routing.pair_scores)
        # What fixes which pairs the scores hold (the blocking rules, the labelled pairs scored outside them): the
        # evaluation counts the true pairs among them once per pair set, not once per scoring.
        self.pair_set: tuple | None = None

    def score(self, model: dict, labelled: list[tuple] = ()) -> Relation:
        """Predict every blocked pair; the scores view reads the backend's prediction with the full pair key for
        every job type. A view, not a copy: at 10M pairs a copy cost as much time as predict and most of the
        memory. The previous prediction is dropped once the view has moved on. `labelled`: pair keys of human
        labels; those the blocking rules do not propose are scored too, so a person's answer is never ignored."""
        s = self.session
        with s.clock.stage("score"), s.reporter.status("scoring blocked pairs"):
            prediction = s.backend.predict(model, previous=self._prediction)
            extra = ""
            if s.settings.link_type == "dedupe_only":
                # Splink omits source_dataset for one input; add it so the pair key is the same for every job type.
                name = sql_literal(s.settings.sources[0].name)
                extra = f"{name} AS source_dataset_l, {name} AS source_dataset_r, "
            blocked = f"SELECT {extra}* FROM {prediction.source_sql}"
            outside = self._score_outside_blocking(model, labelled, blocked)
            rules = model.get("blocking_rules_to_generate_predictions")
            self.pair_set = (json.dumps(rules, sort_keys=True, default=str), tuple(sorted(labelled)))
            drop_relation(s.con, "scores")
            s.con.execute(
                f"CREATE VIEW scores AS {blocked}" + (f" UNION ALL BY NAME SELECT * FROM {outside}" if outside else "")
            )
            if self._prediction is not None:
                s.backend.drop(self._prediction)
            self._prediction = prediction
            self.scores = Relation(s.con, "scores")
            # Made by the next route (a run's last scoring is often never routed). The copy of the last scoring
            # goes now: the routes over it would read stale scores, and it holds memory the next scoring needs.
            if self.pair_scores is not None:
                drop_relation(s.con, self.pair_scores.name)
                self.pair_scores = None
        return self.scores

    def _keep_table(self) -> bool:
        """engine.routing_scores: keep what routing reads of the scores in a table, or compute it at each read.
        'auto' copies up to routing_table_max_pairs scored pairs, and never under engine.memory_limit (the copy
        would compete with the limit it is set for)."""
        e = self.session.settings.engine
        if e.routing_scores != "auto":
            return e.routing_scores == "table"
        return e.memory_limit is None and self.scores.count() <= e.routing_table_max_pairs

    def _routed(self) -> str:
        """The routed pairs of the current scores: after a scoring that steps run by hand did not route, routed
        again with the last labels (the routes read the scoring's copy, and that went with the scoring)."""
        if self.pair_scores is None and self.routed is not None:
            self.route(self._labels)
        return self.routed.name

    def _score_outside_blocking(self, model: dict, labelled: list[tuple], blocked_sql: str) -> str | None:
        """A table of the labelled pairs the blocking rules do not propose, scored one by one with `model`."""
        s = self.session
        if not labelled:
            return None
        keys = pd.DataFrame(list(labelled), columns=PAIR_KEY)
        with registered(s.con, "__labelled", keys) as view:
            missing = s.con.execute(
                f"SELECT * FROM {view} EXCEPT SELECT {', '.join(PAIR_KEY)} FROM ({blocked_sql})"
            ).fetchall()
        if not missing:
            return None
        if s.backend.name != "duckdb":
            s.reporter.warn(
                f"{len(missing)} human label(s) are on pairs the blocking rules do not propose; on Spark they are "
                "not scored: add a blocking rule that proposes them, or run on DuckDB"
            )
            return None
        scored = score_pairs(s, make_linker(s.sdfs, model), missing)
        if len(scored) < len(missing):
            gone = [k for k in missing if k not in scored]
            s.reporter.warn(
                f"{len(gone)} human label(s) name records the inputs no longer hold (e.g. {gone[0]}): left out"
            )
        if not scored:
            return None
        frame = pd.DataFrame([row for _, _, row in scored.values()]).assign(match_key=OUTSIDE_BLOCKING)
        for column, value in zip(PAIR_KEY, zip(*scored)):
            frame[column] = list(value)
        drop_relation(s.con, "scores_outside_blocking")
        # The prediction's column types (a column that is null in every row here must not turn into text).
        s.con.execute(f"CREATE TABLE scores_outside_blocking AS SELECT * FROM ({blocked_sql}) LIMIT 0")
        with registered(s.con, "__outside", frame) as view:
            s.con.execute(f"INSERT INTO scores_outside_blocking BY NAME SELECT * FROM {view}")
        s.reporter.info(
            f"{len(scored)} human label(s) are on pairs the blocking rules do not propose: scored and routed too"
        )
        return "scores_outside_blocking"

    def route(self, labels: pd.DataFrame) -> dict[str, int]:
        """Route every scored pair (gates, labels, conflicts, thresholds); returns the number of pairs per route."""
        s = self.session
        with s.clock.stage("route"):
            if self.pair_scores is None:
                table = self._keep_table()
                self.pair_scores = Relation(s.con, routing.pair_scores(s.con, "scores", s.settings, table))
                self._hashed = table
            self._labels = labels
            routed = routing.route(s.con, self.pair_scores.name, labels, s.settings, hashed=self._hashed)
            self.routed = Relation(s.con, routed)
            self._counts = routing.route_counts(s.con, routed)
            return dict(self._counts)

    def scores_of(self, keys: pd.DataFrame) -> Relation:
        """The scores of (at least) the pairs of `keys` (pair keys), e.g. for training on the labelled pairs. Cut
        from the routing copy of the current scores when there is one (found by the key's hash: 0.03 s at 2.5M
        pairs, where a join with the scores view computes every pair's weights, 0.27 s), else the scores view."""
        s = self.session
        if self.pair_scores is None or not self._hashed:
            return self.scores
        with registered(s.con, "__keys_wanted", keys[PAIR_KEY]) as view:
            name = routing.scores_of_pairs(s.con, self.pair_scores.name, f"SELECT DISTINCT * FROM {view}", "scores_of")
        return Relation(s.con, name)

    def route_counts(self) -> dict[str, int]:
        """The number of pairs per route (counted when they were routed: the routes change only then)."""
        routed = self._routed()
        if self._counts is None:
            self._counts = routing.route_counts(self.session.con, routed)
        return dict(self._counts)

    def sampling_population(self) -> str:
        """The scored pairs sampling draws from: all of them, less the pairs a gate or an accept rule decides
        (a view over the scores; the scores themselves when there are no rules)."""
        s = self.session
        decided = routing.decided_by_rules_sql(s.settings)
        if decided is None:
            return self.scores.name
        drop_relation(s.con, "sampling_population")
        s.con.execute(f"CREATE VIEW sampling_population AS SELECT * FROM {self.scores.name} WHERE NOT ({decided})")
        return "sampling_population"

    def judge_queue(self, limit: int) -> pd.DataFrame:
        """The band and conflict pairs the judge should see next (conflicts first, then nearest p = 0.5), with
        the selection groups when routing.selection_questions is on."""
        s = self.session
        return routing.pairs_to_judge(
            s.con, self._routed(), s.settings, limit=limit, selection=s.settings.selection_questions
        )

    def decide(self, round_no: int) -> Relation:
        """Final decisions over the routed pairs (needs_review for unjudged band pairs; one-to-one if set)."""
        s = self.session
        r = s.settings.routing
        name = routing.decide(
            s.con, self._routed(), round_no, one_to_one=r.one_to_one, min_confidence=r.min_judge_confidence
        )
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
