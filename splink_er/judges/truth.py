"""SIMULATED judge: answers from a ground-truth column. For benchmarks, tests and demos, never for real work.

Every label it writes has source `simulated-truth` and `simulated: true`; the run report says so too.
With `error_rate` > 0 it flips a seeded, per-pair share of answers: whether a pair is flipped depends only on
the seed and the pair key, so the same pair always gets the same answer whatever the batching or order. With
`judge.repeats`, each ask has its own seed: the simulated errors are independent between asks.
It renders the prompt an LLM judge would get and reports the tokens that prompt would have used (4 characters
per token), marked as an estimate (`usage.tokens_estimated`), so runs can be costed before paying.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from ..pairs import JudgeDecision, PairContext, PairKey
from .base import Judge, group_units
from .prompt import estimate_tokens, make_questions, render


class TruthJudge(Judge):
    name = "simulated-truth"
    simulated = True

    def __init__(
        self,
        truth: dict[tuple[str, str], object],
        truth_column: str,
        error_rate: float = 0.0,
        seed: int = 42,
        latency_seconds: float = 0.0,
        system: str = "",
        ask: int = 0,
    ) -> None:
        super().__init__()
        self.usage.tokens_estimated = True
        self.system = system
        self.truth = truth
        self.truth_column = truth_column
        self.error_rate = error_rate
        self.seed = seed
        self.latency_seconds = latency_seconds
        self.ask = ask  # with judge.repeats: which ask this instance answers (its errors are seeded apart)

    @property
    def method(self) -> dict:
        return {"kind": "truth", "simulated": True, "truth_column": self.truth_column, "error_rate": self.error_rate}

    def _flipped(self, key: PairKey) -> bool:
        if self.error_rate <= 0:
            return False
        salt = f"{self.seed}" if self.ask == 0 else f"{self.seed}|ask{self.ask}"
        digest = hashlib.sha256(f"{salt}|{'|'.join(key)}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.error_rate

    async def judge_batch(self, pairs: Sequence[PairContext]) -> list[JudgeDecision]:
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        self.usage.calls += 1
        self.usage.pairs += len(pairs)
        prompt = render(make_questions(pairs), show_score=False)
        # An answer line per pair: ids, match, confidence and a one-sentence reason (~140 characters).
        tokens_in, tokens_out = estimate_tokens(self.system, prompt.text, 20 + 140 * len(pairs))
        self.usage.input_tokens += tokens_in
        self.usage.output_tokens += tokens_out
        answers = {p.key: self._answer(p) for p in pairs}
        for unit in group_units(pairs):
            if len(unit) > 1:
                self._select_one(unit, answers)
        return [answers[p.key] for p in pairs]

    def _answer(self, p: PairContext) -> JudgeDecision:
        t_l, t_r = self.truth.get(p.key[:2]), self.truth.get(p.key[2:])
        flipped = self._flipped(p.key)
        if t_l is None or t_r is None:  # a record the truth does not place is an entity of its own
            same = False
            why = f"simulated: no {self.truth_column} value for a record, so it is its own entity"
        else:
            same = t_l == t_r
            why = f"simulated: {self.truth_column} {'equal' if same else 'different'} ({t_l} vs {t_r})"
        if flipped:
            why += "; answer flipped by the simulated error rate"
        return JudgeDecision(p.key, same != flipped, round(1.0 - self.error_rate, 4), why)

    def _select_one(self, unit: list[PairContext], answers: dict) -> None:
        """A group question has one answer: at most one candidate matches, as an LLM is told. When the truth (or a
        flipped answer) makes several match, the first unflipped one is kept (else the first, in the order
        asked); the others are answered as not selected. A group with at most one match is answered as is."""
        matched = [p for p in unit if answers[p.key].match]
        if len(matched) < 2:
            return
        keep = next((p for p in matched if not self._flipped(p.key)), matched[0])
        for p in matched:
            if p is not keep:
                d = answers[p.key]
                d.match = False
                d.reasoning = f"simulated: another candidate was selected (at most one can match); {d.reasoning}"
