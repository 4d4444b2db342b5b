"""ZIP within state, contest kinds, several e-mail/phone columns as one list, and the AnyShared comparison."""

import csv
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

import splink_er
from splink_er.comparisons import AnyShared
from splink_er.normalize import normalizer_for
from splink_er.normalize.contacts import zip_in_state, zip_prefixes
from splink_er.normalize.contests import KINDS, contest_kind
from splink_er.settings import EmailsPrepare, PhonesPrepare

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "splink_er" / "normalize" / "data" / "zip_ranges.csv"
# Prefixes USPS gives to two places (data/README.md): American Samoa's 96799 sits in Hawaii's 967, Guam and the
# Northern Mariana Islands share 969.
SHARED = {"967": {"HI", "AS"}, "969": {"GU", "MP"}}


@pytest.mark.parametrize(
    "zip_code,state,expected",
    [
        ("90210", "CA", True),
        ("33101", "CA", False),  # a Miami ZIP in a California district
        ("33101", "Florida", True),
        ("27601-1234", "N. Carolina", True),
        ("2138", "MA", True),  # read as a number: the leading zero comes back
        ("20500", "DC", True),
        ("20500", "Washington DC", True),
        ("20500", "MD", False),
        ("00901", "PR", True),
        ("00901", "Puerto Rico", True),
        ("00802", "VI", True),
        ("96910", "GU", True),
        ("96950", "MP", True),
        ("96799", "AS", True),
        ("09021", "AE", True),  # APO Europe
        ("34002", "AA", True),
        ("96601", "AP", True),
        ("96601", "CA", False),  # military Pacific is not California
        ("09021", "NJ", False),
        ("73301", "TX", True),  # IRS Austin, inside Oklahoma's first digits
        ("73301", "OK", False),
        ("12345", None, None),
        (None, "CA", None),
        ("123", "CA", None),
        ("90210", "Narnia", None),
    ],
)
def test_zip_in_state(zip_code, state, expected):
    assert zip_in_state(zip_code, state) is expected


def test_zip_table_covers_every_state_without_overlap():
    rows = list(csv.DictReader(TABLE.open()))
    for r in rows:
        assert len(r["first"]) == len(r["last"]) == 3 and r["first"] <= r["last"], r
    states = {r["state"] for r in rows}
    expected = {s.abbr for s in __import__("us").states.STATES} | {"DC", "PR", "VI", "GU", "AS", "MP"}
    assert states == expected | {"AA", "AE", "AP"}
    owners = Counter(p for prefixes in zip_prefixes().values() for p in prefixes)
    shared = {p for p, n in owners.items() if n > 1}
    assert shared == set(SHARED)
    for p, places in SHARED.items():
        assert {s for s, prefixes in zip_prefixes().items() if p in prefixes} == places


def test_zip_in_state_over_the_loader_and_in_a_gate(tmp_path):
    (tmp_path / "a.csv").write_text("id,name,zip,st\n1,Ann Lee,90210,CA\n2,Ann Lee,33101,CA\n3,Ann Lee,,CA\n")
    src = {
        "name": "a",
        "path": str(tmp_path / "a.csv"),
        "id_column": "id",
        "prepare": [{"kind": "zip_in_state", "column": "zip", "state": "st", "into": "zip_ok"}],
    }
    settings = {
        "name": "z",
        "link_type": "dedupe_only",
        "sources": [src],
        "comparisons": [{"kind": "ExactMatch", "column": "name"}],
        "blocking_rules": [["name"]],
        "routing": {"gates": [{"name": "zip_outside_state", "sql": "NOT zip_ok_l OR NOT zip_ok_r"}]},
        "judge": {"kind": "none"},
        "output_dir": str(tmp_path / "out"),
        "labels": {"path": str(tmp_path / "labels.jsonl")},
    }
    job = splink_er.prepare(settings, quiet=True)
    rows = job.con.execute(f"SELECT unique_id, zip_ok FROM {job.loaded.tables['a']} ORDER BY 1").fetchall()
    assert rows == [("1", True), ("2", False), ("3", None)]
    job.run()
    decided = job.con.execute("SELECT unique_id_l || unique_id_r, gate FROM routed ORDER BY 1").fetchall()
    # Only pairs with record 2 (an FL ZIP in a CA record) are gated; record 3's unknown ZIP is no evidence.
    assert decided == [("12", "zip_outside_state"), ("13", None), ("23", "zip_outside_state")]
    job.close()


def _labels(path: str, column: str) -> list[str]:
    return [r[0] for r in duckdb.sql(f"SELECT DISTINCT {column} FROM read_csv('{path}', all_varchar=true)").fetchall()]


def test_contest_kind_on_the_nc_files():
    """Every NC contest is a candidate race; of the ballot names, the presidential primary's "No Preference" is
    the one choice no candidate stands behind. Surnames that are measure words (Bond, Levy) stay candidates."""
    contests = _labels(str(ROOT / "data/ncsbe/results.csv"), "contest_name")
    assert len(contests) > 3000 and {contest_kind(c) for c in contests} == {"candidate_race"}
    names = _labels(str(ROOT / "data/ncsbe/results.csv"), "name_on_ballot")
    assert [n for n in names if contest_kind(n) != "candidate_race"] == ["No Preference"]
    assert {"Regina Bond", "Joel Levy", "Catherine Bonds Moore"} <= set(names)


@pytest.mark.parametrize(
    "label,kind",
    [
        ("Registered Voters", "turnout_metadata"),
        ("Registered Voters - Total", "turnout_metadata"),
        ("BALLOTS CAST", "turnout_metadata"),
        ("Ballots Cast - Blank", "turnout_metadata"),
        ("Over Votes", "turnout_metadata"),
        ("Undervotes", "turnout_metadata"),
        ("Blank", "turnout_metadata"),
        ("Write-In (Miscellaneous)", "turnout_metadata"),
        ("For", "ballot_measure"),
        ("AGAINST", "ballot_measure"),
        ("Yes", "ballot_measure"),
        ("No", "ballot_measure"),
        ("Bonds - Yes", "ballot_measure"),
        ("Constitutional Amendment 1", "ballot_measure"),
        ("School Bond Referendum", "ballot_measure"),
        ("Proposition 22", "ballot_measure"),
        ("Question 3", "ballot_measure"),
        ("Local Sales and Use Tax", "ballot_measure"),
        ("HAYWOOD COUNTY TAX COLLECTOR", "candidate_race"),
        ("Julian Bond", "candidate_race"),
        ("Nora No", "candidate_race"),
        ("", None),
        (None, None),
    ],
)
def test_contest_kinds(label, kind):
    assert contest_kind(label) == kind


@given(st.text())
def test_contest_kind_reads_any_text(text):
    assert contest_kind(text) in KINDS + (None,)


def test_emails_and_phones_as_one_list():
    emails = normalizer_for(EmailsPrepare(kind="emails", columns=["EMAIL", "OTHER_EMAIL"]))
    rows = emails.normalize_values(
        [
            ("Jane.Doe+x@gmail.com", "janedoe@gmail.com"),  # one inbox twice: one value
            ("b@x.org", "A@X.ORG"),
            ("not an address", None),
            (None, "c@y.org"),
        ]
    )
    assert [r[1] for r in rows] == [["janedoe@gmail.com"], ["a@x.org", "b@x.org"], None, ["c@y.org"]]
    phones = normalizer_for(PhonesPrepare(kind="phones", columns=["PHONE", "CELL"], region="US"))
    rows = phones.normalize_values([("(919) 814-0700", "+1 919 814 0700"), ("555-0134", None)])
    assert [r[1] for r in rows] == [["+19198140700"], None]
    uk = normalizer_for(PhonesPrepare(kind="phones", columns=["PHONE"], region="GB"))
    assert uk.normalize_values([("020 7946 0018",)])[0][1] == ["+442079460018"]


def test_any_shared_levels():
    levels = AnyShared("emails").get_comparison("duckdb").as_dict()["comparison_levels"]
    sql = [lv["sql_condition"] for lv in levels]
    con = duckdb.connect()

    def level(left, right) -> int:
        for i, cond in enumerate(sql):
            if (
                cond == "ELSE"
                or con.execute(
                    f"SELECT {cond} FROM (SELECT ?::VARCHAR[] AS emails_l, ?::VARCHAR[] AS emails_r)", [left, right]
                ).fetchall()[0][0]
            ):
                return i
        raise AssertionError

    assert levels[0].get("is_null_level")
    assert level(None, ["a"]) == 0 and level([], ["a"]) == 0
    assert level(["a", "b"], ["c", "b"]) == 1
    assert level(["a"], ["c"]) == 2


@pytest.mark.e2e
def test_a_two_source_job_with_any_shared(tmp_path):
    header = "id,name,EMAIL,OTHER_EMAIL,PHONE,CELL\n"
    (tmp_path / "a.csv").write_text(
        header + "1,Ann Lee,Ann.Lee+x@gmail.com,ann@work.org,(919) 814-0700,\n2,Bob Ray,bob@x.org,,,\n"
    )
    (tmp_path / "b.csv").write_text(header + "x,Ann Lee,annlee@gmail.com,,,+1 919 814 0700\ny,Bob Ray,,,,\n")
    steps = [
        {"kind": "emails", "columns": ["EMAIL", "OTHER_EMAIL"]},
        {"kind": "phones", "columns": ["PHONE", "CELL"]},
    ]
    settings = {
        "name": "anyshared",
        "link_type": "link_only",
        "sources": [
            {"name": n, "path": str(tmp_path / f"{n}.csv"), "id_column": "id", "prepare": steps} for n in ("a", "b")
        ],
        "comparisons": [{"kind": "AnyShared"}, {"kind": "AnyShared", "args": {"column": "phones"}}],
        # A list column cannot be a block_on column; SQL rules can ask for a shared value.
        "blocking_rules": [["name"], "list_has_any(l.emails, r.emails)"],
        "judge": {"kind": "none"},
        "output_dir": str(tmp_path / "out"),
        "labels": {"path": str(tmp_path / "labels.jsonl")},
    }
    job = splink_er.prepare(settings, quiet=True)
    job.run()
    got = job.con.execute(
        "SELECT unique_id_l || unique_id_r, gamma_emails, gamma_phones FROM routed JOIN "
        f"{job.inference.scores.name} USING (source_dataset_l, unique_id_l, source_dataset_r, unique_id_r) ORDER BY 1"
    ).fetchall()
    assert got == [("1x", 1, 1), ("2y", -1, -1)]
    job.close()
