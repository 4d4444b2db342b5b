"""US parties: words, codes and results-file wrappers as one canonical code plus write-in, nominee and
combined-total flags.

"Democratic", "DEM", "D", "DFL" and "D\u00a0" all become DEM; "W(R)" is a write-in under REP, "N(D)" the
nominee of DEM, "D/WF Combined Parties" the combined total of a fusion candidate's DEM and WF lines (code DEM,
the first line written). Codes and words come from a reviewed table (data/parties.csv, sources in
data/README.md); a value the table does not know gets no code, never a guess, and `unmapped` lists such values.
Fusion lines (one candidate on two parties' lines) come from data/party_fusion.csv.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from functools import cache
from importlib.resources import files

PARTY_FIELDS = ["code", "write_in", "nominee", "combined"]
# Not party values: a results file's placeholder for "no party" on rows such as "None of These Candidates".
_MISSING = {"", "N/A", "-", "--"}
_WRAPPED = re.compile(r"^([WNIU])\s*\(\s*([^()]*?)\s*\)?$")  # W(R), N(D), I (GRN), U (IND); "W(DEM" is cut short
_NOMINEE_BEFORE = re.compile(r"^\(N\)\s*(.+)$")  # (N)NL
_COMBINED = re.compile(r"\bCOMBINED(\s+PART(Y|IES))?\s*:?")
_MARKS = re.compile(r"[*#]+$")  # footnote marks of results files: "IP*", "R/IP#", "REP/W***"


def clean(raw) -> str:
    """Upper case, Unicode-normalized text with every kind of space (no-break, zero-width) as one plain space."""
    text = unicodedata.normalize("NFKC", str(raw)).replace("\u2019", "'").replace("\u2018", "'")
    text = "".join(" " if unicodedata.category(ch) in ("Zs", "Cc", "Cf") else ch for ch in text)
    return " ".join(text.upper().split())


def key(text: str) -> str:
    """The lookup form of a code or a name: no dots, hyphens as spaces."""
    return " ".join(clean(text).replace(".", "").replace("-", " ").split())


def _short(k: str) -> str:
    """A name without a leading THE or a trailing PARTY ("The Republican Party"), tried when the whole is unknown."""
    return re.sub(r" PARTY$", "", re.sub(r"^THE ", "", k))


@cache
def table() -> dict[str, str]:
    """Lookup key -> canonical code, from data/parties.csv (every code, name and alias of a row). A key written
    for two codes is an error in the table, not a choice to make here."""
    out: dict[str, str] = {}
    with (files("splink_er.normalize") / "data" / "parties.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for text in [row["code"], row["name"], *row["aliases"].split("|")]:
                k = key(text)
                if k and out.setdefault(k, row["code"]) != row["code"]:
                    raise ValueError(f"parties.csv: {text!r} is written for both {out[k]} and {row['code']}")
    return out


@cache
def fusion_pairs() -> list[list[str]]:
    """Pairs of codes whose lines one candidate commonly runs on (data/party_fusion.csv), for `Party(fusion=...)`."""
    with (files("splink_er.normalize") / "data" / "party_fusion.csv").open(encoding="utf-8") as f:
        return [[row["party"], row["line"]] for row in csv.DictReader(f)]


def _code(text: str, aliases: dict[str, str]) -> str | None:
    k = key(text)
    return aliases.get(k) or table().get(k) or aliases.get(_short(k)) or table().get(_short(k))


def _split(text: str) -> list[str]:
    """Parts of a multi-line value ("D/WF", "R and R/D", "I (AM,AC)" stays whole): split outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and ch in "/,":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [q.strip() for p in parts for q in re.split(r"\s+AND\s+", p) if q.strip()]


def parse_party(raw, aliases: dict[str, str] | None = None) -> dict | None:
    """{'code', 'write_in', 'nominee', 'combined'} of a party value, or None if it cannot be read (a word or code
    the table does not know, anywhere in the value). `aliases` (lookup key -> code) take precedence over the table.

    combined: the row is the total of several parties' lines (two or more plain codes, or the words "Combined
    Parties"). The code is the first party written plainly, else the first wrapped one (W(D)/R is REP).
    """
    aliases = aliases or {}
    text = "" if raw is None else _MARKS.sub("", clean(raw)).strip()
    if text in _MISSING:
        return dict.fromkeys(PARTY_FIELDS)
    whole = _code(text, aliases)
    if whole:
        return {"code": whole, "write_in": False, "nominee": False, "combined": False}
    combined = bool(_COMBINED.search(text))
    text = _COMBINED.sub(" ", text).strip()
    plain: list[str] = []
    wrapped: list[str] = []
    write_in = nominee = False
    for part in _split(text):
        part = _MARKS.sub("", part).strip()
        m = _WRAPPED.match(part) or _NOMINEE_BEFORE.match(part)
        if m is None:
            if key(part) == "W":  # a write-in line, no party
                write_in = True
                continue
            code = _code(part, aliases)
            if code is None:
                return None
            plain.append(code)
            continue
        wrapper, inner = ("N", m.group(1)) if m.re is _NOMINEE_BEFORE else m.groups()
        write_in |= wrapper == "W"
        nominee |= wrapper == "N"
        if wrapper == "W" and inner.startswith("CHALLENGED"):  # "W (Challenged Counted)": a note, not a party
            continue
        for sub in re.split(r"[,/]", inner):  # I (AM,AC): an independent with two designations
            code = _code(sub, aliases)
            if code is None:
                return None
            wrapped.append(code)
    codes = plain or wrapped
    if not codes and not (write_in or combined):
        return None
    combined = combined or len(set(plain)) > 1
    return {"code": codes[0] if codes else None, "write_in": write_in, "nominee": nominee, "combined": combined}


def party_fields(raw, aliases: dict[str, str] | None = None) -> dict:
    """parse_party with every field None for a value it cannot read."""
    return parse_party(raw, aliases) or dict.fromkeys(PARTY_FIELDS)


def unmapped(values, aliases: dict[str, str] | None = None) -> list[str]:
    """The distinct values the table cannot read (their code would be null), sorted: the list to review.

    >>> unmapped(["DEM", "W(R)", "Narnia", "D/XYZ", None])
    ['D/XYZ', 'Narnia']
    """
    return sorted({str(v) for v in values if v is not None and parse_party(v, aliases) is None})
