"""Runs every bad input below through the `splink-er` command and writes docs/bad_inputs.md: the exit code and the
first line of what the user is told, so the table in the docs is what the code does today.

    python docs/bad_inputs.py           # rewrite docs/bad_inputs.md
    python docs/bad_inputs.py --check   # exit 1 if docs/bad_inputs.md is out of date (tests/test_bad_inputs.py)

Each case runs in a scratch directory (shown as `<tmp>`) against the bundled demo settings; none may end in a
traceback (exit 1 with Python's error), which the check also enforces.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

import splink_er
from splink_er.cli import app

HERE = Path(__file__).resolve().parent
TABLE = HERE / "bad_inputs.md"
DEMO = str(splink_er.demo_settings_path())
DEMO_CSV = str(splink_er.demo_settings_path().parent / "fake_1000.csv")


def first_said(r) -> str:
    """The first line of the message (for settings errors, the first key's line), rich's boxes and wraps undone."""
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        return f"TRACEBACK: {type(r.exception).__name__}: {r.exception}"
    lines = [line.strip(" │╭╰─╮╯") for line in r.output.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Usage:", "Try ", "Error"))]
    text = " ".join(lines)
    if text.startswith("settings error Invalid settings in"):
        text = "settings error: " + text.split(": - ", 1)[-1] if ": - " in text else text
    elif text.startswith("settings error "):
        text = "settings error: " + text.removeprefix("settings error ")
    return text if len(text) <= 170 else text[:167] + "..."


def run_cases(tmp: Path) -> list[tuple[str, str, int, str]]:
    """(what, command, exit code, first line said) per case."""

    def w(name: str, text: str) -> str:
        (tmp / name).write_text(text)
        return name

    def s(*sets: str) -> list[str]:
        return [x for kv in sets for x in ("--set", kv)]

    fresh = s("labels.path=labels.jsonl")
    run = ["run", DEMO, "-q", "--out", "out", *fresh]
    w("s_list.yaml", "- a\n- b\n")
    w("s_bad.yaml", "name: [unclosed\n")
    w("empty.csv", "")
    w("cols.csv", "unique_id,first_name\n1,a\n")
    w("tiny.csv", "unique_id,first_name,surname,dob,city,email,cluster\n1,1,2,3,4,5,1\n2,1,2,3,4,5,1\n")
    w("x.csv", "a,b\n1,2\n")
    w("empty_log.jsonl", "")
    w(
        "bad_labels.jsonl",
        '{"source_dataset_l": "fake_1000", "unique_id_l": "1", "source_dataset_r": "fake_1000", '
        '"unique_id_r": "2", "match": "false", "source_kind": "human"}\n42\n',
    )
    w(
        "answers.csv",
        "source_dataset_l,unique_id_l,source_dataset_r,unique_id_r,answer\nfake_1000,0,fake_1000,1,perhaps\n",
    )
    w("no_answer_col.csv", "a,b\n1,2\n")
    w("earlier_bad.csv", "unique_id_l,unique_id_r,match\n0,1,maybe\n0,2,true\n3,4,?\n")
    w("earlier_unknown.csv", "unique_id_l,unique_id_r,match\nnope,1,true\n")
    (tmp / "latin1.csv").write_bytes(
        b"unique_id,first_name,surname,dob,city,email,cluster\n1,Jos\xe9,M\xfcller,2000-01-01,K\xf6ln,a@b.c,1\n"
    )
    w("long.csv", "unique_id,first_name,surname,dob,city,email,cluster\n1," + "x" * 3_000_000 + ",a,b,c,d,1\n")
    (tmp / "afile").write_text("")
    (tmp / "adir").mkdir(exist_ok=True)
    (tmp / "half").mkdir(exist_ok=True)
    (tmp / "half" / "decisions.parquet").write_bytes(b"PAR1")
    cases = [
        # settings and usage
        ("an unknown settings key", run + s("routing.thresold=0.5")),
        ("low above high", run + s("routing.low=0.99")),
        ("an unknown judge kind", run + s("judge.kind=bogus")),
        ("a key of another judge kind", run + s("judge.model=gemini-2.5-pro")),
        ("a key of the old flat judge section", run + s("judge.log_path=x.jsonl")),
        ("strata that do not sum to 1", run + s("sampling.strata={random: 0.5}")),
        ("a misspelt comparison", run + s("comparisons.0.kind=NameComparisn")),
        ("a comparison argument that does not exist", run + s("comparisons.0.args={jaro: 1}")),
        ("link_only with one source", run + s("link_type=link_only")),
        ("an unknown normalizer", run + s("sources.0.prepare=[{column: city, kind: town}]")),
        ("a key of another normalizer", run + s("sources.0.prepare=[{column: city, kind: state, region: GB}]")),
        (
            "a clean pattern DuckDB cannot read",
            run + s("sources.0.prepare=[{column: city, kind: clean, replace: [{pattern: '??'}]}]"),
        ),
        (
            "a clean step after a step that read its column",
            run
            + s(
                "sources.0.prepare=[{column: city, kind: state}, {column: city, kind: clean, replace: [{pattern: x}]}]"
            ),
        ),
        ("--set without =", run + ["--set", "routing.high"]),
        ("--set into a list without an index", run + s("sources.x.path=a.csv")),
        ("a settings file that does not exist", ["run", "nope.yaml"]),
        ("settings that are not YAML", ["run", "s_bad.yaml"]),
        ("settings that are a list", ["run", "s_list.yaml"]),
        ("--out naming a file", ["run", DEMO, "-q", "--out", "afile", *fresh]),
        ("labels.path naming a directory", ["run", DEMO, "-q", "--out", "out", *s("labels.path=adir")]),
        ("recall of 0", run + s("bootstrap.recall=0")),
        ("the truth judge without a truth column", run + s("truth_column=null")),
        ("one-to-one on a dedupe job", run + s("routing.one_to_one=true")),
        (
            "explain with both --pair and --uncertain",
            ["explain", DEMO, "--out", "out", "--pair", "0", "1", "--uncertain", "3"],
        ),
        ("explain --uncertain 0", ["explain", DEMO, "--out", "out", "--uncertain", "0"]),
        ("labels remove --kind bogus", ["labels", "remove", DEMO, "--pair", "0", "1", "--kind", "bogus", *fresh]),
        ("rules that pass more pairs than the recall allows", run + s(f"sources.0.path={tmp / 'tiny.csv'}")),
        # input data
        ("a source file that does not exist", run + s("sources.0.path=nope.csv")),
        ("an empty source file", run + s(f"sources.0.path={tmp / 'empty.csv'}")),
        ("a directory as a source", run + s(f"sources.0.path={tmp / 'adir'}")),
        ("a file that is not UTF-8", run + s(f"sources.0.path={tmp / 'latin1.csv'}")),
        ("a 3 MB field", run + s(f"sources.0.path={tmp / 'long.csv'}")),
        (
            "one record: nothing to compare",
            run + s(f"sources.0.path={tmp / 'latin1.csv'}", "sources.0.read.encoding=latin-1"),
        ),
        ("a source without the matched columns", run + s(f"sources.0.path={tmp / 'cols.csv'}")),
        ("the truth column as a blocking rule", run + s("blocking_rules=[[cluster]]")),
        ("a column derived from the truth", run + s("sources.0.derive={c2: cluster}", "blocking_rules=[[c2]]")),
        ("a blocking rule DuckDB cannot run", run + s('blocking_rules=["l.first_name + 1 = r.first_name"]')),
        (
            "a gate DuckDB cannot run",
            run + s("routing.gates=[{name: odd, sql: 'first_name_l + 1 = first_name_r'}]"),
        ),
        (
            "a term-frequency level with no exact-match level",
            run
            + s(
                "comparisons.0={kind: custom, output_column_name: c, levels: [{sql: 'city_l = city_r AND "
                "dob_l = dob_r', tf_adjustment_column: city}, {sql: ELSE}]}"
            ),
        ),
        ("a derive expression that fails", run + s("sources.0.derive={x: 'no_such_function(city)'}")),
        ("a normalizer on a missing column", run + s("sources.0.prepare=[{column: nope, kind: state}]")),
        ("a label on a record that does not exist", ["label", DEMO, "--pair", "0", "nope", "--match", *fresh]),
        (
            "a label on a source that does not exist",
            ["label", DEMO, "--pair", "0", "1", "--source-r", "nope", "--match", *fresh],
        ),
        ("a label store line that is not a label", ["labels", "list", DEMO, *s("labels.path=bad_labels.jsonl")]),
        ("removing a label that is not there", ["labels", "remove", DEMO, "--pair", "0", "1", *fresh]),
        ("decisions diff of an empty log", ["decisions", "diff", "empty_log.jsonl", "empty_log.jsonl"]),
        ("decisions diff of a CSV", ["decisions", "diff", "x.csv", "x.csv"]),
        ("review import of a missing file", ["review", "import", DEMO, "nope.csv", *fresh]),
        ("review import with an answer not understood", ["review", "import", DEMO, "answers.csv", *fresh]),
        ("review import of a file without an answer column", ["review", "import", DEMO, "no_answer_col.csv", *fresh]),
        ("labels import of a file without the id columns", ["labels", "import", DEMO, "x.csv", *fresh]),
        ("labels import with match values not understood", ["labels", "import", DEMO, "earlier_bad.csv", *fresh]),
        (
            "labels import naming only records not in the inputs",
            ["labels", "import", DEMO, "earlier_unknown.csv", *fresh],
        ),
        ("labels import of a file that is not CSV or Parquet", ["labels", "import", DEMO, "empty_log.jsonl", *fresh]),
        # a previous run needed
        ("explain before any run", ["explain", DEMO, "--out", "never", "--pair", "0", "1"]),
        ("retrain before any run", ["retrain", DEMO, "--out", "never", *fresh]),
        ("review export before any run", ["review", "export", DEMO, "--out", "never"]),
        ("explain on a run stopped while publishing", ["explain", DEMO, "--out", "half", "--pair", "0", "1"]),
        # the judge
        ("gemini without an API key", run + s("judge.kind=gemini")),
        ("replay without its log", run + s("judge.kind=replay", "judge.log=nope.jsonl")),
        (
            "a cost limit for a model without a price",
            run + s("judge.kind=gemini", "judge.model=my-model", "judge.max_cost=1"),
            {"GEMINI_API_KEY": "dummy"},
        ),
    ]
    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    out = []
    old = os.getcwd()
    os.chdir(tmp)
    try:
        for what, args, *extra in cases:
            keys = {"GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""} | (extra[0] if extra else {})
            r = runner.invoke(app, args, env=env | keys)
            out.append((what, f"splink-er {' '.join(args)}", r.exit_code, first_said(r)))
    finally:
        os.chdir(old)
    # A port another program listens on.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = runner.invoke(app, ["fake-llm", "--port", str(port)])
        said = first_said(r).replace(str(port), "PORT")
        out.append(("fake-llm on a port in use", "splink-er fake-llm --port PORT", r.exit_code, said))
    # Busy: another process writes the same label store.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from splink_er.locks import hold; "
            f"lock = hold({str(tmp / 'busy.jsonl')!r}, 'store', 0); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        holder.stdout.readline()
        os.chdir(tmp)
        r = runner.invoke(app, ["label", DEMO, "--pair", "0", "1", "--match", "--set", "labels.path=busy.jsonl"])
        out.append(
            (
                "a label store another process is writing",
                "splink-er label DEMO --pair 0 1 --match --set labels.path=busy.jsonl",
                r.exit_code,
                first_said(r),
            )
        )
    finally:
        os.chdir(old)
        holder.kill()
        holder.wait()
    return out


def scrub(text: str, tmp: Path) -> str:
    return text.replace(str(tmp), "<tmp>").replace(DEMO, "DEMO").replace(str(Path(DEMO).parent), "<demo>")


def markdown(rows: list[tuple[str, str, int, str]]) -> str:
    lines = [
        "# Bad inputs: what splink-er says",
        "",
        "Written by `python docs/bad_inputs.py` (which runs every case; `--check` is part of the tests), against the",
        "bundled demo settings (`DEMO`) in a scratch directory (`<tmp>`). Exit codes: 2 settings or usage, 3 input",
        "data, 4 a previous run is missing or incomplete, 5 the judge, 6 a missing dependency, 7 busy.",
        "",
        "| bad input | command | exit | first thing said |",
        "|---|---|---|---|",
    ]
    for what, cmd, code, first in rows:
        cell = first.replace("|", "\\|")
        lines.append(f"| {what} | `{cmd.replace('|', '/')}` | {code} | {cell} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d).resolve()
        rows = [(what, scrub(cmd, tmp), code, scrub(said, tmp)) for what, cmd, code, said in run_cases(tmp)]
    text = markdown(rows)
    tracebacks = [r for r in rows if r[2] == 1 or r[3].startswith("TRACEBACK")]
    if tracebacks:
        print("cases that end in a traceback or exit 1:", *tracebacks, sep="\n  ")
    if "--check" in sys.argv[1:]:
        if not TABLE.exists() or TABLE.read_text() != text:
            print(f"{TABLE} is out of date: run python docs/bad_inputs.py")
            return 1
        return 1 if tracebacks else 0
    TABLE.write_text(text)
    print(f"wrote {TABLE}: {len(rows)} cases")
    return 1 if tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
