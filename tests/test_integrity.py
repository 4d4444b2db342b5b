"""Nothing lost, nothing mixed, nothing silent: the label store, locks, human labels, atomic runs.
Each test here failed before its fix."""

import warnings

import pytest
from typer.testing import CliRunner

import splink_er
from splink_er import Busy
from splink_er.cli import app
from splink_er.labels import LabelStore

runner = CliRunner()
DEMO = str(splink_er.demo_settings_path())


def said(r) -> str:
    return " ".join(r.output.split())


def test_a_human_label_after_a_torn_line_is_stored(tmp_path):
    # The repro: cut the store mid-line, then label from the CLI; the label must be in the store.
    store = LabelStore(tmp_path / "labels.jsonl")
    where = ["--set", f"labels.path={store.path}"]
    assert runner.invoke(app, ["label", DEMO, "--pair", "0", "1", "--match", *where]).exit_code == 0
    store.path.write_bytes(store.path.read_bytes()[:-50])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = runner.invoke(app, ["label", DEMO, "--pair", "2", "3", "--non-match", *where])
        assert r.exit_code == 0, r.output
        labels = store.effective()
    assert labels[["unique_id_l", "unique_id_r", "match"]].values.tolist() == [["2", "3", False]]
    assert (tmp_path / "labels.jsonl.torn").exists()  # the cut line is kept aside, not merged


def test_a_human_label_on_a_record_that_does_not_exist_is_refused(tmp_path):
    where = ["--set", f"labels.path={tmp_path / 'l.jsonl'}"]
    r = runner.invoke(app, ["label", DEMO, "--pair", "0", "no-such-id", "--match", *where])
    assert r.exit_code == 3 and "fake_1000:no-such-id not found" in said(r), r.output
    r = runner.invoke(app, ["label", DEMO, "--pair", "0", "1", "--source-r", "nosuch", "--match", *where])
    assert r.exit_code == 3 and "no source named 'nosuch'" in said(r), r.output
    assert not (tmp_path / "l.jsonl").exists()


def test_labels_remove_and_list_from_the_cli(tmp_path):
    where = ["--set", f"labels.path={tmp_path / 'l.jsonl'}"]
    assert runner.invoke(app, ["label", DEMO, "--pair", "0", "1", "--non-match", *where]).exit_code == 0
    r = runner.invoke(app, ["labels", "remove", DEMO, "--pair", "0", "1", "--note", "typo", *where])
    assert r.exit_code == 0 and "removed 1 human label" in said(r), r.output
    assert LabelStore(tmp_path / "l.jsonl").effective().empty
    r = runner.invoke(app, ["labels", "remove", DEMO, "--pair", "0", "1", *where])
    assert r.exit_code == 3 and "no human label in force" in said(r)
    r = runner.invoke(app, ["labels", "list", DEMO, "--history", *where])
    assert r.exit_code == 0 and "1 removal" in said(r) and "typo" in r.output


def test_a_second_writer_of_the_same_label_store_is_told_before_any_work(tmp_path):
    o = [f"output_dir={tmp_path / 'a'}", f"labels.path={tmp_path / 'l.jsonl'}"]
    first = splink_er.prepare(DEMO, overrides=o, quiet=True)
    with pytest.raises(Busy, match="label store .*l.jsonl is being written by another splink-er process"):
        splink_er.prepare(DEMO, overrides=[f"output_dir={tmp_path / 'b'}", o[1]], quiet=True)
    with pytest.raises(Busy, match="output directory"):
        splink_er.prepare(DEMO, overrides=[o[0], f"labels.path={tmp_path / 'other.jsonl'}"], quiet=True)
    r = runner.invoke(app, ["label", DEMO, "--pair", "0", "1", "--match", "--set", o[1]])
    assert r.exit_code == 7 and "being written by another" in said(r)
    first.close()  # released: the next writer goes ahead
    splink_er.prepare(DEMO, overrides=o, quiet=True).close()
