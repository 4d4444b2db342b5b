"""YAML settings -> validated `Settings` object.

Every error names the settings key (dotted path) and says what is allowed, so a user can fix the YAML
without reading this file. Input paths in a settings file are resolved relative to that file; the output
directory and the label store are resolved relative to the current directory (where the user runs).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import SettingsError


class _Strict(BaseModel):
    # Unknown keys are errors: a typo such as `thresold` must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


BlockingRule = list[str] | str
"""A blocking rule: a list of columns (records agree on all of them) or a SQL condition over l. and r."""


class PrepareStep(_Strict):
    """A normalizer applied to one column of a source, once per distinct value, before `derive`."""

    column: str = Field(description="Input column.")
    kind: Literal[
        "person_name", "first_name_canonical", "state", "zip", "phone", "email", "date", "office", "phonetic"
    ] = Field(
        description="person_name: split a full name into first_name, middle_name, last_name, name_suffix, "
        "nickname, first_name_canonical, party_tag, running_mate, name_title; first_name_canonical: Bob -> ROBERT; "
        "state: postal code; zip: 5 digits; phone: E.164; email: lower case (+tags removed where the provider ignores them; Gmail dots too); "
        "date: ISO date from the declared `formats`; office: office_level, office_role, office_district; "
        "phonetic: a sound-alike code (Smith, Smyth -> SM0) for blocking on misspelt names."
    )
    algorithm: Literal["metaphone", "nysiis", "soundex"] = Field(
        "metaphone", description="phonetic: jellyfish's algorithm (metaphone keeps the most letters)."
    )
    format: Literal["auto", "last_first_middle"] = Field(
        "auto",
        description="person_name: 'auto' reads any common format; 'last_first_middle' is the comma-less "
        "voter-file format (declared, never guessed).",
    )
    prefix: str = Field("", description="person_name, office: prefix of the output column names.")
    into: str | None = Field(
        None,
        description="Output column of the other kinds (default <column>_norm; "
        "first_name_canonical: <column>_canonical; phonetic: <column>_phonetic).",
    )
    region: str = Field("US", description="phone: region for numbers without a country code.")
    provider_rules: bool = Field(
        True, description="email: apply provider rules (+tags at Gmail, Outlook, iCloud, Fastmail, Proton; Gmail dots)."
    )
    formats: list[str] = Field(
        default_factory=lambda: ["%Y-%m-%d", "%m/%d/%Y"],
        description="date: strptime formats tried in order (e.g. '%d/%m/%Y'); a value none of them reads becomes null.",
    )


class SourceSettings(_Strict):
    name: str = Field(description="Source name; becomes the source_dataset value in pair keys.")
    path: str | None = Field(None, description="CSV or Parquet file. Omit when passing a DataFrame from Python.")
    format: Literal["csv", "parquet"] | None = Field(None, description="Inferred from the file suffix if omitted.")
    id_column: str = Field(description="Column that identifies a record uniquely within this source.")
    prepare: list[PrepareStep] = Field(default_factory=list, description="Normalizers, applied before derive.")
    derive: dict[str, str] = Field(
        default_factory=dict, description="New columns as DuckDB SQL expressions over the raw columns."
    )
    trim_whitespace: bool = Field(True, description="Trim text values and column names; empty strings become null.")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        if not v or not v.replace("_", "").replace("-", "").isalnum():
            raise ValueError("use letters, digits, '_' or '-' only (it is used in table names and pair keys)")
        return v


class LevelSettings(_Strict):
    sql: str = Field(description="SQL condition over <col>_l and <col>_r, or ELSE.")
    label: str | None = None
    null_level: bool = False
    tf_adjustment_column: str | None = None


class ComparisonSettings(_Strict):
    kind: str = Field(description="A splink.comparison_library name (e.g. NameComparison, ExactMatch) or 'custom'.")
    column: str | None = Field(None, description="Input column for library comparisons.")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the library comparison.")
    term_frequency_adjustments: bool = False
    output_column_name: str | None = Field(None, description="Name of a custom comparison.")
    levels: list[LevelSettings] | None = Field(None, description="Levels of a custom comparison, strongest first.")

    @model_validator(mode="after")
    def _check_kind(self) -> ComparisonSettings:
        import splink.comparison_library as cl

        from .comparisons import DEFAULTS

        if self.kind in DEFAULTS:  # splink_er's named building blocks: PersonName, Office, Party
            unknown = sorted(set(self.args) - set(DEFAULTS[self.kind]))
            if unknown:
                raise ValueError(
                    f"{self.kind} has no argument(s) {unknown}; it takes: {', '.join(DEFAULTS[self.kind])}"
                )
            return self
        if self.kind == "custom":
            if not self.output_column_name or not self.levels:
                raise ValueError("a custom comparison needs output_column_name and levels")
            if self.levels[-1].sql.strip().upper() != "ELSE":
                raise ValueError("the last level of a custom comparison must be `sql: ELSE`")
            return self
        factory = getattr(cl, self.kind, None)
        if factory is None or not inspect.isclass(factory):
            allowed = sorted(n for n in dir(cl) if n[0].isupper() and n not in ("ComparisonCreator",))
            raise ValueError(
                f"unknown comparison kind {self.kind!r}; use 'custom', PersonName, Office, Party or one "
                f"of: {', '.join(allowed)}"
            )
        if not self.column:
            raise ValueError(f"{self.kind} needs `column`")
        params = inspect.signature(factory.__init__).parameters
        unknown = [a for a in self.args if a not in params]
        if unknown:
            ok = [p for p in params if p not in ("self", "col_name")]
            raise ValueError(f"{self.kind} has no argument(s) {unknown}; it takes: {', '.join(ok)}")
        return self


class BootstrapSettings(_Strict):
    deterministic_rules: list[BlockingRule] = Field(
        default_factory=list, description="Rules that almost only true matches pass; give the prior."
    )
    recall: float = Field(0.8, gt=0, le=1, description="Assumed recall of the deterministic rules.")
    u_max_pairs: int = Field(1_000_000, gt=0, description="Random pairs sampled to estimate u.")
    u_min_count_per_level: int | None = Field(
        100,
        ge=1,
        description="Splink stops sampling for u once every level has this many pairs (it samples in "
        "chunks picked by the engine's own hash function). null: use every sampled pair; with u_max_pairs at least "
        "the number of possible pairs u is then exact, and the same on DuckDB and Spark.",
    )
    em_blocking_rules: list[BlockingRule] = Field(
        default_factory=list, description="Blocking rules for EM training sessions (one session each)."
    )
    seed: int = 42


class TrainingSettings(_Strict):
    method: Literal["m_from_labels", "logistic"] = Field(
        "logistic",
        description="m_from_labels: m per level from the labelled matches, smoothed towards "
        "the bootstrap; logistic: one weight correction per level fitted on all labels (matches and non-matches) "
        "with the bootstrap weight as offset, which undoes the double counting of correlated comparisons "
        "(splink_er/training.py).",
    )
    weighting: Literal["design", "none"] = Field(
        "none",
        description="logistic: weight each sampled label by 1/inclusion probability (the fit then "
        "describes all blocked pairs, not the hard ones the judge was shown) or every label alike.",
    )
    label_noise: float = Field(
        0.02,
        ge=0,
        lt=0.5,
        description="logistic: share of answers the fit allows to be "
        "wrong (robust logistic regression), so a wrong answer on a pair the model is sure of "
        "moves the weights only so far. 0: trust every answer.",
    )
    l2: float = Field(
        1.0,
        gt=0,
        description="logistic: L2 penalty pulling each correction towards the bootstrap "
        "weight (larger: closer to the bootstrap).",
    )
    min_positive_labels: int = Field(
        10,
        ge=1,
        description="Below this many positive labels (logistic: positive or negative) the bootstrap "
        "(EM) model is kept.",
    )
    smoothing: float = Field(
        5.0,
        ge=0,
        description="m_from_labels: pseudo-count pulling label-estimated m values towards the bootstrap model's.",
    )


class BlockingSettings(_Strict):
    """Learned blocking: extra rules that recover matches the blocking rules miss (see splink_er/blocking.py)."""

    max_comparisons: int | None = Field(
        None,
        ge=1,
        description="Most blocked pairs in all (current rules and added ones). Default: twice the "
        "pairs the current rules propose.",
    )
    adopt: bool = Field(
        False,
        description="Let the loop add the suggested rules after round 1's training "
        "(otherwise `splink-er blocking suggest` only prints them).",
    )
    candidate_columns: list[str] | None = Field(
        None,
        description="Columns to build candidate rules from, alone and in pairs (default: every column of "
        "the inputs but ids, truth and columns_to_keep; add derived or phonetic columns to widen the search).",
    )
    max_candidates: int = Field(200, ge=1, description="Most candidate rules scored.")
    min_expected_matches: float = Field(
        5.0,
        ge=0,
        description="A rule is only added if the model expects at least this many matches among the pairs it adds.",
    )


class SamplingSettings(_Strict):
    strategy: Literal["stratified", "uncertainty", "disagreement", "diversity"] = Field(
        "stratified",
        description="Query strategy: stratified (by match probability; see strata), uncertainty "
        "(pairs nearest p = 0.5), disagreement (pairs the last training moved most), diversity (round robin over "
        "comparison-vector patterns, least certain first). The targeted ones keep the stratified design and spend "
        "the ambiguous share on their targets, taken whole (docs/active_learning.md compares them).",
    )
    budget_per_round: int = Field(100, ge=0, description="Pairs drawn for labelling in each sampling round.")
    rounds: int = Field(1, ge=0, description="How many of the first rounds draw a stratified sample.")
    strata: dict[Literal["random", "high", "ambiguous", "low"], float] = Field(
        default_factory=lambda: {"random": 0.30, "high": 0.25, "ambiguous": 0.25, "low": 0.20},
        description="Share of the budget per stratum; strata by match probability (high >= routing.high, "
        "low <= routing.low, ambiguous between), random is uniform over all blocked pairs.",
    )
    seed: int = 42

    @field_validator("strata")
    @classmethod
    def _shares_sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if any(s < 0 for s in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"shares must be >= 0 and sum to 1 (they sum to {sum(v.values()):.3f})")
        return v


class GateSettings(_Strict):
    name: str
    sql: str = Field(description="SQL predicate over <col>_l/<col>_r; pairs where it is true are rejected.")


class RoutingSettings(_Strict):
    low: float = Field(0.10, ge=0, le=1, description="At or below: rejected by the model.")
    high: float = Field(0.95, ge=0, le=1, description="At or above: accepted by the model.")
    gates: list[GateSettings] = Field(default_factory=list)
    one_to_one: bool = Field(
        False,
        description="Link jobs: a record matches at most one record of another source. Records with "
        "two or more candidates at or above `high` are conflicts and go to the judge; any final match left that is "
        "not the best for both its records becomes decided_by = one_to_one, final_match = false.",
    )

    @model_validator(mode="after")
    def _low_below_high(self) -> RoutingSettings:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


JudgeKind = Literal["auto", "gemini", "openai", "replay", "truth", "none"]

DEFAULT_MODELS = {"gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini"}
DEFAULT_KEY_ENVS = {"gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "openai": ("OPENAI_API_KEY",)}


class PriceSettings(_Strict):
    input_per_million: float = Field(ge=0, description="USD per 1M input (prompt) tokens.")
    output_per_million: float = Field(ge=0, description="USD per 1M output tokens.")


def _default_prices() -> dict[str, PriceSettings]:
    # List prices (USD per 1M tokens, standard tier) seen in 2026 material; override in settings when they change.
    return {
        "gemini-2.5-flash": PriceSettings(input_per_million=0.30, output_per_million=2.50),
        "gemini-2.5-flash-lite": PriceSettings(input_per_million=0.10, output_per_million=0.40),
    }


class DomainSettings(_Strict):
    preset: Literal["person", "election_candidate", "generic"] = Field(
        "person", description="Starting matching rules: person, election_candidate or generic."
    )
    entity: str | None = Field(
        None, description="What one entity is, e.g. 'a candidate in one election' (default from the preset)."
    )
    fields: dict[str, str] = Field(default_factory=dict, description="What each field shown to the judge means.")
    rules: list[str] = Field(default_factory=list, description="Extra matching rules, added to the preset's.")
    replace_rules: bool = Field(False, description="Use only `rules`, not the preset's.")


class EscalationSettings(_Strict):
    kind: Literal["gemini", "openai"] | None = Field(None, description="Default: the primary judge's kind.")
    model: str = Field(description="The stronger model asked when the first answer is unsure.")
    base_url: str | None = Field(None, description="Default: the primary judge's base_url.")
    api_key_env: str | None = Field(None, description="Default: the primary judge's key variable.")
    threshold: float = Field(0.70, ge=0, le=1, description="Answers with confidence below this are escalated.")


class RedactSettings(_Strict):
    drop: list[str] = Field(default_factory=list, description="Fields never sent to a judge.")
    hash: list[str] = Field(
        default_factory=list,
        description="Fields sent as a salted hash: equal values stay equal, the value itself never leaves the machine.",
    )
    salt: str = Field("splink_er", description="Salt of the hash (change it per project).")


class JudgeSettings(_Strict):
    kind: JudgeKind = Field(
        "auto",
        description="gemini | openai (any OpenAI-compatible server) | replay (answers only from a decision "
        "log) | truth (SIMULATED from a ground-truth column) | none (band goes to needs_review) | auto (gemini when "
        "an API key variable is set, else none).",
    )
    model: str | None = Field(None, description="Model name (default gemini-2.5-flash; gpt-4o-mini for openai).")
    base_url: str | None = Field(None, description="Endpoint override, e.g. http://127.0.0.1:8080 or an Ollama URL.")
    api_version: str | None = Field("v1beta", description="Gemini API version.")
    api_key_env: str | None = Field(
        None,
        description="Environment variable holding the API key (default "
        "GEMINI_API_KEY then GOOGLE_API_KEY; OPENAI_API_KEY for openai). Never the key.",
    )
    timeout_seconds: float = Field(60.0, gt=0, description="Per-call timeout.")
    max_retries: int = Field(5, ge=0, description="Retries per call on 408/429/5xx, timeouts and transport errors.")
    backoff_seconds: float = Field(
        1.0,
        ge=0,
        description="First retry delay; doubles per retry (with jitter, capped at 60 s); a Retry-After header wins.",
    )
    rpm: int = Field(1000, ge=0, description="Requests per minute at most (0: no limit).")
    batch_size: int = Field(20, ge=1, le=500, description="Pairs per call (accuracy holds to ~64, collapses by 512).")
    concurrency: int = Field(16, ge=1, description="Calls in flight at once.")
    reasks: int = Field(
        1,
        ge=0,
        description="Times an invalid or missing answer is asked again in a smaller batch "
        "before the pair goes to needs_review.",
    )
    temperature: float = Field(0.0, ge=0, le=2)
    max_pairs: int = Field(
        1000, ge=0, description="Most pairs sent to the judge in one run (all rounds); the rest goes to needs_review."
    )
    max_cost: float | None = Field(
        None, ge=0, description="USD; stop calling once spent and send the rest to needs_review."
    )
    show_score: bool = Field(
        False, description="Show the model's match probability to the judge (it anchors the answer, so off by default)."
    )
    domain: DomainSettings = Field(default_factory=DomainSettings)
    redact: RedactSettings = Field(default_factory=RedactSettings)
    prices: dict[str, PriceSettings] = Field(default_factory=_default_prices, description="USD per 1M tokens by model.")
    escalation: EscalationSettings | None = Field(None, description="A second, stronger judge for unsure answers.")
    log_path: str = Field(
        "{output_dir}/decision_log.jsonl",
        description="Append-only decision log "
        "(JSONL): every decision of every run, with the judge's inputs and outputs.",
    )
    log_final_decisions: bool = Field(
        True,
        description="Also log every blocked pair's final decision (model "
        "accepts, rejects, gates too): a Parquet file per run beside the log.",
    )
    replay_log: str | None = Field(
        None, description="Replay judge: the decision log to answer from (default: log_path)."
    )
    replay_run: str | None = Field(
        None, description="Replay judge: the run_id to replay (default: the log's latest run with judge answers)."
    )
    truth_column: str | None = Field(None, description="Ground truth for the truth judge (default: truth_column).")
    error_rate: float = Field(0.0, ge=0, le=1, description="Truth judge: share of answers flipped (seeded).")
    repeats: int = Field(
        1,
        ge=1,
        description="Ask each pair this many times and keep the majority answer (odd "
        "numbers avoid ties; a tie goes to review). Pays for every ask. Helps against random "
        "errors (an LLM at temperature > 0), not against the same mistake made every time.",
    )
    seed: int = 42
    latency_seconds: float = Field(0.0, ge=0, description="Truth judge: simulated seconds per call.")

    def key_envs(self, kind: str) -> tuple[str, ...]:
        """Environment variables to read the key of a `kind` judge from, in order."""
        return (self.api_key_env,) if self.api_key_env else DEFAULT_KEY_ENVS.get(kind, ())


class LoopSettings(_Strict):
    max_rounds: int = Field(3, ge=1)
    min_new_labels: int = Field(1, ge=0, description="Stop when a round adds fewer labels than this.")
    band_per_round: int | None = Field(
        None,
        ge=1,
        description="Most band pairs judged per round; the rest wait for the model retrained on "
        "these answers, which narrows the band (null: as many as the budget allows, in one round).",
    )
    min_f1_gain: float = Field(
        0.0,
        ge=0,
        description="Stop when the model expects another round's answers to add less F1 than this "
        "(0: off). The estimate trusts the model's probabilities; run.json has it per round.",
    )
    final_training: bool = Field(
        True,
        description="After the last round, train once more on its answers and "
        "re-decide the pairs no one judged (no judging).",
    )


class SparkSettings(_Strict):
    master: str = Field(
        "local[*]",
        description="Spark master for a session splink_er starts (a session passed "
        "from Python, e.g. on Databricks, is used as it is).",
    )
    driver_memory: str = "4g"
    shuffle_partitions: int = Field(
        8,
        ge=1,
        description="spark.sql.shuffle.partitions and Splink's repartition "
        "count; Spark's default (200) makes small local jobs slow.",
    )
    config: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra Spark settings, e.g. spark.executor.memory."
    )


class EngineSettings(_Strict):
    kind: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="Where Splink compares pairs (u sampling, EM, prediction): 'duckdb' (one machine; the "
        "fastest there) or 'spark' (pip install 'splink-er[spark]'; Java 17). splink_er's own per-pair steps run "
        "in DuckDB over the prediction's Parquet with either, so both give the same decisions.",
    )
    spark: SparkSettings = Field(default_factory=SparkSettings)
    materialisation: Literal["table", "parquet"] = Field(
        "table",
        description="Where Splink keeps its intermediate tables: 'table' (in DuckDB's memory; fastest for "
        "small jobs) or 'parquet' (files under materialisation_dir; a 1M-record job peaked at 0.83 GB instead of "
        "2.5 GB, at the same speed).",
    )
    materialisation_dir: str = Field(
        "{output_dir}/.splink_tmp",
        description="Directory of the parquet "
        "materialisation and of DuckDB's spill files; deleted at the end of a run.",
    )
    memory_limit: str | None = Field(
        None,
        description="DuckDB memory limit, e.g. '1.5GB'; beyond it DuckDB spills "
        "to materialisation_dir (default: DuckDB's own, 80% of RAM).",
    )
    threads: int | None = Field(None, ge=1, description="DuckDB threads (default: one per core).")


class OutputSettings(_Strict):
    model_rejects: Literal["auto", "rows", "counts"] = Field(
        "auto",
        description="Model rejects (no label or gate, p <= routing.low) in decisions.parquet: 'rows' writes "
        "every blocked pair; 'counts' writes every other pair and only counts these (run.json decided_by and weight "
        "histogram); 'auto' writes rows up to auto_rows_limit blocked pairs. Most pairs of a large job are model "
        "rejects: at 24M pairs they cost 4 s to write and nobody reads them.",
    )
    auto_rows_limit: int = Field(5_000_000, ge=0, description="Blocked pairs up to which 'auto' writes model rejects.")


class AuditSettings(_Strict):
    size: int = Field(
        0,
        ge=0,
        description="Pairs in the audit sample judged after the decisions are final, for "
        "precision / recall / F1 estimates with 95% intervals without ground truth (0: no audit). "
        "Never used for training or routing; paid for like any judge answer.",
    )
    seed: int = 42


class LabelStoreSettings(_Strict):
    path: str = Field("labels/{name}.jsonl", description="JSONL label store; {name} is the settings name.")


class Settings(_Strict):
    name: str = Field(description="Name of the job; used in output and label-store paths.")
    link_type: Literal["link_only", "dedupe_only", "link_and_dedupe"]
    sources: list[SourceSettings] = Field(min_length=1)
    columns_to_keep: list[str] = Field(
        default_factory=list, description="Extra columns carried to the judge and outputs (not matched on)."
    )
    truth_column: str | None = Field(
        None, description="Ground-truth entity column, never a matching feature: metrics and the truth judge."
    )
    comparisons: list[ComparisonSettings] = Field(min_length=1)
    blocking_rules: list[BlockingRule] = Field(min_length=1)
    blocking: BlockingSettings = Field(default_factory=BlockingSettings)
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    labels: LabelStoreSettings = Field(default_factory=LabelStoreSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)
    output_dir: str = Field("runs/{name}", description="Where outputs go; {name} is the settings name.")
    base_dir: str = Field(".", description="Set by the loader: the settings file's folder (input paths).")

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: names must be distinct (got {names})")
        if self.link_type == "link_only" and len(self.sources) < 2:
            raise ValueError("link_only needs at least two sources; use dedupe_only for one")
        if self.link_type == "dedupe_only" and len(self.sources) != 1:
            raise ValueError("dedupe_only takes exactly one source; use link_and_dedupe for several")
        if self.judge.kind == "truth" and not (self.judge.truth_column or self.truth_column):
            raise ValueError("judge.kind 'truth' needs judge.truth_column or truth_column")
        if self.judge.escalation and self.judge.kind in ("truth", "none"):
            raise ValueError(
                "judge.escalation needs an LLM judge (judge.kind gemini or openai); "
                "replay uses the escalated answers in its log"
            )
        if self.routing.one_to_one and self.link_type == "dedupe_only":
            raise ValueError("routing.one_to_one applies to link jobs only")
        return self

    # Derived values: one place, so paths mean the same thing everywhere.
    @property
    def judge_truth_column(self) -> str | None:
        return self.judge.truth_column or self.truth_column

    def input_path(self, source: SourceSettings) -> Path | None:
        if source.path is None:
            return None
        p = Path(source.path)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir.format(name=self.name))

    @property
    def label_store_path(self) -> Path:
        return Path(self.labels.path.format(name=self.name))

    @property
    def decision_log_path(self) -> Path:
        return Path(self.judge.log_path.format(name=self.name, output_dir=self.output_path))

    @property
    def materialisation_path(self) -> Path:
        return Path(self.engine.materialisation_dir.format(name=self.name, output_dir=self.output_path))

    def fingerprint(self) -> str:
        """Hash of the settings that shape results (not base_dir), for run.json."""
        data = self.model_dump(exclude={"base_dir"})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _format_validation_error(err: ValidationError, origin: str) -> str:
    lines = [f"Invalid settings in {origin}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the settings reference in README.md)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        got = e.get("input")
        shown = "" if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {key}: {msg}{shown}")
    return "\n".join(lines)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `dotted.key=value` overrides (values parsed as YAML: numbers, booleans, lists)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise SettingsError(f"--set {item!r}: expected dotted.key=value, e.g. judge.kind=truth")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise SettingsError(
                        f"--set {key}: {'.'.join(parts[:i])} is a list; use an index 0..{len(node) - 1}"
                    )
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, (dict, list)):
                    raise SettingsError(f"--set {key}: {'.'.join(parts[: i + 1])} is a value, not a section")
        value = yaml.safe_load(raw) if raw.strip() else None
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise SettingsError(f"--set {key}: use an index 0..{len(node) - 1}")
            node[int(last)] = value
        else:
            node[last] = value
    return data


def load_settings(source: str | Path | dict | Settings, overrides: list[str] | None = None) -> Settings:
    """Load and validate settings from a YAML path, a dict or a Settings object.

    Example:
        >>> import splink_er
        >>> s = splink_er.load_settings(splink_er.demo_settings_path(), overrides=["routing.high=0.9"])
        >>> s.routing.high, s.judge.kind
        (0.9, 'truth')
    """
    if isinstance(source, Settings):
        if not overrides:
            return source
        data, origin, base = source.model_dump(), "settings object", source.base_dir
    elif isinstance(source, dict):
        data, origin, base = source, "settings dict", source.get("base_dir", ".")
    else:
        path = Path(source)
        if not path.exists():
            raise SettingsError(
                f"Settings file not found: {path}. Presets live in settings/ (e.g. settings/febrl4.yaml)."
            )
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise SettingsError(f"{path} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{path}: the top level must be a mapping of keys (name, link_type, sources, ...)")
        origin, base = str(path), str(path.parent)
    data = apply_overrides(data, overrides or [])
    data["base_dir"] = base
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise SettingsError(_format_validation_error(e, origin)) from None
