"""The run directory: every output file's name, the "run `splink-er run` first" checks, and the writers.

`RunDirectory` is the only place that knows a file name; commands that read a finished run (retrain, explain,
review) ask it for a path and get a `PreviousRunMissing` error that says what to run when the file is absent.

A run is published whole: its outputs are written into a staging folder inside the output directory, then moved
in, and `run.json` is written last with a manifest (every file's size and SHA-256). A run killed before that
leaves the previous run as it was; killed while moving files in, it leaves no run.json, and readers refuse the
directory (as they refuse a file that is not the one the manifest lists) instead of reading a mix of two runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import PreviousRunMissing, SettingsError
from .pairs import PAIR_KEY
from .sql import quote_ident, sql_literal


class RunDirectory:
    """The files of one run's output directory."""

    decisions = "decisions.parquet"
    clusters = "clusters.parquet"
    entity_changes = "entity_changes.parquet"
    entities = "entities.parquet"
    aliases = "aliases.parquet"
    chains = "chains.parquet"
    records = "records.parquet"
    records_csv = "records.csv"
    verification = "verification.json"
    matches = "matches.parquet"
    gold = "gold.parquet"
    model = "model.json"
    bootstrap_model = "model_bootstrap.json"
    samples = "samples.parquet"
    labels_snapshot = "labels_snapshot.jsonl"
    run_record = "run.json"
    report = "report.html"
    explain_dir = "explain"
    review_dir = "review"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def require(self, name: str) -> Path:
        """The path of a file a finished run wrote; PreviousRunMissing, saying what to run, if it is absent."""
        p = self.path / name
        if not p.exists():
            raise PreviousRunMissing(f"{p} not found: run `splink-er run` with these settings (and --out) first.")
        return p

    def read_run_record(self) -> dict:
        p = self.path / self.run_record
        return json.loads(p.read_text()) if p.exists() else {}

    # ---- publishing a run whole ---------------------------------------------------------------------
    def staging(self, run_id: str) -> RunDirectory:
        """A fresh folder inside this directory (same file system, so moving files in is a rename) for a run's
        outputs; staging folders that killed runs left behind are removed."""
        for old in self.path.glob(f"{STAGING}*"):
            shutil.rmtree(old, ignore_errors=True)
        staged = RunDirectory(self.path / f"{STAGING}{run_id}")
        staged.path.mkdir(parents=True)
        return staged

    def publish(self, staged: RunDirectory, record: dict) -> dict:
        """Move the staged files in, then write run.json with the manifest; returns the record as written."""
        manifest = {p.name: _fingerprint(p) for p in sorted(staged.path.iterdir()) if p.is_file()}
        before = set(self.read_run_record().get("manifest") or {})
        (self.path / self.run_record).unlink(missing_ok=True)  # from here until the end: an incomplete run
        for name in before - set(manifest) - {self.run_record}:  # the last run's files this one did not write
            (self.path / name).unlink(missing_ok=True)
        for name in manifest:
            (staged.path / name).replace(self.path / name)
        record = record | {"manifest": manifest}
        self.write_json(self.run_record, record)
        shutil.rmtree(staged.path, ignore_errors=True)
        return record

    def complete_run_record(self) -> dict:
        """run.json, once every file its manifest lists is checked to be the one that run wrote;
        PreviousRunMissing, saying what happened and what to run, otherwise."""
        record_path = self.path / self.run_record
        if not record_path.exists():
            leftovers = [n for n in (self.decisions, self.clusters, self.model) if (self.path / n).exists()]
            if leftovers:
                raise PreviousRunMissing(
                    f"{self.path} holds an incomplete run: {', '.join(leftovers)} but no {self.run_record} (a run "
                    "was stopped while publishing its outputs); run `splink-er run` again."
                )
            raise PreviousRunMissing(
                f"{record_path} not found: run `splink-er run` with these settings (and --out) first."
            )
        record = json.loads(record_path.read_text())
        for name, expected in (record.get("manifest") or {}).items():
            path = self.path / name
            if not path.exists() or _fingerprint(path) != expected:
                raise PreviousRunMissing(
                    f"{path} is not the file run {record.get('run_id')} wrote ({'missing' if not path.exists() else 'changed since'}): "
                    f"the directory mixes runs, or a file was edited; run `splink-er run` again (or restore {name})."
                )
        return record

    def write_json(self, name: str, data: dict) -> None:
        """run.json and the models; written beside and renamed into place: a killed run never leaves half a file."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{name}.part"
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self.path / name)

    def copy_query(self, con, query: str, name: str) -> Path:
        """COPY a query's result to a Parquet file of this directory, atomically (written beside, renamed)."""
        self.path.mkdir(parents=True, exist_ok=True)
        path, part = self.path / name, self.path / f".{name}.part"
        con.execute(f"COPY ({query}) TO {sql_literal(part)} (FORMAT parquet)")
        part.replace(path)
        return path


STAGING = ".staging-"

# What each file a run may write is, for people reading an output directory for the first time.
OUTPUT_GUIDE = {
    RunDirectory.report: "the run in charts: decisions, weights, rounds, judge cost, accuracy (open in a browser)",
    RunDirectory.matches: "the accepted pairs, with both records side by side and the cluster id",
    RunDirectory.gold: "one row per record of the primary source: its best match or none, how and how surely",
    RunDirectory.decisions: "every blocked pair: its score, how it was decided (decided_by), final_match, reasoning",
    RunDirectory.clusters: "every record with its entity id (stable from run to run): records of one entity share it",
    RunDirectory.entity_changes: "what this run changed in the entity store: created, merged, split, records moved",
    RunDirectory.entities: "one row per entity: its size, sources and canonical values (registry.fields)",
    RunDirectory.aliases: "every distinct value of each alias field per entity, with its sources and count",
    RunDirectory.chains: "one row per entity and registry.chain.keys value, with record counts and sums",
    RunDirectory.records: "every input record with its entity id and the entity's canonical values",
    RunDirectory.records_csv: "records.parquet as CSV, for tools that read CSV",
    RunDirectory.verification: "entity checks: entities split because they held records decided different, rule flags",
    RunDirectory.model: "the trained Splink model (m and u per comparison level, prior): Splink loads it as is",
    RunDirectory.bootstrap_model: "the model before any label (prior, u sampling, EM)",
    RunDirectory.samples: "the pairs sampled for the judge each round, with their stratum and inclusion chance",
    RunDirectory.labels_snapshot: "the labels this run trained on, as they were when it started",
    RunDirectory.run_record: "what went in, what was decided how, cost, accuracy, timings; lists every file's hash",
    "decision_log.jsonl": "every judge answer with what the judge saw, its reasoning, tokens and cost",
}


def output_guide(path: Path, manifest: dict) -> list[list[str]]:
    """(file, what it is) for the files a run wrote, run.json and the decision log included."""
    names = sorted(manifest) + [RunDirectory.run_record]
    names += ["decision_log.jsonl"] if (path / "decision_log.jsonl").exists() else []
    return [[n, OUTPUT_GUIDE.get(n, "")] for n in names]


def check_writable_paths(settings) -> None:
    """The output directory and the label store can be written, as the settings name them: checked before any
    input is read, so a wrong `--out` costs nothing."""
    out, store = settings.output_path, settings.label_store_path
    if out.exists() and not out.is_dir():
        raise SettingsError(f"output_dir: {out} is a file, not a directory; give a directory (--out DIR)")
    if store.is_dir():
        raise SettingsError(f"labels.path: {store} is a directory; give a file in it, e.g. {store / 'labels.jsonl'}")
    for what, path in (("output_dir", out), ("labels.path", store.parent)):
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise SettingsError(f"{what}: {existing} cannot be written by this user; choose a writable place")


def _fingerprint(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def write_decisions(con, decisions, blocked: int, run_dir: RunDirectory, outputs) -> tuple[Path, bool]:
    """Write decisions.parquet in one pass over the routed pairs; returns its path and whether model rejects are
    in it (`outputs.model_rejects`: auto writes them up to `outputs.auto_rows_limit` blocked pairs).
    Written beside and renamed into place: a killed run never leaves half a file, and the old file's inode (which
    the decision log may link to) is never rewritten. Not sorted: at 24M pairs sorting cost 18 s, a quarter of the
    run; rows come in engine order, so compare runs by pair key or `splink-er decisions diff`."""
    mode = outputs.model_rejects
    if mode == "auto":
        mode = "rows" if blocked <= outputs.auto_rows_limit else "counts"
    rejects_written = mode == "rows"
    where = "" if rejects_written else "WHERE decided_by <> 'model_reject'"
    path = run_dir.copy_query(con, f"SELECT * FROM {decisions} {where}", RunDirectory.decisions)
    return path, rejects_written


def matches_sql(decisions_kept, clusters, tables: dict[str, str], kept: list[str]) -> str:
    """The final matches, each with its entity and the `columns_to_keep` of both records (e.g. a result id and
    winner flag carried next to the CRM's candidate id), so users need no join of their own."""
    records = " UNION ALL BY NAME ".join(
        f"SELECT source_dataset, unique_id{''.join(', ' + quote_ident(c) for c in kept)} FROM {t}"
        for t in tables.values()
    )
    sides = "".join(f", {side}.{quote_ident(c)} AS {quote_ident(c + '_' + side)}" for c in kept for side in "lr")
    return f"""
        WITH records AS ({records})
        SELECT c.entity_id, {", ".join("d." + k for k in PAIR_KEY)}, d.match_probability, d.decided_by,
            d.judge_confidence, d.judge_reasoning{sides}
        FROM {decisions_kept} d
        JOIN records l ON l.source_dataset = d.source_dataset_l AND l.unique_id = d.unique_id_l
        JOIN records r ON r.source_dataset = d.source_dataset_r AND r.unique_id = d.unique_id_r
        JOIN {clusters} c ON c.source_dataset = d.source_dataset_l AND c.unique_id = d.unique_id_l
        WHERE d.final_match
        ORDER BY c.entity_id, {", ".join("d." + k for k in PAIR_KEY)}"""


@dataclass
class DecisionCounts:
    """Pairs per decided_by, the number of final matches, and pairs per (match weight bin, decided_by)."""

    decided_by: dict[str, int]
    final_matches: int
    weight_histogram: list[dict]

    @classmethod
    def of(cls, decisions) -> DecisionCounts:
        """One pass over every blocked pair, written or not."""
        rows = decisions.con.execute(
            "SELECT floor(greatest(least(match_weight, 40), -40)) AS weight, decided_by, count(*), "
            f"count(*) FILTER (final_match) FROM {decisions} GROUP BY ALL ORDER BY 1, 2"
        ).fetchall()
        decided: dict[str, int] = {}
        for _, d, n, _ in rows:
            decided[d] = decided.get(d, 0) + n
        histogram = [{"weight": w, "decided_by": d, "pairs": n} for w, d, n, _ in rows]
        return cls(decided, sum(m for *_, m in rows), histogram)


@dataclass
class RunRecord:
    """What run.json holds: what went in, what was decided how, what the judge cost, how accurate, how long."""

    name: str
    run_id: str
    link_type: str
    input_sizes: dict
    input_hashes: dict
    possible_pairs: int
    blocked_pairs: int
    final_matches: int
    decided_by: dict
    model_rejects_written: bool
    rounds: list
    training: list
    judge: dict
    entities: int
    metrics: dict
    audit: dict
    blocking: dict
    wall_seconds: dict
    versions: dict
    settings_hash: str
    settings: dict
    label_store: str
    outputs: str
    weight_histogram: list = field(default_factory=list)
    entity_changes: dict = field(default_factory=dict)
    frozen_model: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)
