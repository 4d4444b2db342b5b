import warnings

from splink_er import LabelStore, make_label
from splink_er.labels import canonical_key


def test_canonical_key_matches_splink_order():
    assert canonical_key("b", "1", "a", "9") == ("a", "9", "b", "1")
    assert canonical_key("s", "5", "s", "10") == ("s", "10", "s", "5")  # text order, as Splink compares ids


def test_reading_is_idempotent_and_human_wins(tmp_path):
    store = LabelStore(tmp_path / "l.jsonl")
    store.append([make_label(("a", "1", "b", "2"), True, 0.9, "simulated-truth", "judge")])
    store.append([make_label(("b", "2", "a", "1"), False, 1.0, "human", "human")])  # reversed key: same pair
    store.append([make_label(("a", "1", "b", "2"), True, 0.99, "simulated-truth", "judge")])  # later judge answer
    first, second = store.effective(), store.effective()
    assert first.equals(second) and len(first) == 1
    assert first.iloc[0]["source"] == "human" and not first.iloc[0]["match"]
    assert len(store.read_all()) == 3  # append-only: nothing rewritten


def test_latest_judge_label_wins_and_torn_line_is_skipped(tmp_path):
    store = LabelStore(tmp_path / "l.jsonl")
    store.append([make_label(("a", "1", "b", "2"), True, 0.9, "j", "judge")])
    store.append([make_label(("a", "1", "b", "2"), False, 0.9, "j", "judge")])
    with open(store.path, "a") as f:
        f.write('{"source_dataset_l": "a", "unique_')  # a run killed mid-write
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        eff = store.effective()
    assert len(eff) == 1 and not eff.iloc[0]["match"] and "skipped 1" in str(w[0].message)


def test_a_label_appended_after_a_torn_line_is_kept(tmp_path):
    # The torn bytes of a killed write must not swallow the next label (it would be glued onto the torn line).
    store = LabelStore(tmp_path / "l.jsonl")
    store.append([make_label(("a", "1", "b", "2"), True, 0.9, "j", "judge")])
    with open(store.path, "a") as f:
        f.write('{"source_dataset_l": "a", "unique_')
    store.append([make_label(("a", "3", "b", "4"), False, 1.0, "human", "human")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eff = store.effective()
    assert sorted(eff["unique_id_l"]) == ["1", "3"]


def test_a_decision_log_line_appended_after_a_torn_line_is_kept(tmp_path):
    from splink_er.decision_log import DecisionLog, read_log

    log = DecisionLog(tmp_path / "d.jsonl", "run1")
    log.append([{"type": "judge", "n": 1}])
    with open(log.path, "a") as f:
        f.write('{"type": "judge", "n"')
    log.append([{"type": "judge", "n": 2}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [r["n"] for r in read_log(log.path)] == [1, 2]
