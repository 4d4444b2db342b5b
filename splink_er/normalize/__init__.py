"""Normalizers for `sources[].prepare`: each maps the distinct values of one column to canonical columns.

names: person names (first, middle, last, suffix, nickname, canonical first name, phonetic codes). contacts: US states, ZIP
codes, phones, e-mails. offices: office level, role and district. Dates and e-mails are simple enough for DuckDB to
compute itself over every row (`sql_expression`); the rest run in Python once per distinct value.
"""

from __future__ import annotations

from ..sql import sql_literal
from .contacts import email_norm_sql, email_text_sql, phone_e164, state_code, zip5
from .names import FIELDS, canonical_first, parse_names, phonetic_code
from .offices import OFFICE_FIELDS, parse_office


def output_columns(step) -> list[str]:
    if step.kind == "person_name":
        return [step.prefix + f for f in FIELDS]
    if step.kind == "first_name_canonical":
        return [step.into or f"{step.column}_canonical"]
    if step.kind == "phonetic":
        return [step.into or f"{step.column}_phonetic"]
    if step.kind == "office":
        return [step.prefix + f for f in OFFICE_FIELDS]
    return [step.into or f"{step.column}_norm"]


def sql_input(step, column_sql: str) -> str:
    """What a SQL step reads, computed once per row in an inner query (see `sql_expression`)."""
    return email_text_sql(column_sql) if step.kind == "email" else f"CAST({column_sql} AS VARCHAR)"


def sql_expression(step, input_sql: str) -> str | None:
    """The DuckDB expression of a step computed in SQL (date, email) over `input_sql`, the step's `sql_input`;
    None for the Python normalizers."""
    if step.kind == "date":
        fmts = "[" + ", ".join(sql_literal(f) for f in step.formats) + "]"
        return f"CAST(try_strptime({input_sql}, {fmts}) AS DATE)"
    if step.kind == "email":
        return email_norm_sql(input_sql, step.provider_rules, text_ready=True)
    return None


def normalize_values(step, values: list[str]) -> list[list]:
    """Rows of [raw value, output columns...] for the distinct `values`."""
    if step.kind == "person_name":
        parsed = parse_names(values, step.format)
        return [[raw] + [fields[f] for f in FIELDS] for raw, fields in parsed.items()]
    if step.kind == "office":
        return [[v] + list(parse_office(v).values()) for v in values]
    one = {
        "first_name_canonical": canonical_first,
        "state": state_code,
        "zip": zip5,
        "phone": lambda v: phone_e164(v, step.region),
        "phonetic": lambda v: phonetic_code(v, step.algorithm),
    }[step.kind]
    return [[v, one(v)] for v in values]
