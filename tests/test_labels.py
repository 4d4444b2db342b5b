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


def test_a_line_that_is_not_a_label_is_an_error_naming_file_and_line(tmp_path):
    import pytest

    from splink_er import InputError

    store = LabelStore(tmp_path / "l.jsonl")
    store.append([make_label(("a", "1", "b", "2"), True, 0.9, "human", "human")])
    good = store.path.read_text()
    bad = good.replace('"match": true', '"match": "false"')  # a hand edit: the text "false" is not False
    store.path.write_text(good + bad + "42\n")
    with pytest.raises(InputError, match=r"line 2: match must be true or false.*\n.*line 3: a label line is a JSON"):
        store.effective()


def test_removing_a_label_appends_a_tombstone_and_the_pair_falls_back(tmp_path):
    from splink_er.labels import make_removal

    store = LabelStore(tmp_path / "l.jsonl")
    key = ("a", "1", "b", "2")
    store.append([make_label(key, True, 0.9, "gemini", "judge", method_id="m1")])
    store.append([make_label(key, False, 1.0, "human", "human")])  # a wrong human label ...
    store.append([make_removal(key, "human", reason="typo")])  # ... removed: the judge's answer counts again
    eff = store.effective()
    assert len(eff) == 1 and eff.iloc[0]["source_kind"] == "judge" and eff.iloc[0]["match"]
    assert len(store.read_all()) == 2 and len(store.removals()) == 1  # history kept
    store.append([make_removal(key, "any")])
    assert store.effective().empty and store.judge_answers("m1") == {}  # a removed answer is not reused either
    store.append([make_label(key, True, 1.0, "human", "human")])  # a label after the tombstone counts
    assert store.effective().iloc[0]["source_kind"] == "human"


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path):
    store = LabelStore(tmp_path / "l.jsonl")
    store.append([make_label(("a", "1", "b", "2"), True, 0.9, "human", "human")])
    store.path.write_text(store.path.read_text().rstrip("\n"))  # a hand edit that dropped the final newline
    store.append([make_label(("a", "3", "b", "4"), False, 1.0, "human", "human")])
    assert len(store.effective()) == 2 and not (tmp_path / "l.jsonl.torn").exists()


def test_every_store_of_one_file_parses_it_once_until_it_changes(tmp_path, monkeypatch):
    # A service builds a job, and a LabelStore, per request: the file is read again only when it changed.
    from splink_er import jsonl

    reads = []
    real = jsonl.read_numbered
    monkeypatch.setattr(jsonl, "read_numbered", lambda path: reads.append(path) or real(path))
    path = tmp_path / "l.jsonl"
    LabelStore(path).append([make_label(("a", "1", "b", "2"), True, 1.0, "human", "human")])
    first = LabelStore(path).effective()
    assert len(LabelStore(path).effective()) == len(LabelStore(path).human()) == len(first) == 1
    assert len(reads) == 1
    LabelStore(path).append([make_label(("a", "3", "b", "4"), False, 1.0, "human", "human")])
    assert len(LabelStore(path).effective()) == 2 and len(reads) == 2  # the change is seen by a new store too
