"""The party normalizer: words, codes, wrappers and hidden characters as one code; the shipped table covers every
party value of the repository's election data; a Party comparison on its output knows the fusion lines."""

import csv
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import splink_er
from splink_er.model import splink_settings_dict
from splink_er.normalize import normalizer_for
from splink_er.normalize.parties import fusion_pairs, parse_party, party_fields, table, unmapped
from splink_er.settings import PartyPrepare

REPO = Path(__file__).resolve().parent.parent


def code(raw):
    return party_fields(raw)["code"]


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Democratic", "DEM"),
        ("democrat", "DEM"),
        ("Republican Party", "REP"),
        ("The Republican Party", "REP"),
        ("Democratic-Farmer-Labor", "DEM"),  # Minnesota's Democratic Party
        ("DFL", "DEM"),
        ("Working Families", "WF"),
        ("Working Families Party", "WF"),
        ("Libertarian", "LIB"),
        ("Green-Rainbow", "GRE"),  # Massachusetts' Green Party
        ("Independent Party", "IP"),  # not Independent (IND): the whole name is read before PARTY is dropped
    ],
)
def test_words(raw, expected):
    assert code(raw) == expected


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("DEM", "DEM"),
        ("REP", "REP"),
        ("D", "DEM"),
        ("R", "REP"),
        ("DFL", "DEM"),
        ("WF", "WF"),
        ("LIB", "LIB"),
        ("LBT", "LIB"),
        ("GRE", "GRE"),
        ("GRN", "GRE"),
        ("IND", "IND"),
        ("I", "IND"),
        ("CON", "CON"),
        ("CST", "CON"),  # NC's code for the Constitution Party
        ("CRV", "CRV"),
        ("NPA", "NPA"),
        ("UNA", "UN"),
        ("lib", "LIB"),
        ("IP*", "IP"),  # a results file's footnote mark
    ],
)
def test_codes(raw, expected):
    assert code(raw) == expected


@pytest.mark.parametrize("raw", ["REP\u00a0", "\u00a0REP", "R\u200b", "REP\t", " Republican\u00a0Party "])
def test_hidden_characters(raw):
    assert code(raw) == "REP"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("W(R)", {"code": "REP", "write_in": True, "nominee": False, "combined": False}),
        ("W (D)", {"code": "DEM", "write_in": True, "nominee": False, "combined": False}),
        ("W(DEM", {"code": "DEM", "write_in": True, "nominee": False, "combined": False}),
        ("W(R)/R", {"code": "REP", "write_in": True, "nominee": False, "combined": False}),
        ("W(D)/R", {"code": "REP", "write_in": True, "nominee": False, "combined": False}),  # plain line first
        ("W", {"code": None, "write_in": True, "nominee": False, "combined": False}),
        ("N(D)", {"code": "DEM", "write_in": False, "nominee": True, "combined": False}),
        ("N(REP)", {"code": "REP", "write_in": False, "nominee": True, "combined": False}),
        ("(N)NL", {"code": "NLP", "write_in": False, "nominee": True, "combined": False}),
        ("N", {"code": "N", "write_in": False, "nominee": False, "combined": False}),  # Nonpartisan, no wrapper
        ("I (GRN)", {"code": "GRE", "write_in": False, "nominee": False, "combined": False}),
        ("D/WF Combined Parties", {"code": "DEM", "write_in": False, "nominee": False, "combined": True}),
        ("R/CRV/IDP Combined Parties", {"code": "REP", "write_in": False, "nominee": False, "combined": True}),
        ("D/WF", {"code": "DEM", "write_in": False, "nominee": False, "combined": True}),
        ("R and R/D", {"code": "REP", "write_in": False, "nominee": False, "combined": True}),
        ("Combined Parties:", {"code": None, "write_in": False, "nominee": False, "combined": True}),
        ("REP/W***", {"code": "REP", "write_in": True, "nominee": False, "combined": False}),
    ],
)
def test_wrappers_and_combined_rows(raw, expected):
    assert parse_party(raw) == expected


@pytest.mark.parametrize("raw", ["Narnia", "XYZ", "D/XYZ", "W(XYZ)", "N(Narnia)", "Whig Party of Atlantis"])
def test_unknown_values_get_no_code_and_are_listed(raw):
    assert parse_party(raw) is None
    assert party_fields(raw) == dict.fromkeys(["code", "write_in", "nominee", "combined"])
    assert unmapped(["DEM", raw, "W(R)"]) == [raw]


@pytest.mark.parametrize("raw", [None, "", "   ", "n/a", "\u00a0"])
def test_missing_values_are_null_not_unknown(raw):
    assert party_fields(raw)["code"] is None
    assert unmapped([raw]) == []


def test_user_aliases_come_before_the_table():
    # A New York board writes CON for the Conservative Party; in FEC codes CON is the Constitution Party.
    aliases = {"CON": "CRV"}
    assert code("CON") == "CON"
    assert party_fields("CON", aliases)["code"] == "CRV"
    assert party_fields("R/CON", aliases)["combined"] is True
    # In settings, an alias's code is one of the table's (upper-cased); an unknown code says what to use.
    from splink_er.settings import PartyPrepare

    assert PartyPrepare(column="p", kind="party", aliases={"CON": "crv"}).aliases == {"CON": "CRV"}
    with pytest.raises(ValueError, match=r"codes the party table does not have: \['XYZ'\]"):
        PartyPrepare(column="p", kind="party", aliases={"CON": "XYZ"})


codes_and_names = st.sampled_from(sorted(table()))


@given(st.text())
def test_never_raises_on_any_text(raw):
    fields = party_fields(raw)
    assert fields["code"] is None or fields["code"] in set(table().values())


@given(codes_and_names)
def test_idempotent_on_the_canonical_code(raw):
    c = code(raw)
    assert c is not None
    assert code(c) == c
    assert code(c + "\u00a0") == c


def test_table_is_well_formed():
    rows = list(csv.DictReader((REPO / "splink_er/normalize/data/parties.csv").open(encoding="utf-8")))
    codes = [r["code"] for r in rows]
    assert len(codes) == len(set(codes)), "one row per code"
    assert all(r["name"].strip() for r in rows), "every code has a name"
    # Every fusion pair names two codes of the table.
    assert {c for pair in fusion_pairs() for c in pair} <= set(codes)


def _repo_party_values() -> set[str]:
    kw = {"dtype": str, "keep_default_na": False}
    values = set(pd.read_csv(REPO / "data/fec/fec_2008_2014.csv", **kw)["party"])
    for path in sorted((REPO / "data/ncsbe").glob("*.csv")):
        frame = pd.read_csv(path, **kw)
        for col in frame.columns:
            if col.startswith("party"):
                values |= set(frame[col])
    return values


def test_every_party_value_of_the_repo_data_maps():
    values = _repo_party_values()
    assert {"DEM", "REP", "D/WF Combined Parties", "W(R)", "N(D)", "UNA"} <= values  # the data was read
    missing = unmapped(values)
    assert not missing, f"party values the table does not read (add them to parties.csv): {missing}"


def test_every_party_value_of_the_full_datasets_maps():
    # The full FEC 2000-2014 and NCSBE 2020-2025 files' values that the slices above lack (tests/data/README.md).
    rows = list(csv.DictReader((REPO / "tests/data/party_values.csv").open(encoding="utf-8")))
    assert len(rows) > 100
    missing = unmapped(r["value"] for r in rows)
    assert not missing, f"party values the table does not read (add them to parties.csv): {missing}"


def test_normalizer_columns_and_types():
    n = normalizer_for(PartyPrepare(column="party", kind="party"))
    assert n.output_columns() == ["party_norm", "party_write_in", "party_nominee", "party_combined"]
    assert n.normalize_values(["W(R)", "Narnia"]) == [["W(R)", "REP", True, False, False], ["Narnia"] + [None] * 4]
    n = normalizer_for(PartyPrepare(column="p", kind="party", into="party_code", aliases={"con": "CRV"}))
    assert n.output_columns() == ["party_code", "party_code_write_in", "party_code_nominee", "party_code_combined"]
    assert n.normalize_values(["Con"]) == [["Con", "CRV", False, False, False]]


def _settings(demo_dict, party_args: dict, prepare: bool = True) -> dict:
    src = demo_dict["sources"][0]
    if prepare:
        src["prepare"] = src.get("prepare", []) + [{"column": "party", "kind": "party"}]
    src["derive"] = {**src.get("derive", {}), "party": "'DEM'"}
    demo_dict["comparisons"].append({"kind": "Party", "args": party_args})
    return demo_dict


def _party_levels(settings) -> list[str]:
    comps = splink_settings_dict(splink_er.load_settings(settings))["comparisons"]
    party = next(c for c in comps if c["output_column_name"] == "party")
    return [lv["label_for_charts"] for lv in party["comparison_levels"]]


def test_party_comparison_takes_the_shipped_fusion_pairs_on_a_party_prepare_output(demo_dict):
    import copy

    fusion = "fusion lines of one candidate (e.g. DEM and WFP)"
    assert fusion in _party_levels(_settings(copy.deepcopy(demo_dict), {"column": "party_norm"}))
    # Opting out, and an existing setting on a column no party step writes: no fusion level, as before.
    assert fusion not in _party_levels(_settings(copy.deepcopy(demo_dict), {"column": "party_norm", "fusion": []}))
    assert fusion not in _party_levels(_settings(copy.deepcopy(demo_dict), {"column": "party"}, prepare=False))


@pytest.mark.e2e
def test_party_prepare_step_in_a_job(demo_dict):
    frame = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4", "5"],
            "party": ["Democratic", "REP\u00a0", "W(R)", "D/WF Combined Parties", "Narnia"],
        }
    )
    settings = {
        "name": "p",
        "link_type": "dedupe_only",
        "sources": [{"name": "p", "id_column": "id", "prepare": [{"column": "party", "kind": "party"}]}],
        "comparisons": [{"kind": "Party", "args": {"column": "party_norm"}}],
        "blocking_rules": [["party_norm"]],
        "columns_to_keep": ["party", "party_norm", "party_write_in", "party_nominee", "party_combined"],
        "judge": {"kind": "none"},
        "output_dir": demo_dict["output_dir"],
        "labels": demo_dict["labels"],
    }
    job = splink_er.prepare(settings, data={"p": frame}, quiet=True)
    table_name = job.loaded.tables["p"]
    rows = job.con.execute(
        f"SELECT unique_id, party_norm, party_write_in, party_nominee, party_combined FROM {table_name} ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("1", "DEM", False, False, False),
        ("2", "REP", False, False, False),
        ("3", "REP", True, False, False),
        ("4", "DEM", False, False, True),
        ("5", None, None, None, None),
    ]
    # Unknown values stay listable from the prepared table: the raw value is kept next to a null code.
    unknown = job.con.execute(f"SELECT DISTINCT party FROM {table_name} WHERE party_norm IS NULL").fetchall()
    assert unknown == [("Narnia",)]
