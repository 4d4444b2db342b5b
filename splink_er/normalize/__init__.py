"""Normalizers for `sources[].prepare`: one small class per `kind`, each mapping one column to canonical columns.

clean: regular-expression replacements on a column's text (in place by default), for the steps after it.
names: person names (first, middle, last, suffix, nickname, canonical first name, phonetic codes). contacts: US states, ZIP
codes, phones, e-mails (zip_in_state: a ZIP within a state's ZIP prefixes; emails, phones: several columns as one
list). contests: candidate race, ballot measure or turnout row. offices: office level, role and district. parties:
party codes and write-in, nominee and combined-total flags. Dates and e-mails are simple enough for DuckDB to
compute itself over every row (`sql_expression`); the rest run in Python once per distinct value (`normalize`).

Example:
    >>> from splink_er.settings import StatePrepare
    >>> n = normalizer_for(StatePrepare(column="st", kind="state"))
    >>> n.output_columns(), n.normalize_values(["North Carolina", "nc", "Narnia"])
    (['st_norm'], [['North Carolina', 'NC'], ['nc', 'NC'], ['Narnia', None]])
"""

from __future__ import annotations

from typing import ClassVar

from ..sql import sql_literal
from .contacts import email_norm, email_norm_sql, email_text_sql, phone_e164, state_code, zip5, zip_in_state
from .contests import contest_kind
from .names import FIELDS, canonical_first, parse_names, phonetic_code
from .offices import OFFICE_FIELDS, parse_office
from .parties import key, party_fields


class Normalizer:
    """Template for one `prepare` kind (the settings model of the step is `self.step`).

    A Python normalizer fills in `normalize` (one value -> one output) or `normalize_values` (many outputs);
    a SQL normalizer fills in `sql_expression` instead and DuckDB computes it over every row.
    """

    kind: ClassVar[str]
    suffix: ClassVar[str] = "_norm"
    # Writes its input column when `into` is not set (the loader then replaces the column, not adds one).
    in_place: ClassVar[bool] = False
    # Reads several columns (`step.inputs`): `normalize_values` gets one tuple of their values per distinct row.
    reads_rows: ClassVar[bool] = False

    def __init__(self, step) -> None:
        self.step = step

    def output_columns(self) -> list[str]:
        return [self.step.into or f"{self.step.column}{self.suffix}"]

    def sql_input(self, column_sql: str) -> str:
        """What a SQL normalizer reads, computed once per row in an inner query (see `sql_expression`)."""
        return f"CAST({column_sql} AS VARCHAR)"

    def sql_expression(self, input_sql: str) -> str | None:
        """The DuckDB expression over `input_sql` (the step's `sql_input`); None for a Python normalizer."""
        return None

    def normalize_values(self, values: list[str]) -> list[list]:
        """Rows of [raw value, output columns...] for the distinct `values`."""
        return [[v, self.normalize(v)] for v in values]

    def normalize(self, value: str):
        raise NotImplementedError(f"{type(self).__name__} normalizes in SQL or many values at once")

    def output_dtypes(self) -> list[str]:
        """pandas dtypes of the output columns (text unless a normalizer says otherwise)."""
        return ["string"] * len(self.output_columns())

    def output_sql_types(self) -> list[str | None]:
        """DuckDB types the lookup table is cast to, where pandas cannot say (a list column); None: as read."""
        return [None] * len(self.output_columns())


class Clean(Normalizer):
    kind, in_place = "clean", True

    def output_columns(self) -> list[str]:
        return [self.step.into or self.step.column]

    def sql_expression(self, input_sql: str) -> str:
        expr = input_sql
        for r in self.step.replace:
            expr = f"regexp_replace({expr}, {sql_literal(r.pattern)}, {sql_literal(r.replacement)}, 'g')"
        return f"NULLIF({expr}, '')"


class PersonName(Normalizer):
    kind = "person_name"

    def output_columns(self) -> list[str]:
        return [self.step.prefix + f for f in FIELDS]

    def normalize_values(self, values: list[str]) -> list[list]:
        parsed = parse_names(values, self.step.format)
        return [[raw] + [fields[f] for f in FIELDS] for raw, fields in parsed.items()]


class Office(Normalizer):
    kind = "office"

    def output_columns(self) -> list[str]:
        return [self.step.prefix + f for f in OFFICE_FIELDS]

    def normalize_values(self, values: list[str]) -> list[list]:
        return [[v] + list(parse_office(v).values()) for v in values]


class Party(Normalizer):
    """A party value as its canonical code (`into`, default <column>_norm) and three flags named after `into` or
    the column: <base>_write_in, <base>_nominee, <base>_combined. A value the table cannot read: all null."""

    kind = "party"

    def output_columns(self) -> list[str]:
        base = self.step.into or self.step.column
        return [self.step.into or f"{self.step.column}_norm"] + [
            f"{base}_{f}" for f in ("write_in", "nominee", "combined")
        ]

    def output_dtypes(self) -> list[str]:
        return ["string", "boolean", "boolean", "boolean"]

    def normalize_values(self, values: list[str]) -> list[list]:
        aliases = {key(k): v for k, v in self.step.aliases.items()}
        return [[v] + list(party_fields(v, aliases).values()) for v in values]


class FirstNameCanonical(Normalizer):
    kind, suffix = "first_name_canonical", "_canonical"

    def normalize(self, value: str):
        return canonical_first(value)


class Phonetic(Normalizer):
    kind, suffix = "phonetic", "_phonetic"

    def normalize(self, value: str):
        return phonetic_code(value, self.step.algorithm)


class State(Normalizer):
    kind = "state"

    def normalize(self, value: str):
        return state_code(value)


class Zip(Normalizer):
    kind = "zip"

    def normalize(self, value: str):
        return zip5(value)


class Phone(Normalizer):
    kind = "phone"

    def normalize(self, value: str):
        return phone_e164(value, self.step.region)


class Email(Normalizer):
    kind = "email"

    def sql_input(self, column_sql: str) -> str:
        return email_text_sql(column_sql)

    def sql_expression(self, input_sql: str) -> str:
        return email_norm_sql(input_sql, self.step.provider_rules, text_ready=True)


class Date(Normalizer):
    kind = "date"

    def sql_expression(self, input_sql: str) -> str:
        fmts = "[" + ", ".join(sql_literal(f) for f in self.step.formats) + "]"
        return f"CAST(try_strptime({input_sql}, {fmts}) AS DATE)"


class ZipInState(Normalizer):
    kind, suffix, reads_rows = "zip_in_state", "_in_state", True

    def output_dtypes(self) -> list[str]:
        return ["boolean"]

    def normalize_values(self, values: list[tuple]) -> list[list]:
        return [[v, zip_in_state(*v)] for v in values]


class ContestKind(Normalizer):
    kind, suffix = "contest_kind", "_kind"

    def normalize(self, value: str):
        return contest_kind(value)


class _ListOf(Normalizer):
    """Several columns as one sorted list of their distinct normalized values; null when none reads (so a
    comparison's null level sees "unknown", not an empty list)."""

    reads_rows = True

    def output_columns(self) -> list[str]:
        return [self.step.into]

    def output_dtypes(self) -> list[str]:
        return ["object"]

    def output_sql_types(self) -> list[str | None]:
        return ["VARCHAR[]"]

    def one(self, value: str) -> str | None:
        """One column's value normalized (None: it does not read). Each list kind (e-mails, phones) says how."""
        raise NotImplementedError(f"{type(self).__name__} is a list kind without its own `one`")

    def normalize_values(self, values: list[tuple]) -> list[list]:
        rows = []
        for v in values:
            found = sorted({x for x in map(self.one, (y for y in v if y is not None)) if x is not None})
            rows.append([v, found or None])
        return rows


class Emails(_ListOf):
    kind = "emails"

    def one(self, value: str) -> str | None:
        return email_norm(value, self.step.provider_rules)


class Phones(_ListOf):
    kind = "phones"

    def one(self, value: str) -> str | None:
        return phone_e164(value, self.step.region)


NORMALIZERS: dict[str, type[Normalizer]] = {
    cls.kind: cls
    for cls in (
        Clean,
        PersonName,
        Office,
        Party,
        FirstNameCanonical,
        Phonetic,
        State,
        Zip,
        Phone,
        Email,
        Date,
        ZipInState,
        ContestKind,
        Emails,
        Phones,
    )
}


def normalizer_for(step) -> Normalizer:
    """The normalizer of one `prepare` step."""
    return NORMALIZERS[step.kind](step)
