"""The entity store: stable ids across runs, the change feed, one-transaction commits, one writer."""

import json
import random

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splink_er.entities.stable_ids import plan_changes
from splink_er.entities.store import EntityStore


class Runs:
    """Runs of the entity layer on hand-made clusterings: `step({record: cluster}, non_matches)` plans and
    commits one run over records 'a', 'b', ... of one source, and returns {record: entity id}."""

    def __init__(self, path, template="{uuid}"):
        self.con = duckdb.connect()
        self.path, self.template, self.n = path, template, 0
        self.events = None

    def step(self, clusters: dict, non_matches=(), names=None):
        self.n += 1
        con = self.con
        recs = pd.DataFrame({"source_dataset": "s", "unique_id": list(clusters)})
        recs["cluster_id"] = [f"c{self.n}-{c}" for c in clusters.values()]
        recs["last_name"] = [(names or {}).get(r) for r in clusters]
        # Accepted pairs: each record to the first of its cluster; non-matches as given.
        first = recs.groupby("cluster_id")["unique_id"].transform("first")
        acc = recs[recs["unique_id"] != first]
        dec = pd.DataFrame(
            {
                "source_dataset_l": "s",
                "unique_id_l": list(first[acc.index]) + [a for a, _ in non_matches],
                "source_dataset_r": "s",
                "unique_id_r": list(acc["unique_id"]) + [b for _, b in non_matches],
                "final_match": [True] * len(acc) + [False] * len(non_matches),
                "decided_by": ["model_accept"] * len(acc) + ["judge"] * len(non_matches),
                "match_probability": [0.99] * len(acc) + [0.2] * len(non_matches),
            }
        )
        dec = dec.astype({c: str for c in ("source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r")})
        for name, df in (("t_clusters", recs[["source_dataset", "unique_id", "cluster_id"]]), ("t_dec", dec),
                         ("t_input", recs[["source_dataset", "unique_id", "last_name"]])):  # fmt: skip
            con.register(f"{name}_df", df)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_df")
        con.execute("ALTER TABLE t_input ALTER last_name TYPE VARCHAR")  # as a run's inputs: typed, if all null
        store = EntityStore(con, self.path)
        plan = plan_changes(con, store, "t_clusters", "t_dec", {"s": "t_input"}, f"run{self.n}", self.template)
        self.events = con.execute(f"SELECT * FROM {plan.events} ORDER BY seq").df()
        store.commit(f"run{self.n}", plan)
        ids = dict(con.execute(f"SELECT unique_id, entity_id FROM {plan.assigned}").fetchall())
        stored = dict(con.execute("SELECT unique_id, entity_id FROM entity_store.membership").fetchall())
        store.detach()
        assert stored == ids  # the store holds exactly what the run assigned
        return ids

    def count(self, event):
        return int((self.events["event"] == event).sum())

    def entities(self):
        con = duckdb.connect()
        con.execute(f"ATTACH '{self.path}' AS s (READ_ONLY)")
        return con.execute("SELECT * FROM s.entities ORDER BY created_seq").df()


def test_same_clusters_twice_keep_every_id_with_no_event(tmp_path):
    r = Runs(tmp_path / "e.duckdb")
    first = r.step({"a": 1, "b": 1, "c": 2, "d": 3})
    assert len(set(first.values())) == 3 and first["a"] == first["b"]
    assert r.count("created") == 3 and r.count("record_added") == 4 and len(r.events) == 7
    added = r.events[r.events.event == "record_added"].set_index("unique_id")
    assert json.loads(added.loc["b", "detail"])[0]["with"] == "s:a"  # the accepted pair that put b there
    # The same clustering again, under other cluster numbers (Splink's ids are arbitrary): nothing changes.
    assert r.step({"a": 9, "b": 9, "c": 7, "d": 8}) == first and r.events.empty


def test_new_records_join_or_create_and_unchanged_entities_keep_their_ids(tmp_path):
    r = Runs(tmp_path / "e.duckdb")
    first = r.step({"a": 1, "b": 1, "c": 2, "d": 3})
    second = r.step({"a": 1, "b": 1, "c": 2, "d": 3, "e": 2, "f": 4})
    assert {k: second[k] for k in first} == first
    assert second["e"] == first["c"] and second["f"] not in first.values()
    assert sorted(zip(r.events.event, r.events.unique_id.fillna(""))) == [
        ("created", ""), ("record_added", "e"), ("record_added", "f"),
    ]  # fmt: skip


def test_a_merge_keeps_the_older_id_and_retires_the_other_pointing_to_it(tmp_path):
    r = Runs(tmp_path / "e.duckdb")
    first = r.step({"x": 0, "c": 2, "d": 2, "d2": 2, "a": 1})  # created in key order: 'a' ... older than 'c'
    merged = r.step({"x": 0, "a": 1, "c": 1, "d": 1, "d2": 1})
    older = first["a"]  # the entity whose first record key sorts first was created first
    assert set(merged[k] for k in "acd") == {older}
    retired = r.entities().set_index("entity_id").loc[first["c"]]
    assert retired.status == "retired" and retired.merged_into == older
    assert r.count("merged") == 1 and r.count("retired") == 1 and r.count("record_added") == 3
    m = r.events[r.events.event == "merged"].iloc[0]
    assert m.entity_id == older and m.other_entity_id == first["c"] and "s:" in m.detail


def test_a_split_keeps_the_id_on_the_largest_part_and_says_which_pairs_split_it(tmp_path):
    r = Runs(tmp_path / "e.duckdb")
    first = r.step({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1})
    after = r.step({"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}, non_matches=[("a", "d")])
    assert after["a"] == first["a"] and after["d"] == after["e"] != first["a"]
    split = r.events[r.events.event == "split"].iloc[0]
    assert split.entity_id == first["a"] and split.other_entity_id == after["d"]
    assert json.loads(split.detail) == [{"pair": ["s:a", "s:d"], "decided_by": "judge", "match_probability": 0.2}]
    assert r.count("created") == 1 and r.count("record_removed") == 2 and r.count("record_added") == 2


def test_records_gone_from_the_inputs_leave_and_an_empty_entity_retires(tmp_path):
    r = Runs(tmp_path / "e.duckdb")
    first = r.step({"a": 1, "b": 1, "c": 2})
    r.step({"a": 1})
    assert r.count("record_removed") == 2 and r.count("retired") == 1
    assert r.events[r.events.event == "retired"].entity_id.tolist() == [first["c"]]
    assert (r.entities().set_index("entity_id").loc[first["a"], "size"]) == 1
    # The records table says what left and what changed, and writes nothing for a record that did not change.
    r.step({"a": 1, "b": 1}, names={"a": "Ann"})  # b is back; a's content changed
    con = duckdb.connect()
    con.execute(f"ATTACH '{r.path}' AS s (READ_ONLY)")
    rec = con.execute("SELECT * FROM s.records").df().set_index("unique_id")
    assert rec.loc["a", "changed_run"] == "run3" and rec.loc["a", "first_seen_run"] == "run1"
    assert rec.loc["c", "gone_run"] == "run2" and pd.isna(rec.loc["b", "gone_run"]) and len(rec) == 3
    con.close()
    r.step({"a": 1, "b": 1}, names={"a": "Ann"})
    con = duckdb.connect()
    con.execute(f"ATTACH '{r.path}' AS s (READ_ONLY)")
    assert con.execute("SELECT count(*) FROM s.records WHERE changed_run = 'run4'").fetchall() == [(0,)]


def test_a_tie_goes_to_the_larger_cluster_then_the_first_record(tmp_path):
    r = Runs(tmp_path / "e.duckdb")
    first = r.step({"a": 1, "b": 1})
    again = r.step({"a": 1, "b": 2})  # one member each side, clusters of one: the first record key wins
    assert again["a"] == first["a"] and again["b"] != first["a"]
    r2 = Runs(tmp_path / "f.duckdb")
    first = r2.step({"a": 1, "b": 1})
    again = r2.step({"a": 1, "b": 2, "z": 2})  # same share, but b's cluster is larger
    assert again["b"] == first["a"] and again["a"] != first["a"]


def test_scoped_ids_use_the_most_common_value_and_never_collide(tmp_path):
    r = Runs(tmp_path / "e.duckdb", template="person:{last_name}-{seq}")
    names = {"a": "Lance", "b": "Lance", "c": "LANCE", "d": "Lance", "e": None}
    ids = r.step({"a": 1, "b": 1, "c": 2, "d": 2, "e": 3}, names=names)
    assert sorted(set(ids.values())) == ["person:lance-1", "person:lance-2", "person:unknown-1"]
    r.step({"a": 1, "b": 1, "c": 2, "e": 3}, names=names)  # d leaves; lance-2 stays with c
    again = r.step({"a": 1, "b": 1, "c": 1, "e": 3, "f": 4}, names=names | {"f": "Lance"})
    # lance-2 merged into lance-1 and retired: a new Lance never gets a retired id back.
    assert again["f"] == "person:lance-3"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=12), min_size=2, max_size=4))
def test_any_sequence_of_clusterings_keeps_the_store_and_the_feed_consistent(tmp_path_factory, runs):
    """Property: after any run, every record of the run is in exactly one active entity, the store holds what
    the run assigned, the events are exactly the membership changes, and a cluster that is the same set of
    records as a stored entity keeps its id."""
    r = Runs(tmp_path_factory.mktemp("h") / "e.duckdb")
    before: dict = {}
    for labels in runs:
        clusters = {f"r{i}": c for i, c in enumerate(labels)}
        after = r.step(clusters)
        moved = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        ev = r.events
        assert set(ev.loc[ev.event == "record_added", "unique_id"]) == {k for k in moved if k in after}
        assert set(ev.loc[ev.event == "record_removed", "unique_id"]) == {k for k in moved if k in before}
        old_sets = {}
        for k, e in before.items():
            old_sets.setdefault(e, set()).add(k)
        for e, members in old_sets.items():
            new_sets = {k for k, c in clusters.items() if c == clusters.get(next(iter(members)))}
            if members == new_sets:
                assert all(after[k] == e for k in members)
        active = r.entities().query("status == 'active'")
        assert set(active.entity_id) == set(after.values())
        before = after


KILL_SCRIPT = r"""
import sys, duckdb, pandas as pd
sys.path.insert(0, {root!r})
from tests.test_entities import Runs
r = Runs({path!r})
r.n = int(sys.argv[1])
for n in range(r.n, 10_000):  # clusterings alternate; each run commits one transaction
    k = 3 if n % 2 else 2
    r.step({{f"r{{i}}": i % k for i in range(400)}})
    print(n, flush=True)
"""


@pytest.mark.slow
def test_a_kill_at_any_moment_leaves_the_store_before_or_after_a_run(tmp_path):
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    path = tmp_path / "e.duckdb"
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT.format(root=root, path=str(path)))
    rng = random.Random(7)
    start = 0
    for _ in range(20):
        p = subprocess.Popen([sys.executable, str(script), str(start)], stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(1.0, 3.0))
        p.kill()  # SIGKILL: no cleanup runs
        p.wait()
        if not path.exists():  # killed before it made the store (a slow start on a loaded machine): still before
            continue
        con = duckdb.connect()
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        runs = [x[0] for x in con.execute("SELECT run_id FROM s.runs ORDER BY time").fetchall()]
        # Every committed run is whole: its events and its runs row together; no event of an uncommitted run.
        assert set(x[0] for x in con.execute("SELECT DISTINCT run_id FROM s.events").fetchall()) <= set(runs)
        for run_id, stored_events in con.execute("SELECT run_id, events FROM s.runs").fetchall():
            assert (
                con.execute(f"SELECT count(*) FROM s.events WHERE run_id = '{run_id}'").fetchone()[0] == stored_events
            )
        # The membership is the last committed run's clustering exactly: 400 records in 2 or 3 entities.
        if runs:
            sizes = sorted(x[0] for x in con.execute("SELECT count(*) FROM s.membership GROUP BY entity_id").fetchall())
            assert sum(sizes) == 400 and len(sizes) in (2, 3)
            assert con.execute("SELECT count(*) FROM s.entities WHERE status = 'active'").fetchone()[0] == len(sizes)
        con.close()
        start = len(runs) + 1
    assert start > 5  # the writer committed runs between kills, so kills landed mid-run too


# ---- through real runs ---------------------------------------------------------------------------------


def _members(clusters: pd.DataFrame) -> dict:
    return dict(zip(clusters["unique_id"], clusters["entity_id"]))


@pytest.mark.e2e
def test_a_run_again_keeps_every_id_and_ten_percent_new_records_change_only_what_moved(demo_dict, tmp_path):
    import splink_er

    rows = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
    first_part = tmp_path / "first.csv"
    rows.sample(frac=0.9, random_state=1).to_csv(first_part, index=False)  # 10% arrive later
    demo_dict["sources"][0]["path"] = str(first_part)
    demo_dict["judge"] = {"kind": "truth"}
    first = splink_er.run(demo_dict, quiet=True)
    assert len(first.entity_changes) > 0 and set(first.entity_changes.event) == {"created", "record_added"}
    again = splink_er.run(demo_dict, quiet=True)
    assert _members(again.clusters) == _members(first.clusters)
    assert again.entity_changes.empty and again.run["entity_changes"]["events"] == {}

    rows.to_csv(tmp_path / "all.csv", index=False)  # the 10% arrive
    demo_dict["sources"][0]["path"] = str(tmp_path / "all.csv")
    grown = splink_er.run(demo_dict, quiet=True)
    before, after = _members(first.clusters), _members(grown.clusters)
    # Every entity whose set of records did not change keeps its id.
    sets_before = first.clusters.groupby("entity_id")["unique_id"].apply(frozenset)
    sets_after = grown.clusters.groupby("entity_id")["unique_id"].apply(frozenset)
    unchanged = set(sets_before) & set(sets_after)
    assert len(unchanged) > 0.5 * len(sets_before)
    kept = {s: e for e, s in sets_before.items() if s in unchanged}
    assert all(sets_after.get(kept[s]) == s for s in unchanged)
    # The events are exactly the membership changes between the two clusterings.
    ev = grown.entity_changes
    moved = {r for r in after if before.get(r) != after[r]}
    assert set(ev.loc[ev.event == "record_added", "unique_id"]) == moved
    left = {r for r in before if after.get(r) != before[r]}
    assert set(ev.loc[ev.event == "record_removed", "unique_id"]) == left
    assert {e for e in ev.loc[ev.event == "created", "entity_id"]} == set(after.values()) - set(before.values())
    # The store agrees with the published clusters, and the CLI reads it.
    from typer.testing import CliRunner

    from splink_er.cli import app

    store = grown.run["entity_changes"]["store"]
    con = duckdb.connect()
    con.execute(f"ATTACH '{store}' AS s (READ_ONLY)")
    assert dict(con.execute("SELECT unique_id, entity_id FROM s.membership").fetchall()) == after
    con.close()
    labels = ["--set", f"labels.path={demo_dict['labels']['path']}"]
    r = CliRunner().invoke(app, ["entities", "changes", str(_yaml(demo_dict, tmp_path)), *labels])
    assert r.exit_code == 0 and f"record_added {len(moved):,}" in r.output


def _yaml(d, tmp_path):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


@pytest.mark.e2e
def test_a_second_writer_of_the_entity_store_is_told_before_any_work(demo_dict, tmp_path):
    import splink_er
    from splink_er import Busy
    from tests.test_integrity import hold_in_another_process

    demo_dict["entities"] = {"path": str(tmp_path / "shared.duckdb")}
    other = hold_in_another_process(tmp_path / "shared.duckdb")
    try:
        with pytest.raises(Busy, match="entity store .*shared.duckdb is being written by another"):
            splink_er.prepare(demo_dict, quiet=True)
    finally:
        other.kill()
        other.wait()


# ---- the canonical layer -------------------------------------------------------------------------------


def test_canonical_values_follow_completeness_then_source_then_recency_and_chains_sum(demo_dict):
    from splink_er.entities import registry
    from splink_er.settings import load_settings

    d = dict(demo_dict, link_type="link_only")
    d["sources"] = [dict(demo_dict["sources"][0], name=n) for n in ("crm", "official")]
    d["registry"] = {
        "fields": ["name", "party"],
        "alias_fields": ["name"],
        "source_priority": ["official", "crm"],
        "recency_column": "year",
        "chain": {"keys": ["year"], "sums": ["votes"]},
    }
    s = load_settings(d)
    con = duckdb.connect()
    rows = [  # entity E: the official record is as complete as the CRM ones and wins; F: only recency decides
        ("E", "crm", "1", "Bob Smith", None, "2020", "10"),
        ("E", "crm", "2", "Robert Smith", "DEM", "2022", "5"),
        ("E", "official", "3", "Robert J. Smith", "DEM", "2020", "7"),
        ("F", "crm", "4", "Ann Lee", "REP", "2018", None),
        ("F", "crm", "5", "Ann B. Lee", "REP", "2024", "3"),
    ]
    df = pd.DataFrame(rows, columns=["entity_id", "source_dataset", "unique_id", "name", "party", "year", "votes"])
    for src in ("crm", "official"):
        con.register(f"{src}_df", df[df.source_dataset == src].drop(columns="entity_id"))
        con.execute(f"CREATE TABLE input_{src} AS SELECT * FROM {src}_df")
    con.register("cl_df", df[["source_dataset", "unique_id", "entity_id"]])
    con.execute("CREATE TABLE cl AS SELECT * FROM cl_df")
    tables = registry.build(con, s, "cl", {"crm": "input_crm", "official": "input_official"})
    entities = con.execute(f"SELECT * FROM {tables['entities']}").df().set_index("entity_id")
    assert entities.loc["E", "name"] == "Robert J. Smith" and entities.loc["E", "party"] == "DEM"
    assert entities.loc["F", "name"] == "Ann B. Lee"  # equally complete, same source: the most recent
    assert entities.loc["E", "size"] == 3 and list(entities.loc["E", "sources"]) == ["crm", "official"]
    aliases = con.execute(f"SELECT entity_id, value FROM {tables['aliases']} WHERE entity_id = 'E'").df()
    assert sorted(aliases.value) == ["Bob Smith", "Robert J. Smith", "Robert Smith"]
    chains = con.execute(f"SELECT * FROM {tables['chains']} ORDER BY entity_id, year").df()
    e2020 = chains[(chains.entity_id == "E") & (chains.year == "2020")].iloc[0]
    assert e2020.records == 2 and e2020.votes == 17.0 and len(chains) == 4
    flat = con.execute(f"SELECT * FROM {tables['records']}").df().set_index("unique_id")
    assert flat.loc["1", "canonical_name"] == "Robert J. Smith" and len(flat) == 5


# ---- entity-level verification -------------------------------------------------------------------------


def _chain(con, accepted, decided_apart):
    """Records a..d in one cluster; `accepted` (l, r, decided_by, p) are final matches, `decided_apart` (l, r,
    decided_by) decided non-matches."""
    rows = [(l, r, True, d, p) for l, r, d, p in accepted] + [(l, r, False, d, 0.3) for l, r, d in decided_apart]
    dec = pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "final_match", "decided_by", "match_probability"])
    dec.insert(0, "source_dataset_l", "s")
    dec.insert(2, "source_dataset_r", "s")
    members = sorted({x for r in rows for x in r[:2]})
    cl = pd.DataFrame({"source_dataset": "s", "unique_id": members, "cluster_id": "c1"})
    for name, df in (("v_dec", dec), ("v_cl", cl)):
        con.register(f"{name}_df", df)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_df")


def _parts(con, table):
    rows = con.execute(f"SELECT cluster_id, list(unique_id ORDER BY unique_id) FROM {table} GROUP BY 1").fetchall()
    return sorted(tuple(m) for _, m in rows)


def test_a_chain_through_a_pair_decided_different_is_cut_at_its_weakest_link():
    from splink_er.entities.verify import split_contradictions

    con = duckdb.connect()
    # a~b and c~d strongly, b~c weakly: the judge said a and c differ, so b~c is the link to drop.
    accepted = [("a", "b", "model_accept", 0.99), ("b", "c", "model_accept", 0.96), ("c", "d", "model_accept", 0.99)]
    _chain(con, accepted, [("a", "c", "judge")])
    table, found = split_contradictions(con, "v_cl", "v_dec", "split")
    assert _parts(con, table) == [("a", "b"), ("c", "d")]
    assert found["contradicted_entities"] == 1 and found["split_into"] == 2
    assert found["examples"] == [{"pair": ["s:a", "s:c"], "decided_by": "judge"}]
    # A person's match is kept first: b~c stays and a, the record decided apart from c, goes alone.
    _chain(con, [accepted[0], ("b", "c", "human", 0.5), accepted[2]], [("a", "c", "judge")])
    table, _ = split_contradictions(con, "v_cl", "v_dec", "split")
    assert _parts(con, table) == [("a",), ("b", "c", "d")]
    # flag: listed, not cut; and a model reject inside an entity is no contradiction (only decided ones are).
    table, found = split_contradictions(con, "v_cl", "v_dec", "flag")
    assert _parts(con, table) == [("a", "b", "c", "d")] and found["contradicted_entities"] == 1
    _chain(con, accepted, [("a", "c", "model_reject")])
    table, found = split_contradictions(con, "v_cl", "v_dec", "split")
    assert _parts(con, table) == [("a", "b", "c", "d")] and found["contradicted_entities"] == 0

    # Clusters already cut (an entity audit splits again after the first cut): a final match from the entity to
    # a record now in another entity is no link of it, and the second cut must not trip over it.
    _chain(con, accepted + [("d", "e", "model_accept", 0.97)], [("a", "c", "judge")])
    con.execute("UPDATE v_cl SET cluster_id = 'c2' WHERE unique_id = 'e'")
    table, _ = split_contradictions(con, "v_cl", "v_dec", "split")
    assert _parts(con, table) == [("a", "b"), ("c", "d"), ("e",)]


@pytest.mark.e2e
def test_a_person_saying_two_records_differ_splits_their_entity_on_the_next_run(demo_dict, tmp_path):
    import splink_er

    demo_dict["judge"] = {"kind": "truth"}
    demo_dict["verify"] = {"single_valued": ["dob"], "max_span": {"column": "dob", "years": 5}}
    first = splink_er.run(demo_dict, quiet=True)
    # Two records of the largest entity: still chained through its other records once a person splits them.
    big = first.clusters.groupby("entity_id")["unique_id"].apply(list).map(len).idxmax()
    a, b = first.clusters[first.clusters.entity_id == big]["unique_id"].tolist()[:2]
    from typer.testing import CliRunner

    from splink_er.cli import app

    r = CliRunner().invoke(app, ["label", str(_yaml(demo_dict, tmp_path)), "--pair", a, b, "--non-match"])
    assert r.exit_code == 0, r.output
    second = splink_er.run(demo_dict, quiet=True)
    ids = dict(zip(second.clusters.unique_id, second.clusters.entity_id))
    assert ids[a] != ids[b]
    found = json.loads((second.output_dir / "verification.json").read_text())
    assert found["contradictions"]["contradicted_entities"] >= 1 and found["contradictions"]["action"] == "split"
    assert "single_valued:dob" in found and "span:dob" in found
    assert second.run["verification"]["contradictions"] >= 1
    assert {"split"} <= set(second.entity_changes.event)  # the change feed says the entity split


# ---- a frozen model -------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_frozen_model_scores_every_pair_as_the_run_that_trained_it_and_is_never_retrained(demo_dict, tmp_path):
    from typer.testing import CliRunner

    import splink_er
    from splink_er.cli import app

    demo_dict["judge"] = {"kind": "truth"}
    first = splink_er.run(demo_dict, quiet=True)
    settings = _yaml(demo_dict, tmp_path)
    exported = tmp_path / "models" / "demo.json"
    r = CliRunner().invoke(app, ["model", "export", str(settings), "--to", str(exported)])
    assert r.exit_code == 0, r.output
    again = dict(demo_dict, model=str(exported), output_dir=str(tmp_path / "frozen"), judge={"kind": "none"})
    frozen = splink_er.run(again, quiet=True)
    a = first.decisions.set_index(["unique_id_l", "unique_id_r"]).match_probability.sort_index()
    b = frozen.decisions.set_index(["unique_id_l", "unique_id_r"]).match_probability.sort_index()
    assert a.index.equals(b.index) and (a - b).abs().max() < 1e-9
    assert (
        frozen.run["frozen_model"]["run_id"] == first.run["run_id"] and len(frozen.run["frozen_model"]["sha256"]) == 64
    )
    assert all(t["prior_source"] == "frozen" for t in frozen.run["training"])
    # A model trained on other comparisons is refused before any work, naming both.
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps({"comparisons": [{"output_column_name": "x"}], "probability_two_random_records_match": 0.1})
    )
    with pytest.raises(splink_er.SettingsError, match=r"trained on comparisons \['x'\]"):
        splink_er.run(dict(again, model=str(other)), quiet=True)
