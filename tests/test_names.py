"""Name normalization: every format candidate data carries (issue 4's list), the traps, and the prepare step."""

import csv
from collections import Counter
from importlib.resources import files

import pandas as pd
import pytest

from splink_er.normalize.names import canonical_first, parse_name


def parsed(raw, fmt="auto"):
    return {k: v for k, v in parse_name(raw, fmt).items() if v}


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("CRIST, CHARLES JOSEPH", {"first_name": "CHARLES", "middle_name": "JOSEPH", "last_name": "CRIST"}),
        ("Charlie Crist", {"first_name": "CHARLIE", "last_name": "CRIST", "first_name_canonical": "CHARLES"}),
        (
            "Milton F. (Toby) Fitch, Jr.",
            {
                "first_name": "MILTON",
                "middle_name": "F.",
                "last_name": "FITCH",
                "name_suffix": "JR",
                "nickname": "TOBY",
                "first_name_canonical": "MILTON",
            },
        ),
        (
            "Tom Wolf / John Fetterman",
            {
                "first_name": "TOM",
                "last_name": "WOLF",
                "running_mate": "John Fetterman",
                "first_name_canonical": "THOMAS",
            },
        ),
        ("Mike Pence (R)", {"first_name": "MIKE", "last_name": "PENCE", "party_tag": "R"}),
        (
            "BOB CASEY, JR",
            {"first_name": "BOB", "last_name": "CASEY", "name_suffix": "JR", "first_name_canonical": "ROBERT"},
        ),
        (
            'Robert "Bob" Smith III',
            {"first_name": "ROBERT", "last_name": "SMITH", "name_suffix": "III", "nickname": "BOB"},
        ),
        (
            "Robert 'Bobby' Jones Sr.",
            {"first_name": "ROBERT", "last_name": "JONES", "nickname": "BOBBY", "name_suffix": "SR"},
        ),
        ("Ludwig van Beethoven", {"first_name": "LUDWIG", "last_name": "VAN BEETHOVEN"}),
        ("Maria de la Cruz", {"first_name": "MARIA", "last_name": "DE LA CRUZ"}),
        ("Dr. Jane Smith (DEM)", {"first_name": "JANE", "last_name": "SMITH", "name_title": "Dr.", "party_tag": "DEM"}),
        ("D'Angelo O'Brien", {"first_name": "D'ANGELO", "last_name": "O'BRIEN"}),
        # Traps of nameparser: first names that are titles, and "J.D." read as a degree.
        ("Judge Reinhold", {"first_name": "JUDGE", "last_name": "REINHOLD"}),
        ("Prince Fielder", {"first_name": "PRINCE", "last_name": "FIELDER"}),
        ("J.D. Vance", {"first_name": "J.D.", "last_name": "VANCE", "first_name_canonical": "JD"}),
        ("HAYWORTH, J.D.", {"first_name": "J.D.", "last_name": "HAYWORTH"}),
    ],
)
def test_formats(raw, expected):
    got = parsed(raw)
    assert {k: got.get(k) for k in expected} == expected


def test_voter_file_format_is_declared_not_guessed():
    assert parsed("FITCH MILTON FREDERICK JR", "last_first_middle") == {
        "last_name": "FITCH",
        "first_name": "MILTON",
        "middle_name": "FREDERICK",
        "name_suffix": "JR",
        "first_name_canonical": "MILTON",
    }
    # The same string read as "auto" is First Middle Last: the format must be declared.
    assert parsed("FITCH MILTON FREDERICK JR")["first_name"] == "FITCH"


def test_empty_and_missing():
    assert parsed(None) == {} and parsed("   ") == {}


def test_nickname_table_has_one_canonical_per_nickname_and_no_chains():
    with (files("splink_er.normalize") / "data" / "nicknames.csv").open() as f:
        rows = list(csv.DictReader(f))
    counts = Counter(r["nickname"] for r in rows)
    assert not [n for n, c in counts.items() if c > 1]
    canon = {r["nickname"]: r["canonical"] for r in rows}
    # A canonical is never itself mapped elsewhere (no bob -> robert -> rob chains).
    assert not [c for c in canon.values() if canon.get(c, c) != c]
    assert canonical_first("Bob") == canonical_first("Bobby") == "ROBERT" != canonical_first("Bill") == "WILLIAM"
    assert canonical_first("Peggy") == "MARGARET" and canonical_first("Chuy") == "JESUS"


@pytest.mark.e2e
def test_prepare_step_adds_columns_per_distinct_value(demo_dict):
    import splink_er

    frame = pd.DataFrame(
        {"id": ["1", "2", "3", "4"], "full_name": ["CRIST, CHARLES JOSEPH", "Charlie Crist", "Charlie Crist", None]}
    )
    settings = {
        "name": "names",
        "link_type": "dedupe_only",
        "sources": [{"name": "c", "id_column": "id", "prepare": [{"column": "full_name", "kind": "person_name"}]}],
        "comparisons": [
            {"kind": "ExactMatch", "column": "first_name_canonical"},
            {"kind": "ExactMatch", "column": "last_name"},
        ],
        "blocking_rules": [["last_name"]],
        "judge": {"kind": "none"},
        "columns_to_keep": ["middle_name"],
        "output_dir": demo_dict["output_dir"],
        "labels": demo_dict["labels"],
    }
    job = splink_er.prepare(settings, data={"c": frame}, quiet=True)
    rows = job.con.execute(
        f"SELECT unique_id, first_name_canonical, last_name, middle_name FROM "
        f"{job.loaded.tables['c']} ORDER BY unique_id"
    ).fetchall()
    assert rows == [
        ("1", "CHARLES", "CRIST", "JOSEPH"),
        ("2", "CHARLES", "CRIST", None),
        ("3", "CHARLES", "CRIST", None),
        ("4", None, None, None),
    ]


@pytest.mark.e2e
def test_prepare_step_refuses_to_overwrite_a_column(demo_dict):
    import splink_er
    from splink_er.sources import InputError

    frame = pd.DataFrame({"id": ["1"], "full_name": ["Ann Lee"], "last_name": ["LEE"]})
    settings = {
        "name": "n",
        "link_type": "dedupe_only",
        "sources": [{"name": "c", "id_column": "id", "prepare": [{"column": "full_name", "kind": "person_name"}]}],
        "comparisons": [{"kind": "ExactMatch", "column": "last_name"}],
        "blocking_rules": [["last_name"]],
        "judge": {"kind": "none"},
        "output_dir": demo_dict["output_dir"],
        "labels": demo_dict["labels"],
    }
    with pytest.raises(InputError, match=r"\['last_name'\] already exist.*prefix"):
        splink_er.prepare(settings, data={"c": frame}, quiet=True)


def test_fast_path_agrees_with_nameparser_on_real_candidate_names():
    # The fast path ("First Last", "LAST, FIRST M") must give what the full parser gives; checked on every NC
    # ballot name and every registration name written "LAST, FIRST MIDDLE".
    from pathlib import Path

    from nameparser import HumanName

    from splink_er.normalize import names as n

    data = Path(__file__).resolve().parents[1] / "data" / "ncsbe"
    ballot = pd.read_csv(data / "ballot.csv", dtype=str)
    reg = pd.read_csv(data / "registration.csv", dtype=str)
    written = (reg.last_name + ", " + reg.first_name + " " + reg.middle_name.fillna("")).dropna().str.strip()
    values = set(ballot.name_on_ballot.dropna()) | set(written)
    used = 0
    for v in values:
        text = " ".join(v.split())
        fast = n._fast(text)
        if fast is None:
            continue
        used += 1
        full = HumanName(text, constants=n._constants())
        assert (fast["first_name"], fast["middle_name"], fast["last_name"]) == (
            full.first.upper() or None,
            full.middle.upper() or None,
            full.last.upper() or None,
        ), v
    assert used > 0.5 * len(values)  # the fast path carries most names


def test_parse_names_in_parallel_equals_serial():
    from splink_er.normalize.names import parse_names

    firsts = ["Ann", "Bob", "Charlie", "Dr. Jane", "Milton F. (Toby)", "J.D."]
    values = [f"{firsts[i % 6]} Smith{i}" + (", Jr." if i % 7 == 0 else "") for i in range(60_000)] + [None]
    parallel = parse_names(values, processes=2)  # above 50k distinct values: two worker processes
    assert len(parallel) == 60_000 and parallel == parse_names(values, processes=1)
