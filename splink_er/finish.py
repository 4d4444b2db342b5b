"""The end of a run: decisions, clusters, metrics, audit, every output file, the run record and the summary."""

from __future__ import annotations

import hashlib
import json
import threading
from importlib.metadata import version

from . import clusters as clusters_mod
from .entities import registry, verify
from .gold import gold_sql
from .judging import Budget
from .model_file import null_shares, probability_form
from .outputs import (
    DecisionCounts,
    RunDirectory,
    RunRecord,
    matches_sql,
    write_decisions,
)
from .pairs import pair_keys
from .sql import Relation, interrupted, sql_literal


def _warm_report() -> threading.Thread:
    """Import the report's chart libraries and start vl-convert's engine (0.8 s, most of it holding the GIL) in
    a thread while the decisions, clusters and entities are written: DuckDB releases the GIL while it works, so
    the two overlap and the report starts warm."""

    def warm() -> None:
        try:
            from .report import warm_up  # altair and vl-convert load only when a report is written

            warm_up()
        except Exception:  # writing the report meets the same failure and reports it
            pass

    thread = threading.Thread(target=warm, name="splink-er-report-warm-up", daemon=True)
    thread.start()
    return thread


def finish_run(job) -> dict:
    """Write the outputs of a job whose decisions are made (see `Job.finish`); returns the run record."""
    s = job.session
    warming = _warm_report()
    clock, inference = s.clock, job.inference
    out = job.outputs.staging(s.run_id)  # published whole at the end (outputs.py)
    with clock.stage("write"):
        blocked = inference.scores.count()
        path, rejects_written = write_decisions(s.con, inference.decisions, blocked, out, s.settings.outputs)
        kept = inference.read_back_decisions(path, rejects_written)
    with clock.stage("cluster"):
        run_clusters = clusters_mod.cluster(s.db, s.sdfs, job.model, kept.name)
        # Entities holding two records decided different are split (or listed) before ids are given.
        run_clusters, contradictions = verify.split_contradictions(
            s.con, run_clusters, kept.name, s.settings.verify.contradictions
        )
    run_clusters, audit = audit_entities(job, run_clusters, kept.name)
    clusters = Relation(s.con, job.entities.assign(run_clusters, kept.name))  # stable ids (entities/)
    verification = {"contradictions": contradictions} if contradictions else {}
    verification |= {"audit": audit} if audit else {}
    verification |= verify.check_rules(s.con, s.settings, clusters.name, s.loaded.tables)
    metrics = job.metrics()
    job.audit_result = job.evaluation.audit(inference.decisions, job.judging, job.round)
    with clock.stage("write"):
        out.copy_query(s.con, f"SELECT * FROM {clusters} ORDER BY source_dataset, unique_id", RunDirectory.clusters)
        out.copy_query(
            s.con, matches_sql(kept, clusters, s.loaded.tables, s.settings.columns_to_keep), RunDirectory.matches
        )
        out.copy_query(s.con, job.entities.changes_sql(), RunDirectory.entity_changes)
        registry_counts = write_registry(s, clusters.name, out)
        if verification:
            out.write_json(RunDirectory.verification, verification)
        # m and u as probabilities, the same match weight for every pair (model_file.py)
        model_file = probability_form(job.model, null_shares(s.con, list(s.loaded.tables.values()), job.model))
        out.write_json(RunDirectory.model, model_file)
        model_version = hashlib.sha256(json.dumps(model_file, sort_keys=True, default=str).encode()).hexdigest()[:16]
        primary = s.settings.outputs.gold_source or s.settings.sources[0].name
        r = s.settings.routing
        gold = gold_sql(
            kept.name, clusters.name, primary, s.loaded.tables[primary], s.settings.link_type == "dedupe_only",
            r.high, r.low, model_version, s.run_id,
        )  # fmt: skip
        out.copy_query(s.con, gold, RunDirectory.gold)
        out.write_json(RunDirectory.bootstrap_model, job.bootstrap_model)
        job.designs.frame.to_parquet(out / RunDirectory.samples, index=False)
        job.store.snapshot(out / RunDirectory.labels_snapshot)
        # One pass over every decision for every count the run reports, and the weight histogram.
        counts = DecisionCounts.of(inference.decisions)
        if s.settings.decision_log.final_decisions:
            job.judging.log.append_final(out / RunDirectory.decisions, sum(counts.decided_by.values()), rejects_written)
    run = run_record(job, metrics, counts, rejects_written, clusters).as_dict()
    run["registry"] = registry_counts
    run["verification"] = {k: v.get("entities", v.get("contradicted_entities")) for k, v in verification.items()}
    with clock.stage("report"), s.reporter.status("writing report.html"):
        warming.join()
        try:
            from .report import write_report

            write_report(s, model_file, run, out / RunDirectory.report)
        except Exception as e:  # the decisions are written; a chart failure must not lose the run
            if interrupted(e):  # Ctrl-C during one of the report's queries: stop, as anywhere else
                raise KeyboardInterrupt from e
            s.reporter.warn(f"report.html not written ({type(e).__name__}: {e})")
    job.entities.commit()  # the store first: a kill before publishing leaves it one run ahead, never mixed
    with clock.stage("write"):
        run = job.outputs.publish(out, run)
        # The decisions views read the staged file until now: point them at the published one.
        inference.read_back_decisions(job.outputs / RunDirectory.decisions, rejects_written)
    print_summary(job, run)
    s.backend.cleanup()
    return run


def audit_entities(job, clusters: str, decisions: str) -> tuple[str, dict]:
    """The judge's audit of whole entities (`verify.audit`): each audited entity's anchor record against each of
    its other records, asked like any pair (logged, stored, reused, replayable) within what is left of
    judge.max_pairs; records the judge says differ from the anchor are then split off as contradictions are."""
    s = job.session
    a, mode = s.settings.verify.audit, s.settings.verify.contradictions
    if not a.enabled or job.judging.judge is None:
        return clusters, {}
    questions = verify.audit_questions(s.con, s.settings, clusters, decisions, s.loaded.tables)
    judging = job.judging
    available = judging.budget.left + judging.reserved  # the audit's reserve and what the rounds left
    budget = Budget(min(a.max_pairs, available))
    granted = budget.left
    stats = judging.ask(questions, reason="entity_audit", round_no=job.round, budget=budget)
    judging.budget.left, judging.reserved = available - (granted - budget.left), 0
    answered = job.judging.answers.by_key
    keys = pair_keys(questions)
    apart = questions[[answered.get(k, {}).get("match") is False for k in keys]].assign(decided_by="judge")
    unanswered = sum(k not in answered for k in keys)
    found = {
        "entities": int(questions["entity"].nunique()),
        "questions": len(questions),
        "asked": stats.get("asked", 0),
        "reused": stats.get("reused", 0),
        "unanswered": unanswered,
        "records_said_apart": len(apart),
        "action": mode,
        "examples": [
            {"pair": [f"{r.source_dataset_l}:{r.unique_id_l}", f"{r.source_dataset_r}:{r.unique_id_r}"],
             "reasoning": answered[k].get("reasoning", "")}
            for r, k in zip(apart.head(5).itertuples(index=False), pair_keys(apart.head(5)))
        ],
    }  # fmt: skip
    if unanswered:
        s.reporter.warn(
            f"entity audit: {unanswered} of {len(questions)} questions not asked (judge.max_pairs spent, or "
            "verify.audit.max_pairs); raise judge.max_pairs to audit every chosen entity"
        )
    if mode != "split" or apart.empty:
        return clusters, found
    audited, _ = verify.split_contradictions(s.con, clusters, decisions, mode, table="audited_clusters", apart=apart)
    return audited, found


def write_registry(s, clusters: str, out: RunDirectory) -> dict:
    """The canonical layer's files (entities/registry.py), when `registry` is configured; their row counts."""
    if not s.settings.registry.enabled:
        return {}
    with s.clock.stage("registry"), s.reporter.status("registry: canonical values, aliases, chains"):
        tables = registry.build(s.con, s.settings, clusters, s.loaded.tables)
        counts = {}
        for stem, table in tables.items():
            out.copy_query(s.con, f"SELECT * FROM {table}", f"{stem}.parquet")
            counts[stem] = s.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        csv = out / RunDirectory.records_csv
        s.con.execute(f"COPY {tables['records']} TO {sql_literal(csv)} (HEADER, DELIMITER ',')")
    return counts


def run_record(job, metrics: dict, counts: DecisionCounts, rejects_written: bool, clusters) -> RunRecord:
    s, judging = job.session, job.judging
    usage = judging.usage()
    (n_entities,) = s.con.execute(f"SELECT count(DISTINCT entity_id) FROM {clusters}").fetchall()[0]
    n_records = sum(s.loaded.row_counts.values())
    cost = usage.get("cost_usd", 0.0)
    j = s.settings.judge
    return RunRecord(
        name=s.settings.name,
        run_id=s.run_id,
        link_type=s.settings.link_type,
        input_sizes=s.loaded.row_counts,
        input_hashes=s.loaded.input_hashes,
        possible_pairs=s.n_possible,
        blocked_pairs=sum(counts.decided_by.values()),
        final_matches=counts.final_matches,
        decided_by=counts.decided_by,
        model_rejects_written=rejects_written,
        rounds=job.rounds,
        training=job.training.reports,
        judge={
            "description": judging.description,
            "kind": j.kind,
            "simulated": judging.simulated,
            "calls": usage.get("calls", 0),
            "pairs_judged": judging.answered,  # answers only: an undecided or failed pair was not judged
            "pairs_sent": usage.get("pairs", 0),
            "pairs_by_reason": judging.asked_by_reason,
            "pairs_reused_by_reason": judging.reused_by_reason,
            "max_pairs": j.max_pairs,
            "pairs_left": judging.budget.left,
            "cost_usd": cost,
            "cost_by_stage": judging.cost_by_reason,
            "cost_per_record": cost / n_records if n_records else 0.0,
            "cost_per_entity": cost / n_entities if n_entities else 0.0,
            "tokens_estimated": usage.get("tokens_estimated", False),
            "unpriced_models": judging.unpriced_models,
            "method": judging.judge.method if judging.judge else None,
            "method_ids": sorted(judging.used_methods()),
            "decision_log": str(judging.log.path),
            "usage": usage,
        },
        entities=n_entities,
        entity_changes=job.entities.summary(),
        frozen_model=job.training.frozen,
        metrics=metrics,
        audit=job.audit_result,
        blocking=job.blocking_report,
        wall_seconds=s.clock.timings | {"total": s.clock.total()},
        versions={p: version(p) for p in ("splink_er", "splink", "duckdb", "pandas")},
        settings_hash=s.settings.fingerprint(),
        settings=s.settings.model_dump(),
        label_store=str(job.store.path),
        outputs=str(job.outputs.path),
        weight_histogram=counts.weight_histogram,
    )


def decided_by_rows(run: dict, settings) -> list[tuple[str, int, str]]:
    """(decided_by, pairs, why) for each way the run decided pairs, in the order a reader follows them."""
    r = settings.routing
    why = {
        "rule": "an accept rule (routing.accept_rules) matched the pair before any score or judge",
        "model_accept": f"match probability >= routing.high {r.high}: the model is sure enough alone",
        "judge": "the judge answered (a band or conflict pair, or one of the sampled pairs)",
        "human": "a person's label (splink-er label, review import) decided it",
        "imported": "a label imported from an earlier process (splink-er labels import); no judge was asked",
        "gate": "a gate (routing.gates) ruled the pair out whatever its score",
        "one_to_one": "a better match of one of its records won (routing.one_to_one)",
        "needs_review": needs_review_reason(run, settings),
        "model_reject": f"match probability <= routing.low {r.low}: the model is sure they differ",
    }
    counts = run["decided_by"]
    order = [k for k in why if k in counts] + sorted(set(counts) - set(why))
    return [(k, counts[k], why.get(k, "")) for k in order if counts[k]]


def needs_review_reason(run: dict, settings) -> str:
    """Why pairs were left for a person, from what the run did."""
    j, rounds = run["judge"], run.get("rounds") or []
    causes = []
    if j["kind"] == "none":
        causes.append("no judge (judge.kind: none)")
    elif j.get("pairs_left") == 0:
        causes.append(f"the judge's budget, judge.max_pairs={j['max_pairs']:,}, was spent")
    if rounds and rounds[-1].get("training_only"):
        causes.append("the last round retrained on the answers and moved pairs into the band without asking")
    if j.get("usage", {}).get("failed_calls"):
        causes.append(f"{j['usage']['failed_calls']} judge calls failed")
    because = "; ".join(causes) or "the judge was unsure or the budget did not reach them"
    unsure = (rounds[-1].get("routes") or {}).get("unsure", 0) if rounds else 0
    floor = settings.routing.min_judge_confidence
    also = (
        f"; {unsure:,} judge answers below routing.min_judge_confidence {floor} (final_match is the judge's answer)"
        if unsure
        else ""
    )
    return (
        f"between routing.low and routing.high but not judged: {because}. final_match is the model's guess "
        f"(p >= 0.5){also}; `splink-er review export` sends them to a person"
    )


def print_summary(job, run: dict) -> None:
    info = job.session.reporter.info
    j = run["judge"]
    info(
        f"[bold]done[/] in {run['wall_seconds']['total']:.1f}s: {run['blocked_pairs']:,} blocked pairs, "
        f"{run['final_matches']:,} matches"
    )
    job.session.reporter.table(
        "how the blocked pairs were decided (decisions.parquet, column decided_by)",
        ["decided_by", "pairs", "why"],
        [[k, n, why] for k, n, why in decided_by_rows(run, job.settings)],
    )
    u = j["usage"]
    tokens = (
        f"; tokens in/out {u['input_tokens']:,}/{u['output_tokens']:,}"
        + (" (estimated: simulated judge)" if j["tokens_estimated"] else f", cost ${j['cost_usd']:.4f}")
        if u
        else ""
    )
    info(
        f"judge: {j['description']}: {j['calls']} calls, {j['pairs_judged']:,} pairs judged ("
        + ", ".join(f"{k} {v:,}" for k, v in j["pairs_by_reason"].items())
        + f"), {sum(j['pairs_reused_by_reason'].values()):,} reused{tokens}"
    )
    if run["metrics"]:
        m = run["metrics"]
        info(
            f"against truth ({job.settings.truth_column}): precision {m['precision']:.4f}, recall "
            f"{m['recall']:.4f}, F1 {m['f1']:.4f} (blocking recall {m['blocking_recall']:.4f})"
        )
    a = run.get("audit") or {}
    if a.get("f1"):

        def fmt(k: str) -> str:
            return f"{a[k]['estimate']:.4f} [{a[k]['ci95'][0]:.4f}, {a[k]['ci95'][1]:.4f}]"

        info(
            f"estimated from the audit ({a['pairs_judged']} judged pairs, no truth needed), within "
            f"blocking: precision {fmt('precision')}, recall {fmt('recall')}, F1 {fmt('f1')} (95% intervals)"
        )
        if a.get("outside_blocking"):
            o = a["outside_blocking"]
            info(
                f"outside blocking: {o['matches_found']} matches in {o['random_pairs_judged']} random pairs "
                f"(at most ~{o['upper_95']:,} missed matches, 95%)"
            )
    if not run["model_rejects_written"]:
        info(
            f"decisions.parquet lists every pair but the {run['decided_by'].get('model_reject', 0):,} model "
            "rejects, which are counted in run.json (outputs.model_rejects: rows writes them)"
        )
    info(
        f"outputs: {job.outputs.path}/ (report.html, matches.parquet, decisions.parquet, clusters.parquet, "
        f"run.json, decision_log.jsonl); labels: {job.store.path}"
    )


__all__ = ["finish_run"]
