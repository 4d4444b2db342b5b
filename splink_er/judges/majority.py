"""Majority over repeated asks: each pair is asked `judge.repeats` times and the majority answer is the label.

A judge that errs at random (sampling temperature above 0, or several models behind one endpoint) is wrong by
majority far less often than once: with 10% independent errors, 2 of 3 asks wrong happens 2.8% of the time.
Errors a judge makes on purpose, the same way every time, do not vote away; escalation to a stronger model is the
remedy there. Asks that disagree are counted (`usage.split_votes`) and every vote is in the decision log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, fields

from ..pairs import JudgeDecision, PairContext
from .base import Judge, JudgeUsage


class MajorityJudge(Judge):
    def __init__(self, askers: Sequence[Judge]) -> None:
        """`askers`: one judge per ask (the same instance repeated for an LLM, whose calls are independent; for
        the SIMULATED truth judge, instances whose errors are seeded apart)."""
        super().__init__()
        self.askers = list(askers)
        self.name, self.simulated = self.askers[0].name, self.askers[0].simulated
        self.split_votes = 0

    @property
    def parts(self) -> list[Judge]:
        return list({id(j): j for j in self.askers}.values())

    @property
    def method(self) -> dict:
        return {
            "kind": "majority",
            "repeats": len(self.askers),
            "judge": self.askers[0].method,
            "simulated": self.simulated,
        }

    def _sum_usage(self) -> None:
        parts = [asdict(j.usage) for j in self.parts]
        total = {f.name: sum(p[f.name] for p in parts) for f in fields(JudgeUsage) if f.name != "tokens_estimated"}
        total["tokens_estimated"] = any(p["tokens_estimated"] for p in parts)
        total["pairs"] = parts[0]["pairs"] // (len(self.askers) if len(self.parts) == 1 else 1)  # pairs, not asks
        total["split_votes"] = self.split_votes
        self.usage = JudgeUsage(**total)

    async def judge_batch(self, pairs: Sequence[PairContext]) -> list[JudgeDecision]:
        asks = await asyncio.gather(*(j.judge_batch(pairs) for j in self.askers))
        by_key = [{d.key: d for d in answers} for answers in asks]
        out = []
        for p in pairs:
            answers = [a[p.key] for a in by_key]
            yes = [d for d in answers if d.match is True]
            no = [d for d in answers if d.match is False]
            votes = [{"match": d.match, "confidence": d.confidence, "reasoning": d.reasoning} for d in answers]
            if yes and no:
                self.split_votes += 1
            if len(yes) == len(no):  # a tie (some asks undecided): nobody's answer, so it goes to review
                out.append(
                    JudgeDecision(
                        p.key, None, 0.0, f"asks tied {len(yes)}-{len(no)}", True, answers[0].call, votes=votes
                    )
                )
                continue
            won = yes if len(yes) > len(no) else no
            best = max(won, key=lambda d: d.confidence)
            share = len(won) / len(answers)
            out.append(
                JudgeDecision(
                    p.key,
                    best.match,
                    round(best.confidence * share, 4),
                    f"{best.reasoning} [{len(won)} of {len(answers)} asks agreed]",
                    False,
                    best.call,
                    best.escalated_from,
                    votes=votes,
                )
            )
        self._sum_usage()
        return out
