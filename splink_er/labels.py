"""The label store: an append-only JSONL file, one line per answer received.

- Appends are flushed and fsynced per batch, so a run killed at any moment loses no answer already written.
- Reading is idempotent and resolves one label per pair: a human label beats a judge label, which beats an
  imported one (`splink-er labels import`: answers a team had before); among labels of the same kind the latest
  wins. A torn last line (the process died mid-write) is set aside, not fatal (jsonl.py).
- Every line is checked on read: a line that is not a label (a hand edit that wrote `"match": "false"`, a
  number, a list) is an error naming the file and line, never read as something else.
- Nothing is rewritten: removing a label appends a tombstone line (`"type": "remove"`) that cancels the pair's
  earlier labels of that kind, so the history stays auditable (`splink-er labels list`).
- Pair keys are stored in Splink's order (see `canonical_key`), so labels join predictions without translation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from . import jsonl
from .errors import InputError
from .pairs import PAIR_KEY, canonical_key

# How people write an answer in a file (a review sheet, labels to import), lower case.
MATCH_WORDS = frozenset({"true", "t", "yes", "y", "1", "match", "same"})
NON_MATCH_WORDS = frozenset(
    {"false", "f", "no", "n", "0", "non-match", "nonmatch", "non_match", "no match", "different"}
)

# Label kinds, strongest first: a person's answer, a judge's, one imported from an earlier process.
KINDS = ("human", "judge", "imported")

LABEL_COLUMNS = PAIR_KEY + [
    "match",
    "confidence",
    "source",
    "source_kind",
    "simulated",
    "reason",
    "round",
    "stratum",
    "inclusion_probability",
    "run_id",
    "method",
    "reasoning",
    "time",
    "label_id",
    "method_id",
    "input_hash",
]


def make_removal(key, source_kind: str = "any", reason: str = "") -> dict:
    """A tombstone: the labels of `source_kind` ('human', 'judge', 'imported' or 'any') given to this pair before
    it no longer count (they stay in the file)."""
    if source_kind not in (*KINDS, "any"):
        raise ValueError("source_kind must be 'human', 'judge', 'imported' or 'any'")
    sd_l, uid_l, sd_r, uid_r = canonical_key(*key)
    return {
        "type": "remove",
        "source_dataset_l": sd_l,
        "unique_id_l": uid_l,
        "source_dataset_r": sd_r,
        "unique_id_r": uid_r,
        "source_kind": source_kind,
        "reason": reason,
        "time": datetime.now(UTC).isoformat(),
        "label_id": uuid.uuid4().hex,
    }


def _check_line(value) -> str | None:
    """What is wrong with one line of a label store (None if it is a label or a tombstone)."""
    if not isinstance(value, dict):
        return f"a label line is a JSON object, not {type(value).__name__} {_short(value)}"
    missing = [k for k in PAIR_KEY if value.get(k) in (None, "")]
    if missing:
        return f"missing {', '.join(missing)}"
    if value.get("type") == "remove":
        return None if value.get("source_kind") in (*KINDS, "any") else "a removal needs source_kind"
    if not isinstance(value.get("match"), bool):
        return f"match must be true or false (JSON booleans), not {_short(value.get('match'))}"
    if value.get("source_kind") not in KINDS:
        return f"source_kind must be human, judge or imported, not {_short(value.get('source_kind'))}"
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def make_label(
    key,
    match: bool,
    confidence: float,
    source: str,
    source_kind: str,
    *,
    simulated: bool = False,
    reason: str = "",
    round_no: int | None = None,
    stratum: str | None = None,
    inclusion_probability: float | None = None,
    run_id: str | None = None,
    method: dict | None = None,
    reasoning: str = "",
    method_id: str | None = None,
    input_hash: str | None = None,
) -> dict:
    """One label record. `source_kind` is 'human', 'judge' or 'imported'."""
    if source_kind not in KINDS:
        raise ValueError("source_kind must be 'human', 'judge' or 'imported'")
    sd_l, uid_l, sd_r, uid_r = canonical_key(*key)
    return {
        "source_dataset_l": sd_l,
        "unique_id_l": uid_l,
        "source_dataset_r": sd_r,
        "unique_id_r": uid_r,
        "match": bool(match),
        "confidence": float(confidence),
        "source": source,
        "source_kind": source_kind,
        "simulated": bool(simulated),
        "reason": reason,
        "round": round_no,
        "stratum": stratum,
        "inclusion_probability": inclusion_probability,
        "run_id": run_id,
        "method": method or {},
        "reasoning": reasoning,
        "time": datetime.now(UTC).isoformat(),
        "label_id": uuid.uuid4().hex,
        "method_id": method_id,
        "input_hash": input_hash,
    }


# Parsed lines and derived views of a label file, valid while its (size, mtime, inode) hold, shared by every
# LabelStore of that file in this process: the loop asks for labels several times a round, and a service builds a
# job (and a LabelStore) per request; parsing 20,000 labels took 0.24 s each time.
_PARSED: dict[str, tuple[tuple[int, int, int] | None, dict]] = {}
_PARSED_FILES = 8


class LabelStore:
    """Append-only label store at `path` (created on first write).

    Example:
        >>> import tempfile, pathlib
        >>> store = LabelStore(pathlib.Path(tempfile.mkdtemp()) / "labels.jsonl")
        >>> store.append([make_label(("a", "1", "b", "7"), True, 1.0, "human", "human")])
        >>> store.effective()[["unique_id_l", "unique_id_r", "match"]].values.tolist()
        [['1', '7', True]]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)  # the inode: a file replaced by another is another

    def append(self, labels: list[dict]) -> None:
        jsonl.append(self.path, labels)

    def _lines(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(labels, removals), each with its `line` number; every line checked."""
        labels, removals, problems = [], [], []
        for number, value in jsonl.read_numbered(self.path) if self.path.exists() else []:
            problem = _check_line(value)
            if problem:
                problems.append(f"line {number}: {problem}")
            elif value.get("type") == "remove":
                removals.append(value | {"line": number})
            else:
                labels.append(value | {"line": number})
        if problems:
            raise InputError(
                f"{self.path} has lines that are not labels; fix or delete them (a label's match is true or false):\n  "
                + "\n  ".join(problems[:10])
                + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
            )
        frames = []
        for rows, columns in ((labels, LABEL_COLUMNS), (removals, PAIR_KEY + ["source_kind", "reason", "time"])):
            df = pd.DataFrame(rows, columns=columns + ["line"]) if rows else pd.DataFrame(columns=columns + ["line"])
            for c in PAIR_KEY:
                df[c] = df[c].astype(str)
            frames.append(df)
        frames[0]["match"] = frames[0]["match"].astype(bool)
        return frames[0], frames[1]

    def read_all(self) -> pd.DataFrame:
        """Every label line ever written, removed ones too (torn lines set aside), in file order."""
        return self._view("lines", self._lines)[0].drop(columns="line")

    def removals(self) -> pd.DataFrame:
        """Every tombstone line, in file order."""
        return self._view("lines", self._lines)[1]

    def live(self) -> pd.DataFrame:
        """The label lines no later tombstone cancels, with their `line` number. Treat it as read-only."""

        def build() -> pd.DataFrame:
            labels, removals = self._view("lines", self._lines)
            if removals.empty or labels.empty:
                return labels
            last = removals.assign(k=removals["source_kind"]).groupby(PAIR_KEY + ["k"])["line"].max()
            keys = list(zip(*(labels[c] for c in PAIR_KEY)))
            cancelled_at = [
                max(last.get((*key, kind), 0), last.get((*key, "any"), 0))
                for key, kind in zip(keys, labels["source_kind"])
            ]
            return labels[labels["line"] > pd.Series(cancelled_at, index=labels.index)]

        return self._view("live", build)

    def _view(self, name: str, build):
        """A derived view of the store, rebuilt only when the file changed (any writer, any process)."""
        signature = self._signature()
        key = str(self.path.absolute())
        seen = _PARSED.pop(key, None)
        views = seen[1] if seen is not None and seen[0] == signature else {}
        _PARSED[key] = (signature, views)  # the most recently used last
        while len(_PARSED) > _PARSED_FILES:
            del _PARSED[next(iter(_PARSED))]
        if name not in views:
            views[name] = build()
        return views[name]

    def in_force(self, key, source_kind: str = "any") -> pd.DataFrame:
        """The label lines of one pair (any order of its sides) that no tombstone cancels."""
        live, k = self.live(), canonical_key(*key)
        hit = pd.Series(True, index=live.index)
        for column, value in zip(PAIR_KEY, k):
            hit &= live[column].eq(value)
        return live[hit & (source_kind == "any" or live["source_kind"].eq(source_kind))]

    def effective(self) -> pd.DataFrame:
        """One label per pair: human beats judge beats imported, then the latest line wins. Treat it as read-only."""

        def build() -> pd.DataFrame:
            df = self.live().copy()
            if df.empty:
                return df.drop(columns="line")
            df["strength"] = df["source_kind"].map({k: -i for i, k in enumerate(KINDS)})
            df = df.sort_values(["strength", "line"]).drop_duplicates(PAIR_KEY, keep="last")
            return df.drop(columns=["line", "strength"]).sort_values(PAIR_KEY).reset_index(drop=True)

        return self._view("effective", build)

    def human(self) -> pd.DataFrame:
        """The effective human labels (a person's answer beats any judge's). Treat it as read-only."""

        def build() -> pd.DataFrame:
            labels = self.effective()
            return labels[labels["source_kind"].eq("human")] if len(labels) else labels

        return self._view("human", build)

    def imported(self) -> pd.DataFrame:
        """The latest imported label of each pair no human label covers. A judge answer in the store does not
        hide it: which judge answers count is the run's choice (its own judge method's), so the run drops the
        imported labels of pairs its judge answered (Judging.run_labels). Treat it as read-only."""

        def build() -> pd.DataFrame:
            live = self.live()
            if live.empty:
                return live.drop(columns="line", errors="ignore")
            imported = live[live["source_kind"].eq("imported")].sort_values("line")
            imported = imported.drop_duplicates(PAIR_KEY, keep="last").drop(columns="line")
            human = self.human()
            if len(human) and len(imported):
                covered = set(map(tuple, human[PAIR_KEY].itertuples(index=False)))
                imported = imported[[k not in covered for k in imported[PAIR_KEY].itertuples(index=False)]]
            return imported.sort_values(PAIR_KEY).reset_index(drop=True)

        return self._view("imported", build)

    def judge_answers(self, method_id: str) -> dict[tuple, dict]:
        """The latest judge answer per pair given by the judge method `method_id` (the answer cache)."""

        def build() -> dict[tuple, dict]:
            df = self.live().drop(columns="line")
            df = df[df["source_kind"].eq("judge") & df["method_id"].eq(method_id)]
            return {tuple(r[k] for k in PAIR_KEY): r for r in df.to_dict("records")}

        return self._view(f"judge:{method_id}", build)

    def snapshot(self, dest: Path) -> None:
        """Copy the store as used by a run next to that run's outputs."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(self.path.read_bytes() if self.path.exists() else b"")
