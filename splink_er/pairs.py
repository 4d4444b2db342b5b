"""What every part says about a pair: its key, what a judge is shown of it, and a judge's answer.

A leaf module (no splink_er imports) so that labels, the decision log, judges and routing share one vocabulary
without importing each other or Splink.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

PairKey = tuple[str, str, str, str]

# Splink's order: a pair's records sorted by 'source_dataset-__-unique_id' (see `canonical_key`).
PAIR_KEY = ["source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r"]

# How strong the evidence behind a decision is, strongest first: a person, the judge, a label imported from an
# earlier process, an accept rule; every other decided_by (the model, review) comes after. One order for every
# place that ranks decisions (one-to-one, gold.parquet, re-adding links when an entity is split).
EVIDENCE_STRENGTH = {"human": 0, "judge": 1, "imported": 2, "rule": 3}
MODEL_STRENGTH = len(EVIDENCE_STRENGTH)


def gamma_columns(con, relation: str) -> list[str]:
    """The comparison-vector columns (Splink's gamma_<comparison>) of a scored relation, in its order."""
    return [
        c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {relation})").fetchall() if c.startswith("gamma_")
    ]


def evidence_strength_sql(decided_by: str = "decided_by") -> str:
    """SQL: EVIDENCE_STRENGTH of the `decided_by` column (MODEL_STRENGTH for any other value)."""
    whens = " ".join(f"WHEN '{k}' THEN {v}" for k, v in EVIDENCE_STRENGTH.items())
    return f"CASE {decided_by} {whens} ELSE {MODEL_STRENGTH} END"


def pair_keys(frame) -> list[PairKey]:
    """The pair key of every row of a DataFrame with the PAIR_KEY columns, as tuples (the form labels and
    judges use)."""
    return list(map(tuple, frame[PAIR_KEY].values))


def canonical_key(sd_a: str, id_a: str, sd_b: str, id_b: str) -> PairKey:
    """Order two records the way Splink orders a pair (by 'source_dataset-__-unique_id').

    Example:
        >>> canonical_key("b", "2", "a", "9")
        ('a', '9', 'b', '2')
    """
    a, b = (str(sd_a), str(id_a)), (str(sd_b), str(id_b))
    if f"{a[0]}-__-{a[1]}" > f"{b[0]}-__-{b[1]}":
        a, b = b, a
    return (a[0], a[1], b[0], b[1])


@dataclass(frozen=True)
class PairContext:
    """What a judge sees of one pair. `match_probability` is None unless settings show the score."""

    key: PairKey
    left: dict
    right: dict
    reason: str  # sample | band | conflict | audit
    match_probability: float | None = None
    group: str | None = None  # conflict group: pairs sharing one anchor record are asked as one selection question
    group_side: str = "left"  # which side of each pair in the group is the anchor record

    @property
    def pair_id(self) -> str:
        return f"{self.key[0]}:{self.key[1]}|{self.key[2]}:{self.key[3]}"

    @cached_property
    def input_hash(self) -> str:
        """Hash of what a judge is shown for this pair: a stored answer is reused only for the same input."""
        shown = {"left": self.left, "right": self.right, "p": self.match_probability}
        return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class JudgeDecision:
    """One answer. `match` is None when the judge could not decide (then needs_review is True and
    `reasoning` says why). `call` describes the call that answered (id, model, tokens and cost shared out per
    pair, latency, attempts); `escalated_from` holds the first judge's answer when a second judge decided; `votes`
    every answer when the pair was asked several times."""

    key: PairKey
    match: bool | None
    confidence: float
    reasoning: str
    needs_review: bool = False
    call: dict = field(default_factory=dict)
    failed: bool = False  # no answer because the call failed (network, HTTP error after retries): not judged
    escalated_from: dict | None = None
    votes: list[dict] | None = None  # every answer when the pair was asked several times (judge.repeats)
