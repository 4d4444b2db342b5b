"""The `clean` prepare step: regular-expression replacements on a column before the steps listed after it, so a
source's own damage (lost quotes, markers) is repaired before the name parser reads it."""

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import splink_er
from splink_er.normalize import normalizer_for
from splink_er.normalize.names import parse_name
from splink_er.settings import CleanPrepare

# A source that writes a nickname between << >> where others quote it.
ANGLED = {"pattern": "<<([^>]*)>>", "replacement": '"\\1"'}


def settings_with(prepare: list, demo_dict: dict) -> dict:
    return {
        "name": "clean",
        "link_type": "dedupe_only",
        "sources": [{"name": "c", "id_column": "id", "prepare": prepare, "derive": {"seen": "full_name"}}],
        "comparisons": [{"kind": "ExactMatch", "column": "last_name"}],
        "blocking_rules": [["last_name"]],
        "judge": {"kind": "none"},
        "columns_to_keep": ["seen", "nickname", "first_name"],
        "output_dir": demo_dict["output_dir"],
        "labels": demo_dict["labels"],
    }


@pytest.mark.e2e
def test_clean_runs_before_the_steps_after_it_and_derive_sees_it(demo_dict):
    raws = ["McKeon, Howard P. <<Buck>>", "<<Jack>> Radosta"]
    frame = pd.DataFrame({"id": ["1", "2"], "full_name": raws})
    prepare = [
        {"column": "full_name", "kind": "clean", "replace": [ANGLED]},
        {"column": "full_name", "kind": "person_name"},
    ]
    job = splink_er.prepare(settings_with(prepare, demo_dict), data={"c": frame}, quiet=True)
    rows = job.con.execute(
        f"SELECT seen, nickname, first_name, last_name FROM {job.loaded.tables['c']} ORDER BY unique_id"
    ).fetchall()
    fixed = [r.replace("<<", '"').replace(">>", '"') for r in raws]
    expected = [(f, parse_name(f)["nickname"], parse_name(f)["first_name"], parse_name(f)["last_name"]) for f in fixed]
    assert rows == expected and all(r[1] for r in rows)
    # Without the clean step the parser does not see a nickname there.
    assert not any(parse_name(r)["nickname"] for r in raws)


@pytest.mark.e2e
def test_clean_into_a_new_column_keeps_the_raw_one(demo_dict):
    frame = pd.DataFrame({"id": ["1", "2"], "full_name": ["Maria Vel___quez", "Ann Lee"]})
    fix = {"pattern": "Vel_+quez", "replacement": "Velázquez"}  # a name the user knows this source damages
    prepare = [{"column": "full_name", "kind": "clean", "into": "name_fixed", "replace": [fix]}]
    s = settings_with(prepare, demo_dict) | {"columns_to_keep": ["seen", "name_fixed"]}
    s["comparisons"] = [{"kind": "ExactMatch", "column": "full_name"}]
    s["blocking_rules"] = [["full_name"]]
    job = splink_er.prepare(s, data={"c": frame}, quiet=True)
    got = job.con.execute(f"SELECT seen, name_fixed FROM {job.loaded.tables['c']} ORDER BY unique_id").fetchall()
    assert got == [("Maria Vel___quez", "Maria Velázquez"), ("Ann Lee", "Ann Lee")]


@pytest.mark.parametrize(
    "replace,says",
    [
        ({"pattern": "??"}, "no argument for repetition operator.*backslash before \\?"),
        ({"pattern": "(?<=a)b"}, "invalid perl operator.*no look-behind"),
        ({"pattern": "(a", "replacement": "x"}, "missing \\).*backslash before"),
        ({"pattern": "a", "replacement": "\\1"}, "requests 1 matches.*only for groups the pattern has"),
    ],
)
def test_a_bad_pattern_is_a_settings_error_saying_what_to_change(demo_dict, replace, says):
    prepare = [{"column": "full_name", "kind": "clean", "replace": [{"pattern": "x"}, replace]}]
    where = r"sources\.0\.prepare\.0\.replace\.1: DuckDB cannot use pattern"
    with pytest.raises(splink_er.SettingsError, match=f"{where}.*{says}"):
        splink_er.load_settings(settings_with(prepare, demo_dict))


def test_a_clean_step_after_a_step_reading_its_column_is_refused(demo_dict):
    prepare = [
        {"column": "full_name", "kind": "person_name"},
        {"column": "full_name", "kind": "clean", "replace": [ANGLED]},
    ]
    with pytest.raises(splink_er.SettingsError, match=r"prepare\[1\] \(clean\).*prepare\[0\] \(person_name\).*first"):
        splink_er.load_settings(settings_with(prepare, demo_dict))
    # Into a new column it reads nothing a step before it read: allowed.
    prepare[1]["into"] = "full_name_clean"
    assert splink_er.load_settings(settings_with(prepare, demo_dict)).sources[0].prepare[1].kind == "clean"


def test_a_record_sent_to_resolve_must_bring_the_column_a_clean_step_rewrites(demo_dict):
    from splink_er.resolving import input_columns

    prepare = [
        {"column": "full_name", "kind": "clean", "replace": [ANGLED]},
        {"column": "full_name", "kind": "person_name"},
    ]
    s = splink_er.load_settings(settings_with(prepare, demo_dict))
    assert "full_name" in input_columns(s, s.sources[0])


IDEMPOTENT = [
    [{"pattern": "_+"}],  # lost letters dropped
    [{"pattern": "\\s+", "replacement": " "}],  # whitespace runs made one space
    [{"pattern": "\\?\\?+", "replacement": '"'}, {"pattern": '""+', "replacement": '"'}],  # lost quotes
    [ANGLED],
]


@settings(max_examples=150, deadline=None)
@given(
    replace=st.sampled_from(IDEMPOTENT),
    values=st.lists(
        st.one_of(st.text(max_size=30), st.lists(st.sampled_from(list('ab _?"<> ')), max_size=15).map("".join)),
        min_size=1,
        max_size=8,
    ),
)
def test_cleaning_twice_is_cleaning_once_for_idempotent_patterns(replace, values):
    clean = normalizer_for(CleanPrepare(column="v", kind="clean", replace=replace))
    once, twice = clean.sql_expression("v"), clean.sql_expression(clean.sql_expression("v"))
    con = duckdb.connect()
    con.register("t", pd.DataFrame({"v": values}, dtype="string"))
    rows = con.execute(f"SELECT {once}, {twice} FROM t").fetchall()
    assert all(a == b for a, b in rows) and len(rows) == len(values)
    assert all(a is None or a != "" for a, _ in rows)  # cleaned to nothing is null
