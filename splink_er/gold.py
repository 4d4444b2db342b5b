"""gold.parquet: one row per record of the primary source, the answer a downstream table joins on.

For each record: its best match in the other sources (a dedupe job: in its own source) or none, how that was
decided (the stage: exact rule, model, LLM judge, person, imported label, review) with a confidence and the reasoning, whether it
waits for review, and the model and run that decided it. The best match is the record's final match decided by
the strongest evidence (a person, the judge, an imported label, an accept rule, then the model), the most probable first.
A record with no final match shows its closest candidate's decision, so "no match" says why (rejected by the model
at p = 0.03, by the judge, by a gate); a record none of whose pairs were written (model rejects only counted, see
`outputs.model_rejects`) or that had no blocked pair says so.
"""

from __future__ import annotations

from .pairs import evidence_strength_sql
from .sql import sql_literal

GOLD_COLUMNS = [
    "source_dataset",
    "unique_id",
    "entity_id",
    "has_match",
    "match_source_dataset",
    "match_unique_id",
    "match_probability",
    "decided_by",
    "stage",
    "confidence",
    "reasoning",
    "needs_review",
    "candidates",
    "model_version",
    "run_id",
    "time",
]

# decided_by -> the stage of the pipeline that decided (the design documents' method names).
STAGES = {
    "rule": "exact",
    "model_accept": "model",
    "model_reject": "model",
    "judge": "llm",
    "human": "human",
    "imported": "imported",
    "gate": "gate",
    "one_to_one": "one_to_one",
    "needs_review": "review",
}


def _case(mapping: dict, column: str, default: str) -> str:
    whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in mapping.items())
    return f"CASE {column} {whens} ELSE {default} END"


def gold_sql(
    decisions_kept: str,
    clusters: str,
    primary: str,
    primary_table: str,
    same_source: bool,
    high: float,
    low: float,
    model_version: str,
    run_id: str,
) -> str:
    """SQL of gold.parquet's rows (GOLD_COLUMNS) for every record of source `primary` (its input table
    `primary_table`). `same_source`: matches within the primary source count (a dedupe job)."""
    other = "" if same_source else "AND o_sd <> source_dataset"
    src = sql_literal(primary)
    # The model's own decisions, said in words (a judge or a person wrote theirs).
    model_reason = (
        f"CASE WHEN b.decided_by = 'model_accept' THEN 'match probability ' || round(b.match_probability, 4) "
        f"|| ' >= routing.high {high}' WHEN b.decided_by = 'model_reject' THEN 'match probability ' "
        f"|| round(b.match_probability, 4) || ' <= routing.low {low}' END"
    )
    return f"""
        WITH sides AS (
            SELECT source_dataset_l AS source_dataset, unique_id_l AS unique_id, source_dataset_r AS o_sd,
                unique_id_r AS o_uid, final_match, decided_by, match_probability, judge_confidence, judge_reasoning,
                needs_review
            FROM {decisions_kept} WHERE source_dataset_l = {src}
            UNION ALL
            SELECT source_dataset_r, unique_id_r, source_dataset_l, unique_id_l, final_match, decided_by,
                match_probability, judge_confidence, judge_reasoning, needs_review
            FROM {decisions_kept} WHERE source_dataset_r = {src}
        ), best AS (
            -- Each record's best pair: final matches first, then the strongest evidence, the higher probability,
            -- the other record's key (a total order). One hash aggregate: three windows over every pair, sorted
            -- per record, cost 2.7 s of a 2.5M-pair run. NULLs rank last as they did there (NaN, which no
            -- prediction holds, now ranks last too, and the caller's default_null_order no longer matters).
            SELECT source_dataset, unique_id, unnest(min_by(
                    struct_pack(o_sd, o_uid, final_match, decided_by, match_probability, judge_confidence,
                        judge_reasoning),
                    row(
                        CASE WHEN final_match THEN 0 WHEN NOT final_match THEN 1 ELSE 2 END,
                        {evidence_strength_sql()},
                        coalesce(-match_probability, 'infinity'::DOUBLE),
                        o_sd, o_uid))),
                count(*) AS candidates, bool_or(needs_review) AS any_review
            FROM sides WHERE true {other}
            GROUP BY source_dataset, unique_id
        )
        SELECT r.source_dataset, r.unique_id, c.entity_id,
            coalesce(b.final_match, false) AS has_match,
            CASE WHEN b.final_match THEN b.o_sd END AS match_source_dataset,
            CASE WHEN b.final_match THEN b.o_uid END AS match_unique_id,
            b.match_probability,
            coalesce(b.decided_by, 'no_candidate') AS decided_by,
            coalesce({_case(STAGES, "b.decided_by", "NULL")}, 'none') AS stage,
            CASE WHEN b.decided_by = 'one_to_one' THEN NULL  -- cut, not decided: the reasoning says why
                 WHEN b.judge_confidence IS NOT NULL THEN b.judge_confidence
                 WHEN b.decided_by = 'gate' THEN 1.0
                 WHEN b.final_match THEN b.match_probability
                 WHEN b.decided_by IS NOT NULL THEN 1 - b.match_probability END AS confidence,
            coalesce(b.judge_reasoning, {model_reason},
                CASE WHEN b.decided_by = 'needs_review' THEN 'match probability ' || round(b.match_probability, 4)
                    || ' between routing.low and routing.high, not judged: waits for review' END,
                CASE WHEN b.decided_by IS NULL THEN 'no candidate pair written: every blocked pair of this record '
                    || 'was a model reject (outputs.model_rejects), or it had none' END) AS reasoning,
            coalesce(b.any_review, false) AS needs_review,
            coalesce(b.candidates, 0) AS candidates,
            {sql_literal(model_version)} AS model_version,
            {sql_literal(run_id)} AS run_id,
            now() AS time
        FROM (SELECT source_dataset, unique_id FROM {primary_table}) r
        LEFT JOIN best b USING (source_dataset, unique_id)
        LEFT JOIN {clusters} c USING (source_dataset, unique_id)
        ORDER BY r.source_dataset, r.unique_id"""


__all__ = ["GOLD_COLUMNS", "STAGES", "gold_sql"]
