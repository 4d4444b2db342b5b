"""Judges decide pairs. base: the protocol; truth: SIMULATED; gemini / openai_compat: LLM judges on llm.py;
escalation: a second judge for unsure answers; replay: answers from a decision log; factory: from settings."""

from ..errors import JudgeFatalError
from ..pairs import JudgeDecision, PairContext
from .base import Judge, JudgeUsage, run_judge
from .truth import TruthJudge

__all__ = ["Judge", "JudgeDecision", "JudgeFatalError", "JudgeUsage", "PairContext", "TruthJudge", "run_judge"]
