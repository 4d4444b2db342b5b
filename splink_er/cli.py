"""The `splink-er` command.

Exit codes scripts can rely on (one table, `EXIT_CODES`, from the error classes in errors.py): 0 success,
2 bad settings or usage, 3 bad input data, 4 missing previous run (retrain/explain before run), 5 judge unusable
(no API key, key rejected, replay log or answer missing), 6 a missing optional dependency (pyspark), 7 busy
(another run writes the same label store or output directory), 1 anything else, 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .errors import (
    Busy,
    DependencyMissing,
    InputError,
    JudgeError,
    JudgeFatalError,
    PreviousRunMissing,
    SettingsError,
    SplinkERError,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="""Entity resolution with Splink + a judge on the uncertain band.

**Examples**

* `splink-er demo`
* `splink-er run settings/febrl4.yaml --set judge.kind=truth --out runs/febrl4`
* `splink-er label settings/febrl4.yaml --pair rec-1-org rec-1-dup-0 --non-match`
* `splink-er retrain settings/febrl4.yaml --out runs/febrl4`
* `splink-er explain settings/febrl4.yaml --out runs/febrl4 --pair rec-1070-org rec-1070-dup-0`
* `splink-er run settings/febrl4.yaml --set judge.kind=gemini` (key in GEMINI_API_KEY)
* `splink-er run settings/febrl4.yaml --set judge.kind=replay` (no calls: answers from the log)
* `splink-er runs settings/febrl4.yaml --out runs/febrl4` (run ids, judges, answers)
* `splink-er resolve settings/febrl4.yaml new_records.csv` (MERGE / REVIEW / INSERT against the entity store)
* `splink-er serve settings/febrl4.yaml --port 8000` (the same over HTTP: POST /resolve)
* `splink-er decisions diff runs/a/decision_log.jsonl runs/b/decision_log.jsonl`
* `splink-er blocking suggest settings/fake_20000.yaml`
""",
)
err = Console(stderr=True)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        print(f"splink-er {version('splink_er')} (splink {version('splink')}, duckdb {version('duckdb')})")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the versions and exit.")
    ] = False,
) -> None:
    """Entity resolution with Splink + a judge on the uncertain band."""


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a settings key: dotted.key=value (repeatable); judge.kind=K also drops the judge keys K does not take.",
    ),
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output directory (default: settings output_dir).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")]
SourceLOpt = Annotated[str | None, typer.Option(help="Source of the left record (default: first source).")]
SourceROpt = Annotated[str | None, typer.Option(help="Source of the right record (default: last source).")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable summary on stdout (progress stays on stderr).")
]


def _summary(result) -> None:
    """The run's summary as one JSON object on stdout, for scripts and schedulers."""
    import json

    r = result.run
    keys = ("run_id", "outputs", "blocked_pairs", "final_matches", "entities", "decided_by", "metrics", "audit")
    summary = {k: r.get(k) for k in keys}
    j = r["judge"]
    summary["judge"] = {k: j.get(k) for k in ("kind", "simulated", "calls", "pairs_judged", "cost_usd")}
    print(json.dumps(summary, default=str))


def _stdout() -> Console:
    """A console for tables on stdout: the terminal's width, or wide when stdout is a pipe or a file (ids are
    copied from these tables and must not be cut)."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _overrides(sets: list[str] | None, out: Path | None) -> list[str]:
    return list(sets or []) + ([f"output_dir={out}"] if out else [])


# Error class -> exit code, as the classes carry it (errors.py): the table the README and the tests show.
EXIT_CODES = {
    cls: cls.exit_code
    for cls in (SettingsError, InputError, PreviousRunMissing, JudgeError, DependencyMissing, Busy, SplinkERError)
}


KEPT = ": answers received so far are in the label store; run again to continue"


def _guard(fn, *args, interrupted: str = "", **kwargs):
    """Run a command body, turning splink_er's errors into a message and the class's exit code (and Ctrl-C into
    130, with `interrupted` saying what is kept)."""
    try:
        return fn(*args, **kwargs)
    except SplinkERError as e:
        sep = "\n" if isinstance(e, SettingsError) else ": "
        tail = (
            "\nAnswers received before this are kept; run again to continue." if isinstance(e, JudgeFatalError) else ""
        )
        err.print(f"[red]{e.title}[/]{sep}{escape(str(e))}{tail}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:  # typer would exit 130 silently: say what is kept
        err.print(f"interrupted{interrupted}")
        raise typer.Exit(130) from None


@app.command()
def run(
    settings: Annotated[Path, typer.Argument(help="Settings YAML (see settings/).")],
    set_: SetOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Run the whole loop: bootstrap, sample, judge, train, score, route, judge the band, outputs.

    Example: `splink-er run settings/febrl4.yaml --set judge.kind=truth --out runs/febrl4`
    """
    from .job import run as run_job

    result = _guard(run_job, settings, overrides=_overrides(set_, out), quiet=quiet or json_, interrupted=KEPT)
    if json_:
        _summary(result)


@app.command()
def retrain(
    settings: Annotated[Path, typer.Argument(help="Settings YAML used for the run.")],
    judge_band: Annotated[
        bool,
        typer.Option("--judge-band", help="Also ask the judge about the band (within judge.max_pairs); off: no calls."),
    ] = False,
    set_: SetOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Retrain from the label store (e.g. after adding human labels), re-score, re-route, rewrite outputs.

    Example: `splink-er retrain settings/febrl4.yaml --out runs/febrl4`
    """
    from .job import retrain as retrain_job

    overrides = _overrides(set_, out)
    result = _guard(
        retrain_job, settings, overrides=overrides, quiet=quiet or json_, judge_band=judge_band, interrupted=KEPT
    )
    if json_:
        _summary(result)


@app.command()
def label(
    settings: Annotated[Path, typer.Argument(help="Settings YAML (names the label store).")],
    pair: Annotated[tuple[str, str], typer.Option("--pair", help="unique_id of the left and right record.")],
    match: Annotated[bool, typer.Option("--match/--non-match", help="Your decision.")],
    source_l: SourceLOpt = None,
    source_r: SourceROpt = None,
    note: Annotated[str, typer.Option(help="Why (kept with the label).")] = "",
    set_: SetOpt = None,
) -> None:
    """Add a human label to the label store; human labels beat judge labels. Then run `retrain`.

    Example: `splink-er label settings/febrl4.yaml --pair rec-1-org rec-1-dup-0 --non-match --note "checked"`
    """
    from .labels import LabelStore, make_label
    from .locks import writing
    from .settings import load_settings
    from .sources import check_records_exist

    def body():
        s = load_settings(settings, set_ or [])
        sl, sr = s.pair_sources(source_l, source_r)
        check_records_exist(s, [(sl, pair[0]), (sr, pair[1])])
        store = LabelStore(s.label_store_path)
        with writing(store.path, "label store", s.labels.wait_seconds):
            store.append(
                [make_label((sl, pair[0], sr, pair[1]), match, 1.0, "human", "human", reason="human", reasoning=note)]
            )
        err.print(
            f"human label stored in {store.path}: {sl}:{pair[0]} ~ {sr}:{pair[1]} -> {'match' if match else 'non-match'}"
        )

    _guard(body)


@app.command()
def explain(
    settings: Annotated[Path, typer.Argument(help="Settings YAML used for the run.")],
    pair: Annotated[
        tuple[str, str] | None, typer.Option("--pair", help="unique_id of the left and right record.")
    ] = None,
    uncertain: Annotated[
        int | None, typer.Option(min=1, help="Explain the N most uncertain pairs on one page.")
    ] = None,
    needs_review: Annotated[int | None, typer.Option(min=1, help="Explain N needs_review pairs on one page.")] = None,
    source_l: SourceLOpt = None,
    source_r: SourceROpt = None,
    set_: SetOpt = None,
    out: OutOpt = None,
) -> None:
    """Explain a pair: Splink waterfall chart (HTML and PNG) beside the decision record and the judge's reasoning;
    or a page of the most uncertain / needs_review pairs.

    Examples: `splink-er explain settings/febrl4.yaml --out runs/febrl4 --pair rec-1070-org rec-1070-dup-0`,
    `splink-er explain settings/febrl4.yaml --out runs/febrl4 --uncertain 10`
    """
    from .job import open_run

    def body():
        if sum(x is not None for x in (pair, uncertain, needs_review)) != 1:
            raise typer.BadParameter("give exactly one of --pair ID_L ID_R, --uncertain N, --needs-review N")
        result = open_run(settings, overrides=_overrides(set_, out))
        if pair is None:
            which, n = ("uncertain", uncertain) if uncertain is not None else ("needs_review", needs_review)
            err.print(f"page: {result.explain_pairs(which, n)}")
            return
        res = result.explain(pair[0], pair[1], source_l=source_l, source_r=source_r)
        d = res["decision"]
        err.print(f"match probability {res['match_probability']:.4f} (weight {res['match_weight']:.2f})")
        if d:
            err.print(
                f"decided by {d['decided_by']}; final match {d['final_match']}"
                + (
                    f"; judge: {d['judge_match']} ({d['judge_confidence']}) {d['judge_reasoning']}"
                    if isinstance(d.get("judge_reasoning"), str)
                    else ""
                )
                + (f"; human override: {d['human_override']}" if d.get("human_override") else "")
            )
        else:
            err.print("this pair was not among the blocked pairs of the run (no decision)")
        err.print(f"chart: {res['html']} and {res['png']}")

    _guard(body)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("runs/demo"), quiet: QuietOpt = False
) -> None:
    """Run the bundled demo: Splink's fake_1000 persons, deduplicated, with the SIMULATED truth judge.

    Example: `splink-er demo --out runs/demo`
    """
    from . import demo_settings_path
    from .job import run as run_job

    overrides = [f"output_dir={out}", f"labels.path={out}/labels.jsonl"]
    result = _guard(run_job, demo_settings_path(), overrides=overrides, quiet=quiet, interrupted=KEPT)
    if not quiet:
        from .outputs import output_guide

        reporter = result.job.session.reporter
        reporter.table(
            f"what the demo wrote to {out}/", ["file", "what it is"], output_guide(out, result.run["manifest"])
        )
        settings = f"{demo_settings_path()} --out {out} --set labels.path={out}/labels.jsonl"
        reporter.info(
            "next: open the report in a browser; see why pairs were decided as they were with "
            f"`splink-er explain {settings} --uncertain 5`; send the needs_review pairs to a person with "
            f"`splink-er review export {settings}`"
        )


@app.command("runs")
def runs_(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the job.")],
    set_: SetOpt = None,
    out: OutOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List the runs of a job: run ids (for judge.run and decisions diff), when, which judge, how many answers,
    and which run the output directory holds.

    Example: `splink-er runs settings/febrl4.yaml --out runs/febrl4`
    """
    from rich.table import Table

    from .run_history import runs
    from .settings import load_settings

    def body():
        found = runs(load_settings(settings, _overrides(set_, out)))
        if json_:
            import json

            print(json.dumps(found, default=str))
            return
        p = found["published"]
        held = (
            f"run {p['run_id']} (complete)"
            if p["state"] == "complete"
            else {"none": "no run", "incomplete": "an incomplete run"}[p["state"]]
        )
        err.print(f"{found['output_dir']} holds {held}; decision log {found['decision_log']}")
        if p["state"] == "incomplete":
            err.print(escape(p["detail"]))
        if not found["runs"]:
            return
        table = Table("run_id", "started (UTC)", "judge", "answers", "reused", "final decisions", "in output_dir")
        table.columns[0].no_wrap = True  # an id is copied from here: never cut
        for r in found["runs"]:
            table.add_row(
                r["run_id"],
                (r.get("started") or "")[:19].replace("T", " "),
                r.get("judge", "-") + (" (SIMULATED)" if r.get("simulated") else ""),
                f"{r['answers']:,}" if "answers" in r else "",
                f"{r['reused']:,}" if "reused" in r else "",
                f"{r['final_decisions']:,}" if r.get("final_decisions") is not None else "",
                "yes" if r["published"] else "",
            )
        _stdout().print(table)
        err.print(
            "replay a run's answers with `--set judge.kind=replay --set judge.run=RUN_ID`; compare two runs with "
            "`splink-er decisions diff LOG LOG --run-a A --run-b B`"
        )

    _guard(body)


@app.command()
def resolve(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the job whose entity store takes the records.")],
    records: Annotated[Path, typer.Argument(help="New records: CSV, Parquet or JSON lines, the columns of a source.")],
    source: Annotated[str | None, typer.Option(help="The source they belong to (default: the first).")] = None,
    set_: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for resolutions (default: <output_dir>/resolutions).")
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Resolve new records against the entity store: MERGE into one entity, REVIEW, or INSERT a new one, with the
    frozen model (`model:`, default the last run's model.json). Writes resolutions/<run_id>.parquet.

    Example: `splink-er resolve settings/fec_candidate_dedupe.yaml new_filings.csv`
    """
    import pandas as pd

    from .resolving import resolve as resolve_records
    from .settings import load_settings

    def read() -> pd.DataFrame:
        if not records.is_file():
            raise InputError(f"{records} not found")
        suffix = records.suffix.lower()
        try:
            if suffix == ".parquet":
                return pd.read_parquet(records).astype("string")  # text, as a run reads a CSV; nulls stay null
            if suffix in (".jsonl", ".json"):
                return pd.read_json(records, lines=suffix == ".jsonl", dtype=str)
            return pd.read_csv(records, dtype=str, keep_default_na=False).replace("", None)
        except (ValueError, OSError) as e:
            raise InputError(f"{records} could not be read as {suffix or 'CSV'}: {e}") from None

    def body():
        s = load_settings(settings, list(set_ or []))
        name = source or s.sources[0].name
        result = resolve_records(s, {name: read()}, quiet=quiet or json_, out=out)
        if json_:
            import json

            print(json.dumps({"run_id": result.run_id, "counts": result.counts(), "resolutions": str(result.path)}))

    _guard(body, interrupted=": the entity store is as it was before this resolve")


@app.command()
def serve(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the job whose entity store it serves.")],
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless you mean otherwise).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    token_env: Annotated[
        str, typer.Option(help="Environment variable holding a bearer token; when set, every request needs it.")
    ] = "SPLINK_ER_TOKEN",
    max_batch: Annotated[int, typer.Option(help="Most records one POST /resolve may carry.")] = 1000,
    idle_seconds: Annotated[
        float,
        typer.Option(
            help="Seconds the store stays attached (locked) after a request; then other processes may write it."
        ),
    ] = 5.0,
    set_: SetOpt = None,
) -> None:
    """An HTTP service (FastAPI) resolving records as they arrive: POST /resolve, GET /entities/{id},
    GET /entities/{id}/records, GET /changes?since=RUN, GET /health. Needs `pip install 'splink-er[serve]'`.
    At start it indexes the entity store for lookups (once; about 7 s at 1M records, and about 3x the file's size).

    Example: `splink-er serve settings/fec_candidate_dedupe.yaml --port 8000`, then
    `curl -s localhost:8000/resolve -H 'content-type: application/json' -d '{"records": [{...}]}'`
    """
    from .service import serve as run_service

    _guard(
        run_service, settings, list(set_ or []), host=host, port=port, token_env=token_env, max_batch=max_batch,
        idle_seconds=idle_seconds,
    )  # fmt: skip


model_app = typer.Typer(no_args_is_help=True, help="A run's trained model as a file to score with (`model:`).")
app.add_typer(model_app, name="model")


@model_app.command("export")
def model_export(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the run.")],
    to: Annotated[Path, typer.Option("--to", help="File to write (JSON).")],
    set_: SetOpt = None,
    out: OutOpt = None,
) -> None:
    """Write a finished run's model with its run id, settings hash and training summary; score new data with it
    unchanged by setting `model:` (or `--set model=FILE`).

    Example: `splink-er model export settings/febrl4.yaml --out runs/febrl4 --to models/febrl4.json`
    """
    import json

    from .model_file import EXPORT_KEY
    from .outputs import RunDirectory
    from .settings import load_settings

    def body():
        run_dir = RunDirectory(load_settings(settings, _overrides(set_, out)).output_path)
        record = run_dir.complete_run_record()
        model = json.loads(run_dir.require(RunDirectory.model).read_text())
        model[EXPORT_KEY] = {
            "run_id": record["run_id"],
            "settings_hash": record["settings_hash"],
            "training": (record.get("training") or [{}])[-1],
            "metrics": record.get("metrics") or {},
        }
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_text(json.dumps(model, indent=2, default=str))
        err.print(f"model of run {record['run_id']} written to {to}; score with it: --set model={to}")

    _guard(body)


entities_app = typer.Typer(
    no_args_is_help=True, help="The entity store: stable entity ids, their records, and what each run changed."
)
app.add_typer(entities_app, name="entities")


def _entity_store(settings: Path, sets: list[str] | None):
    from .entities.store import EntityStore
    from .settings import load_settings

    return EntityStore.reader(load_settings(settings, list(sets or [])).entity_store_path)


def _print_frame(df, limit: int = 30) -> None:
    from rich.table import Table

    table = Table(*[str(c) for c in df.columns])
    for row in df.head(limit).itertuples(index=False):
        table.add_row(*("" if v is None or v != v else str(v) for v in row))
    _stdout().print(table)
    if len(df) > limit:
        err.print(f"... {len(df) - limit:,} more rows")


@entities_app.command("show")
def entities_show(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the job.")],
    entity_id: Annotated[str, typer.Argument(help="An entity id (from clusters.parquet's entity_id).")],
    set_: SetOpt = None,
) -> None:
    """An entity: its status (and the entity it was merged into), its records, its events.

    Example: `splink-er entities show settings/febrl4.yaml 0a5129e4-bdc9-4d34-8008-407d717482ec`
    """

    def body():
        found = _entity_store(settings, set_).entity(entity_id)
        e = found["entity"]
        now = found["now"]
        moved = f"; now part of {now}" if now and now != entity_id else ""
        err.print(
            f"entity {entity_id}: {e['status']}{moved}; created in run {e['created_run']}, updated in run "
            f"{e['updated_run']}; {len(found['records'])} records"
        )
        _print_frame(found["records"])
        err.print(f"{len(found['events'])} events")
        _print_frame(found["events"][["run_id", "event", "entity_id", "other_entity_id", "unique_id", "detail"]])

    _guard(body)


@entities_app.command("changes")
def entities_changes(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the job.")],
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: the latest).")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write every event of the run to this CSV.")] = None,
    set_: SetOpt = None,
) -> None:
    """What one run changed: entities created, merged, split, retired; records added and removed.

    Example: `splink-er entities changes settings/febrl4.yaml --csv changes.csv`
    """

    def body():
        events = _entity_store(settings, set_).changes(run_id)
        counts = events["event"].value_counts().to_dict()
        err.print(
            f"run {events.attrs['run_id']}: "
            + (", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "no change")
        )
        if csv:
            events.to_csv(csv, index=False)
            err.print(f"{len(events):,} events written to {csv}")
        elif len(events):
            _print_frame(events[["seq", "event", "entity_id", "other_entity_id", "source_dataset", "unique_id"]])

    _guard(body)


@entities_app.command("export")
def entities_export(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the job.")],
    to: Annotated[Path, typer.Option("--to", help="Folder for the Parquet files.")],
    set_: SetOpt = None,
) -> None:
    """Every table of the entity store (entities, membership, records, events, runs) as Parquet.

    Example: `splink-er entities export settings/febrl4.yaml --to exports/febrl4`
    """

    def body():
        for path in _entity_store(settings, set_).export(to):
            err.print(f"wrote {path}")

    _guard(body)


@entities_app.command("index")
def entities_index(
    settings: Annotated[Path, typer.Argument(help="Settings YAML of the job.")],
    drop: Annotated[bool, typer.Option("--drop", help="Remove the indexes instead (the file shrinks back).")] = False,
    set_: SetOpt = None,
) -> None:
    """Index the entity store for lookups by record and entity id, as `splink-er serve` does at start: a resolve
    of a few records then reads only their rows (about 7 s to build at 1M records; the file grows about 3x).
    Batch runs keep an indexed store indexed.

    Example: `splink-er entities index settings/febrl4.yaml`
    """

    def body():
        import duckdb

        from .entities import serving_indexes
        from .entities.store import ALIAS, EntityStore
        from .errors import InputError
        from .locks import writing
        from .settings import load_settings

        s = load_settings(settings, list(set_ or []))
        path = s.entity_store_path
        if not path.exists():
            raise InputError(f"no entity store at {path}: run `splink-er run` with these settings first")
        with writing(path, "entity store", s.labels.wait_seconds):
            con = duckdb.connect()
            try:
                EntityStore(con, path)
                if drop:
                    had = serving_indexes.drop(con, ALIAS)
                    err.print(f"{path}: serving indexes dropped" if had else f"{path} had no serving index")
                else:
                    built = serving_indexes.ensure(con, ALIAS)
                    err.print(f"{path}: indexed {', '.join(built)}" if built else f"{path} was indexed already")
            finally:
                con.close()

    _guard(body)


review_app = typer.Typer(
    no_args_is_help=True, help="Send the pairs a person should decide to a file, read the answers back."
)
app.add_typer(review_app, name="review")


@review_app.command("export")
def review_export(
    settings: Annotated[Path, typer.Argument(help="Settings YAML used for the run.")],
    limit: Annotated[int | None, typer.Option(help="At most this many pairs (nearest p = 0.5 first).")] = None,
    set_: SetOpt = None,
    out: OutOpt = None,
) -> None:
    """Write the needs_review and conflict pairs, records side by side, to review/review_queue.csv and .html.

    Example: `splink-er review export settings/febrl4.yaml --out runs/febrl4`
    """
    from .job import open_run

    def body():
        res = open_run(settings, overrides=_overrides(set_, out)).review(limit=limit)
        for answered in res["kept"]:
            err.print(f"{answered} has answers: kept as it is (import it with `splink-er review import`)")
        err.print(
            f"{res['pairs']} pairs to review: {res['csv']} (fill the `answer` column with match / non-match) "
            f"and {res['html']}"
        )

    _guard(body)


@review_app.command("import")
def review_import(
    settings: Annotated[Path, typer.Argument(help="Settings YAML (names the label store).")],
    file: Annotated[Path, typer.Argument(help="The answered review_queue.csv.")],
    set_: SetOpt = None,
    out: OutOpt = None,
) -> None:
    """Store the answered rows as human labels (they beat judge labels); then run `retrain`.

    Example: `splink-er review import settings/febrl4.yaml runs/febrl4/review/review_queue.csv`
    """
    from .review import import_answers

    def body():
        res = import_answers(settings, file, overrides=_overrides(set_, out))
        err.print(
            f"{res['answered']} human labels stored in {res['label_store']} ({res['skipped']} rows left blank); "
            "run `splink-er retrain` to use them"
        )

    _guard(body)


labels_app = typer.Typer(
    no_args_is_help=True,
    help="List the label store, import labels you already have, or remove a wrong label (kept as history).",
)
app.add_typer(labels_app, name="labels")


@labels_app.command("list")
def labels_list(
    settings: Annotated[Path, typer.Argument(help="Settings YAML (names the label store).")],
    kind: Annotated[str | None, typer.Option(help="Only human, judge or imported labels.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every line ever written, removals too.")] = False,
    limit: Annotated[int, typer.Option(help="Rows shown (the counts cover all).")] = 20,
    set_: SetOpt = None,
) -> None:
    """The labels that count (one per pair: human beats judge beats imported, then the latest), with counts by kind
    and source.

    Example: `splink-er labels list settings/febrl4.yaml --kind human`
    """
    from .labels import LabelStore
    from .settings import load_settings

    def body():
        s = load_settings(settings, set_ or [])
        store = LabelStore(s.label_store_path)
        df = store.read_all() if history else store.effective()
        if kind:
            df = df[df["source_kind"].eq(kind)]
        err.print(f"{store.path}: {len(df)} label(s){' (history)' if history else ' in force'}")
        if len(df):
            counts = df.groupby(["source_kind", "source", "simulated"], dropna=False).size()
            for (k, src, sim), n in counts.items():
                err.print(f"  {n:>7,}  {k} {src}{' (SIMULATED)' if sim else ''}")
            cols = ["source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r", "match", "source", "time"]
            print(df[cols].tail(limit).to_string(index=False))
        if history and len(store.removals()):
            err.print(f"{len(store.removals())} removal(s):")
            print(store.removals().drop(columns="line").to_string(index=False))

    _guard(body)


@labels_app.command("import")
def labels_import(
    settings: Annotated[Path, typer.Argument(help="Settings YAML (names the label store and the inputs).")],
    file: Annotated[Path, typer.Argument(help="Labels you already have: a CSV or Parquet file, one row a pair.")],
    source: Annotated[str, typer.Option(help="Where the labels came from (kept with each label).")] = "imported",
    left_id: Annotated[str, typer.Option(help="Column of the left record's id.")] = "unique_id_l",
    right_id: Annotated[
        str, typer.Option(help="Column of the right record's id (blank with match false: the left has no match).")
    ] = "unique_id_r",
    left_source: Annotated[
        str | None, typer.Option(help="Column of the left record's source (default source_dataset_l).")
    ] = None,
    right_source: Annotated[
        str | None, typer.Option(help="Column of the right record's source (default source_dataset_r).")
    ] = None,
    match: Annotated[
        str, typer.Option(help="Column of the answer: true/false, yes/no, 1/0, match/non-match.")
    ] = "match",
    confidence_column: Annotated[str | None, typer.Option(help="Column of each answer's confidence.")] = None,
    min_confidence: Annotated[
        float | None, typer.Option(help="Skip rows whose confidence is below this (in the column's units).")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Import labels you already have (e.g. an earlier LLM run's answers with confidence >= 90). They train like
    judge answers and decide their pairs without the judge (decided_by imported); a human label or a judge answer
    for the same pair beats them. A row with one record and match false gives non-matches against its candidates.

    Example: `splink-er labels import settings/febrl4.yaml earlier.csv --confidence-column confidence
    --min-confidence 90 --source "2023 LLM run"`
    """
    from .label_import import import_labels

    def body():
        res = import_labels(
            settings,
            file,
            source=source,
            left_id=left_id,
            right_id=right_id,
            left_source=left_source,
            right_source=right_source,
            match=match,
            confidence_column=confidence_column,
            min_confidence=min_confidence,
            overrides=set_ or [],
        )
        err.print(
            f"{res['pairs']:,} imported labels ({res['matches']:,} matches, {res['non_matches']:,} non-matches) "
            f"from {res['rows']:,} rows stored in {res['label_store']} as source {res['source']!r}"
        )
        if res["no_match_records"]:
            err.print(
                f"  {res['no_match_records']:,} records with no match gave {res['expanded']:,} non-match labels "
                "against their blocked candidates"
            )
        if res["below_confidence"] or res["no_confidence"]:
            err.print(
                f"  skipped: {res['below_confidence']:,} rows below --min-confidence {min_confidence}, "
                f"{res['no_confidence']:,} rows without a confidence"
            )
        if res["unknown_records"]:
            err.print(
                f"  skipped: {res['rows_unknown']:,} rows naming {res['unknown_records']:,} records the inputs do "
                f"not hold (e.g. {', '.join(res['unknown_examples'])})"
            )
        err.print("run `splink-er run` (or `retrain`) to use them")

    _guard(body)


@labels_app.command("remove")
def labels_remove(
    settings: Annotated[Path, typer.Argument(help="Settings YAML (names the label store).")],
    pair: Annotated[tuple[str, str], typer.Option("--pair", help="unique_id of the left and right record.")],
    kind: Annotated[str, typer.Option(help="Remove the pair's human, judge, imported or any labels.")] = "human",
    source_l: SourceLOpt = None,
    source_r: SourceROpt = None,
    note: Annotated[str, typer.Option(help="Why (kept with the removal).")] = "",
    set_: SetOpt = None,
) -> None:
    """Remove a pair's labels: a removal line is appended (the labels stay in the file as history, no longer count).

    Example: `splink-er labels remove settings/febrl4.yaml --pair rec-1-org rec-1-dup-0 --note "my typo"`
    """
    from .labels import LabelStore, make_removal
    from .locks import writing
    from .pairs import canonical_key
    from .settings import load_settings

    def body():
        if kind not in ("human", "judge", "imported", "any"):
            raise typer.BadParameter("--kind is human, judge, imported or any")
        s = load_settings(settings, set_ or [])
        sl, sr = s.pair_sources(source_l, source_r)
        key = canonical_key(sl, pair[0], sr, pair[1])
        store = LabelStore(s.label_store_path)
        hits = store.in_force(key, kind)
        if hits.empty:
            raise InputError(f"{store.path} has no {'' if kind == 'any' else kind + ' '}label in force for {key}")
        with writing(store.path, "label store", s.labels.wait_seconds):
            store.append([make_removal(key, kind, reason=note)])
        err.print(f"removed {len(hits)} {kind} label(s) of {key} (kept in {store.path} as history); run `retrain`")

    _guard(body)


decisions_app = typer.Typer(no_args_is_help=True, help="Work with decision logs.")
app.add_typer(decisions_app, name="decisions")


@decisions_app.command("diff")
def decisions_diff(
    log_a: Annotated[Path, typer.Argument(help="First decision log (decision_log.jsonl).")],
    log_b: Annotated[Path, typer.Argument(help="Second decision log.")],
    run_a: Annotated[str | None, typer.Option(help="run_id in the first log (default: latest).")] = None,
    run_b: Annotated[str | None, typer.Option(help="run_id in the second log (default: latest).")] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the changed pairs to this CSV.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """List pairs whose final decision differs between two runs (or that only one run decided).

    Example: `splink-er decisions diff runs/a/decision_log.jsonl runs/b/decision_log.jsonl --csv changed.csv`
    """
    from rich.table import Table

    from .decision_log import diff

    def body():
        for path in (log_a, log_b):
            if not path.exists():
                raise InputError(
                    f"{path}: no such decision log (runs write decision_log.jsonl in their output directory)"
                )
        changed = diff(log_a, log_b, run_a, run_b)  # InputError: a log without final decisions
        a = changed.attrs
        out = Console()
        out.print(
            f"{len(changed):,} pairs differ (run {a['run_a']}: {a['pairs_a']:,} pairs; run {a['run_b']}: "
            f"{a['pairs_b']:,} pairs)"
        )
        if len(changed):
            table = Table("left", "right", "A decided by", "A match", "B decided by", "B match")
            for r in changed.head(limit).itertuples(index=False):
                table.add_row(
                    f"{r.source_dataset_l}:{r.unique_id_l}",
                    f"{r.source_dataset_r}:{r.unique_id_r}",
                    str(r.decided_by_a),
                    str(r.match_a),
                    str(r.decided_by_b),
                    str(r.match_b),
                )
            out.print(table)
        if csv:
            changed.to_csv(csv, index=False)
            out.print(f"written: {csv}")

    _guard(body)


blocking_app = typer.Typer(no_args_is_help=True, help="Learned blocking: rules that recover missed matches.")
app.add_typer(blocking_app, name="blocking")


@blocking_app.command("suggest")
def blocking_suggest(
    settings: Annotated[Path, typer.Argument(help="Settings YAML.")],
    sets: SetOpt = None,
    out: OutOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON.")] = None,
    limit: Annotated[int, typer.Option(help="Candidate rows to print.")] = 20,
) -> None:
    """Score candidate blocking rules (columns alone and in pairs) by the comparisons they add and the matches the
    model expects among them, and pick rules within blocking.max_comparisons. Calls no judge; the model is the
    bootstrap, trained on the label store's answers when it has any. Add the chosen rules to blocking_rules, or
    set blocking.adopt: true to let `run` add them.

    Example: `splink-er blocking suggest settings/fake_20000.yaml --set blocking.max_comparisons=3000000`
    """
    import json

    from rich.table import Table

    from .job import Job
    from .settings import load_settings

    def body():
        # No judge (no API key needed): the model is the bootstrap, trained on the label store's answers.
        job = Job(load_settings(settings, _overrides(sets, out)), with_judge=False)
        job.bootstrap()
        job.score()
        if job.use_stored_answers()["taken"] or len(job.store.human()):
            job.train()
            job.score()
        report = job.suggest_blocking()
        c = Console()
        c.print(
            f"current rules: {report['blocked_pairs']:,} pairs, the model expects "
            f"~{report['expected_matches_blocked']:,.0f} matches among them; budget "
            f"{report['max_comparisons']:,} pairs (blocking.max_comparisons)"
        )
        table = Table("rule", "proposes", "adds", "expected matches", f"added p > {job.settings.routing.low}", "chosen")
        for cand in report["candidates"][:limit]:
            table.add_row(
                " & ".join(cand["rule"]),
                f"{cand['proposed_pairs']:,}",
                f"{cand['added_pairs']:,}",
                f"{cand['expected_matches']:,.1f}",
                f"{cand['pairs_above_low']:,}",
                "yes" if cand["chosen"] else "",
            )
        c.print(table)
        c.print(
            f"chosen: {report['chosen'] or 'none'}: +{report['added_pairs']:,} pairs, "
            f"~{report['expected_matches_gained']:,.0f} more expected matches (numbers after earlier choices)"
        )
        if report["chosen"]:
            c.print("add to blocking_rules:\n" + "\n".join(f"  - {json.dumps(r)}" for r in report["chosen"]))
        if json_out:
            json_out.write_text(json.dumps(report, indent=2))
            c.print(f"written: {json_out}")

    _guard(body)


@app.command("fake-llm")
def fake_llm(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    latency: Annotated[float, typer.Option(help="Seconds per call.")] = 0.0,
    rpm: Annotated[int, typer.Option(help="Requests per minute before 429s (0: no limit).")] = 0,
    reject_json_schema: Annotated[bool, typer.Option(help="Refuse json_schema like llama.cpp.")] = False,
) -> None:
    """Serve a SIMULATED LLM on 127.0.0.1 in Gemini's and OpenAI's REST shapes (a similarity heuristic, not a
    language model): try the real judges offline.

    Example: `splink-er fake-llm --port 8765 &` then
    `GEMINI_API_KEY=any splink-er run settings/febrl4.yaml --set judge.kind=gemini --set judge.base_url=http://127.0.0.1:8765`
    """
    from .testing.fake_llm import serve_forever

    def body():
        try:
            server = serve_forever(port, latency, rpm, reject_json_schema, start=False)
        except OSError as e:
            raise SettingsError(
                f"--port {port}: cannot listen on 127.0.0.1:{port} ({e.strerror}); use another --port"
            ) from None
        err.print(f"SIMULATED LLM (field-similarity heuristic) on http://127.0.0.1:{port}; Ctrl-C stops it")
        server()

    _guard(body)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: answers received so far are in the label store; run again to continue")
        sys.exit(130)


if __name__ == "__main__":
    main()
