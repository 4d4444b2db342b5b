"""The judge protocol: a list of pair contexts in, one decision per pair out.

Judges are async and batched so that LLM judges (many pairs per prompt, several prompts in flight) fit the same
shape as the simulated one. `run_judge` drives any judge: it splits pairs into batches, keeps at most
`concurrency` calls in flight, and hands every finished batch to `on_batch` before more results are awaited, so
the caller can persist answers as they arrive (a killed run loses nothing already received).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

PairKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class PairContext:
    """What a judge sees of one pair. `match_probability` is None unless settings show the score."""

    key: PairKey
    left: dict
    right: dict
    reason: str  # sample | band | conflict
    match_probability: float | None = None

    @property
    def pair_id(self) -> str:
        return f"{self.key[0]}:{self.key[1]}|{self.key[2]}:{self.key[3]}"


@dataclass
class JudgeDecision:
    """One answer. `match` is None when the judge could not decide (then needs_review is True)."""

    key: PairKey
    match: bool | None
    confidence: float
    reasoning: str
    needs_review: bool = False


@dataclass
class JudgeUsage:
    calls: int = 0
    pairs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    failed_calls: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class Judge(ABC):
    """Base class of judges. Subclasses set `name` (the label source), `simulated`, and implement judge_batch."""

    name: str = "judge"
    simulated: bool = False

    def __init__(self) -> None:
        self.usage = JudgeUsage()

    @property
    def method(self) -> dict:
        """What produced the answers (kind, model, prompt version): recorded with every label."""
        return {"kind": self.name, "simulated": self.simulated}

    @abstractmethod
    async def judge_batch(self, pairs: Sequence[PairContext]) -> list[JudgeDecision]:
        """Decide every pair of one batch (one call to the underlying service)."""


def run_judge(
    judge: Judge,
    pairs: Sequence[PairContext],
    batch_size: int,
    concurrency: int,
    on_batch: Callable[[list[JudgeDecision]], None],
    on_progress: Callable[[int], None] | None = None,
) -> list[JudgeDecision]:
    """Judge `pairs` in batches with bounded concurrency; `on_batch` runs as each batch completes."""
    if not pairs:
        return []
    batches = [list(pairs[i : i + batch_size]) for i in range(0, len(pairs), batch_size)]

    async def _run() -> list[JudgeDecision]:
        gate = asyncio.Semaphore(concurrency)
        results: list[JudgeDecision] = []

        async def one(batch: list[PairContext]) -> None:
            async with gate:
                decisions = await judge.judge_batch(batch)
            asked = {p.key for p in batch}
            if {d.key for d in decisions} != asked or len(decisions) != len(batch):
                raise RuntimeError(f"judge {judge.name} returned decisions that do not match the pairs asked")
            on_batch(decisions)  # persist before anything else is awaited
            results.extend(decisions)
            if on_progress:
                on_progress(len(batch))

        await asyncio.gather(*(one(b) for b in batches))
        return results

    return asyncio.run(_run())

