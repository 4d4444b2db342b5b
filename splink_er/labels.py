"""The label store: an append-only JSONL file, one line per answer received.

- Appends are flushed and fsynced per batch, so a run killed at any moment loses no answer already written.
- Reading is idempotent and resolves one label per pair: a human label beats a judge label; among labels of the
  same kind the latest wins. A torn last line (the process died mid-write) is skipped, not fatal.
- Pair keys are stored in Splink's order (see `canonical_key`), so labels join predictions without translation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from . import jsonl
from .pairs import PAIR_KEY, canonical_key

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
    """One label record. `source_kind` is 'human' or 'judge'."""
    if source_kind not in ("human", "judge"):
        raise ValueError("source_kind must be 'human' or 'judge'")
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
        # Parsed lines and derived views, valid while the file's (size, mtime) is unchanged: the loop asks for
        # labels several times a round, and re-parsing the whole JSONL each time grows with the store.
        self._signature_seen: tuple[int, int] | None = None
        self._views: dict = {}

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def append(self, labels: list[dict]) -> None:
        jsonl.append(self.path, labels)

    def read_all(self) -> pd.DataFrame:
        """Every label line ever written (torn lines skipped)."""
        rows = list(jsonl.read(self.path)) if self.path.exists() else []
        df = pd.DataFrame(rows, columns=LABEL_COLUMNS) if rows else pd.DataFrame(columns=LABEL_COLUMNS)
        for c in PAIR_KEY:
            df[c] = df[c].astype(str)
        df["match"] = df["match"].astype(bool)
        return df

    def _view(self, name: str, build):
        """A derived view of the store, rebuilt only when the file changed (any writer, any process)."""
        signature = self._signature()
        if signature != self._signature_seen:
            self._signature_seen, self._views = signature, {}
        if name not in self._views:
            self._views[name] = build()
        return self._views[name]

    def effective(self) -> pd.DataFrame:
        """One label per pair: human beats judge, then the latest line wins. Treat it as read-only."""

        def build() -> pd.DataFrame:
            df = self._view("all", self.read_all)
            if df.empty:
                return df
            df = df.reset_index(names="line")
            df["is_human"] = df["source_kind"].eq("human")
            df = df.sort_values(["is_human", "line"]).drop_duplicates(PAIR_KEY, keep="last")
            return df.drop(columns=["line", "is_human"]).sort_values(PAIR_KEY).reset_index(drop=True)

        return self._view("effective", build)

    def human(self) -> pd.DataFrame:
        """The effective human labels (a person's answer beats any judge's). Treat it as read-only."""

        def build() -> pd.DataFrame:
            labels = self.effective()
            return labels[labels["source_kind"].eq("human")] if len(labels) else labels

        return self._view("human", build)

    def judge_answers(self, method_id: str) -> dict[tuple, dict]:
        """The latest judge answer per pair given by the judge method `method_id` (the answer cache)."""

        def build() -> dict[tuple, dict]:
            df = self._view("all", self.read_all)
            df = df[df["source_kind"].eq("judge") & df["method_id"].eq(method_id)]
            return {tuple(r[k] for k in PAIR_KEY): r for r in df.to_dict("records")}

        return self._view(f"judge:{method_id}", build)

    def snapshot(self, dest: Path) -> None:
        """Copy the store as used by a run next to that run's outputs."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(self.path.read_bytes() if self.path.exists() else b"")
