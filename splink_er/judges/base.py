"""The judge protocol: a list of pair contexts in, one decision per pair out.

Judges are async and batched so that LLM judges (many pairs per prompt, several prompts in flight) fit the same
shape as the simulated one. `run_judge` drives any judge: it splits pairs into batches, keeps at most
`concurrency` calls in flight, and hands every finished batch to `on_batch` before more results are awaited, so
the caller can persist answers as they arrive (a killed run loses nothing already received).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from ..pairs import JudgeDecision, PairContext


@dataclass
class JudgeUsage:
    calls: int = 0
    pairs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    failed_calls: int = 0
    reasked_pairs: int = 0
    escalated_pairs: int = 0
    split_votes: int = 0  # pairs whose repeated asks disagreed (judge.repeats)
    tokens_estimated: bool = False  # True for the simulated judge: tokens its prompts would have used

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

    @property
    def parts(self) -> list[Judge]:
        """The judges that actually answer (an escalating judge has two); their models, prices, cost meter."""
        return [self]

    @property
    def method_id(self) -> str:
        """Short hash of `method`: a stored answer is reused only by a judge with the same method_id."""
        return self.method_id_of(self.method)

    @staticmethod
    def method_id_of(method: dict) -> str:
        return hashlib.sha256(json.dumps(method, sort_keys=True).encode()).hexdigest()[:16]

    @abstractmethod
    async def judge_batch(self, pairs: Sequence[PairContext]) -> list[JudgeDecision]:
        """Decide every pair of one batch (one call to the underlying service)."""


def group_units(pairs: Sequence[PairContext]) -> list[list[PairContext]]:
    """Pairs as units to ask: a conflict group (pairs sharing `group`) is one unit, any other pair its own."""
    units: list[list[PairContext]] = []
    by_group: dict[str, list[PairContext]] = {}
    for p in pairs:
        if p.group is None:
            units.append([p])
        elif p.group in by_group:
            by_group[p.group].append(p)
        else:
            by_group[p.group] = [p]
            units.append(by_group[p.group])
    return units


def pack(units: Sequence, size: int, weight: Callable[[object], int] = len) -> list[list]:
    """Units into chunks of total weight at most `size`, in order; a unit is never split (a unit heavier than
    `size` gets a chunk of its own)."""
    chunks: list[list] = [[]]
    total = 0
    for unit in units:
        if chunks[-1] and total + weight(unit) > size:
            chunks.append([])
            total = 0
        chunks[-1].append(unit)
        total += weight(unit)
    return chunks


def make_batches(pairs: Sequence[PairContext], batch_size: int) -> list[list[PairContext]]:
    """Batches of at most `batch_size` pairs that keep each conflict group whole."""
    return [[p for unit in chunk for p in unit] for chunk in pack(group_units(pairs), batch_size)]


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
    batches = make_batches(pairs, batch_size)

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

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_run())
    # Called from a running event loop (Jupyter): run the calls on a worker thread with its own loop. This
    # thread waits, so `on_batch` never runs concurrently with the caller.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _run()).result()
