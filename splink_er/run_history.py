"""The runs a job has made: their ids, when, what judged them, and which one the output directory holds.

A run id is what `judge.run` (replay one run's answers), `decisions diff --run-a/--run-b` and the label store's
`run_id` field refer to. They live in the decision log (every run of a job appends to it) and in the output
directory's run.json (the run published there, the last to finish). `runs` puts them side by side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from .decision_log import lines_by_run
from .errors import PreviousRunMissing
from .outputs import RunDirectory


def runs(settings) -> dict:
    """{"output_dir", "published": {run_id, state, detail}, "decision_log", "runs": [one dict per run]}; runs
    oldest first, as the decision log holds them, with the published run added if the log lacks it."""
    out = RunDirectory(settings.output_path)
    published = _published(out)
    log = Path(settings.decision_log_path)
    history = []
    for run_id, lines in (lines_by_run(log, ("judge", "final")) if log.exists() else {}).items():
        judged = [x for x in lines if x["type"] == "judge"]
        finals = [x for x in lines if x["type"] == "final"]
        methods = sorted({f"{x['method'].get('kind')} {x['method'].get('model') or ''}".strip() for x in judged})
        history.append(
            {
                "run_id": run_id,
                "started": min(x["time"] for x in lines),
                "judge": ", ".join(methods) or "-",
                "simulated": any(x["method"].get("simulated") for x in judged),
                "answers": sum(not x["cached"] for x in judged),
                "reused": sum(bool(x["cached"]) for x in judged),
                "final_decisions": finals[-1]["pairs"] if finals else None,
                "published": run_id == published.get("run_id"),
            }
        )
    if published.get("run_id") and not any(h["published"] for h in history):
        history.append({"run_id": published["run_id"], "started": published.get("started"), "published": True})
    return {"output_dir": str(out.path), "decision_log": str(log), "published": published, "runs": history}


def _published(out: RunDirectory) -> dict:
    """The run the output directory holds, and whether readers will accept it."""
    try:
        record = out.complete_run_record()
    except PreviousRunMissing as e:
        return {"state": "incomplete" if (out / RunDirectory.decisions).exists() else "none", "detail": str(e)}
    return {
        "run_id": record.get("run_id"),
        "state": "complete",
        "started": _started(record.get("run_id", "")),
        "f1": (record.get("metrics") or {}).get("f1"),
        "final_matches": record.get("final_matches"),
    }


def _started(run_id: str) -> str | None:
    """A run id begins with its start time (UTC), as session.new_run_id writes it."""
    try:
        return datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).isoformat()
    except ValueError:
        return None
