"""The whole loop with the real Gemini client against a loopback server: CLI, decision log, answer cache across
runs, replay with the server stopped, kill and resume, automatic judge choice, secrets never written."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import splink_er
from splink_er.cli import app
from splink_er.decision_log import final_table, read_log
from splink_er.pairs import PAIR_KEY
from splink_er.testing import FakeLLMServer

SECRET = "sk-test-NEVER-WRITE-ME-8c1e"


def same_decisions(a: Path, b: Path) -> bool:
    """decisions.parquet of two runs hold the same rows (file order is the engine's)."""
    da, db = (pd.read_parquet(d / "decisions.parquet").sort_values(PAIR_KEY).reset_index(drop=True) for d in (a, b))
    pd.testing.assert_frame_equal(da, db)
    return True


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)


def settings_file(demo_dict, tmp_path, server, **judge):
    data = dict(demo_dict)
    data["judge"] = {"kind": "gemini", "base_url": server.url, "max_pairs": 300, "backoff_seconds": 0.01, **judge}
    path = tmp_path / "gemini.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def judge_lines(log, cached=None):
    return [r for r in read_log(log, ("judge",)) if cached is None or r["cached"] == cached]


def all_written_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


@pytest.mark.e2e
def test_cli_run_against_loopback_gemini_logs_every_decision_and_writes_no_key(demo_dict, tmp_path, keyed, capfd):
    with FakeLLMServer() as srv:
        path = settings_file(demo_dict, tmp_path, srv)
        res = CliRunner().invoke(app, ["run", str(path)])
        assert res.exit_code == 0, res.output
    out = Path(demo_dict["output_dir"])
    run = json.loads((out / "run.json").read_text())
    j = run["judge"]
    assert j["kind"] == "gemini" and j["calls"] == srv.calls > 0 and not j["simulated"]
    assert j["pairs_judged"] == srv.pairs_answered and j["usage"]["input_tokens"] > 0 and j["cost_usd"] > 0
    assert j["cost_per_record"] == pytest.approx(j["cost_usd"] / 1000)
    assert sum(j["cost_by_stage"].values()) == pytest.approx(j["cost_usd"])
    log = out / "decision_log.jsonl"
    judged = judge_lines(log)
    assert len(judged) == j["pairs_judged"] and all(r["method"]["model"] == "gemini-2.5-flash" for r in judged)
    assert all(r["call"]["input_tokens"] > 0 and r["input"]["left"] for r in judged)
    finals = final_table(log)
    assert len(finals) == run["blocked_pairs"] and not finals.duplicated(PAIR_KEY).any()
    assert set(finals.decided_by) >= {"model_accept", "model_reject", "judge"}
    # The key reached the server, and appears in no file, no output and no help text.
    assert any(h.get("x-goog-api-key") == SECRET for h in srv.seen_headers)
    for args in (["--help"], ["run", "--help"]):
        assert SECRET not in CliRunner().invoke(app, args).output
    captured = capfd.readouterr()
    assert SECRET not in all_written_text(tmp_path) + res.output + captured.out + captured.err
    # The judge line says where the calls go; a loopback endpoint is not billed, so no "no price" warning.
    shown = res.output + captured.err
    assert f"judge: gemini gemini-2.5-flash at {srv.url.rstrip('/')}" in shown and "no price" not in shown


@pytest.mark.e2e
def test_answers_are_cached_across_runs_and_replay_reproduces_the_run_with_no_server(demo_dict, tmp_path, keyed):
    with FakeLLMServer() as srv:
        path = settings_file(demo_dict, tmp_path, srv)
        first = splink_er.run(path, quiet=True)
        calls = srv.calls
        second = splink_er.run(path, overrides=[f"output_dir={tmp_path / 'second'}"], quiet=True)
        assert srv.calls == calls  # nothing paid twice
    assert second.run["judge"]["calls"] == 0
    assert sum(second.run["judge"]["pairs_reused_by_reason"].values()) == first.run["judge"]["pairs_judged"]
    assert (
        len(judge_lines(tmp_path / "second" / "decision_log.jsonl", cached=True)) == first.run["judge"]["pairs_judged"]
    )
    # Server stopped: replay answers from the first run's log only.
    replay = splink_er.run(
        path,
        overrides=[
            "judge.kind=replay",
            f"output_dir={tmp_path / 'replay'}",
            f"judge.log={first.output_dir / 'decision_log.jsonl'}",
        ],
        quiet=True,
    )
    assert same_decisions(first.output_dir, replay.output_dir)
    assert replay.run["judge"]["calls"] == 0 and replay.run["judge"]["method"]["kind"] == "gemini"


@pytest.mark.e2e
def test_replay_fails_loudly_on_a_pair_missing_from_the_log(demo_dict, tmp_path, keyed):
    with FakeLLMServer() as srv:
        path = settings_file(demo_dict, tmp_path, srv)
        first = splink_er.run(path, quiet=True)
    log = first.output_dir / "decision_log.jsonl"
    lines = log.read_text().splitlines()
    first_judge = next(i for i, line in enumerate(lines) if '"type": "judge"' in line)
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(lines[:first_judge] + lines[first_judge + 1 :]) + "\n")
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(path),
            "--set",
            "judge.kind=replay",
            "--set",
            f"judge.log={partial}",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 5 and "has no answer in run" in res.output and "never calls a model" in res.output


@pytest.mark.e2e
def test_kill_mid_run_then_resume_repeats_no_persisted_pair(demo_dict, tmp_path, keyed):
    def keys(lines):
        return [tuple(r[k] for k in PAIR_KEY) for r in lines]

    with FakeLLMServer(latency=0.3) as srv:
        path = settings_file(demo_dict, tmp_path, srv, batch_size=10, concurrency=2)
        code = f"import splink_er; splink_er.run({str(path)!r}, quiet=True)"
        proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ), start_new_session=True)
        deadline = time.time() + 120
        while srv.calls < 4 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)  # calls in flight at the kill finish on the server side; count them as run 1's
        log = Path(demo_dict["output_dir"]) / "decision_log.jsonl"
        killed_run = judge_lines(log)
        persisted = set(keys(killed_run))
        assert len(persisted) >= 20 and not list(read_log(log, ("final",)))  # killed after some batches
        # Answers are logged, then stored, batch by batch: a kill between the two leaves one batch logged only.
        stored = set(keys(splink_er.LabelStore(demo_dict["labels"]["path"]).read_all().to_dict("records")))
        assert stored <= persisted and len(persisted - stored) <= 10
        served_before = srv.pairs_answered
        resumed = splink_er.run(path, quiet=True)
        served_after = srv.pairs_answered - served_before
    run2 = [r for r in judge_lines(log) if r["run_id"] == resumed.run["run_id"]]
    fresh = keys(r for r in run2 if not r["cached"])
    assert len(fresh) == served_after > 0  # every pair the server answered is a fresh line, asked once
    assert not stored & set(fresh) and len(fresh) == len(set(fresh))  # no stored answer is paid for again
    assert stored <= set(keys(r for r in run2 if r["cached"]))  # all of them reused instead
    # Same decisions as an uninterrupted run with a fresh store.
    with FakeLLMServer() as srv2:
        path2 = settings_file(
            demo_dict | {"output_dir": str(tmp_path / "clean"), "labels": {"path": str(tmp_path / "clean.jsonl")}},
            tmp_path,
            srv2,
            batch_size=10,
            concurrency=2,
        )
        clean = splink_er.run(path2, quiet=True)
    pd.testing.assert_frame_equal(resumed.decisions, clean.decisions)


@pytest.mark.e2e
def test_auto_judge_is_gemini_with_a_key_and_none_without(demo_dict, tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    data = dict(demo_dict, judge={"max_pairs": 40})
    job = splink_er.prepare(data, quiet=True)
    assert job.judge is None and "auto: no GEMINI_API_KEY or GOOGLE_API_KEY set" in job.judge_description
    monkeypatch.setenv("GOOGLE_API_KEY", SECRET)
    with FakeLLMServer() as srv:
        job = splink_er.prepare(dict(data, judge={"max_pairs": 40, "base_url": srv.url}), quiet=True)
        assert job.judge.name == "gemini" and "auto: GOOGLE_API_KEY is set" in job.judge_description
        assert SECRET not in job.judge_description


@pytest.mark.e2e
def test_missing_key_for_gemini_is_a_clear_error(demo_dict, tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(dict(demo_dict, judge={"kind": "gemini"})))
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 5 and "GEMINI_API_KEY" in res.output and "api_key_env" in res.output


@pytest.mark.e2e
def test_redacted_fields_never_reach_the_judge(demo_dict, tmp_path, keyed):
    with FakeLLMServer() as srv:
        path = settings_file(demo_dict, tmp_path, srv, max_pairs=40, redact={"drop": ["email"], "hash": ["dob"]})
        splink_er.run(path, quiet=True)
    records = [r for c in srv.answered for q in c["data"]["pairs"] for r in (q["record_a"], q["record_b"])]
    assert records and all("email" not in r for r in records)
    assert all(r["dob"] is None or r["dob"].startswith("hash:") for r in records)


@pytest.mark.e2e
def test_decisions_diff_lists_exactly_the_pairs_a_human_changed(demo_dict, tmp_path, keyed):
    with FakeLLMServer() as srv:
        path = settings_file(demo_dict, tmp_path, srv)
        first = splink_er.run(path, quiet=True)
        flip = first.decisions[first.decisions["decided_by"] == "model_accept"].iloc[0]
        res = CliRunner().invoke(app, ["label", str(path), "--pair", flip.unique_id_l, flip.unique_id_r, "--non-match"])
        assert res.exit_code == 0, res.output
        second = splink_er.retrain(path, quiet=True)
    log = first.output_dir / "decision_log.jsonl"
    csv = tmp_path / "changed.csv"
    res = CliRunner().invoke(
        app,
        [
            "decisions",
            "diff",
            str(log),
            str(log),
            "--run-a",
            first.run["run_id"],
            "--run-b",
            second.run["run_id"],
            "--csv",
            str(csv),
        ],
    )
    assert res.exit_code == 0, res.output
    changed = pd.read_csv(csv, dtype=str)
    model_changes = first.decisions.merge(second.decisions, on=PAIR_KEY).query("final_match_x != final_match_y")
    assert len(changed) == len(model_changes) >= 1
    assert (flip.unique_id_l, flip.unique_id_r) in set(zip(changed.unique_id_l, changed.unique_id_r))


@pytest.mark.e2e
def test_escalation_from_settings_logs_both_answers(demo_dict, tmp_path, keyed):
    with FakeLLMServer() as srv:
        path = settings_file(
            demo_dict, tmp_path, srv, max_pairs=120, escalation={"model": "gemini-2.5-pro", "threshold": 0.7}
        )
        result = splink_er.run(path, quiet=True)
    models = {c["model"] for c in srv.answered}
    assert models == {"gemini-2.5-flash", "gemini-2.5-pro"}
    assert result.run["judge"]["unpriced_models"] == []  # both priced (and a loopback endpoint is not billed)
    lines = judge_lines(result.output_dir / "decision_log.jsonl")
    escalated = [r for r in lines if r["escalated_from"]]
    assert escalated and all(r["escalated_from"]["confidence"] < 0.7 for r in escalated)
    assert all(r["call"]["model"] == "gemini-2.5-pro" for r in escalated)
    assert result.run["judge"]["usage"]["escalated_pairs"] == sum(
        len(c["data"]["pairs"]) for c in srv.answered if c["model"] == "gemini-2.5-pro"
    )
    replay = splink_er.run(
        path,
        overrides=[
            "judge.kind=replay",
            f"output_dir={tmp_path / 'replay'}",
            f"judge.log={result.output_dir / 'decision_log.jsonl'}",
        ],
        quiet=True,
    )
    assert same_decisions(result.output_dir, replay.output_dir)
    # The explanation of an escalated pair shows both answers and the model that decided.
    e = escalated[0]
    exp = result.explain(e["unique_id_l"], e["unique_id_r"])
    assert exp["decision"]["judge_model"] == "gemini-2.5-pro" and exp["decision"]["escalated_from"]
    assert "escalated_from" in exp["html"].read_text()


@pytest.mark.e2e
def test_openai_compatible_server_without_json_schema(demo_dict, tmp_path, monkeypatch):
    # A local server (llama.cpp-like): no key needed when base_url is set.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeLLMServer(reject_json_schema=True) as srv:
        path = settings_file(demo_dict, tmp_path, srv, kind="openai", model="local-llama", max_pairs=60)
        result = splink_er.run(path, quiet=True)
    assert result.run["judge"]["method"]["kind"] == "openai" and result.run["judge"]["pairs_judged"] == 60
    assert {c["format"] for c in srv.answered} == {"json_object"}


@pytest.mark.e2e
def test_simulated_judge_reports_estimated_tokens(demo_dict):
    result = splink_er.run(demo_dict, overrides=["judge.max_pairs=100"], quiet=True)
    j = result.run["judge"]
    assert j["simulated"] and j["tokens_estimated"] and j["cost_usd"] == 0.0
    # ~100-600 input tokens per pair, as the prompt an LLM judge would get
    assert 50 < j["usage"]["input_tokens"] / j["pairs_judged"] < 1000


@pytest.mark.e2e
def test_a_judge_whose_calls_fail_stops_the_run_loudly_and_keeps_what_it_received(demo_dict, tmp_path, keyed):
    # The first 4 calls are answered, every later one gets HTTP 503 (after the retries): the run stops with exit 5,
    # naming the endpoint and the error, and the answers received are in the label store.
    with FakeLLMServer(faults=lambda n, model: None if n <= 4 else "503") as srv:
        path = settings_file(demo_dict, tmp_path, srv, max_retries=1, batch_size=10, concurrency=1)
        res = CliRunner().invoke(app, ["run", str(path)])
    said = " ".join(res.output.split())
    assert res.exit_code == 5, res.output
    assert f"calls to {srv.url}" in said and "failed (more than judge.max_failed_share = 0.5)" in said
    assert "503" in said and "Answers received before this are kept" in said
    stored = splink_er.LabelStore(demo_dict["labels"]["path"]).read_all()
    assert len(stored) == 40  # 4 calls of 10 pairs answered, none of the failed ones stored as an answer
    assert not (Path(demo_dict["output_dir"]) / "run.json").exists()


@pytest.mark.e2e
def test_an_unreachable_judge_stops_the_run(demo_dict, tmp_path, keyed):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = dict(demo_dict)
    data["judge"] = {"kind": "gemini", "base_url": f"http://127.0.0.1:{port}", "max_retries": 0, "concurrency": 1}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["run", str(path)])
    said = " ".join(res.output.split())
    assert res.exit_code == 5 and f"3 of 3 calls to http://127.0.0.1:{port} failed" in said, res.output


@pytest.mark.e2e
def test_entity_audit_asks_the_llm_about_whole_entities_and_replays_without_a_server(demo_dict, tmp_path, keyed):
    demo_dict["verify"] = {"audit": {"enabled": True, "min_size": 4, "max_entities": 10, "max_pairs": 60}}
    with FakeLLMServer() as srv:
        path = settings_file(demo_dict, tmp_path, srv, max_pairs=360)
        result = splink_er.run(path, quiet=True)
    audit = json.loads((result.output_dir / "verification.json").read_text())["audit"]
    lines = [r for r in judge_lines(result.output_dir / "decision_log.jsonl") if r["reason"] == "entity_audit"]
    # Asked within what the run's budget left, each answer logged with what the judge was shown.
    assert 0 < audit["asked"] == len(lines) <= 60 and audit["entities"] <= 10
    assert result.run["judge"]["pairs_judged"] <= 360 and result.run["judge"]["pairs_by_reason"]["entity_audit"] > 0
    assert all(r["input"]["left"] and r["input"]["right"] for r in lines)
    # Records the judge says are not the anchor's entity leave it (the simulated server says so for some).
    assert audit["records_said_apart"] == sum(r["match"] is False for r in lines) > 0
    ids = dict(zip(result.clusters.unique_id, result.clusters.entity_id))
    for r in lines:
        if r["match"] is False:
            assert ids[r["unique_id_l"]] != ids[r["unique_id_r"]]
    # Replay from the log, no server: the same audit answers and the same entities.
    replay = splink_er.run(
        path,
        overrides=[
            "judge.kind=replay",
            f"output_dir={tmp_path / 'replay'}",
            f"judge.log={result.output_dir / 'decision_log.jsonl'}",
        ],
        quiet=True,
    )
    again = json.loads((replay.output_dir / "verification.json").read_text())["audit"]
    assert again["records_said_apart"] == audit["records_said_apart"] and again["questions"] == audit["questions"]
    groups = lambda c: sorted(c.groupby("entity_id")["unique_id"].apply(lambda s: tuple(sorted(s))))  # noqa: E731
    assert groups(replay.clusters) == groups(result.clusters)
