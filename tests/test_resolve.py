"""Resolving new records against the entity store: MERGE / REVIEW / INSERT, idempotent, one transaction."""

import json

import duckdb
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import splink_er
from splink_er import InputError, SettingsError
from splink_er.cli import app

pytestmark = pytest.mark.e2e


@pytest.fixture
def stored(stored_demo):
    """A batch run over 90% of the demo's records (the SIMULATED truth judge), and the other 10%, new ids."""
    return stored_demo("truth")


def store_rows(d, sql):
    con = duckdb.connect()
    con.execute(f"ATTACH '{splink_er.load_settings(d).entity_store_path}' AS s (READ_ONLY)")
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_new_records_merge_review_or_insert_and_sending_them_again_changes_nothing(stored):
    d, first, later = stored
    done = splink_er.resolve(d, later, overrides=["judge.kind=none"])
    r = done.resolutions.set_index("unique_id")
    assert len(r) == len(later) and set(r.action) <= {"MERGE", "REVIEW", "INSERT"}
    assert set(r.action) >= {"MERGE", "INSERT"}
    # A MERGE joins a stored entity; its best evidence is an accepted pair.
    members = store_rows(d, "SELECT unique_id, entity_id FROM s.membership").set_index("unique_id").entity_id
    merged = r[r.action == "MERGE"]
    assert merged.entity_id.isin(set(first.clusters.entity_id)).all()
    assert (members.loc[merged.index] == merged.entity_id).all()
    assert not set(r[r.action == "REVIEW"].index) & set(members.index)  # review waits outside every entity
    # Against the (SIMULATED) truth: a merged record's entity holds someone with its cluster.
    truth = dict(zip(first.clusters.unique_id, first.clusters.entity_id))
    cluster_of = pd.read_csv(d["sources"][0]["path"], dtype=str).set_index("unique_id").cluster
    right = [
        any(truth.get(u) == e for u in cluster_of[cluster_of == later.set_index("unique_id").cluster[k]].index)
        for k, e in merged.entity_id.items()
    ]
    assert sum(right) / len(right) >= 0.9
    # The change feed says what joined where.
    events = store_rows(d, f"SELECT * FROM s.events WHERE run_id = '{done.run_id}'")
    added = events[events.event == "record_added"]
    assert set(added.unique_id) & set(r.index) == set(r[r.action != "REVIEW"].index)
    # Stored records moved only where a new record joined their entity to an older one (a merge).
    moved = added[~added.unique_id.isin(r.index)]
    merged_away = set(events[events.event == "merged"].other_entity_id)
    assert set(moved.other_entity_id) <= merged_away
    assert (events.event == "created").sum() == r[r.action == "INSERT"].entity_id.nunique()
    assert pd.read_parquet(done.path).shape[0] == len(later)
    # Sent again unchanged: the same actions and entities, nothing written.
    again = splink_er.resolve(d, later, overrides=["judge.kind=none"])
    a = again.resolutions.set_index("unique_id").reindex(r.index)
    kept = r.action != "REVIEW"
    assert (a.action[kept] == r.action[kept]).all() and (a.entity_id[kept] == r.entity_id[kept]).all()
    assert (a.decided_by[kept] == "sent before, unchanged").all()
    assert store_rows(d, "SELECT count(*) AS n FROM s.membership").n[0] == len(members)
    assert store_rows(d, f"SELECT count(*) AS n FROM s.events WHERE run_id = '{again.run_id}'").n[0] == 0
    assert store_rows(d, f"SELECT count(*) AS n FROM s.runs WHERE run_id = '{again.run_id}'").n[0] == 0
    assert (a.action == r.action).all()  # records waiting for review still wait, and say so


def test_a_changed_record_is_resolved_again_and_leaves_its_old_entity(stored):
    d, first, later = stored
    done = splink_er.resolve(d, later, overrides=["judge.kind=none"])
    merged = done.resolutions.query("action == 'MERGE'").iloc[0]
    changed = later[later.unique_id == merged.unique_id].assign(
        first_name="Zebulon", surname="Quixote", dob="1901-01-01", city="Nowhere", email="zq@example.invalid"
    )
    again = splink_er.resolve(d, changed, overrides=["judge.kind=none"])
    row = again.resolutions.iloc[0]
    assert row.action == "INSERT" and row.entity_id != merged.entity_id
    events = store_rows(d, f"SELECT event, entity_id FROM s.events WHERE run_id = '{again.run_id}'")
    assert ("record_removed", merged.entity_id) in set(zip(events.event, events.entity_id))


def test_the_cli_resolves_a_file_and_errors_say_what_to_run_first(stored, tmp_path):
    d, first, later = stored
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d))
    later.to_csv(tmp_path / "new.csv", index=False)
    r = CliRunner().invoke(app, ["resolve", str(path), str(tmp_path / "new.csv"), "--json", "--set", "judge.kind=none"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert sum(summary["counts"].values()) == len(later) and summary["resolutions"].endswith(".parquet")
    fresh = dict(d, output_dir=str(tmp_path / "none"), labels={"path": str(tmp_path / "none" / "l.jsonl")})
    with pytest.raises(SettingsError, match="run `splink-er run` first"):
        splink_er.resolve(fresh, later)
    with pytest.raises(InputError, match="no entity store"):
        splink_er.resolve(dict(fresh, model=str(first.output_dir / "model.json")), later)


def test_records_held_for_review_are_answered_in_the_review_file_and_decided_when_sent_again(stored, tmp_path):
    d, first, later = stored
    done = splink_er.resolve(d, later, overrides=["judge.kind=none"])
    held = set(done.resolutions.query("action == 'REVIEW'").unique_id)
    assert held and done.review is not None and done.review.exists()
    queue = pd.read_csv(done.review, dtype=str, keep_default_na=False)
    assert held <= set(queue.unique_id_l) | set(queue.unique_id_r)
    # A person answers (here: the SIMULATED truth answers for them), the answers become human labels.
    cluster = pd.concat([pd.read_csv(d["sources"][0]["path"], dtype=str), later]).set_index("unique_id").cluster
    queue["answer"] = [
        "match" if cluster[a] == cluster[b] else "non-match" for a, b in zip(queue.unique_id_l, queue.unique_id_r)
    ]
    queue.to_csv(done.review, index=False)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d))
    r = CliRunner().invoke(app, ["review", "import", str(path), str(done.review)])
    assert r.exit_code == 0, r.output
    again = splink_er.resolve(d, later[later.unique_id.isin(held)], overrides=["judge.kind=none"])
    decided = again.resolutions.set_index("unique_id")
    assert (decided.action != "REVIEW").mean() >= 0.9  # the answers decide (a new band pair may still ask)
    assert set(decided.decided_by) & {"human"}


def test_a_replayed_predict_equals_splinks_own_to_the_last_bit(demo_dict):
    """engine/recorded_predict.py: Splink's predict SQL recorded in one session and replayed in another gives the
    very rows Splink's predict gives there (every column, every bit), with and without term frequencies."""
    from splink_er.engine import recorded_predict

    demo_dict["engine"] = {"materialisation": "table"}
    rows = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
    trained = splink_er.prepare(demo_dict, quiet=True)
    model = trained.bootstrap()
    recorded_predict.forget()
    other = dict(model, probability_two_random_records_match=model["probability_two_random_records_match"] / 2)
    # The second session replays the first's recording; the third has another model, so it records anew.
    for data, scoring in ((rows.head(600), model), (rows.tail(500), model), (rows.tail(500), other)):
        job = splink_er.prepare(demo_dict, data={"fake_1000": data}, quiet=True)
        backend = job.session.backend
        backend.replay_predict = True
        job.con.execute(f"CREATE TABLE replayed AS SELECT * FROM {backend.predict(scoring).source_sql}")
        replayed, own = "replayed", backend._splink_predict(scoring).source_sql
        n = job.con.execute(f"SELECT count(*) FROM {own}").fetchall()[0][0]
        differ = job.con.execute(
            f"SELECT count(*) FROM ((SELECT * FROM {own} EXCEPT ALL SELECT * FROM {replayed}) "
            f"UNION ALL (SELECT * FROM {replayed} EXCEPT ALL SELECT * FROM {own}))"
        ).fetchall()[0][0]
        assert n > 1000 and differ == 0
        assert any(c.startswith("tf_") for c in job.con.execute(f"SELECT * FROM {own} LIMIT 0").df().columns)
    assert len(recorded_predict._RECORDED) == 2


def test_new_entities_get_scoped_ids_that_never_repeat_a_stored_one(demo_dict, tmp_path):
    rows = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
    rows.iloc[:-40].to_csv(tmp_path / "base.csv", index=False)
    demo_dict["sources"][0]["path"] = str(tmp_path / "base.csv")
    demo_dict.update(judge={"kind": "none"}, entities={"id_template": "person:{surname}-{seq}"})
    first = splink_er.run(demo_dict, quiet=True)
    done = splink_er.resolve(demo_dict, rows.iloc[-40:].assign(unique_id=lambda f: "n" + f.unique_id))
    inserted = done.resolutions.query("action == 'INSERT'")
    assert len(inserted) and inserted.entity_id.str.match(r"^person:[a-z0-9-]+-\d+$").all()
    assert not set(inserted.entity_id) & set(first.clusters.entity_id)


def test_a_record_joining_two_entities_merges_them_or_waits_when_a_label_says_they_differ(demo_dict, tmp_path):
    """Two records of one person kept apart by a gate in the run; a third copy arrives (the gate gone) and is
    accepted into both entities: with entities.bridges merge (the default) the older entity absorbs the other (a
    `merged` event, the other retired pointing to it); with a label saying they differ, or bridges review, the
    record waits for review."""
    rows = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
    sizes = rows.groupby("cluster").unique_id.transform("size")
    pair = rows[(sizes == 2) & rows.email.notna() & rows.dob.notna()].groupby("cluster").head(2)
    a, b = pair.unique_id.iloc[0], pair.unique_id.iloc[1]
    demo_dict["judge"] = {"kind": "none"}
    gated = dict(
        demo_dict,
        routing={
            "gates": [{"name": "apart", "sql": f"unique_id_l IN ('{a}', '{b}') AND unique_id_r IN ('{a}', '{b}')"}]
        },
    )
    first = splink_er.run(gated, quiet=True)
    ids = first.clusters.set_index("unique_id").entity_id
    assert ids[a] != ids[b]
    copy = rows[rows.unique_id == a].assign(unique_id="copy-of-" + a)
    store = splink_er.load_settings(demo_dict).entity_store_path
    before = tmp_path / "before.duckdb"
    before.write_bytes(store.read_bytes())

    done = splink_er.resolve(demo_dict, copy).resolutions.iloc[0]
    assert done.action == "MERGE" and done.note == "joined 2 entities into one"
    survivor, retired = done.entity_id, ({ids[a], ids[b]} - {done.entity_id}).pop()
    events = store_rows(demo_dict, "SELECT event, entity_id, other_entity_id FROM s.events ORDER BY seq DESC")
    assert ("merged", survivor, retired) in set(events.itertuples(index=False, name=None))
    assert ("retired", retired, survivor) in set(events.itertuples(index=False, name=None))
    members = store_rows(demo_dict, "SELECT unique_id, entity_id FROM s.membership").set_index("unique_id").entity_id
    assert members[a] == members[b] == members[copy.unique_id.iloc[0]] == survivor

    store.write_bytes(before.read_bytes())  # the same arrival, with bridges review
    waits = splink_er.resolve(demo_dict, copy, overrides=["entities.bridges=review"]).resolutions.iloc[0]
    assert waits.action == "REVIEW" and waits.note == "accepted into 2 entities"

    store.write_bytes(before.read_bytes())  # the same arrival, with a person's label saying a and b differ
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(demo_dict))
    r = CliRunner().invoke(app, ["label", str(path), "--pair", a, b, "--non-match"])
    assert r.exit_code == 0, r.output
    labelled = splink_er.resolve(demo_dict, copy).resolutions.iloc[0]
    assert labelled.action == "REVIEW" and labelled.note == "accepted into 2 entities"


def test_resolves_on_one_warm_connection_answer_as_on_fresh_ones_and_leave_nothing_behind(stored):
    """The service's warm DuckDB connection (engine/warm.py): requests in a row, one failing halfway, give the
    resolutions fresh databases give, and each leaves the connection as it found it."""
    import shutil

    from splink_er.engine.warm import WarmConnection

    d, _, later = stored
    store = splink_er.load_settings(d).entity_store_path
    shutil.copy(store, store.with_name("pristine.duckdb"))
    batches = [later.iloc[:40], later.iloc[40:41], later.iloc[41:]]
    o = ["judge.kind=none"]

    def answers(done):
        return done.resolutions[["unique_id", "action", "entity_id", "decided_by", "note"]].astype(str)

    cold = [answers(splink_er.resolve(d, b, overrides=o)) for b in batches]
    shutil.copy(store.with_name("pristine.duckdb"), store)
    warm = WarmConnection()
    clean, con = warm._objects(), warm.con
    got = []
    for i, b in enumerate(batches):
        got.append(answers(splink_er.resolve(d, b, overrides=o, warm=warm)))
        assert warm._objects() == clean, f"request {i} left relations behind"
        with pytest.raises(InputError):  # a repeated id: fails once the records are loaded
            splink_er.resolve(d, pd.concat([b, b]), overrides=o, warm=warm)
        assert warm._objects() == clean
    assert warm.con is con  # cleaned, not replaced by a new connection (the fallback when cleaning fails)
    for c, w in zip(cold, got, strict=True):
        # Entities a resolve creates get new uuids: compare which records share one, not the ids.
        pd.testing.assert_frame_equal(c.drop(columns="entity_id"), w.drop(columns="entity_id"))
        assert c.groupby("entity_id").unique_id.apply(frozenset).pipe(set) == w.groupby("entity_id").unique_id.apply(
            frozenset
        ).pipe(set)


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_and_dedupe"])
def test_narrowed_blocking_scores_the_pairs_with_a_new_record_as_the_full_blocking_does(
    link_type, stored_demo, demo_dict, tmp_path, monkeypatch
):
    """resolving._pairs_with_a_new_record: Splink compares only pairs with a new record, and each of them gets the
    very scores (every column, every bit) the job's own blocking rules give it; one source, and two."""
    import shutil

    from splink_er import resolving

    if link_type == "dedupe_only":
        d, _, later = stored_demo("truth")
    else:  # the demo's records as two sources; new records arrive in the second
        rows = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
        later = rows.sample(frac=0.1, random_state=5)
        rest = rows.drop(later.index)
        half = len(rest) // 2
        src = demo_dict["sources"][0]
        sources = []
        for name, part in (("crm", rest.iloc[:half]), ("official", rest.iloc[half:])):
            part.to_csv(tmp_path / f"{name}.csv", index=False)
            sources.append(dict(src, name=name, path=str(tmp_path / f"{name}.csv")))
        d = dict(demo_dict, link_type=link_type, sources=sources, judge={"kind": "truth"})
        splink_er.run(d, quiet=True)
        later = {"official": later.assign(unique_id=[f"new-{i}" for i in range(len(later))])}
    store = splink_er.load_settings(d).entity_store_path
    shutil.copy(store, store.with_name("pristine.duckdb"))
    score = resolving.Resolver._score
    seen = {}

    def capture(self):
        score(self)
        all_pairs = self.con.execute("SELECT count(*) FROM scores").fetchall()[0][0]
        with_new = self.con.execute("""
            SELECT s.* FROM scores s
            WHERE (s.source_dataset_l, s.unique_id_l) IN (SELECT source_dataset, unique_id FROM res_new_keys)
               OR (s.source_dataset_r, s.unique_id_r) IN (SELECT source_dataset, unique_id FROM res_new_keys)""")
        seen["scores"] = with_new.df(), all_pairs

    monkeypatch.setattr(resolving.Resolver, "_score", capture)
    narrowed = splink_er.resolve(d, later, overrides=["judge.kind=none"])
    (mine, n_mine) = seen["scores"]
    shutil.copy(store.with_name("pristine.duckdb"), store)
    monkeypatch.setattr(resolving, "_pairs_with_a_new_record", lambda model: model)
    full = splink_er.resolve(d, later, overrides=["judge.kind=none"])
    (theirs, n_theirs) = seen["scores"]
    key = ["source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r"]
    mine, theirs = (x.sort_values(key).reset_index(drop=True) for x in (mine, theirs))
    assert len(mine) > 100 and n_mine == len(mine) < n_theirs  # nothing compared that was not needed
    marker = [f"{resolving.NEW_RECORD}_l", f"{resolving.NEW_RECORD}_r"]
    assert sorted(set(mine.columns) - set(theirs.columns)) == marker  # the narrowing's own column, nothing else
    pd.testing.assert_frame_equal(mine.drop(columns=marker), theirs, check_exact=True)
    cols = ["unique_id", "action", "decided_by"]
    pd.testing.assert_frame_equal(narrowed.resolutions[cols], full.resolutions[cols])


def test_splink_engine_on_a_warm_connection_opens_no_database_of_its_own():
    """engine/duckdb_engine.make_db: Splink's DatabaseAPI opens a spare in-memory DuckDB database (20 ms a
    resolve) that DuckDBAPI never reads; made on a connection, the engine holds that connection alone."""
    from splink.internals import database_api

    from splink_er.engine.duckdb_engine import make_db

    con = duckdb.connect()
    db = make_db(splink_er.load_settings(splink_er.demo_settings_path()), con)
    assert db._ddb_con is con and db.duckdb_con is con
    assert database_api.duckdb is duckdb  # Splink's module is left as it was
    assert db._execute_sql_against_backend("SELECT 41 + 1").fetchall() == [(42,)]
    con.close()
