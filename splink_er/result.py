"""The result of a run: its run record, its output files, and what can be asked of a finished run (explain a
pair, a page of uncertain pairs, the review queue, a diff against another run).

A result returned by `run` keeps the finished job: explaining a pair scores it on the inputs already in DuckDB,
with no second load. A result opened from disk (`splink_er.open_run`) loads the inputs on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from . import explain as explain_mod
from . import review as review_mod
from .decision_log import diff as diff_logs
from .outputs import RunDirectory


@dataclass
class RunResult:
    """What a run produced: its run record, and its output files read on first use.

    Example:
        >>> import splink_er
        >>> r = splink_er.run(splink_er.demo_settings_path(), quiet=True, overrides=[
        ...     "output_dir=/tmp/se_result", "labels.path=/tmp/se_result/labels.jsonl"])
        >>> r.decisions is r.decisions   # read once, then kept
        True
        >>> pair = r.decisions.query("decided_by == 'judge'").iloc[0]
        >>> e = r.explain(pair.unique_id_l, pair.unique_id_r)   # Splink's waterfall beside the decision
        >>> e["decision"]["decided_by"], e["png"].exists()
        ('judge', True)
    """

    output_dir: Path
    run: dict
    # The finished job (inputs still in DuckDB) and how to load one again; set by `run` and `open_run`.
    job: object | None = field(default=None, repr=False, compare=False)
    reopen: Callable[[], object] | None = field(default=None, repr=False, compare=False)

    @property
    def metrics(self) -> dict:
        return self.run.get("metrics", {})

    @property
    def directory(self) -> RunDirectory:
        return RunDirectory(Path(self.output_dir))

    def _check_complete(self) -> None:
        # Every file the run's manifest lists is the one it wrote: never a mix of two runs (outputs.py). Once.
        if not self.__dict__.get("_complete"):
            self.directory.complete_run_record()
            self.__dict__["_complete"] = True

    def _read(self, name: str) -> pd.DataFrame:
        self._check_complete()
        return pd.read_parquet(self.directory.require(name))

    @cached_property
    def decisions(self) -> pd.DataFrame:
        return self._read(RunDirectory.decisions)

    @cached_property
    def clusters(self) -> pd.DataFrame:
        return self._read(RunDirectory.clusters)

    @cached_property
    def entity_changes(self) -> pd.DataFrame:
        """What this run changed in the entity store (created, merged, split, records added and removed)."""
        return self._read(RunDirectory.entity_changes)

    def _registry(self, name: str) -> pd.DataFrame:
        if not (self.directory / name).exists():
            raise FileNotFoundError(f"{self.directory / name}: this run has no canonical layer (set registry.fields)")
        return self._read(name)

    @cached_property
    def entities(self) -> pd.DataFrame:
        """One row per entity: size, sources, canonical values (with `registry:` settings)."""
        return self._registry(RunDirectory.entities)

    @cached_property
    def aliases(self) -> pd.DataFrame:
        """Every distinct value of the alias fields per entity, with sources and counts (with `registry:`)."""
        return self._registry(RunDirectory.aliases)

    @cached_property
    def chains(self) -> pd.DataFrame:
        """One row per entity and registry.chain.keys value, with counts and sums (with `registry.chain`)."""
        return self._registry(RunDirectory.chains)

    @cached_property
    def matches(self) -> pd.DataFrame:
        """Final matches with entity ids and the kept columns of both records."""
        return self._read(RunDirectory.matches)

    # ---- questions to a finished run ----------------------------------------------------------------
    def _job_for_outputs(self, *needs: str):
        self._check_complete()
        for name in needs:
            self.directory.require(name)
        if not _reusable(self.job):
            if self.reopen is None:
                raise ValueError("this RunResult has no job to explain with; open it with splink_er.open_run")
            self.job = self.reopen()
        return self.job

    def explain(self, id_l: str, id_r: str, *, source_l: str | None = None, source_r: str | None = None) -> dict:
        """Score one pair with the run's final model and write its explanation (Splink waterfall PNG and an
        offline HTML page beside the decision and the judge's reasoning) under `explain/`."""
        job = self._job_for_outputs(RunDirectory.model)
        return explain_mod.explain_pair(job, id_l, id_r, source_l=source_l, source_r=source_r)

    def explain_pairs(self, which: str = "uncertain", n: int = 10) -> Path:
        """One page explaining the `n` most uncertain pairs (`which="uncertain"`) or needs_review pairs."""
        job = self._job_for_outputs(RunDirectory.model, RunDirectory.decisions)
        return explain_mod.explain_batch(job, which=which, n=n)

    def review(self, limit: int | None = None) -> dict:
        """Write the review queue (needs_review and conflict pairs, records side by side) as CSV and HTML."""
        return review_mod.export(self._job_for_outputs(RunDirectory.decisions), limit=limit)

    def diff(self, other: RunResult) -> pd.DataFrame:
        """Pairs whose final decision differs between this run and `other` (or that only one decided)."""
        return diff_logs(self.decision_log, other.decision_log, self.run["run_id"], other.run["run_id"])

    @property
    def decision_log(self) -> Path:
        return Path(self.run["judge"]["decision_log"])

    def close(self) -> None:
        """Release the finished job's connection and in-memory inputs (a later `explain` loads them again)."""
        if self.job is not None:
            self.job.con.close()
            self.job = None


def _reusable(job) -> bool:
    # The job's own DuckDB tables serve when they are there: not after Spark (its inputs live in Spark) nor with
    # parquet materialisation or a memory limit (their scratch directory is deleted at the end of a run).
    if job is None:
        return False
    e = job.settings.engine
    return e.kind == "duckdb" and e.materialisation == "table" and not e.memory_limit
