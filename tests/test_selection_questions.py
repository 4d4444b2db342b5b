"""Selection questions (routing.selection_questions): a record's band candidates in one other source are asked
as one "which of these, if any" question; its answer becomes one label per pair, cached, logged and replayable."""

import json

import duckdb
import pandas as pd
import pytest

import splink_er
from splink_er.decision_log import read_log
from splink_er.errors import SettingsError
from splink_er.judges import run_judge
from splink_er.judges.prompt import make_questions, render, validate
from splink_er.judges.truth import TruthJudge
from splink_er.pairs import PAIR_KEY, PairContext, pair_keys
from splink_er.routing import SELECTION_MAX_CANDIDATES, pairs_to_judge
from splink_er.testing import FakeLLMServer
from splink_er.testing.fake_llm import DATA_BLOCK, similarity_brain

COLUMNS = ["unique_id", "first_name", "surname", "dob", "city", "email", "entity"]
# a:1 has three band candidates in b (b:1 is the same person); a:2 has one accepted (b:4, the same person) and
# one band candidate; a:3 has one band candidate. The bootstrap model puts them there with wide margins.
A = [
    ("1", "john", "smith", "1960-01-01", "leeds", "js@x.org", "e1"),
    ("2", "mary", "jones", "1970-02-02", "york", "mj@x.org", "e2"),
    ("3", "zed", "quill", "1980-03-03", "bath", "zq@x.org", "e3"),
]
B = [
    ("1", "john", "smith", "1960-01-01", "leeds", "john@y.org", "e1"),
    ("2", "john", "smith", "1961-05-07", "hull", "j2@y.org", "e4"),
    ("3", "jane", "smith", "1985-03-03", "derby", "j3@y.org", "e5"),
    ("4", "mary", "jones", "1970-02-02", "york", "mj@x.org", "e2"),
    ("5", "zed", "quil", "1980-03-03", "bath", "zed@y.org", "e3"),
    ("6", "mary", "jonas", "1970-02-09", "york", "mary@y.org", "e6"),
]


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "sk-test-selection")


def job_settings(tmp_path, judge: dict, dedupe: bool = False, **routing) -> dict:
    a, b = pd.DataFrame(A, columns=COLUMNS), pd.DataFrame(B, columns=COLUMNS)
    if dedupe:  # the same records as one source
        pd.concat([a.assign(unique_id="a" + a.unique_id), b.assign(unique_id="b" + b.unique_id)]).to_csv(
            tmp_path / "ab.csv", index=False
        )
        sources = [{"name": "ab", "path": str(tmp_path / "ab.csv"), "id_column": "unique_id"}]
    else:
        a.to_csv(tmp_path / "a.csv", index=False)
        b.to_csv(tmp_path / "b.csv", index=False)
        sources = [{"name": n, "path": str(tmp_path / f"{n}.csv"), "id_column": "unique_id"} for n in "ab"]
    return {
        "name": "selection",
        "link_type": "dedupe_only" if dedupe else "link_only",
        "sources": sources,
        "truth_column": "entity",
        "comparisons": [
            {"kind": "NameComparison", "column": "first_name"},
            {"kind": "NameComparison", "column": "surname"},
            {"kind": "DateOfBirthComparison", "column": "dob", "args": {"input_is_string": True}},
            {"kind": "ExactMatch", "column": "city"},
            {"kind": "ExactMatch", "column": "email"},
        ],
        "blocking_rules": ["substr(l.surname, 1, 3) = substr(r.surname, 1, 3)"],
        "bootstrap": {"deterministic_rules": [["first_name", "surname", "dob"]]},
        "routing": {"low": 1e-9, "high": 0.95, **routing},
        "judge": {"backoff_seconds": 0.01, **judge} if judge["kind"] == "gemini" else judge,
        "output_dir": str(tmp_path / "out"),
        "labels": {"path": str(tmp_path / "labels.jsonl")},
    }


def judge_band(settings: dict) -> tuple[pd.DataFrame, dict, dict]:
    """Bootstrap, score, route and judge the band once: (this run's labels, judge stats, routes before judging)."""
    job = splink_er.prepare(settings, quiet=True)
    try:
        job.bootstrap()
        job.score()
        routes = job.route()
        stats = job.judge_band()
        return job.run_labels().set_index(PAIR_KEY).sort_index(), stats, routes
    finally:
        job.close()


def questions(srv: FakeLLMServer) -> tuple[list[int], int]:
    """(candidates per group question, pair questions) the server was asked."""
    groups = [len(g["candidates"]) for a in srv.answered for g in a["data"]["groups"]]
    return sorted(groups), sum(len(a["data"]["pairs"]) for a in srv.answered)


@pytest.mark.e2e
def test_a_record_with_several_band_candidates_is_asked_one_question(tmp_path, keyed):
    with FakeLLMServer() as srv:
        settings = job_settings(tmp_path, {"kind": "gemini", "base_url": srv.url}, one_to_one=True)  # auto: on
        labels, stats, routes = judge_band(settings)
    assert routes == {"band": 5, "model_accept": 1}
    # a:1's three band candidates are one question, a:2's accepted and band candidates another; a:3's one pair.
    assert questions(srv) == ([2, 3], 1) and srv.calls == 1
    assert stats["asked"] == len(labels) == 6
    a1 = labels.loc[("a", "1")]
    assert a1["match"].tolist() == [True, False, False]  # b:1, b:2, b:3: one match, the rest not
    assert a1["confidence"].nunique() == 1  # the group's confidence on every pair
    assert "close alternative: b:2" in a1.loc[("b", "1"), "reasoning"]
    assert a1.loc[("b", "2"), "reasoning"].startswith("another candidate was selected; this one was the close")
    assert a1.loc[("b", "3"), "reasoning"].startswith("another candidate was selected:")
    # The accepted candidate was asked only as part of a:2's question, and says so.
    assert labels.loc[("a", "2", "b", "4"), ["match", "reason"]].tolist() == [True, "selection"]
    assert labels.loc[("a", "2", "b", "6"), ["match", "reason"]].tolist() == [False, "band"]
    # The decision log shows each pair's answer and the question it was part of.
    logged = {tuple(r[k] for k in PAIR_KEY): r for r in read_log(tmp_path / "out" / "decision_log.jsonl", ("judge",))}
    assert len(logged) == 6 and logged[("a", "1", "b", "3")]["input"]["group"] == "a:1>b"
    assert logged[("a", "3", "b", "5")]["input"]["group"] is None


@pytest.mark.e2e
def test_selection_answers_are_reused_by_a_new_run_and_replayed_without_a_server(tmp_path, keyed):
    with FakeLLMServer() as srv:
        settings = job_settings(tmp_path, {"kind": "gemini", "base_url": srv.url}, selection_questions="on")
        first, _, _ = judge_band(settings)
        calls = srv.calls
        # A run started again (after a kill, or a new one) asks nothing already answered.
        again, stats, _ = judge_band(settings | {"output_dir": str(tmp_path / "again")})
        assert srv.calls == calls and stats["asked"] == 0 and stats["reused"] == len(first) == 6
    pd.testing.assert_frame_equal(
        again[["match", "confidence", "reasoning"]], first[["match", "confidence", "reasoning"]]
    )
    # Server stopped: the replay judge answers every pair of the groups from the log.
    replay = settings | {
        "judge": {"kind": "replay", "log": str(tmp_path / "out" / "decision_log.jsonl")},
        "output_dir": str(tmp_path / "replay"),
        "labels": {"path": str(tmp_path / "replay.jsonl")},
    }
    replayed, stats, _ = judge_band(replay)
    assert stats["asked"] == 6
    cols = ["match", "confidence", "reasoning", "reason"]
    pd.testing.assert_frame_equal(replayed[cols], first[cols])


@pytest.mark.e2e
@pytest.mark.parametrize(
    "routing",
    [{"one_to_one": True, "selection_questions": "off"}, {"one_to_one": False}],  # off, and auto without one-to-one
    ids=["off", "auto-not-one-to-one"],
)
def test_off_asks_one_pair_at_a_time(tmp_path, keyed, routing):
    with FakeLLMServer() as srv:
        labels, stats, routes = judge_band(job_settings(tmp_path, {"kind": "gemini", "base_url": srv.url}, **routing))
    assert questions(srv) == ([], routes["band"]) and stats["asked"] == routes["band"] == 5
    assert ("a", "2", "b", "4") not in labels.index  # the accepted pair is not asked
    assert set(labels["reason"]) == {"band"}


@pytest.mark.e2e
def test_a_dedupe_job_is_unaffected_by_auto(tmp_path, keyed):
    with FakeLLMServer() as srv:
        settings = job_settings(tmp_path, {"kind": "gemini", "base_url": srv.url}, dedupe=True)
        labels, stats, routes = judge_band(settings)
    assert routes["band"] >= 3 and questions(srv) == ([], routes["band"]) == ([], stats["asked"])
    assert not splink_er.load_settings(settings).selection_questions  # auto resolves off: the old queue
    with pytest.raises(SettingsError, match="selection_questions: on applies to link jobs only"):
        splink_er.load_settings(settings | {"routing": {"selection_questions": "on"}})


def test_the_truth_judge_answers_a_selection_job_with_one_match_per_group(tmp_path):
    labels, stats, _ = judge_band(job_settings(tmp_path, {"kind": "truth"}, selection_questions="on"))
    assert stats["asked"] == 6
    assert labels.loc[("a", "1"), "match"].tolist() == [True, False, False]
    assert labels.loc[("a", "2"), "match"].tolist() == [True, False]


def group(n: int) -> list[PairContext]:
    """A group question about anchor a:x with n candidates b:0 .. b:n-1."""
    return [PairContext(("a", "x", "b", str(i)), {"n": "x"}, {"n": str(i)}, "band", None, "a:x>b") for i in range(n)]


def test_the_truth_judge_selects_at_most_one_candidate_of_a_group():
    pairs = group(4)
    truth = {("a", "x"): "e", ("b", "0"): "f", ("b", "1"): "e", ("b", "2"): "e", ("b", "3"): "g"}
    single = [PairContext(("a", "y", "b", "9"), {}, {}, "band")]
    truth |= {("a", "y"): "h", ("b", "9"): "h"}
    out = {d.key: d for d in run_judge(TruthJudge(truth, "entity"), pairs + single, 20, 1, lambda _: None)}
    assert [out[p.key].match for p in pairs] == [False, True, False, False]  # b:1 and b:2 both true: one is kept
    assert "another candidate was selected" in out[pairs[2].key].reasoning
    assert out[single[0].key].match  # a pair question is answered as before


def test_an_answer_without_a_close_alternative_is_still_whole():
    def old_format(data: dict, model: str) -> dict:
        answer = similarity_brain(data, model)
        for s in answer["selections"]:
            del s["runner_up_pair_id"]
        return answer

    prompt = render(make_questions(group(3)), show_score=False)
    assert "runner_up_pair_id" not in prompt.text  # asked for by the schema only
    data = json.loads(DATA_BLOCK.search(prompt.text).group(2))
    verdicts, problems = validate(json.dumps(old_format(data, "m")), prompt)
    assert not problems and len(verdicts) == 3
    assert sum(v.match for v in verdicts.values()) <= 1 and not any(
        "close alternative" in v.reasoning for v in verdicts.values()
    )


def test_the_queue_caps_a_group_and_never_splits_one(demo_dict):
    s = splink_er.load_settings(demo_dict)  # the band is 0.1 < p < 0.95
    n = SELECTION_MAX_CANDIDATES + 2
    rows = [("a", "1", "b", str(i), 0.15 + 0.02 * i, "band") for i in range(n)]  # a:1: n band candidates
    rows += [("a", "2", "b", "x", 0.5, "band"), ("a", "3", "b", "y", 0.45, "band")]  # single pairs, nearest 0.5
    con = duckdb.connect()
    frame = pd.DataFrame(rows, columns=PAIR_KEY + ["match_probability", "route"]).assign(conflict=False)
    con.register("routed", frame)
    todo = pairs_to_judge(con, "routed", s, selection=True)
    grouped = todo[todo["selection_group"].notna()]
    # The most probable candidates make the group; the two least probable are asked one at a time.
    assert set(grouped["unique_id_r"]) == {str(i) for i in range(2, n)} and set(grouped["selection_group"]) == {"a:1>b"}
    assert len(todo) == n + 2 and list(todo["unique_id_l"][:2]) == ["2", "3"]
    # A limit that would cut the group leaves it whole for a later round.
    limited = pairs_to_judge(con, "routed", s, limit=5, selection=True)
    assert list(limited["unique_id_l"]) == ["2", "3"]
    assert pair_keys(pairs_to_judge(con, "routed", s, selection=False))[:1] == [("a", "2", "b", "x")]
