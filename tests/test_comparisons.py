"""Named comparison blocks: which level a pair falls in (evaluated by DuckDB, as Splink would), and a full run."""

import duckdb
import pytest

import splink_er
from splink_er.comparisons import build


def rendered(kind: str, args: dict) -> dict:
    """The block as Splink writes it for DuckDB."""
    return build(kind, args).get_comparison("duckdb").as_dict()


def level_of(comparison: dict, left: dict, right: dict) -> str:
    """The label of the first level whose SQL is true for this pair (Splink's CASE order)."""
    row = {f"{k}_l": v for k, v in left.items()} | {f"{k}_r": v for k, v in right.items()}
    con = duckdb.connect()
    cols = ", ".join(f'CAST(? AS VARCHAR) AS "{k}"' for k in row)
    con.execute(f"CREATE TABLE p AS SELECT {cols}", list(row.values()))
    for lv in comparison["comparison_levels"]:
        if lv["sql_condition"] == "ELSE" or con.execute(f"SELECT ({lv['sql_condition']}) FROM p").fetchone()[0]:
            return lv["label_for_charts"]


def person(first, last, middle=None, suffix=None, nickname=None):
    from splink_er.normalize.names import canonical_first

    return {
        "first_name": first,
        "middle_name": middle,
        "last_name": last,
        "name_suffix": suffix,
        "nickname": nickname,
        "first_name_canonical": canonical_first(first),
    }


NAME = rendered("PersonName", {})


@pytest.mark.parametrize(
    "left,right,label",
    [
        (person("BOB", "CASEY", suffix="JR"), person("ROBERT", "CASEY", suffix="SR"), "suffix conflict"),
        (person("MILTON", "FITCH", "F"), person("MILTON", "FITCH", "FREDERICK"), "exact full name"),
        (person("CHARLIE", "CRIST"), person("CHARLES", "CRIST", "JOSEPH"), "same canonical first name"),
        (person("MILTON", "FITCH", nickname="TOBY"), person("TOBY", "FITCH"), "nickname on one side"),
        (person("JOSEPH", "CRIST", "CHARLES"), person("CHARLES", "CRIST"), "first and middle swapped"),
        (person("CARLTON", "BARBER", suffix="II"), person("CARLTON", "BARBER", suffix="JR"), "exact full name"),
        (
            person("ROBERT", "VERGARA", "MORALES"),
            person("ROBERT", "MORALES VERGARA"),
            "same first name, one last name contains",
        ),
        (person("BOB", "CANIPE"), person("ROBERT", "VAN CANIPE"), "same first name, one last name contains"),
        (person("ANN", "LEE"), person("ANN", "LEEDS"), "last Jaro-Winkler >= 0.88"),
        (person("J", "SMITH"), person("JANE", "SMITH"), "initial matches"),
        (person("JONATHAN", "SMITHE"), person("JONATHON", "SMITH"), "first and last Jaro-Winkler >= 0.92"),
        (person("ANN", "SMITH"), person("ZOE", "SMITH"), "same last, first differs"),
        (person("ANN", "LEE"), person("ZOE", "QUILL"), "names differ"),
        (person(None, "LEE"), person("ZOE", "LEE"), "name missing"),
    ],
)
def test_person_name_levels(left, right, label):
    assert level_of(NAME, left, right).startswith(label)


def test_office_and_party_levels():
    office = rendered("Office", {})

    def o(level, role, district):
        return {"office_level": level, "office_role": role, "office_district": district}

    assert (
        level_of(office, o("state", "lower_chamber", "15"), o("state", "lower_chamber", "15"))
        == "same office and district"
    )
    assert (
        level_of(office, o("state", "lower_chamber", "15"), o("state", "lower_chamber", "16"))
        == "same office, different district"
    )
    assert (
        level_of(office, o("state", "lower_chamber", "15"), o("state", "upper_chamber", "15"))
        == "same level, different role"
    )
    party = rendered("Party", {"fusion": [["DEM", "WFP"]]})
    assert level_of(party, {"party": "WFP"}, {"party": "DEM"}).startswith("fusion lines")
    assert level_of(party, {"party": "REP"}, {"party": "DEM"}) == "different party"


def test_unknown_block_argument_is_a_settings_error(demo_dict):
    demo_dict["comparisons"][0] = {"kind": "PersonName", "args": {"frist": "first_name"}}
    with pytest.raises(splink_er.SettingsError, match="PersonName has no argument"):
        splink_er.load_settings(demo_dict)


@pytest.mark.e2e
def test_person_name_block_in_a_run(demo_dict):
    demo_dict["comparisons"] = [
        {
            "kind": "PersonName",
            "args": {"last": "surname", "middle": None, "suffix": None, "nickname": None, "canonical": None},
        }
    ] + demo_dict["comparisons"][2:]
    result = splink_er.run(demo_dict, quiet=True)
    assert result.metrics["f1"] > 0.85
    model = (result.output_dir / "model.json").read_text()
    assert "first and last Jaro-Winkler" in model
