"""Judging: choose pairs within the budget, show the judge what it may see, reuse stored answers, ask, and log
and store every answer as its batch arrives.

A pair with a human label is never asked, nor one with an imported label (an answer the team had before:
already decided, so the budget goes elsewhere). A pair the same judge method already answered for the same input (in
the label store, from any run) is reused, not paid for again. Reused and new answers both count against the
budget, so a run's decisions do not depend on whether an earlier, killed run already paid for some answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .errors import JudgeFatalError
from .judges import Judge, run_judge
from .judges.llm import LLMJudge
from .labels import LABEL_COLUMNS, make_label
from .pairs import PAIR_KEY, JudgeDecision, PairContext, pair_keys
from .privacy import redact_record
from .sources import record_lookup


@dataclass
class Budget:
    """Pairs a judge may still be asked about (asked or reused)."""

    left: int


@dataclass
class Answers:
    """A ledger of judge answers (as labels) by pair key: the run's own, or an audit's, which never train or
    route anything."""

    by_key: dict[tuple, dict] = field(default_factory=dict)

    def __contains__(self, key) -> bool:
        return key in self.by_key

    def __len__(self) -> int:
        return len(self.by_key)


@dataclass
class JudgeStats:
    pairs: int
    reused: int = 0
    asked: int = 0
    undecided: int = 0
    failed: int = 0

    def as_dict(self) -> dict:
        return {
            "pairs": self.pairs,
            "reused": self.reused,
            "asked": self.asked,
            "undecided": self.undecided,
            "failed": self.failed,
        }


class Judging:
    """The judging component of a job (see `Job.judging`): one judge, its budget, the run's answers, the label
    store and the decision log."""

    def __init__(self, session, judge: Judge | None, note: str, store, log) -> None:
        self.session = session
        self.judge, self.note = judge, note
        self.store, self.log = store, log
        s = session.settings
        total = s.judge.max_pairs if judge is not None else 0
        # The entity audit's share (verify.audit.max_pairs) is kept out of the rounds' budget, so they cannot
        # spend it; the audit at the end of the run gets it and whatever the rounds left.
        self.reserved = min(s.verify.audit.max_pairs, total) if s.verify.audit.enabled else 0
        self.budget = Budget(total - self.reserved)
        self.answers = Answers()
        self.asked_by_reason: dict[str, int] = {}
        self.reused_by_reason: dict[str, int] = {}
        self.cost_by_reason: dict[str, float] = {}
        self.answered = 0  # pairs this run's judge answered match or not (undecided and failed ones are not)

    # ---- what the judge is --------------------------------------------------------------------------
    @property
    def description(self) -> str:
        note = f" ({self.note})" if self.note else ""
        if self.judge is None:
            return f"none (band goes to needs_review){note}"
        first = self.judge.parts[0]
        model = first.method.get("model")
        what = self.judge.name + (f" {model}" if model else "")
        if isinstance(first, LLMJudge) and self.session.settings.judge.kind != "replay":
            what += f" at {first.endpoint}"
        if self.session.settings.judge.kind == "replay":
            what = f"replay of run {self.judge.run_id} ({what} answers, no calls)"
        return what + (" (SIMULATED from ground truth)" if self.judge.simulated else "") + note

    @property
    def unpriced_models(self) -> list[str]:
        """LLM models the judge pays for that have no entry in judge.prices (their cost is not counted); a local
        endpoint (this machine, a private network) is not billed per token, so its models are not listed."""
        parts = self.judge.parts if self.judge else []
        return sorted({j.model for j in parts if isinstance(j, LLMJudge) and j.unpriced})

    @property
    def cost_exhausted(self) -> bool:
        parts = self.judge.parts if self.judge else []
        return any(j.cost_meter.exhausted for j in parts if isinstance(j, LLMJudge))

    def disable(self, note: str) -> None:
        """No judge from here on (retrain without judging): the band goes to needs_review."""
        self.judge, self.note, self.budget.left, self.reserved = None, note, 0, 0

    # ---- asking -------------------------------------------------------------------------------------
    def ask(
        self,
        pairs: pd.DataFrame,
        reason: str | None = None,
        round_no: int = 0,
        answers: Answers | None = None,
        budget: Budget | None = None,
    ) -> dict:
        """Get answers for `pairs` (pair key and match_probability, and a `reason` column or `reason`) into
        `answers` within `budget` (the run's own by default); log and store every answer per batch."""
        answers = self.answers if answers is None else answers
        budget = self.budget if budget is None else budget
        answered = set(pair_keys(self.store.human())) | self._imported_not_cached()
        stats = JudgeStats(len(pairs))
        chosen = []
        for i, key in enumerate(pair_keys(pairs)):
            if key in answered or key in answers:
                continue
            if self.judge is None or budget.left <= 0:
                break
            budget.left -= 1
            chosen.append(i)
        if not chosen:
            return stats.as_dict()
        todo = pairs.iloc[chosen]
        contexts = self.contexts(todo, reason)
        meta = {c.key: row for c, row in zip(contexts, todo.itertuples(index=False))}
        ask = self._reuse_stored(contexts, answers, stats, round_no)
        if ask:
            self._ask_judge(ask, meta, answers, budget, stats, round_no, reason)
        return stats.as_dict()

    def _imported_not_cached(self) -> set:
        """Pairs with an imported label that this judge method has not answered already: they are not asked.
        A stored answer of this method is free and outranks an import, so those pairs go on to be reused."""
        imported = set(pair_keys(self.store.imported()))
        if imported and self.judge is not None and self.session.settings.judge.kind != "replay":
            imported -= set(self.store.judge_answers(self.judge.method_id))
        return imported

    def _reuse_stored(
        self, contexts: list[PairContext], answers: Answers, stats: JudgeStats, round_no: int
    ) -> list[PairContext]:
        """Take stored answers of this judge method for the same input; returns the contexts left to ask."""
        judge, log = self.judge, self.log
        # The replay judge must answer from its log only, so it never takes answers from the label store.
        cache = {} if self.session.settings.judge.kind == "replay" else self.store.judge_answers(judge.method_id)
        ask, reused_lines = [], []
        for c in contexts:
            hit = cache.get(c.key)
            if hit is not None and hit.get("input_hash") == c.input_hash:
                answers.by_key[c.key] = hit
                stats.reused += 1
                self.reused_by_reason[c.reason] = self.reused_by_reason.get(c.reason, 0) + 1
                d = JudgeDecision(c.key, hit["match"], hit["confidence"], hit["reasoning"])
                reused_lines.append(
                    log.judge_record(c, d, judge.name, judge.method, judge.method_id, round_no, hit["run_id"])
                )
            else:
                ask.append(c)
        log.append(reused_lines)
        return ask

    def _ask_judge(
        self,
        ask: list[PairContext],
        meta: dict,
        answers: Answers,
        budget: Budget,
        stats: JudgeStats,
        round_no: int,
        reason: str | None,
    ) -> None:
        judge, s = self.judge, self.session
        method, method_id = judge.method, judge.method_id
        by_key = {c.key: c for c in ask}

        def persist(decisions: list[JudgeDecision]) -> None:
            new = []
            for d in decisions:
                c = by_key[d.key]
                self.cost_by_reason[c.reason] = self.cost_by_reason.get(c.reason, 0.0) + d.call.get("cost_usd", 0.0)
                if d.match is None:
                    stats.undecided += 1
                    if d.failed:  # nothing came back: the pair was not judged and keeps its place in the budget
                        stats.failed += 1
                        budget.left += 1
                        last_failure[0] = d.reasoning
                    continue
                row = meta[d.key]
                label = make_label(
                    d.key,
                    d.match,
                    d.confidence,
                    judge.name,
                    "judge",
                    simulated=judge.simulated,
                    reason=c.reason,
                    round_no=round_no,
                    stratum=getattr(row, "stratum_drawn", None),
                    inclusion_probability=getattr(row, "inclusion_probability", None),
                    run_id=s.run_id,
                    method=method,
                    reasoning=d.reasoning,
                    method_id=method_id,
                    input_hash=c.input_hash,
                )
                answers.by_key[d.key] = label
                new.append(label)
                self.answered += 1
            # Log first, then the label store: a label is never stored without its log line.
            self.log.append(
                [self.log.judge_record(by_key[d.key], d, judge.name, method, method_id, round_no) for d in decisions]
            )
            self.store.append(new)
            self._stop_if_failing(last_failure[0])

        j = s.settings.judge
        last_failure = [""]
        with s.clock.stage("judge"), s.reporter.progress(f"judging ({reason or 'band'})", len(ask)) as advance:
            run_judge(judge, ask, j.batch_size, j.concurrency, persist, advance)
        stats.asked = len(ask)
        for c in ask:
            self.asked_by_reason[c.reason] = self.asked_by_reason.get(c.reason, 0) + 1

    def _stop_if_failing(self, last_error: str) -> None:
        """JudgeFatalError once more than judge.max_failed_share of the calls have failed (from the third on):
        an unreachable or broken endpoint must not turn a whole run into needs_review with exit 0."""
        calls = failed = 0
        for part in self.judge.parts:
            calls, failed = calls + part.usage.calls + part.usage.failed_calls, failed + part.usage.failed_calls
        share = self.session.settings.judge.max_failed_share
        if calls >= 3 and failed > share * calls:
            endpoint = getattr(self.judge.parts[0], "endpoint", "the judge")
            raise JudgeFatalError(
                f"{failed} of {calls} calls to {endpoint} failed (more than judge.max_failed_share = {share}); "
                f"last error: {last_error.removeprefix('needs review: ')}. Check the endpoint, key and network."
            )

    def contexts(self, todo: pd.DataFrame, reason: str | None) -> list[PairContext]:
        """What the judge is shown per pair: redacted records, the score only if settings say so, and the
        conflict group (one record with several candidates is asked as one selection question)."""
        s = self.session
        keys = pair_keys(todo)
        records = record_lookup(s.con, s.loaded, [k[:2] for k in keys] + [k[2:] for k in keys], s.display_columns)
        redact = s.settings.judge.redact
        shown = {rid: redact_record(rec, redact) for rid, rec in records.items()}
        reasons = [reason or r for r in (todo["reason"] if "reason" in todo else [reason] * len(todo))]
        conflict_keys = [k for k, r in zip(keys, reasons) if r == "conflict"]
        left_n = pd.Series([k[:2] for k in conflict_keys], dtype=object).value_counts().to_dict()
        right_n = pd.Series([k[2:] for k in conflict_keys], dtype=object).value_counts().to_dict()
        show = s.settings.judge.show_score
        # Selection groups come from the judge queue (routing.selection_questions); a group the budget cut to one
        # pair is a pair question.
        selection = todo["selection_group"] if "selection_group" in todo else pd.Series([None] * len(todo))
        sides = todo["selection_side"] if "selection_side" in todo else pd.Series(["left"] * len(todo))
        sizes = selection.value_counts().to_dict()
        out = []
        for key, why, p, sel, sel_side in zip(keys, reasons, todo["match_probability"], selection, sides):
            group, side = None, "left"
            if isinstance(sel, str) and sizes.get(sel, 0) > 1:
                group, side = sel, sel_side
            elif why == "conflict" and left_n.get(key[:2], 0) > 1:
                group = f"{key[0]}:{key[1]}"
            elif why == "conflict" and right_n.get(key[2:], 0) > 1:
                group, side = f"{key[2]}:{key[3]}", "right"
            out.append(
                PairContext(
                    key, shown.get(key[:2], {}), shown.get(key[2:], {}), why, float(p) if show else None, group, side
                )
            )
        return out

    # ---- the labels the run uses -------------------------------------------------------------------
    def run_labels(self) -> pd.DataFrame:
        """The labels this run uses: every human label, the judge answers this run asked for or reused, and the
        imported labels of pairs neither covers."""
        human = self.store.human()
        human_keys = set(pair_keys(human))
        judged = [a for k, a in self.answers.by_key.items() if k not in human_keys]
        imported = self.store.imported()
        if len(imported):  # an answer of this run's judge method (asked or stored) outranks an import
            keep = self._imported_not_cached() - set(self.answers.by_key)
            imported = imported[[k in keep for k in pair_keys(imported)]]
        frames = [f for f in (human, pd.DataFrame(judged, columns=LABEL_COLUMNS), imported) if len(f)]
        if len(frames) <= 1:
            return frames[0] if frames else human
        return pd.concat(frames, ignore_index=True)

    def use_stored_answers(self, method_ids: set[str] | None = None) -> dict:
        """Take the judge answers in the label store given by the judge methods `method_ids` (None: every
        method), whichever run paid for them; human labels always count. Returns how many were taken and left."""
        live = self.store.live()
        judged = live[live["source_kind"].eq("judge")] if len(live) else live
        # Of the chosen methods' answers, the latest per pair (an answer of another method given later does
        # not hide it).
        chosen = judged if method_ids is None else judged[judged["method_id"].isin(method_ids)]
        chosen = chosen.sort_values("line").drop_duplicates(PAIR_KEY, keep="last").drop(columns="line")
        others = judged[~judged.set_index(PAIR_KEY).index.isin(chosen.set_index(PAIR_KEY).index)]
        self.answers = Answers(dict(zip(pair_keys(chosen), chosen.to_dict("records"))))
        return {"taken": len(chosen), "other_methods": others[PAIR_KEY].drop_duplicates().shape[0]}

    def used_methods(self) -> dict[str, dict]:
        """method_id -> method of the judge answers this run uses (its own judge's, or those retrain took)."""
        methods = {a.get("method_id"): a.get("method") for a in self.answers.by_key.values()}
        if self.judge is not None:
            methods[self.judge.method_id] = self.judge.method
        return {k: v for k, v in methods.items() if k}

    @property
    def simulated(self) -> bool:
        """Whether any answer that decided or trained something in this run came from a SIMULATED judge."""
        return bool(self.judge and self.judge.simulated) or any(
            bool(a.get("simulated")) for a in self.answers.by_key.values()
        )

    def usage(self) -> dict:
        return self.judge.usage.as_dict() if self.judge else {}
