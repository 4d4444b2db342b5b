"""The settings reference (README.md) written from the settings schema, so it cannot drift from the code.

    python -m splink_er.settings_reference            print the reference (Markdown)
    python -m splink_er.settings_reference --write    rewrite README.md's section between the markers

A test compares README.md with `reference()`, so a changed field that is not written back fails CI.

Example:
    >>> print(reference().splitlines()[2])
    | key | default | meaning |
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .settings import JUDGE_SETTINGS, PREPARE_STEPS, Settings

START, END = "<!-- settings-reference:start -->", "<!-- settings-reference:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"
# Union sections: where they sit, and the models by kind (one model may serve several kinds).
UNIONS = {"judge": JUDGE_SETTINGS, "sources[].prepare[]": PREPARE_STEPS}


def _model_in(annotation) -> tuple[str, type[BaseModel]] | None:
    """('', M) for M or M | None, ('[]', M) for list[M], ('.<name>', M) for dict[str, M]; None otherwise."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "", annotation
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _model_in(args[0])
    if origin is list and args and _model_in(args[0]):
        return "[]", _model_in(args[0])[1]
    if origin is dict and len(args) == 2 and _model_in(args[1]):
        return ".<name>", _model_in(args[1])[1]
    return None


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return ""
    else:
        return "**required**"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        value = {k: v.model_dump() for k, v in value.items()}
    return "`" + json.dumps(value) + "`"


def _choices(annotation) -> str:
    literal = [a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal] or (
        [annotation] if typing.get_origin(annotation) is typing.Literal else []
    )
    return " | ".join(str(v) for lit in literal for v in typing.get_args(lit))


def _rows(model: type[BaseModel], prefix: str, skip: set[str] = frozenset()) -> list[tuple[str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        if name in skip or name == "base_dir":
            continue
        key = f"{prefix}{name}"
        union = next((k for k in (key, key + "[]") if k in UNIONS), None)
        if union:
            rows.append((key, _default(field), field.description or ""))
            rows += _union_rows(union, UNIONS[union])
            continue
        nested = _model_in(field.annotation)
        if nested:
            suffix, sub = nested
            rows.append((key + suffix, _default(field), field.description or sub.__doc__ or ""))
            rows += _rows(sub, f"{key}{suffix}.")
            continue
        meaning = field.description or ""
        choices = _choices(field.annotation)
        if choices and name != "kind":
            meaning = f"{choices}. {meaning}".strip()
        rows.append((key, _default(field), meaning))
    return rows


def _union_rows(key: str, models: dict[str, type[BaseModel]]) -> list[tuple[str, str, str]]:
    """Keys every kind takes once, then per kind its own keys."""
    distinct = list(dict.fromkeys(models.values()))
    common = set.intersection(*(set(m.model_fields) for m in distinct)) - {"kind"}
    kinds = ", ".join(models)
    rows = [(f"{key}.kind", _default(distinct[0].model_fields["kind"]), f"{kinds}")]
    rows += _rows(distinct[0], f"{key}.", skip=set(distinct[0].model_fields) - common)
    for model in distinct:
        own = [k for k, m in models.items() if m is model]
        doc = " ".join((model.__doc__ or "").split())
        rows.append((f"{key} (kind: {' / '.join(own)})", "", doc))
        rows += _rows(model, f"{key}.", skip=common | {"kind"})
    return rows


def reference() -> str:
    """The Markdown table of every settings key: dotted key, default, meaning."""
    lines = [
        "Every key, generated from the settings schema (`python -m splink_er.settings_reference --write`).",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    for key, default, meaning in _rows(Settings, ""):
        meaning = " ".join(meaning.split()).replace("|", "\\|")
        lines.append(f"| `{key}` | {default.replace('|', chr(92) + '|')} | {meaning} |")
    return "\n".join(lines) + "\n"


def readme_section(text: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} section")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def write(readme: Path = README) -> None:
    text = readme.read_text()
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(f"{before}{START}\n{reference()}{END}{after}")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write()
        print(f"wrote the settings reference into {README}")
    else:
        print(reference(), end="")
