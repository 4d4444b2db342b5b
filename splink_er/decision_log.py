"""The decision log: an append-only JSONL file with every decision of every run.

- `judge` lines: a judge's answer (or why there is none), with exactly what the judge was shown, the method
  (kind, model, prompt version), tokens, cost, latency and attempts; `cached: true` when a stored answer of
  the same method for the same input was reused instead of paying for it again.
- `final` lines (one per run, written at its end) point to `<log>.final/<run_id>.parquet`: how each blocked pair
  was decided (model accept or reject, gate, judge, human, needs_review) with its match probability. Parquet
  written by DuckDB, because a run has millions of such rows (10.8M pairs as JSON lines took 40 s and 2 GB).
Lines are flushed and fsynced per batch, so a killed run keeps what it logged. The `replay` judge answers from
the `judge` lines; `splink-er decisions diff` compares the final decisions of two logs.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from . import jsonl
from .errors import InputError
from .pairs import PAIR_KEY, JudgeDecision, PairContext


def _now() -> str:
    return datetime.now(UTC).isoformat()


class DecisionLog:
    def __init__(self, path: str | Path, run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id

    def append(self, records: list[dict]) -> None:
        jsonl.append(self.path, records)

    def judge_record(
        self,
        ctx: PairContext,
        d: JudgeDecision,
        judge_name: str,
        method: dict,
        method_id: str,
        round_no: int,
        cached_from: str | None = None,
    ) -> dict:
        return {
            "type": "judge",
            "run_id": self.run_id,
            "time": _now(),
            "round": round_no,
            "reason": ctx.reason,
            "judge": judge_name,
            **dict(zip(PAIR_KEY, ctx.key)),
            "input": {
                "left": ctx.left,
                "right": ctx.right,
                "match_probability": ctx.match_probability,
                "group": ctx.group,
            },
            "input_hash": ctx.input_hash,
            "method": method,
            "method_id": method_id,
            "cached": cached_from is not None,
            "cached_from_run": cached_from,
            "match": d.match,
            "confidence": d.confidence,
            "reasoning": d.reasoning,
            "needs_review": d.needs_review,
            "call": d.call,
            "escalated_from": d.escalated_from,
            "votes": d.votes,
        }

    @property
    def final_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".final")

    def append_final(self, decisions_parquet: Path, pairs: int, model_rejects_written: bool = True) -> None:
        """Keep this run's decisions file, then one `final` line pointing to it. A hard link where the file system
        allows (a 24M-pair file copied in seconds; linked in no time), else a byte copy. Safe because runs never
        rewrite decisions.parquet in place: they write a new file and rename it over the old one."""
        self.final_dir.mkdir(parents=True, exist_ok=True)
        run_id = self.run_id.replace("'", "").replace("/", "_")
        target = self.final_dir / f"{run_id}.parquet"
        part = self.final_dir / f".{run_id}.parquet.part"
        part.unlink(missing_ok=True)
        try:
            os.link(decisions_parquet, part)
        except OSError:  # another file system, or links not supported
            shutil.copyfile(decisions_parquet, part)
        os.replace(part, target)  # a killed run leaves no half file under the final name
        self.append(
            [
                {
                    "type": "final",
                    "run_id": self.run_id,
                    "time": _now(),
                    "pairs": pairs,
                    "model_rejects_written": model_rejects_written,
                    "file": str(target.relative_to(self.path.parent)),
                }
            ]
        )


def read_log(path: str | Path, types: tuple[str, ...] = ("judge", "final")) -> Iterator[dict]:
    """Lines of a decision log of the given types; a torn last line (killed mid-write) is skipped."""
    return (rec for rec in jsonl.read(path) if rec.get("type") in types)


def lines_by_run(path: str | Path, types: tuple[str, ...]) -> dict[str, list[dict]]:
    """Lines of the given types grouped by run_id, runs in the order they appear in the log."""
    runs: dict[str, list[dict]] = {}
    with warnings.catch_warnings(record=True) as unreadable:
        warnings.simplefilter("always")
        for rec in read_log(path, types):
            runs.setdefault(rec["run_id"], []).append(rec)
    if unreadable and not runs:
        raise InputError(f"{path} is not a decision log: none of its lines is a JSON record (decision_log.jsonl is)")
    for w in unreadable:  # a log with some torn lines is still read, and says so
        warnings.warn(w.message, stacklevel=2)
    return runs


def _one_run(path: str | Path, kind: str, what: str, run_id: str | None) -> tuple[str, list[dict]]:
    """The `kind` lines of run `run_id` (default: the latest run that has any), or a clear error."""
    runs = lines_by_run(path, (kind,))
    if not runs:
        raise InputError(f"{path} has no {what}")
    rid = run_id or list(runs)[-1]
    if rid not in runs:
        raise InputError(f"{path} has no {what} of run {rid!r}; runs with them: {', '.join(runs)}")
    return rid, runs[rid]


def judge_answers(path: str | Path, run_id: str | None = None) -> tuple[str, dict[tuple, dict]]:
    """The judge lines of one run (default: the latest run that has any): (run_id, pair key -> latest line)."""
    rid, lines = _one_run(path, "judge", "judge answers", run_id)
    return rid, {tuple(str(rec[k]) for k in PAIR_KEY): rec for rec in lines}


def final_table(path: str | Path, run_id: str | None = None) -> pd.DataFrame:
    """Every final decision of one run (default: the latest run with final decisions), as logged."""
    rid, lines = _one_run(path, "final", "final decisions (was decision_log.final_decisions off?)", run_id)
    df = pd.read_parquet(Path(path).parent / lines[-1]["file"])
    df.attrs["run_id"] = rid
    # Older logs have no flag: they always wrote every pair.
    df.attrs["model_rejects_written"] = lines[-1].get("model_rejects_written", True)
    return df


def final_decisions(path: str | Path, run_id: str | None = None) -> pd.DataFrame:
    """The final decision per pair of one run in a log (default: the latest run with final decisions). A log
    without final decisions falls back to the judge lines (match as the decision)."""
    runs = lines_by_run(path, ("judge", "final"))
    finals = [r for r, recs in runs.items() if any(x["type"] == "final" for x in recs)]
    rid = run_id or (finals[-1] if finals else (list(runs)[-1] if runs else None))
    if rid is None or rid not in runs:
        raise InputError(f"{path}: no run {run_id!r}" if run_id else f"{path} has no decisions")
    rejects_written = True
    if rid in finals:
        df = final_table(path, rid)
        rejects_written = df.attrs["model_rejects_written"]
        df = df.assign(**{k: df[k].astype(str) for k in PAIR_KEY}, match=df["final_match"])
    else:
        df = pd.DataFrame(
            [
                {**{k: str(x[k]) for k in PAIR_KEY}, "decided_by": "judge", "match": x["match"]}
                for x in runs[rid]
                if x["type"] == "judge"
            ],
            columns=PAIR_KEY + ["decided_by", "match"],
        )
    df = df[PAIR_KEY + ["decided_by", "match"]].drop_duplicates(PAIR_KEY, keep="last").reset_index(drop=True)
    df.attrs.update(run_id=rid, model_rejects_written=rejects_written)
    return df


def compare_decisions(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """How two runs' decisions (decisions.parquet frames) differ pair by pair: whether they hold the same pairs,
    and if so how many final matches and decided_by values differ and the largest probability difference
    (e.g. the same job on DuckDB and on Spark)."""
    a, b = (d.set_index(PAIR_KEY).sort_index() for d in (a, b))
    if not a.index.equals(b.index):
        return {"same_pairs": False}
    return {
        "same_pairs": True,
        "final_match_differs": int((a["final_match"] != b["final_match"]).sum()),
        "decided_by_differs": int((a["decided_by"] != b["decided_by"]).sum()),
        "max_abs_probability_difference": float((a["match_probability"] - b["match_probability"]).abs().max()),
    }


def diff(log_a: str | Path, log_b: str | Path, run_a: str | None = None, run_b: str | None = None) -> pd.DataFrame:
    """Pairs whose decision differs between two logs (or that only one of them decided). A run that wrote model
    rejects as counts (outputs.model_rejects) decided every pair it does not list as a model reject: no match."""
    a, b = final_decisions(log_a, run_a), final_decisions(log_b, run_b)
    m = a.merge(b, on=PAIR_KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    for side, run in (("a", a), ("b", b)):
        if not run.attrs["model_rejects_written"]:
            missing = m[f"match_{side}"].isna()
            m.loc[missing, f"decided_by_{side}"] = "model_reject (not written)"
            m.loc[missing, f"match_{side}"] = False
            m.loc[missing, "_merge"] = "both"
    changed = (m["_merge"] != "both") | (m["match_a"].astype("boolean") != m["match_b"].astype("boolean"))
    out = m[changed.fillna(True)].drop(columns="_merge").reset_index(drop=True)
    out.attrs.update(run_a=a.attrs["run_id"], run_b=b.attrs["run_id"], pairs_a=len(a), pairs_b=len(b))
    return out
