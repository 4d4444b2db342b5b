"""Import labels a team already has (an earlier LLM run's confident answers, a clerical review) into the label store.

Each row of a CSV or Parquet file is either a pair (two record ids and a match value) or one record said to have
no match (one id, match false): the latter becomes a non-match label against every candidate the job's blocking
rules give that record. Imported labels (`source_kind` "imported", `source` the name given) train like judge
answers and decide their pairs without asking the judge (decided_by "imported"), so its budget goes elsewhere;
a human label or a judge answer for the same pair beats them (see labels.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .errors import InputError
from .labels import MATCH_WORDS, NON_MATCH_WORDS, LabelStore, make_label
from .locks import writing
from .pairs import PAIR_KEY, canonical_key
from .settings import load_settings
from .sources import missing_records
from .sql import registered


class LabelFileError(InputError):
    """The file of labels to import cannot be read as one; the message names the columns or rows and the fix."""


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _as_id(value) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():  # an integer id column with gaps reads as floats
        return str(int(value))
    return str(value).strip()


def _as_match(value) -> bool | None | str:
    """True, False, None (blank), or the value itself when it is neither."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    text = text[:-2] if text.endswith(".0") else text  # 1.0 / 0.0 from a numeric column
    return True if text in MATCH_WORDS else False if text in NON_MATCH_WORDS else value


def _read(file: Path) -> pd.DataFrame:
    if not file.exists():
        raise LabelFileError(f"{file}: no such file")
    suffix = file.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(file)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(file, dtype=str, keep_default_na=False)
    except Exception as e:  # unreadable for any reason: say which file and why, never a traceback
        raise LabelFileError(f"{file}: cannot be read as {suffix[1:].upper()} ({str(e).splitlines()[0]})") from None
    raise LabelFileError(f"{file}: labels are read from .csv or .parquet files, not {suffix or 'a file without one'}")


def _examples(rows: list[str], n: int = 5) -> str:
    return ", ".join(rows[:n]) + (f" and {len(rows) - n} more" if len(rows) > n else "")


def import_labels(
    settings,
    file: str | Path,
    *,
    source: str = "imported",
    left_id: str = "unique_id_l",
    right_id: str = "unique_id_r",
    left_source: str | None = None,
    right_source: str | None = None,
    match: str = "match",
    confidence_column: str | None = None,
    min_confidence: float | None = None,
    overrides: list[str] | None = None,
    data: dict | None = None,
) -> dict:
    """Store the rows of `file` (CSV or Parquet) as imported labels in the job's label store; returns counts.

    Columns: `left_id` and `right_id` (the two records), `match` (true/false, yes/no, 1/0, match/non-match), and
    `left_source`/`right_source` (default source_dataset_l/_r; a single-source job may leave them out). A row
    with a left id, no right id and match false says the record has no match: it becomes a non-match label
    against each of its blocked candidates. With `confidence_column`, rows below `min_confidence` are skipped
    (and counted), `min_confidence` in the column's own units; a column with values above 1 is read as
    percent (stored confidences are 0..1). `source` names where the labels came from.

    Example:
        >>> import splink_er, tempfile, pandas as pd
        >>> out = tempfile.mkdtemp()
        >>> o = [f"output_dir={out}", f"labels.path={out}/labels.jsonl"]
        >>> pd.DataFrame({"unique_id_l": ["0", "5"], "unique_id_r": ["1", None], "match": [True, False]}).to_csv(
        ...     f"{out}/earlier.csv", index=False)
        >>> res = splink_er.import_labels(splink_er.demo_settings_path(), f"{out}/earlier.csv", overrides=o)
        >>> res["pairs"] == 1 + res["expanded"], res["no_match_records"]
        (True, 1)
    """
    s = load_settings(settings, overrides)
    file = Path(file)
    if min_confidence is not None and confidence_column is None:
        raise LabelFileError("--min-confidence needs --confidence-column: the column the confidences are in")
    df = _read(file)
    found = list(df.columns)
    csv = file.suffix.lower() != ".parquet"

    def row(i) -> str:  # as a person finds it: the line in a CSV (after its header), the row in Parquet
        return f"line {i + 2}" if csv else f"row {i + 1}"

    single = s.sources[0].name if len(s.sources) == 1 else None
    sides = {}
    for name, given, default in (
        (left_source, "left", "source_dataset_l"),
        (right_source, "right", "source_dataset_r"),
    ):
        sides[given] = name or (default if default in df.columns or single is None else None)
    needed = [left_id, right_id, match] + [c for c in sides.values() if c] + [c for c in [confidence_column] if c]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        hint = (
            "" if single else " (a job of several sources needs the source of each side: --left-source/--right-source)"
        )
        raise LabelFileError(
            f"{file}: column(s) {', '.join(missing)} not found; the file has {found}. Name the columns with "
            f"--left-id, --right-id, --match, --left-source, --right-source, --confidence-column{hint}"
        )
    counts = {"rows": len(df), "below_confidence": 0, "no_confidence": 0}
    keep = pd.Series(True, index=df.index)
    confidences = pd.Series(1.0, index=df.index)
    if confidence_column:
        raw = df[confidence_column]
        numbers = pd.to_numeric(raw.where(~raw.map(_blank)), errors="coerce")
        bad = [f"{row(i)} ({v!r})" for i, v in raw.items() if not _blank(v) and pd.isna(numbers[i])]
        if bad:
            raise LabelFileError(f"{file}: {confidence_column} must be numbers; not numbers: {_examples(bad)}")
        out_of_range = [f"{row(i)} ({v})" for i, v in numbers.items() if pd.notna(v) and not 0 <= v <= 100]
        if out_of_range:
            raise LabelFileError(f"{file}: {confidence_column} must be in 0..1 or 0..100: {_examples(out_of_range)}")
        # One scale per file: any value above 1 means the column is in percent.
        scaled = numbers / 100 if (numbers > 1).any() else numbers
        confidences = scaled.fillna(1.0)
        if min_confidence is not None:  # compared in the file's own units (90 on a 0..100 column)
            if min_confidence > 1 and not (numbers > 1).any():
                raise LabelFileError(
                    f"{file}: --min-confidence {min_confidence} is above every value of {confidence_column}, which "
                    f"is in 0..1; give it in the same units (e.g. {min_confidence / 100:g})"
                )
            if 0 < min_confidence <= 1 and (numbers > 1).any():  # 0.9 against 85, 95: would keep every row
                raise LabelFileError(
                    f"{file}: {confidence_column} is in percent (values above 1) but --min-confidence is "
                    f"{min_confidence}; give it in the same units (e.g. {min_confidence * 100:g})"
                )
            low = numbers < min_confidence
            counts["no_confidence"] = int(numbers.isna().sum())
            counts["below_confidence"] = int(low.sum())
            keep &= numbers.notna() & ~low
    # dtype object keeps Python bools (a bool column would hand out numpy ones, which `is False` misses).
    matches = pd.Series([_as_match(v) for v in df[match]], index=df.index, dtype=object)
    bad = [f"{row(i)} ({v!r})" for i, v in matches.items() if keep[i] and not (v is None or isinstance(v, bool))]
    if bad:
        raise LabelFileError(
            f"{file}: {match} must be true or false (also yes/no, 1/0, match/non-match); not understood: "
            f"{_examples(bad)}"
        )
    pairs, no_match, problems = [], [], []
    for i in df.index[keep]:
        values = df.loc[i]
        ids = [_as_id(values[left_id]), _as_id(values[right_id])]
        srcs = [_as_id(values[sides[k]]) if sides[k] else single for k in ("left", "right")]
        m = matches[i]
        if ids[0] and ids[1]:
            if m is None:
                problems.append(f"{row(i)} (a pair without a {match} value)")
            elif not (srcs[0] and srcs[1]):
                problems.append(f"{row(i)} (no source for one of its records)")
            else:
                pairs.append((i, (srcs[0], ids[0], srcs[1], ids[1]), m))
        elif ids[0] or ids[1]:
            side = 0 if ids[0] else 1
            if m is not False:  # one record alone can only be said to have no match
                problems.append(f"{row(i)} (one record and {match} {values[match]!r}: a lone record takes false)")
            elif not srcs[side]:
                problems.append(f"{row(i)} (no source for its record)")
            else:
                no_match.append((i, (srcs[side], ids[side])))
        else:
            problems.append(f"{row(i)} (no record id)")
    if problems:
        raise LabelFileError(f"{file}: rows that are not labels: {_examples(problems)}")

    # Rows naming a record the inputs do not hold are skipped and counted (a stale export, another dataset).
    records = [k[:2] for _, k, _ in pairs] + [k[2:] for _, k, _ in pairs] + [r for _, r in no_match]
    unknown = set(missing_records(s, records)) if records else set()
    counts["unknown_records"] = len(unknown)
    counts["unknown_examples"] = sorted(unknown)[:5]

    def known(*recs) -> bool:
        return all(f"{sd}:{uid}" not in unknown for sd, uid in recs)

    kept_pairs = [(i, k, m) for i, k, m in pairs if known(k[:2], k[2:])]
    kept_records = [(i, r) for i, r in no_match if known(r)]
    counts["rows_unknown"] = len(pairs) + len(no_match) - len(kept_pairs) - len(kept_records)
    if records and not kept_pairs and not kept_records:
        raise LabelFileError(
            f"{file}: none of its records are in the inputs ({len(unknown)} unknown, e.g. "
            f"{', '.join(counts['unknown_examples'])}); check the id columns and the sources"
        )

    note = f"imported from {file.name}"
    labels = {}
    for i, key, m in kept_pairs:  # a pair named twice: the later row wins, as in the store
        labels[canonical_key(*key)] = make_label(
            key, m, confidences[i], source, "imported", reason="imported", reasoning=note
        )
    expanded = _blocked_candidates(s, [r for _, r in kept_records], data) if kept_records else []
    conf_of = {r: confidences[i] for i, r in kept_records}
    counts["expanded"] = 0
    for key in expanded:  # a pair the file names itself keeps that row's answer
        if key in labels:
            continue
        record = key[:2] if key[:2] in conf_of else key[2:]
        labels[key] = make_label(
            key, False, conf_of[record], source, "imported", reason="imported", reasoning=f"{note}: no match"
        )
        counts["expanded"] += 1
    with writing(s.label_store_path, "label store", s.labels.wait_seconds):
        LabelStore(s.label_store_path).append(list(labels.values()))
    stored = list(labels.values())
    return counts | {
        "no_match_records": len(kept_records),
        "pairs": len(stored),
        "matches": sum(label["match"] for label in stored),
        "non_matches": sum(not label["match"] for label in stored),
        "source": source,
        "label_store": s.label_store_path,
    }


def _blocked_candidates(settings, records: list[tuple[str, str]], data: dict | None) -> list[tuple]:
    """Pair keys of every pair the job's blocking rules give any of `records` (no model needed: blocking only)."""
    from .job import prepare_for_outputs
    from .model import make_linker

    job = prepare_for_outputs(settings, data=data)
    s = job.session
    blocked = make_linker(s.sdfs, s.untrained_model).inference.deterministic_link()
    extra = ""
    if s.settings.link_type == "dedupe_only":  # Splink omits source_dataset for one input
        name = s.settings.sources[0].name.replace("'", "''")
        extra = f"'{name}' AS source_dataset_l, '{name}' AS source_dataset_r, "
    wanted = pd.DataFrame(records, columns=["sd", "uid"]).astype(str)
    with registered(s.con, "__no_match_records", wanted) as view:
        rows = s.con.execute(f"""
            WITH b AS (SELECT {extra}* FROM {blocked.physical_name})
            SELECT DISTINCT {", ".join("b." + k for k in PAIR_KEY)} FROM b JOIN {view} w
            ON (CAST(b.source_dataset_l AS VARCHAR), CAST(b.unique_id_l AS VARCHAR)) = (w.sd, w.uid)
            OR (CAST(b.source_dataset_r AS VARCHAR), CAST(b.unique_id_r AS VARCHAR)) = (w.sd, w.uid)
        """).fetchall()
    blocked.drop_table_from_database_and_remove_from_cache()
    return sorted(canonical_key(*map(str, r)) for r in rows)
