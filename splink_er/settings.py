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
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
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


class _Prepare(_Strict):
    """A normalizer applied to one column of a source, once per distinct value, before `derive`."""

    column: str = Field(description="Input column.")

    @property
    def inputs(self) -> list[str]:
        """Every column the step reads."""
        return [self.column]


class _PrepareInto(_Prepare):
    into: str | None = Field(None, description="Output column (default <column>_norm).")


class Replacement(_Strict):
    """One regular-expression replacement of a clean step."""

    pattern: str = Field(
        description="Regular expression in RE2 syntax, as DuckDB's regexp_replace reads it: \\? matches a literal ?, "
        "(?i) ignores case; no look-behind. Every match is replaced."
    )
    replacement: str = Field("", description="What each match becomes (\\1 for the first group); default: nothing.")

    @model_validator(mode="after")
    def _duckdb_reads_it(self) -> Replacement:
        import duckdb

        try:  # DuckDB compiles both here, so a bad one is a settings error, not a failure halfway through loading
            duckdb.connect().execute("SELECT regexp_replace('', ?, ?, 'g')", [self.pattern, self.replacement])
        except duckdb.Error as e:
            reason = str(e).splitlines()[0].removeprefix("Invalid Input Error: ").rstrip(".")
            raise ValueError(
                f"DuckDB cannot use pattern {self.pattern!r} with replacement {self.replacement!r}: {reason}. Write "
                "the pattern in RE2 syntax (a backslash before ? * + . ( ) [ ] to match them literally, no "
                "look-behind) and use \\1 .. \\9 in the replacement only for groups the pattern has"
            ) from None
        return self


class CleanPrepare(_Prepare):
    """Regular-expression replacements on a column's text, in order: a source's own marks repaired before a
    parser reads them (<<Buck>> to "Buck"). Steps run in the order listed, so list it before the steps that should
    read the cleaned text; `derive` sees it too. A value cleaned to nothing becomes null."""

    kind: Literal["clean"]
    replace: list[Replacement] = Field(min_length=1, description="Replacements, applied in order.")
    into: str | None = Field(None, description="Output column (default: the column itself, cleaned in place).")


class PersonNamePrepare(_Prepare):
    """Split a full name into first_name, middle_name, last_name, name_suffix, nickname, first_name_canonical,
    party_tag, running_mate, name_title."""

    kind: Literal["person_name"]
    format: Literal["auto", "last_first_middle"] = Field(
        "auto",
        description="'auto' reads any common format; 'last_first_middle' is the comma-less "
        "voter-file format (declared, never guessed).",
    )
    prefix: str = Field("", description="Prefix of the output column names.")


class OfficePrepare(_Prepare):
    """An office title as office_level, office_role, office_district."""

    kind: Literal["office"]
    prefix: str = Field("", description="Prefix of the output column names.")


class PartyPrepare(_PrepareInto):
    """A US party value (Democratic, DEM, D, DFL, W(R), N(D), "D/WF Combined Parties") as one canonical code, plus
    <into or column>_write_in, _nominee and _combined (a fusion candidate's combined-total row). Unknown values: null
    code, never a guess (README 'Parties')."""

    kind: Literal["party"]
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Your own value -> code entries, read before the shipped table (e.g. a New York board's "
        "{CON: CRV, IND: IDP, WOR: WF}, where CON is the Conservative and IND the Independence Party).",
    )

    @field_validator("aliases")
    @classmethod
    def _known_codes(cls, v: dict[str, str]) -> dict[str, str]:
        from .normalize.parties import table  # the shipped table: read only when a party step is configured

        codes = set(table().values())
        v = {k: str(code).strip().upper() for k, code in v.items()}
        unknown = sorted({c for c in v.values() if c not in codes})
        if unknown:
            raise ValueError(
                f"aliases map to codes the party table does not have: {unknown}; use its codes (e.g. DEM, REP, "
                "CRV, IDP, WF: splink_er/normalize/data/parties.csv), so the Party comparison and fusion pairs "
                "know them"
            )
        return v


class FirstNameCanonicalPrepare(_Prepare):
    """A first name as its canonical form (Bob -> ROBERT)."""

    kind: Literal["first_name_canonical"]
    into: str | None = Field(None, description="Output column (default <column>_canonical).")


class PhoneticPrepare(_Prepare):
    """A sound-alike code (Smith, Smyth -> SM0) for blocking on misspelt names."""

    kind: Literal["phonetic"]
    into: str | None = Field(None, description="Output column (default <column>_phonetic).")
    algorithm: Literal["metaphone", "nysiis", "soundex"] = Field(
        "metaphone", description="jellyfish's algorithm (metaphone keeps the most letters)."
    )


class StatePrepare(_PrepareInto):
    """A US state name or code as its postal code."""

    kind: Literal["state"]


class ZipPrepare(_PrepareInto):
    """A US ZIP code as 5 digits."""

    kind: Literal["zip"]


class PhonePrepare(_PrepareInto):
    """A phone number in E.164."""

    kind: Literal["phone"]
    region: str = Field("US", description="Region for numbers without a country code.")


class EmailPrepare(_PrepareInto):
    """An e-mail address in lower case (+tags removed where the provider ignores them; Gmail dots too)."""

    kind: Literal["email"]
    provider_rules: bool = Field(
        True, description="Apply provider rules (+tags at Gmail, Outlook, iCloud, Fastmail, Proton; Gmail dots)."
    )


class DatePrepare(_PrepareInto):
    """An ISO date read with the declared formats."""

    kind: Literal["date"]
    formats: list[str] = Field(
        default_factory=lambda: ["%Y-%m-%d", "%m/%d/%Y"],
        description="strptime formats tried in order (e.g. '%d/%m/%Y'); a value none of them reads becomes null.",
    )


class ZipInStatePrepare(_PrepareInto):
    """Whether a ZIP code lies in a state's USPS 3-digit ZIP prefixes (a CA record with an FL ZIP is false; null
    when either cannot be read). Reads two columns; a boolean for comparisons and gates ("NOT zip_ok_l")."""

    kind: Literal["zip_in_state"]
    state: str = Field(
        description="State column: names, postal codes or FIPS, raw or normalized; AA, AE, AP for APO/FPO."
    )
    into: str | None = Field(None, description="Output column (default <column>_in_state).")

    @property
    def inputs(self) -> list[str]:
        return [self.column, self.state]


class ContestKindPrepare(_PrepareInto):
    """A contest or row label as candidate_race, ballot_measure or turnout_metadata ("Registered Voters", "Over
    Votes", "For", "Bond Referendum"), to leave rows that are no candidate out before matching."""

    kind: Literal["contest_kind"]
    into: str | None = Field(None, description="Output column (default <column>_kind).")


class _PrepareMany(_Strict):
    """A normalizer over several columns of a record, giving one list."""

    columns: list[str] = Field(min_length=1, description="Input columns, read in order.")

    @property
    def column(self) -> str:
        return self.columns[0]

    @property
    def inputs(self) -> list[str]:
        return list(self.columns)


class EmailsPrepare(_PrepareMany):
    """Several e-mail columns as one list of distinct normalized addresses (the email step's rules); null when
    none reads. Compare it with AnyShared."""

    kind: Literal["emails"]
    into: str = Field("emails", description="Output column, a list of text.")
    provider_rules: bool = Field(True, description="As the email step's provider_rules.")


class PhonesPrepare(_PrepareMany):
    """Several phone columns as one list of distinct E.164 numbers (the phone step's rules); null when none
    reads. Compare it with AnyShared."""

    kind: Literal["phones"]
    into: str = Field("phones", description="Output column, a list of text.")
    region: str = Field("US", description="Region for numbers without a country code.")


PrepareStep = Annotated[
    CleanPrepare
    | PersonNamePrepare
    | OfficePrepare
    | PartyPrepare
    | FirstNameCanonicalPrepare
    | PhoneticPrepare
    | StatePrepare
    | ZipPrepare
    | PhonePrepare
    | EmailPrepare
    | DatePrepare
    | ZipInStatePrepare
    | ContestKindPrepare
    | EmailsPrepare
    | PhonesPrepare,
    Field(discriminator="kind"),
]
"""One `sources[].prepare` step: a model per `kind`, so each kind takes only its own keys."""

PREPARE_STEPS: dict[str, type[_Strict]] = {
    m.model_fields["kind"].annotation.__args__[0]: m
    for m in (
        CleanPrepare,
        PersonNamePrepare,
        OfficePrepare,
        PartyPrepare,
        FirstNameCanonicalPrepare,
        PhoneticPrepare,
        StatePrepare,
        ZipPrepare,
        PhonePrepare,
        EmailPrepare,
        DatePrepare,
        ZipInStatePrepare,
        ContestKindPrepare,
        EmailsPrepare,
        PhonesPrepare,
    )
}


class ReadSettings(_Strict):
    """How a CSV source is read (Parquet carries its own types and encoding)."""

    encoding: Literal["utf-8", "utf-16", "latin-1"] = Field(
        "utf-8", description="Text encoding of the file (DuckDB reads these three)."
    )
    delimiter: str | None = Field(None, description="Column separator (default: detected, e.g. ',' ';' '|' tab).")
    max_line_size: int | None = Field(
        None, ge=1, description="Longest line in bytes (DuckDB's default is 2 MB); raise it for very long fields."
    )


class SourceSettings(_Strict):
    """One input table."""

    name: str = Field(description="Source name; becomes the source_dataset value in pair keys.")
    path: str | None = Field(None, description="CSV or Parquet file. Omit when passing a DataFrame from Python.")
    format: Literal["csv", "parquet"] | None = Field(None, description="Inferred from the file suffix if omitted.")
    read: ReadSettings = Field(default_factory=ReadSettings, description="How a CSV file is read.")
    id_column: str = Field(description="Column that identifies a record uniquely within this source.")
    prepare: list[PrepareStep] = Field(
        default_factory=list, description="Normalizers, applied in the order listed, before derive."
    )
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

    @model_validator(mode="after")
    def _clean_before_readers(self) -> SourceSettings:
        for i, step in enumerate(self.prepare):
            if step.kind != "clean" or (step.into or step.column) != step.column:
                continue
            readers = [j for j, other in enumerate(self.prepare[:i]) if step.column in other.inputs]
            if readers:
                j = readers[0]
                raise ValueError(
                    f"prepare[{i}] (clean) rewrites column {step.column!r}, which prepare[{j}] "
                    f"({self.prepare[j].kind}) reads before it: list the clean step first, so that step reads "
                    "the cleaned text (steps run in the order listed)"
                )
        return self


class LevelSettings(_Strict):
    """One level of a custom comparison."""

    sql: str = Field(description="SQL condition over <col>_l and <col>_r, or ELSE.")
    label: str | None = Field(None, description="Label in charts and explanations (default: the SQL).")
    null_level: bool = Field(False, description="The level says 'unknown' (no evidence either way), e.g. a null.")
    tf_adjustment_column: str | None = Field(
        None, description="Adjust the level's weight by how common the value of this column is."
    )


def _exact_match_column(sql: str) -> str | None:
    """The column a level's SQL is an exact match on (`x_l = x_r`), as Splink reads it; None for any other SQL."""
    from splink.internals.comparison_level import ComparisonLevel
    from splink.internals.dialects import SplinkDialect

    if sql.strip().upper() == "ELSE":
        return None
    try:
        level = ComparisonLevel(sql, SplinkDialect.from_string("duckdb"))
        cols = level._exact_match_colnames if level._is_exact_match else []
    except Exception:  # SQL sqlglot cannot read is reported by Splink later, with its own message
        return None
    return cols[0] if len(cols) == 1 else None


def _check_tf_levels(name: str, levels: list[LevelSettings]) -> None:
    """Splink takes a term-frequency adjustment's u from the comparison's exact-match level on that column and
    fails deep inside training without one: say so before any work."""
    exact = {_exact_match_column(lv.sql) for lv in levels}
    for lv in levels:
        col = lv.tf_adjustment_column
        if col and col.lower() not in exact:
            raise ValueError(
                f"comparison {name!r}: tf_adjustment_column {col!r} needs a level `{col}_l = {col}_r` in the "
                "same comparison (Splink reads the term frequency's u from that exact-match level); add one, or "
                "drop tf_adjustment_column"
            )


class ComparisonSettings(_Strict):
    """One comparison: a Splink comparison library name, a named block of this library, or custom levels."""

    kind: str = Field(
        description="A splink.comparison_library name (e.g. NameComparison, ExactMatch), a building block of "
        "this library (PersonName, Office, Party, AnyShared; README 'Comparison building blocks') or 'custom'."
    )
    column: str | None = Field(None, description="Input column for library comparisons.")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the library comparison.")
    term_frequency_adjustments: bool = Field(
        False, description="Library comparisons: exact matches on rare values weigh more than on common ones."
    )
    output_column_name: str | None = Field(None, description="Name of a custom comparison.")
    levels: list[LevelSettings] | None = Field(None, description="Levels of a custom comparison, strongest first.")

    @model_validator(mode="after")
    def _check_kind(self) -> ComparisonSettings:
        import splink.comparison_library as cl

        from .comparisons import DEFAULTS

        if self.kind in DEFAULTS:  # splink_er's named building blocks: PersonName, Office, Party, AnyShared
            unknown = sorted(set(self.args) - set(DEFAULTS[self.kind]))
            if unknown:
                raise ValueError(
                    f"{self.kind} has no argument(s) {unknown}; it takes: {', '.join(DEFAULTS[self.kind])}"
                )
            switches = [k for k, v in self.args.items() if isinstance(DEFAULTS[self.kind][k], bool)]
            not_bool = [k for k in switches if not isinstance(self.args[k], bool)]
            if not_bool:
                raise ValueError(f"{self.kind} argument(s) {not_bool} take true or false")
            return self
        if self.kind == "custom":
            if not self.output_column_name or not self.levels:
                raise ValueError("a custom comparison needs output_column_name and levels")
            if self.levels[-1].sql.strip().upper() != "ELSE":
                raise ValueError("the last level of a custom comparison must be `sql: ELSE`")
            _check_tf_levels(self.output_column_name, self.levels)
            return self
        factory = getattr(cl, self.kind, None)
        if factory is None or not inspect.isclass(factory):
            allowed = sorted(n for n in dir(cl) if n[0].isupper() and n not in ("ComparisonCreator",))
            raise ValueError(
                f"unknown comparison kind {self.kind!r}; use 'custom', PersonName, Office, Party, AnyShared or one "
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
    """The first model, before any label: the prior from deterministic rules, u from random pairs, m by EM."""

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
    seed: int = Field(42, description="Seed of the random pairs sampled for u.")


class TrainingSettings(_Strict):
    """How labels retrain the model."""

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
    judge_methods: Literal["run", "all"] = Field(
        "run",
        description="retrain: which stored judge answers train the model beside human labels: 'run' those of the "
        "run's own judge method (kind, model, prompt: run.json judge.method_ids), 'all' every judge's, whichever "
        "run or judge (simulated ones too) gave them.",
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
    max_scored_pairs: int = Field(
        1_000_000,
        ge=1,
        description="Most added pairs compared to estimate the candidates' expected matches. Every candidate's "
        "added pairs are counted exactly; when their union is larger, a fixed random share of it (the same pairs "
        "for every candidate) is compared and the sums scaled up. The report says which.",
    )
    min_expected_matches: float = Field(
        5.0,
        ge=0,
        description="A rule is only added if the model expects at least this many matches among the pairs it adds.",
    )


class SamplingSettings(_Strict):
    """Which pairs the judge labels to train the model (the band is routed, not sampled)."""

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
    seed: int = Field(42, description="Seed of the sample.")

    @field_validator("strata")
    @classmethod
    def _shares_sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if any(s < 0 for s in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"shares must be >= 0 and sum to 1 (they sum to {sum(v.values()):.3f})")
        return v


class GateSettings(_Strict):
    """A hard rule: pairs where `sql` is true are rejected whatever the score."""

    name: str = Field(description="Name shown in decisions.parquet (decided_by = gate:<name>).")
    sql: str = Field(description="SQL predicate over <col>_l/<col>_r; pairs where it is true are rejected.")


class AcceptRuleSettings(_Strict):
    """A deterministic accept: pairs where `sql` is true are matches before any judge or score (an exact key)."""

    name: str = Field(description="Name shown in decisions.parquet (decided_by = rule, reasoning 'rule: <name>').")
    sql: str = Field(
        description="SQL predicate over <col>_l/<col>_r (columns the comparisons read, like gates), e.g. "
        '"fec_id_l = fec_id_r"; pairs where it is true are accepted with confidence 1.0.'
    )


class RoutingSettings(_Strict):
    """Where each scored pair goes: accepted, rejected, or to the judge."""

    low: float = Field(0.10, ge=0, le=1, description="At or below: rejected by the model.")
    high: float = Field(0.95, ge=0, le=1, description="At or above: accepted by the model.")
    gates: list[GateSettings] = Field(default_factory=list, description="Rejection rules applied before the scores.")
    accept_rules: list[AcceptRuleSettings] = Field(
        default_factory=list,
        description="Accept rules applied before the scores and the judge (after gates: a gate still rejects). "
        "Pairs a rule accepts or a gate rejects are left out of sampling: they are decided, and training "
        "learns the pairs the model must decide.",
    )
    min_judge_confidence: float = Field(
        0.70,
        ge=0,
        le=1,
        description="A judge answer below this confidence is not final: the pair is needs_review (its "
        "final_match is the judge's answer, the reasoning says why) and the answer does not train. Human labels "
        "are always final. 0 makes every answer final.",
    )
    one_to_one: bool = Field(
        False,
        description="Link jobs: a record matches at most one record of another source. Records with "
        "two or more candidates at or above `high` are conflicts and go to the judge; any final match left that is "
        "not the best for both its records becomes decided_by = one_to_one, final_match = false.",
    )
    selection_questions: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Link jobs: a record with two or more candidates in the same other source, at least one of "
        "them in the band and the others in the band or accepted by the model (not yet judged), is asked about "
        "in one question, 'which of these, if any, is the same entity' (up to "
        "10 candidates, the most probable; the rest are asked one pair at a time). The answer becomes one label "
        "per pair: the chosen candidate a match, the others not. auto: on when `one_to_one` is set, off "
        "otherwise; off: every band pair is its own question.",
    )

    @model_validator(mode="after")
    def _low_below_high(self) -> RoutingSettings:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


DEFAULT_MODELS = {"gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini"}
DEFAULT_KEY_ENVS = {"gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "openai": ("OPENAI_API_KEY",)}


class PriceSettings(_Strict):
    """List price of one model."""

    input_per_million: float = Field(ge=0, description="USD per 1M input (prompt) tokens.")
    output_per_million: float = Field(ge=0, description="USD per 1M output tokens.")


def _default_prices() -> dict[str, PriceSettings]:
    # List prices (USD per 1M tokens, standard tier) seen in 2026 material; override in settings when they change.
    return {
        "gemini-2.5-flash": PriceSettings(input_per_million=0.30, output_per_million=2.50),
        "gemini-2.5-flash-lite": PriceSettings(input_per_million=0.10, output_per_million=0.40),
        "gemini-2.5-pro": PriceSettings(input_per_million=1.25, output_per_million=10.00),
        "gpt-4o-mini": PriceSettings(input_per_million=0.15, output_per_million=0.60),
        "gpt-4.1-mini": PriceSettings(input_per_million=0.40, output_per_million=1.60),
    }


class DomainSettings(_Strict):
    """What the judge is told about the task."""

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
    """A second, stronger LLM asked when the first answer's confidence is below `threshold`."""

    kind: Literal["gemini", "openai"] | None = Field(None, description="Default: the primary judge's kind.")
    model: str = Field(description="The stronger model asked when the first answer is unsure.")
    base_url: str | None = Field(None, description="Default: the primary judge's base_url.")
    api_key_env: str | None = Field(None, description="Default: the primary judge's key variable.")
    threshold: float = Field(0.70, ge=0, le=1, description="Answers with confidence below this are escalated.")


class RedactSettings(_Strict):
    """What never leaves the machine in a judge's prompt."""

    drop: list[str] = Field(default_factory=list, description="Fields never sent to a judge.")
    hash: list[str] = Field(
        default_factory=list,
        description="Fields sent as a salted hash: equal values stay equal, the value itself never leaves the machine.",
    )
    salt: str = Field("splink_er", description="Salt of the hash (change it per project).")


class _JudgeCommon(_Strict):
    """How pairs are put to a judge, whoever answers: the budget, batching, what the judge is shown."""

    max_pairs: int = Field(
        1000, ge=0, description="Most pairs sent to the judge in one run (all rounds); the rest goes to needs_review."
    )
    batch_size: int = Field(20, ge=1, le=500, description="Pairs per call (accuracy holds to ~64, collapses by 512).")
    concurrency: int = Field(16, ge=1, description="Calls in flight at once.")
    max_failed_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Stop the run (exit 5, naming the endpoint and the last error) once more than this share of "
        "the judge's calls have failed (unreachable endpoint, HTTP errors after retries), checked from the third "
        "call on. Answers received are kept; pairs whose call failed do not use up judge.max_pairs.",
    )
    show_score: bool = Field(
        False, description="Show the model's match probability to the judge (it anchors the answer, so off by default)."
    )
    domain: DomainSettings = Field(default_factory=DomainSettings)
    redact: RedactSettings = Field(default_factory=RedactSettings)


class NoJudgeSettings(_JudgeCommon):
    """No judge: the band goes to needs_review."""

    kind: Literal["none"]


class ReplayJudgeSettings(_JudgeCommon):
    """Answers only from a decision log; never calls a model."""

    kind: Literal["replay"]
    log: str | None = Field(None, description="The decision log to answer from (default: decision_log.path).")
    run: str | None = Field(
        None, description="The run_id to replay (default: the log's latest run with judge answers)."
    )


class TruthJudgeSettings(_JudgeCommon):
    """SIMULATED: answers from a ground-truth column, for benchmarks and tests (a record with no truth value is an
    entity of its own: not a match)."""

    kind: Literal["truth"]
    truth_column: str | None = Field(None, description="Ground truth to answer from (default: truth_column).")
    error_rate: float = Field(0.0, ge=0, le=1, description="Share of answers flipped (seeded).")
    repeats: int = Field(
        1, ge=1, description="Ask each pair this many times and keep the majority answer (see the LLM judges)."
    )
    seed: int = Field(42, description="Seed of the flipped answers.")
    latency_seconds: float = Field(0.0, ge=0, description="Simulated seconds per call.")


class LLMJudgeSettings(_JudgeCommon):
    """An LLM judge: Gemini (google-genai), any OpenAI-compatible server, or `auto` (Gemini when an API key
    variable is set, else none)."""

    kind: Literal["auto", "gemini", "openai"] = Field(
        "auto", description="auto: gemini when an API key variable is set, else none."
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
    reasks: int = Field(
        1,
        ge=0,
        description="Times an invalid or missing answer is asked again in a smaller batch "
        "before the pair goes to needs_review.",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: the most repeatable answers).")
    max_cost: float | None = Field(
        None, ge=0, description="USD; stop calling once spent and send the rest to needs_review."
    )
    prices: dict[str, PriceSettings] = Field(default_factory=_default_prices, description="USD per 1M tokens by model.")
    escalation: EscalationSettings | None = Field(None, description="A second, stronger judge for unsure answers.")
    repeats: int = Field(
        1,
        ge=1,
        description="Ask each pair this many times and keep the majority answer (odd "
        "numbers avoid ties; a tie goes to review). Pays for every ask. Helps against random "
        "errors (an LLM at temperature > 0), not against the same mistake made every time.",
    )

    def key_envs(self, kind: str) -> tuple[str, ...]:
        """Environment variables to read the key of a `kind` judge from, in order."""
        return (self.api_key_env,) if self.api_key_env else DEFAULT_KEY_ENVS.get(kind, ())


JUDGE_SETTINGS: dict[str, type[_JudgeCommon]] = {
    "auto": LLMJudgeSettings,
    "gemini": LLMJudgeSettings,
    "openai": LLMJudgeSettings,
    "replay": ReplayJudgeSettings,
    "truth": TruthJudgeSettings,
    "none": NoJudgeSettings,
}


def _judge_tag(value: Any) -> str | None:
    # `kind` may be left out (it defaults to auto), which a plain discriminator does not allow.
    kind = value.get("kind", "auto") if isinstance(value, dict) else getattr(value, "kind", None)
    if kind not in JUDGE_SETTINGS:
        return None
    return "llm" if JUDGE_SETTINGS[kind] is LLMJudgeSettings else kind


JudgeSettings = Annotated[
    Annotated[LLMJudgeSettings, Tag("llm")]
    | Annotated[ReplayJudgeSettings, Tag("replay")]
    | Annotated[TruthJudgeSettings, Tag("truth")]
    | Annotated[NoJudgeSettings, Tag("none")],
    Discriminator(
        _judge_tag,
        custom_error_type="judge_kind",
        custom_error_message=f"kind must be one of: {', '.join(JUDGE_SETTINGS)}",
    ),
]
"""The `judge` section: a model per `kind`, so each judge takes only the keys it uses."""


class DecisionLogSettings(_Strict):
    """The append-only record of every decision, for audits, replay and diffs."""

    path: str = Field(
        "{output_dir}/decision_log.jsonl",
        description="Append-only decision log (JSONL): every decision of every run, with the judge's inputs and outputs.",
    )
    final_decisions: bool = Field(
        True,
        description="Also log every blocked pair's final decision (model accepts, rejects, gates too): a Parquet "
        "file per run beside the log.",
    )


class LoopSettings(_Strict):
    """The active-learning rounds: judge, retrain, re-route."""

    max_rounds: int = Field(3, ge=1, description="Most rounds of judging and retraining.")
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
    """The Spark session splink_er starts for `engine.kind: spark`."""

    master: str = Field(
        "local[*]",
        description="Spark master for a session splink_er starts (a session passed "
        "from Python, e.g. on Databricks, is used as it is).",
    )
    driver_memory: str = Field("4g", description="spark.driver.memory.")
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
    """Where the pairs are compared and how memory is used."""

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
    compare_once: bool = Field(
        True,
        description="After training, re-weigh each blocked pair's stored comparison vector (Splink's own weights "
        "SQL over the last prediction; identical to the last bit) instead of blocking and comparing every pair "
        "again. false: a full Splink predict every time the model changes (slower; the reference path).",
    )
    routing_scores: Literal["auto", "table", "view"] = Field(
        "auto",
        description="What routing reads of each scoring (pair keys, probabilities, gate and accept-rule outcomes, "
        "conflicts): 'table' copies it once per scoring, and every count, judge queue, decision and metric of a "
        "round reads the copy (at 2.5M pairs a read fell from 0.35 s to under 0.1 s); 'view' computes it at each "
        "read (no copy: at 24M pairs the table would be some 3 GB). 'auto': a table up to "
        "routing_table_max_pairs scored pairs, and a view whenever memory_limit is set.",
    )
    routing_table_max_pairs: int = Field(
        5_000_000, ge=0, description="Scored pairs up to which routing_scores 'auto' copies them (see there)."
    )


class OutputSettings(_Strict):
    """What the output directory holds."""

    model_rejects: Literal["auto", "rows", "counts"] = Field(
        "auto",
        description="Model rejects (no label or gate, p <= routing.low) in decisions.parquet: 'rows' writes "
        "every blocked pair; 'counts' writes every other pair and only counts these (run.json decided_by and weight "
        "histogram); 'auto' writes rows up to auto_rows_limit blocked pairs. Most pairs of a large job are model "
        "rejects: at 24M pairs they cost 4 s to write and nobody reads them.",
    )
    auto_rows_limit: int = Field(5_000_000, ge=0, description="Blocked pairs up to which 'auto' writes model rejects.")
    gold_source: str | None = Field(
        None,
        description="The source gold.parquet has one row per record of (its best match or none, how and how "
        "surely it was decided, needs_review, model version). Default: the first source.",
    )


class AuditSettings(_Strict):
    """An estimate of precision and recall without ground truth, from a judged sample of the final decisions."""

    size: int = Field(
        0,
        ge=0,
        description="Pairs in the audit sample judged after the decisions are final, for "
        "precision / recall / F1 estimates with 95% intervals without ground truth (0: no audit). "
        "Never used for training or routing; paid for like any judge answer.",
    )
    seed: int = Field(42, description="Seed of the audit sample.")


class LabelStoreSettings(_Strict):
    """Where labels (judge answers, human labels) are kept across runs."""

    path: str = Field("labels/{name}.jsonl", description="JSONL label store; {name} is the settings name.")
    wait_seconds: float | None = Field(
        0,
        ge=0,
        description="How long a run waits for another process writing the same label store or output directory "
        "(0: stop at once with exit 7, naming it; null: wait as long as it takes).",
    )


class EntitySettings(_Strict):
    """The entity store: stable entity ids that last from run to run, and the changes between runs."""

    enabled: bool = Field(True, description="Keep entities in the store and give clusters their stable ids.")
    path: str | None = Field(
        None,
        description="DuckDB file of the entity store; {name} is the settings name (default: beside the label "
        "store, <labels dir>/{name}.entities.duckdb).",
    )
    keep_values: bool = Field(
        True,
        description="Keep every record's normalized values in the store: what `splink-er resolve` compares new "
        "records with, without the sources.",
    )
    bridges: Literal["merge", "review"] = Field(
        "merge",
        description="`resolve`: a new record accepted into two or more stored entities merges them (merge: the "
        "oldest id survives, the others are retired pointing to it, as a run over all the records would join "
        "them) or waits for a person (review).",
    )
    id_template: str = Field(
        "{uuid}",
        description="How new entity ids are minted: {uuid}, or a scoped id from the entity's most common "
        "values, e.g. 'person:{state}:{last_name}-{first_name}-{seq}' ({seq}: the smallest number that makes "
        "the id unused; every template needs {uuid} or {seq}).",
    )

    @field_validator("id_template")
    @classmethod
    def _unique_ids(cls, v: str) -> str:
        if "{uuid}" not in v and "{seq}" not in v:
            raise ValueError(f"{v!r} needs {{uuid}} or {{seq}} so that two entities never get the same id")
        return v


class ChainSettings(_Strict):
    """Temporal chains: one row per entity and value of the keys (e.g. election date and contest)."""

    keys: list[str] = Field(
        min_length=1, description="Columns that make one link of the chain, e.g. [election_date, contest]."
    )
    sums: list[str] = Field(default_factory=list, description="Numeric columns summed per link, e.g. [votes].")


class RegistrySettings(_Strict):
    """The canonical layer written with each run: canonical values, aliases, chains, and a flat export."""

    fields: list[str] = Field(
        default_factory=list,
        description="Columns that get one canonical value per entity (most complete record, then "
        "source_priority, then most recent). Empty (and no chain): no registry files.",
    )
    alias_fields: list[str] = Field(
        default_factory=list, description="Columns whose distinct values are listed as aliases (default: fields)."
    )
    source_priority: list[str] = Field(
        default_factory=list, description="Source names, most authoritative first (breaks completeness ties)."
    )
    recency_column: str | None = Field(None, description="Column whose largest value is the most recent record.")
    chain: ChainSettings | None = Field(None, description="Temporal chains (off when not set).")

    @property
    def enabled(self) -> bool:
        return bool(self.fields or self.chain)

    def columns(self) -> set[str]:
        """Input columns the registry reads."""
        cols = set(self.fields) | set(self.alias_fields) | ({self.recency_column} if self.recency_column else set())
        return cols | (set(self.chain.keys) | set(self.chain.sums) if self.chain else set())


class SpanSettings(_Strict):
    column: str = Field(description="A date or year column (its first 4 characters are read as the year).")
    years: int = Field(gt=0, description="Entities whose records span more years than this are flagged.")


class EntityAuditSettings(_Strict):
    """The judge's audit of whole entities: is each of its records the same entity as its anchor record?"""

    enabled: bool = Field(False, description="Ask the judge about the entities below (uses judge.max_pairs).")
    min_size: int = Field(5, ge=2, description="Entities with at least this many records are audited.")
    flagged: bool = Field(True, description="Entities a verify rule flagged are audited whatever their size.")
    max_entities: int = Field(50, ge=1, description="At most this many entities per run (largest first).")
    max_pairs: int = Field(
        300, ge=0, description="At most this many questions per run, within what is left of judge.max_pairs."
    )


class VerifySettings(_Strict):
    """Entity-level checks after clustering (see splink_er/entities/verify.py); results in verification.json."""

    contradictions: Literal["split", "flag", "off"] = Field(
        "split",
        description="An entity holding two records a judge, a person or a gate decided are different (chained "
        "through other matches): split it, keeping the strongest links (split), only list it (flag), or do "
        "not look (off).",
    )
    single_valued: list[str] = Field(
        default_factory=list, description="Columns with one value per entity (e.g. state): others are flagged."
    )
    flag_changes: list[str] = Field(
        default_factory=list, description="Columns whose change within an entity is listed (e.g. party)."
    )
    max_span: SpanSettings | None = Field(None, description="Flag entities spanning more years than this.")
    audit: EntityAuditSettings = Field(default_factory=EntityAuditSettings)

    def columns(self) -> set[str]:
        return set(self.single_valued) | set(self.flag_changes) | ({self.max_span.column} if self.max_span else set())


MOVED_JUDGE_KEYS = {
    "log_path": "decision_log.path",
    "log_final_decisions": "decision_log.final_decisions",
    "replay_log": "judge.log (with judge.kind: replay)",
    "replay_run": "judge.run (with judge.kind: replay)",
}
"""Keys of the one flat judge section of earlier versions, and where they live now."""


class Settings(_Strict):
    name: str = Field(description="Name of the job; used in output and label-store paths.")
    link_type: Literal["link_only", "dedupe_only", "link_and_dedupe"] = Field(
        description="Pairs across sources only, within one source, or both."
    )
    sources: list[SourceSettings] = Field(min_length=1, description="The input tables.")
    columns_to_keep: list[str] = Field(
        default_factory=list, description="Extra columns carried to the judge and outputs (not matched on)."
    )
    truth_column: str | None = Field(
        None, description="Ground-truth entity column, never a matching feature: metrics and the truth judge."
    )
    comparisons: list[ComparisonSettings] = Field(min_length=1, description="How two records are compared.")
    blocking_rules: list[BlockingRule] = Field(
        min_length=1,
        description="Which pairs are compared: each rule a list of columns that agree ([surname, dob]) or a SQL "
        "condition over l. and r.; a pair passing any rule is compared.",
    )
    blocking: BlockingSettings = Field(default_factory=BlockingSettings)
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    judge: JudgeSettings = Field(
        default_factory=lambda: LLMJudgeSettings(kind="auto"),
        description="Who answers the questions; which keys apply depends on `kind`.",
    )
    decision_log: DecisionLogSettings = Field(default_factory=DecisionLogSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    labels: LabelStoreSettings = Field(default_factory=LabelStoreSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)
    entities: EntitySettings = Field(default_factory=EntitySettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    model: str | None = Field(
        None,
        description="A trained model.json (a run's, or `splink-er model export`) to score with as it is: no "
        "bootstrap, no training (a frozen model). Its comparisons must be these settings' comparisons.",
    )
    output_dir: str = Field("runs/{name}", description="Where outputs go; {name} is the settings name.")
    base_dir: str = Field(".", description="Set by the loader: the settings file's folder (input paths).")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        judge = data.get("judge") if isinstance(data, dict) else None
        if isinstance(judge, dict):
            moved = [f"judge.{old} is now {new}" for old, new in MOVED_JUDGE_KEYS.items() if old in judge]
            if moved:
                raise ValueError("; ".join(moved) + " (settings sections were split by concern)")
        return data

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
        unknown = sorted(set(self.registry.source_priority) - set(names))
        if unknown:
            raise ValueError(f"registry.source_priority names no source {unknown}; the sources are {names}")
        if self.outputs.gold_source is not None and self.outputs.gold_source not in names:
            raise ValueError(
                f"outputs.gold_source names no source ({self.outputs.gold_source!r}); the sources are {names}"
            )
        if self.routing.one_to_one and self.link_type == "dedupe_only":
            raise ValueError("routing.one_to_one applies to link jobs only")
        if self.routing.selection_questions == "on" and self.link_type == "dedupe_only":
            raise ValueError("routing.selection_questions: on applies to link jobs only")
        return self

    # Derived values: one place, so paths mean the same thing everywhere.
    @property
    def selection_questions(self) -> bool:
        """Whether band candidates of one record are asked as one selection question (routing.selection_questions
        resolved: auto is on for one-to-one link jobs)."""
        mode = self.routing.selection_questions
        if self.link_type == "dedupe_only" or mode == "off":
            return False
        return mode == "on" or self.routing.one_to_one

    @property
    def judge_truth_column(self) -> str | None:
        """The column the SIMULATED truth judge answers from (None for every other judge)."""
        return (self.judge.truth_column or self.truth_column) if self.judge.kind == "truth" else None

    def pair_sources(self, source_l: str | None, source_r: str | None) -> tuple[str, str]:
        """The sources of a pair named by ids alone: the first and the last source unless given."""
        return source_l or self.sources[0].name, source_r or self.sources[-1].name

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
    def entity_store_path(self) -> Path:
        if self.entities.path is not None:
            return Path(self.entities.path.format(name=self.name))
        return self.label_store_path.with_name(f"{self.name}.entities.duckdb")

    @property
    def decision_log_path(self) -> Path:
        return Path(self.decision_log.path.format(name=self.name, output_dir=self.output_path))

    @property
    def materialisation_path(self) -> Path:
        return Path(self.engine.materialisation_dir.format(name=self.name, output_dir=self.output_path))

    def fingerprint(self) -> str:
        """Hash of the settings that shape results (not base_dir), for run.json."""
        data = self.model_dump(exclude={"base_dir"})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _kinds_taking(models: dict[str, type[BaseModel]], key: str) -> list[str]:
    return sorted(kind for kind, model in models.items() if key in model.model_fields)


def _readable(loc: tuple) -> tuple[str, str | None]:
    """A dotted key without pydantic's union tags, and the `kind` the error belongs to (None outside unions)."""
    parts, kind = [], None
    for i, p in enumerate(loc):
        prev = loc[i - 1] if i else None
        if prev == "judge" and p in ("llm", "replay", "truth", "none"):
            kind = p
            continue
        if i >= 2 and loc[i - 2] == "prepare" and isinstance(prev, int) and p in PREPARE_STEPS:
            kind = p
            continue
        parts.append(str(p))
    return ".".join(parts), kind


def _format_validation_error(err: ValidationError, origin: str) -> str:
    lines = [f"Invalid settings in {origin}:"]
    for e in err.errors():
        key, kind = _readable(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the settings reference in README.md)"
            field = str(e["loc"][-1])
            models = JUDGE_SETTINGS if key.startswith("judge.") else PREPARE_STEPS
            others = _kinds_taking(models, field) if kind else []
            if others:
                this = "an LLM judge" if kind == "llm" else f"kind {kind!r}"
                msg = f"not a setting of {this}; it belongs to kind {' / '.join(others)}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            given = e.get("ctx", {}).get("tag")
            msg = (
                f"kind {given!r} is not known" if given else "kind is missing"
            ) + f"; use one of: {', '.join(PREPARE_STEPS)}"
        got = e.get("input")
        shown = "" if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {key}: {msg}{shown}" if e["loc"] else f"  - {msg}")
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


def switched_judge(judge: dict) -> dict:
    """The judge section after `--set judge.kind=K`: keys K does not take are dropped, so a Gemini settings file
    can be replayed or run with the simulated truth judge without editing it.

    Example:
        >>> switched_judge({"kind": "replay", "model": "gemini-2.5-pro", "max_pairs": 300})
        {'kind': 'replay', 'max_pairs': 300}
    """
    model = JUDGE_SETTINGS.get(judge.get("kind", "auto"))
    return judge if model is None else {k: v for k, v in judge.items() if k in model.model_fields}


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
    if any(o.split("=", 1)[0].strip() == "judge.kind" for o in overrides or []):
        data["judge"] = switched_judge(data["judge"])
    data["base_dir"] = base
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise SettingsError(_format_validation_error(e, origin)) from None
