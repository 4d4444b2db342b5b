"""The serving indexes of the entity store (entities/serving_indexes.py) and the store the service keeps attached
(engine/warm.py): built once, answering a resolve's lookups, surviving batch runs, never changing an answer."""

import shutil
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

import splink_er
from splink_er.cli import app
from splink_er.engine.warm import WarmConnection
from splink_er.entities import serving_indexes
from splink_er.entities.store import ALIAS, EntityStore

pytestmark = pytest.mark.e2e


def indexed(path) -> set[str]:
    con = duckdb.connect()
    try:
        EntityStore(con, path)
        return serving_indexes.present(con, ALIAS)
    finally:
        con.close()


def test_the_cli_indexes_the_store_and_lookups_use_the_indexes(stored_demo, tmp_path):
    d, _, _ = stored_demo("none")
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(d))
    store_path = splink_er.load_settings(d).entity_store_path
    assert indexed(store_path) == set()  # a batch run alone does not index

    r = CliRunner().invoke(app, ["entities", "index", str(path)])
    assert r.exit_code == 0, r.output
    con = duckdb.connect()
    store = EntityStore(con, store_path)
    wanted = serving_indexes.wanted(con, ALIAS)
    assert {t for t, _ in wanted} >= {"membership", "records", "entities", "values__fake_1000"}
    assert any(t.startswith("keys__") for t, _ in wanted)  # each hashed blocking key
    assert serving_indexes.present(con, ALIAS) == {serving_indexes.index_name(t, c) for t, c in wanted}

    # A few records' rows are looked up, not scanned: DuckDB's plan says Index Scan (it would say Sequential Scan
    # for a lookup on both columns, which no one-column index serves).
    serving_indexes.for_lookups(con)
    ids = [r[0] for r in con.execute(f"SELECT unique_id FROM {store.table('membership')} LIMIT 3").fetchall()]
    con.execute("CREATE TEMP TABLE wanted AS SELECT 'fake_1000' AS source_dataset, unnest(?) AS unique_id", [ids])
    plan = con.execute("EXPLAIN ANALYZE " + store.lookup_sql("membership", "SELECT * FROM wanted")).fetchall()[0][1]
    assert "Index Scan" in plan, plan
    con.close()

    r = CliRunner().invoke(app, ["entities", "index", str(path)])
    assert r.exit_code == 0 and "indexed already" in r.output
    r = CliRunner().invoke(app, ["entities", "index", str(path), "--drop"])
    assert r.exit_code == 0 and indexed(store_path) == set()


def test_rows_of_keeps_only_the_exact_records_when_an_id_repeats_across_sources(tmp_path):
    con = duckdb.connect()
    store = EntityStore(con, tmp_path / "s.duckdb")
    con.execute(f"""INSERT INTO {store.table("membership")} VALUES
        ('crm', '1', 'e1', 'r'), ('official', '1', 'e2', 'r'), ('crm', '2', 'e3', 'r')""")
    serving_indexes.ensure(con, ALIAS)
    con.execute("CREATE TEMP TABLE asked AS SELECT 'official' AS source_dataset, '1' AS unique_id")
    got = store.rows_of("membership", "SELECT * FROM asked", "found")
    assert con.execute(f"SELECT source_dataset, unique_id, entity_id FROM {got}").fetchall() == [
        ("official", "1", "e2")
    ]
    con.close()


def test_a_batch_run_keeps_an_indexed_store_indexed(stored_demo, monkeypatch, caplog):
    """A batch run's commit drops the serving indexes before rewriting and builds them after it (seen empty when
    the rebuild starts); a rebuild that fails loses no run: the run finishes, and says how to build them."""
    from splink_er.entities import store as store_module

    d, _, _ = stored_demo("none")
    store_path = splink_er.load_settings(d).entity_store_path
    con = duckdb.connect()
    EntityStore(con, store_path)
    serving_indexes.ensure(con, ALIAS)
    con.close()
    before = indexed(store_path)
    real, seen = serving_indexes.ensure, []

    def ensure(con, database):
        seen.append(serving_indexes.present(con, database))
        return real(con, database)

    monkeypatch.setattr(store_module.serving_indexes, "ensure", ensure)
    splink_er.run(d, quiet=True)  # commits every record again
    assert seen == [set()] and indexed(store_path) == before

    def failing(con, database):
        raise duckdb.IOException("No space left on device (simulated)")

    monkeypatch.setattr(store_module.serving_indexes, "ensure", failing)
    splink_er.run(d, quiet=True)
    assert indexed(store_path) == set() and "entities index" in caplog.text


def test_a_kept_store_answers_as_a_fresh_one_and_is_let_go_when_idle(stored_demo):
    """WarmConnection(keep=...): resolves on an indexed store kept attached give the answers of fresh databases on
    the unindexed store; between requests the store and its file lock stay held (another process gets Busy),
    and `idle_seconds` after the last request both are released."""
    d, _, later = stored_demo("truth")
    store = splink_er.load_settings(d).entity_store_path
    shutil.copy(store, store.with_name("pristine.duckdb"))
    batches = [later.iloc[:40], later.iloc[40:41], later.iloc[41:]]
    o = ["judge.kind=none"]

    def answers(done):
        # Entities a resolve creates get new uuids: the partition of records into entities is compared instead.
        cols = ["unique_id", "action", "decided_by", "note", "match_probability", "entity_id"]
        return done.resolutions[cols].astype(str)

    def partition(frame):
        return set(frame.groupby("entity_id").unique_id.apply(frozenset))

    cold = [answers(splink_er.resolve(d, b, overrides=o)) for b in batches]
    shutil.copy(store.with_name("pristine.duckdb"), store)
    warm = WarmConnection(keep=(ALIAS, store), idle_seconds=1.0, wait_seconds=0)
    with warm.use() as con:
        assert serving_indexes.ensure(con, ALIAS)
    clean = warm._objects()
    other = f"from splink_er.locks import hold; hold({str(store)!r}, 'entity store', 0)"
    try:
        for b, expected in zip(batches, cold, strict=True):
            got = answers(splink_er.resolve(d, b, overrides=o, warm=warm))
            pd.testing.assert_frame_equal(got.drop(columns="entity_id"), expected.drop(columns="entity_id"))
            assert partition(got) == partition(expected)
            assert warm._objects() == clean  # nothing of the request is left, and the store's tables are kept
            attached = {r[0] for r in warm.con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
            assert ALIAS in attached
        busy = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True)
        assert busy.returncode != 0 and "Busy" in busy.stderr
        time.sleep(2.5)  # idle: detached, unlocked
        attached = {r[0] for r in warm.con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        assert ALIAS not in attached
        free = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True)
        assert free.returncode == 0, free.stderr
    finally:
        warm.close()
