"""Escalation: a second, stronger judge decides the pairs the first judge was unsure of.

Pairs whose first answer has confidence below the threshold, or that got no valid answer, are asked again of
the escalation judge; its answer is final and keeps the first answer in `escalated_from` (the decision log
shows both). If the second judge cannot answer either, the first answer stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields

from ..pairs import JudgeDecision, PairContext
from .base import Judge, JudgeUsage


class EscalatingJudge(Judge):
    def __init__(self, first: Judge, second: Judge, threshold: float) -> None:
        super().__init__()
        self.first, self.second, self.threshold = first, second, threshold
        self.name = first.name

    @property
    def parts(self) -> list[Judge]:
        return [self.first, self.second]

    @property
    def method(self) -> dict:
        return {
            "kind": "escalating",
            "first": self.first.method,
            "second": self.second.method,
            "threshold": self.threshold,
            "simulated": self.first.simulated or self.second.simulated,
        }

    def _sum_usage(self) -> None:
        a, b = asdict(self.first.usage), asdict(self.second.usage)
        total = {f.name: a[f.name] + b[f.name] for f in fields(JudgeUsage)}
        total["tokens_estimated"] = a["tokens_estimated"] or b["tokens_estimated"]
        total["pairs"] = a["pairs"]  # escalated pairs are counted once, as escalated_pairs
        total["escalated_pairs"] = b["pairs"]
        self.usage = JudgeUsage(**total)

    async def judge_batch(self, pairs: Sequence[PairContext]) -> list[JudgeDecision]:
        first = await self.first.judge_batch(pairs)
        unsure = {d.key for d in first if d.match is None or d.confidence < self.threshold}
        second = {}
        if unsure:
            again = [p for p in pairs if p.key in unsure]
            second = {d.key: d for d in await self.second.judge_batch(again)}
        out = []
        for d in first:
            e = second.get(d.key)
            if e is not None and e.match is not None:
                e.escalated_from = {
                    "match": d.match,
                    "confidence": d.confidence,
                    "reasoning": d.reasoning,
                    "call": d.call,
                }
                out.append(e)
            else:
                out.append(d)
        self._sum_usage()
        return out
