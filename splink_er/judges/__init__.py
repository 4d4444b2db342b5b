"""Judges decide pairs: the simulated truth judge here; LLM judges plug into the same protocol."""

from .base import Judge, JudgeDecision, JudgeUsage, PairContext, run_judge
from .truth import TruthJudge

__all__ = ["Judge", "JudgeDecision", "JudgeUsage", "PairContext", "TruthJudge", "run_judge"]
