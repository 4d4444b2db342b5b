"""Replay judge: answers only from a decision log, never calls a model.

It reproduces a finished run with no network: each pair gets the answer that run logged for it (including
"needs review" when the judge could not decide). A pair the log has no answer for, or whose records changed
since, stops the run with an error that says so: replay never guesses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import JudgeFatalError
from ..pairs import JudgeDecision, PairContext
from .base import Judge


class ReplayJudge(Judge):
    def __init__(self, answers: dict, run_id: str, log_path: str | Path = "the decision log") -> None:
        """`answers`: pair key -> the judge line a run logged for it (`decision_log.judge_answers` reads them)."""
        super().__init__()
        self.log_path = Path(log_path)
        self.run_id, self.answers = run_id, answers
        methods = {r["method_id"]: r["method"] for r in self.answers.values()}
        self._method = next(iter(methods.values())) if len(methods) == 1 else {"kind": "mixed", "methods": methods}
        names = {r.get("judge") for r in self.answers.values()}
        self.name = names.pop() if len(names) == 1 else "replay"  # label source as in the replayed run
        self.simulated = any(m.get("simulated") for m in methods.values())

    @property
    def method(self) -> dict:
        return self._method  # the replayed answers keep the method that produced them

    async def judge_batch(self, pairs: Sequence[PairContext]) -> list[JudgeDecision]:
        out = []
        for p in pairs:
            rec = self.answers.get(p.key)
            if rec is None:
                raise JudgeFatalError(
                    f"replay: pair {p.pair_id} has no answer in run {self.run_id} of "
                    f"{self.log_path}; replay never calls a model (use judge.kind gemini or "
                    "openai to answer new pairs)"
                )
            if rec["input_hash"] != p.input_hash:
                raise JudgeFatalError(
                    f"replay: the records of pair {p.pair_id} differ from what run {self.run_id} "
                    "showed its judge (input data or judge.redact/show_score changed)"
                )
            self.usage.pairs += 1
            out.append(
                JudgeDecision(
                    p.key,
                    rec["match"],
                    rec["confidence"],
                    rec["reasoning"],
                    needs_review=rec["needs_review"],
                    call={**(rec.get("call") or {}), "replayed_from_run": self.run_id},
                    escalated_from=rec.get("escalated_from"),
                )
            )
        return out
