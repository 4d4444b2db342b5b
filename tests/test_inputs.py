import pandas as pd
import pytest

import splink_er
from splink_er import InputError


def _frame():
    return pd.DataFrame(
        {
            "unique_id": ["1", "2", "3"],
            "first_name": ["a", "b", "c"],
            "surname": ["x", "y", "z"],
            "dob": ["2000-01-01"] * 3,
            "city": ["c"] * 3,
            "email": ["e"] * 3,
            "cluster": ["1", "1", "2"],
        }
    )


def _prepare(demo_dict, df):
    demo_dict["sources"][0].pop("path", None)
    return splink_er.prepare(demo_dict, data={"fake_1000": df}, quiet=True)


def test_dataframe_input_works(demo_dict):
    job = _prepare(demo_dict, _frame())
    assert job.loaded.row_counts == {"fake_1000": 3}


def test_missing_column(demo_dict):
    with pytest.raises(InputError, match=r"lacks column\(s\) \['email'\]"):
        _prepare(demo_dict, _frame().drop(columns=["email"]))


def test_duplicate_ids(demo_dict):
    df = _frame()
    df.loc[2, "unique_id"] = "1"
    with pytest.raises(InputError, match="not unique"):
        _prepare(demo_dict, df)


def test_null_ids(demo_dict):
    df = _frame()
    df.loc[1, "unique_id"] = None
    with pytest.raises(InputError, match="null in 1 of 3"):
        _prepare(demo_dict, df)


def test_empty_table(demo_dict):
    with pytest.raises(InputError, match="empty"):
        _prepare(demo_dict, _frame().iloc[0:0])


def test_truth_used_as_feature(demo_dict):
    demo_dict["blocking_rules"].append(["cluster"])
    with pytest.raises(InputError, match="truth column 'cluster' is also used as a matching feature"):
        _prepare(demo_dict, _frame())


def test_truth_used_in_custom_sql(demo_dict):
    demo_dict["routing"]["gates"] = [{"name": "peek", "sql": "cluster_l <> cluster_r"}]
    with pytest.raises(InputError, match="matching feature"):
        _prepare(demo_dict, _frame())


@pytest.mark.e2e
def test_missing_file(demo_dict):
    demo_dict["sources"][0]["path"] = "/nonexistent/file.csv"
    with pytest.raises(InputError, match="file not found"):
        splink_er.prepare(demo_dict, quiet=True)


def test_derive_errors_name_the_source_and_setting(demo_dict):
    """A derive expression that does not bind, and one that fails on a row, are both input errors."""
    demo_dict["sources"][0]["derive"] = {"x": "no_such_function(first_name)"}
    with pytest.raises(InputError, match=r"sources\[fake_1000\]\.derive"):
        _prepare(demo_dict, _frame())
    demo_dict["sources"][0]["derive"] = {"x": "CAST(first_name AS INTEGER)"}
    demo_dict["comparisons"].append({"kind": "ExactMatch", "column": "x"})
    with pytest.raises(InputError, match=r"Source 'fake_1000': preparing the records failed"):
        _prepare(demo_dict, _frame())


@pytest.mark.parametrize("empty", [None, pd.NA])
def test_a_column_with_no_value_at_all_is_prepared_as_null(demo_dict, empty):
    """An e-mail column holding no value (one record sent to resolve without one, a source that has none): the
    e-mail rules' output is null, not a DuckDB binding error, and an all-None object column reads as text."""
    demo_dict["sources"][0]["prepare"] = [{"column": "email", "kind": "email", "into": "email_norm"}]
    df = _frame().astype({"email": object}).assign(email=empty, city=None)
    job = _prepare(demo_dict, df)
    got = job.con.execute("SELECT email_norm, city FROM input_fake_1000").fetchall()
    assert got == [(None, None)] * 3


def test_a_date_column_with_no_value_at_all_is_a_null_date(demo_dict):
    """The all-null shortcut keeps the rule's type: a date rule over no value gives a DATE column, so date
    arithmetic in rules and gates still binds (a resolve sends one source's records; the other is empty)."""
    demo_dict["sources"][0]["prepare"] = [{"column": "dob", "kind": "date", "into": "dob_date"}]
    job = _prepare(demo_dict, _frame().astype({"dob": object}).assign(dob=None))
    kinds = dict(job.con.execute("SELECT column_name, column_type FROM (DESCRIBE input_fake_1000)").fetchall())
    assert kinds["dob_date"] == "DATE"
