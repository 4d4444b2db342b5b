"""The store's hashed blocking keys: the candidates of the string join, kept in step with the stored values."""

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import splink_er
from splink_er.engine import recorded_predict
from splink_er.entities import blocking_keys
from tests.conftest import rows_differing

RULES = [["a"], ["a", "b"], ["b", "c"]]

# Few distinct values and NULLs, so equal values (and NULL on both sides) are common.
VALUE = st.one_of(st.none(), st.sampled_from(["", "x", "y", "xy", "é", "x "]))
ROW = st.tuples(VALUE, VALUE, VALUE)


def _table(con, name, rows, prefix):
    con.execute(
        f"CREATE OR REPLACE TABLE {name} (source_dataset VARCHAR, unique_id VARCHAR, a VARCHAR, b VARCHAR, c VARCHAR)"
    )
    if rows:
        con.executemany(
            f"INSERT INTO {name} VALUES ('s', ?, ?, ?, ?)", [(f"{prefix}{i}", *r) for i, r in enumerate(rows)]
        )


@settings(max_examples=80, deadline=None)
@given(stored=st.lists(ROW, max_size=25), new=st.lists(ROW, min_size=1, max_size=5))
def test_the_keys_find_exactly_the_records_the_string_join_finds(stored, new):
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS st")
    _table(con, "st.values__s", stored, "old")
    _table(con, "new_rows", new, "new")
    blocking_keys.write(con, "st", "s", RULES, None)
    for rule in RULES:
        on = " AND ".join(f"l.{c} = r.{c}" for c in rule)
        by_strings = set(con.execute(f"SELECT unique_id FROM st.values__s l SEMI JOIN new_rows r ON {on}").fetchall())
        by_keys = set(con.execute(blocking_keys.candidates_sql("st.keys__s", rule, "new_rows").replace(
            "SELECT source_dataset, unique_id", "SELECT unique_id", 1)).fetchall())  # fmt: skip
        assert by_keys == by_strings, rule


def test_keys_follow_changed_and_removed_values_and_are_rebuilt_for_other_rules():
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS st")
    _table(con, "st.values__s", [("x", "y", None), ("x", None, "z"), ("q", "y", "z")], "old")
    blocking_keys.write(con, "st", "s", RULES, None)
    # old1 changed, old2 gone, new0 added: the values written as the store writes them, then the keys.
    con.execute("DELETE FROM st.values__s WHERE unique_id IN ('old1', 'old2')")
    con.execute("INSERT INTO st.values__s VALUES ('s', 'old1', 'y', 'y', NULL), ('s', 'new0', 'x', 'y', 'z')")
    changed = "SELECT * FROM (VALUES ('s', 'old1'), ('s', 'old2'), ('s', 'new0')) t(source_dataset, unique_id)"
    blocking_keys.write(con, "st", "s", RULES, changed)
    con.execute("ATTACH ':memory:' AS fresh")
    con.execute("CREATE TABLE fresh.values__s AS SELECT * FROM st.values__s")
    blocking_keys.write(con, "fresh", "s", RULES, None)
    assert rows_differing(con, "st.keys__s", "fresh.keys__s") == 0
    assert con.execute("SELECT count(*) FROM st.keys__s").fetchall()[0][0] == 3
    # Other rules: the keys are rebuilt with their columns, though only some rows changed.
    blocking_keys.write(con, "st", "s", [["c"]], changed)
    assert list(blocking_keys.table_columns(con, "st", "keys__s")) == [
        "source_dataset", "unique_id", blocking_keys.key_column(["c"]),
    ]  # fmt: skip


def test_a_floating_column_or_types_that_differ_keep_the_string_join():
    assert blocking_keys.hashable(["a"], {"a": "VARCHAR"}, {"a": "VARCHAR"})
    assert not blocking_keys.hashable(["a"], {"a": "DOUBLE"}, {"a": "DOUBLE"})  # -0.0 = 0.0, hashes differ
    assert not blocking_keys.hashable(["a"], {"a": "VARCHAR"}, {"a": "BIGINT"})
    assert not blocking_keys.hashable(["a", "b"], {"a": "VARCHAR"}, {"a": "VARCHAR", "b": "VARCHAR"})


def _comparable(resolutions):
    """The resolutions, a new entity's (random) id replaced by its first record: the same grouping compares equal."""
    r = resolutions[["unique_id", "action", "entity_id", "note", "candidates", "match_probability"]].copy()
    inserted = r.action == "INSERT"
    r.loc[inserted, "entity_id"] = r[inserted].groupby("entity_id").unique_id.transform("min")
    return r.sort_values("unique_id").reset_index(drop=True).astype(str)


@pytest.mark.e2e
def test_a_resolve_finds_its_candidates_by_key_and_decides_as_by_strings(stored_demo, monkeypatch, tmp_path, caplog):
    import shutil

    d, _, later = stored_demo("none")
    store = splink_er.load_settings(d).entity_store_path
    con = duckdb.connect()
    con.execute(f"ATTACH '{store}' AS s (READ_ONLY)")
    keys = blocking_keys.table_columns(con, "s", "keys__fake_1000")
    con.close()
    equal_rules = blocking_keys.equality_rules(splink_er.load_settings(d).blocking_rules)
    assert list(keys) == ["source_dataset", "unique_id"] + [blocking_keys.key_column(r) for r in equal_rules]
    # The same records resolved on a copy of the store without its keys (the string join for every rule).
    plain = tmp_path / "plain.duckdb"
    shutil.copy(store, plain)
    con = duckdb.connect(str(plain))
    con.execute("DROP TABLE keys__fake_1000")
    con.close()
    used = []
    real = blocking_keys.candidates_sql
    monkeypatch.setattr(blocking_keys, "candidates_sql", lambda *a: used.append(a[1]) or real(*a))
    recorded_predict.forget()  # Splink's own predict (and its settings check), not a replay of an earlier one
    caplog.clear()
    by_keys = splink_er.resolve(d, later, overrides=["judge.kind=none"]).resolutions
    # The rules narrowed to new records are valid SQL; Splink's check cannot read the subquery: not reported.
    said = [r.getMessage() for r in caplog.records if r.name.startswith("splink_er")]  # what a user is told
    assert not [m for m in said if "SETTINGS VALIDATION" in m or "Invalid Columns" in m]
    assert sorted(map(tuple, used)) == sorted(map(tuple, equal_rules))
    used.clear()
    by_strings = splink_er.resolve(d, later, overrides=["judge.kind=none", f"entities.path={plain}"]).resolutions
    assert used == []
    a, b = (_comparable(r) for r in (by_keys, by_strings))
    assert a.equals(b), a.compare(b).to_string()
    # The resolve's commit wrote the keys of the records it stored (and rebuilt them in the copy).
    con = duckdb.connect()
    for path in (store, plain):
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        assert (
            con.execute("SELECT count(*) FROM s.keys__fake_1000").fetchall()[0][0]
            == con.execute("SELECT count(*) FROM s.values__fake_1000").fetchall()[0][0]
        )
        con.execute("DETACH s")
