"""Person names as candidate data carries them, decomposed into first, middle, last, suffix and nickname.

Handles "CRIST, CHARLES JOSEPH", "Charlie Crist", "Milton F. (Toby) Fitch, Jr.", "Tom Wolf / John Fetterman",
"Mike Pence (R)", "BOB CASEY, JR", titles, particles (van, de la) and the comma-less voter-file format
"LAST FIRST MIDDLE" (declared, never guessed). A pre-pass removes what `nameparser` would misread (party tags it
would take for nicknames, running mates, quoted nicknames, CSV-doubled quotes, quotes and letters a source lost to
`?` or `_`); `nameparser` does the rest; a post-pass fixes its known traps (first names that are also titles:
Judge, Prince, Baron, Field; "J.D." read as a degree; a surname alone read as a first name). The canonical first
name comes from a reviewed nickname table with one canonical per nickname (data/nicknames.csv).
Work is done once per distinct value (`parse_names`), so a column of 1M rows with 300k distinct names costs
300k parses.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from functools import lru_cache
from importlib.resources import files

import jellyfish
from nameparser import HumanName
from nameparser.config import Constants

FIELDS = [
    "first_name",
    "middle_name",
    "last_name",
    "name_suffix",
    "nickname",
    "first_name_canonical",
    "party_tag",
    "running_mate",
    "name_title",
]

_PARTIES = r"R|D|I|L|G|C|U|REP|DEM|IND|LIB|GRN|GRE|CON|WF|WFP|NPA|UNA|UNAF|NP|NPP|NL|REF|SOC|SWP|PSL|GOP"
PARTY_TAG = re.compile(rf"\s*[\(\[]\s*({_PARTIES})\s*[\)\]]\s*", re.I)
RUNNING_MATE = re.compile(r"\s+(?:/|&|\band\b)\s+(?=\S)", re.I)
# "Bob", “Bob”, 'Bob' (single quotes only between spaces: O'Brien and D'Angelo are names) or (Bob).
QUOTED_NICK = re.compile(r"\s*[\"“”]([^\"“”]+)[\"“”]\s*|(?:^|\s)'([^']+)'(?=\s|$)\s*|\s*\(([^()]+)\)\s*")
SUFFIXES = {
    "JR": "JR",
    "JNR": "JR",
    "SR": "SR",
    "SNR": "SR",
    "II": "II",
    "III": "III",
    "IV": "IV",
    "V": "V",
    "2ND": "II",
    "3RD": "III",
    "4TH": "IV",
}
# A source that cannot write curly quotes writes ??: Howard P. ??Buck?? McKeon.
QUESTION_QUOTES = re.compile(r"(?:^|(?<=\s))\?+([^\s?][^?]*?)\?+(?=[\s,]|$)")
# Letters a source could not encode (Vel___quez for Velázquez, Pe?a): dropped, so the word stays one token and
# stays close to the spelled-out name (Jaro-Winkler), rather than guessing the letter.
LOST_LETTERS = re.compile(r"[_?]+")
# Quotes left once the nickname is out: the doubled ones of CSV-escaped text (""Jack"" Radosta), unpaired ones.
STRAY_QUOTES = re.compile(r"[\"“”]")
# nameparser's title list holds ~800 words, many also given names (Baron Hill, Field Reichardt, Judge Reinhold).
# A title word without a dot is read as the first name unless the rest still has a first name (not an initial)
# and a last name; these honorifics are never given names and stay titles.
HONORIFICS = {
    "mr", "mrs", "ms", "mx", "miss", "mister", "dr", "doctor", "rev", "reverend", "hon", "honorable",
    "sen", "senator", "rep", "representative", "gov", "prof", "professor", "atty", "attorney",
    "lt", "sgt", "capt", "cpl", "pvt", "gen", "adm", "cmdr", "col", "maj", "sir", "dame", "madam",
}  # fmt: skip
INITIAL = re.compile(r"^\w\.?$")
DEGREE_TRAPS = {"jd"}


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, str]:
    with (files("splink_er.normalize") / "data" / "nicknames.csv").open(encoding="utf-8") as f:
        return {row["nickname"]: row["canonical"] for row in csv.DictReader(f)}


@lru_cache(maxsize=1)
def _constants() -> Constants:
    c = Constants()
    # "J.D." is a first name far more often than a degree on a ballot.
    for degree in DEGREE_TRAPS:
        c.suffix_acronyms.remove(degree)
    return c


def fold_accents(text: str) -> str:
    """Raúl -> Raul, Sánchez -> Sanchez: sources disagree on diacritics far more often than people do."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def canonical_first(first: str | None) -> str | None:
    """Canonical first name, upper case, without dots: Bob -> ROBERT, J.D. -> JD, Milton -> MILTON."""
    if not first:
        return None
    key = first.lower().replace(".", "").strip()
    return nickname_table().get(key, key).upper() or None  # "." alone is no name


PHONETIC = {"metaphone": jellyfish.metaphone, "nysiis": jellyfish.nysiis, "soundex": jellyfish.soundex}


def phonetic_code(name: str | None, algorithm: str = "metaphone") -> str | None:
    """Sound-alike code of a name for blocking: Smith and Smyth share SM0, so a typo in a name need not hide a
    pair. Accents are folded first (jellyfish codes ASCII letters); a name without letters has no code."""
    if not name:
        return None
    code = PHONETIC[algorithm](fold_accents(name).strip())
    return code or None


def _suffix(text: str) -> str | None:
    parts = [SUFFIXES.get(p.upper().strip(". ,")) for p in re.split(r"[\s,]+", text) if p]
    parts = [p for p in parts if p]
    return parts[0] if parts else None


SIMPLE_WORD = re.compile(r"^[A-Za-z][A-Za-z'\-]*$")


@lru_cache(maxsize=1)
def _special_words() -> frozenset[str]:
    """Words nameparser treats specially (titles, suffixes, particles, conjunctions): not for the fast path."""
    c = _constants()
    sets = (
        c.titles,
        c.suffix_acronyms,
        c.suffix_not_acronyms,
        c.prefixes,
        c.conjunctions,
        c.bound_first_names,
        c.first_name_titles,
        c.non_first_name_prefixes,
    )
    return frozenset(w.lower() for s in sets for w in s) | frozenset(w.lower() for w in SUFFIXES)


def _fast(text: str) -> dict | None:
    """ "First Last" and "LAST, FIRST [M]" of plain words (most names): the same result as nameparser, ~10x
    faster. None when the name needs the full parser."""
    special = _special_words()
    if "," in text:
        last, _, rest = text.partition(",")
        words = rest.split()
        if " " in last.strip() or not 1 <= len(words) <= 2:
            return None
        first, middle = words[0], (words[1] if len(words) == 2 else None)
        last = last.strip()
    else:
        words = text.split()
        if len(words) != 2:
            return None
        (first, last), middle = words, None
    tokens = [first, last] + ([middle.rstrip(".")] if middle else [])
    if not all(SIMPLE_WORD.match(t) and t.lower() not in special for t in tokens):
        return None
    return {
        "first_name": first.upper(),
        "middle_name": middle.upper() if middle else None,
        "last_name": last.upper(),
        "name_suffix": None,
        "name_title": None,
    }


def parse_name(raw: str | None, fmt: str = "auto") -> dict:
    """Decompose one name. `fmt`: "auto" (any of the formats above) or "last_first_middle" (voter files)."""
    out = dict.fromkeys(FIELDS)
    if raw is None or not str(raw).strip():
        return out
    text = " ".join(str(raw).replace("#", " ").replace("*", " ").split())  # result-file markers
    text = QUESTION_QUOTES.sub(r' "\1" ', text)
    text = " ".join(LOST_LETTERS.sub("", text).split())
    party = PARTY_TAG.search(text)
    if party:
        out["party_tag"] = party.group(1).upper()
        text = PARTY_TAG.sub(" ", text).strip()
    mate = RUNNING_MATE.split(text, maxsplit=1)
    if len(mate) == 2:
        text, out["running_mate"] = mate[0].strip(), mate[1].strip()
    nick = QUOTED_NICK.search(text)
    if nick:
        # "Tom," Jr.; ("Tom") quoted inside brackets: the quotes are no part of the name
        inner = " ".join(STRAY_QUOTES.sub(" ", next(g for g in nick.groups() if g)).split())
        out["nickname"] = inner.strip(" ,").upper() or None
        text = QUOTED_NICK.sub(" ", text, count=1).strip()
    text = " ".join(STRAY_QUOTES.sub(" ", text).split())
    if fmt == "last_first_middle":
        tokens = text.replace(",", " ").split()
        suffix = SUFFIXES.get(tokens[-1].upper().strip(".")) if len(tokens) > 1 else None
        if suffix:
            tokens = tokens[:-1]
        out |= {
            "last_name": tokens[0] if tokens else None,
            "first_name": tokens[1] if len(tokens) > 1 else None,
            "middle_name": " ".join(tokens[2:]) or None,
            "name_suffix": suffix,
        }
    elif (fast := _fast(text)) is not None:
        out |= fast
    else:
        n = HumanName(text, constants=_constants())
        first, middle, last, title = _title_as_first(n.title, n.first, n.middle, n.last)
        if first and not last:  # a surname alone ("Murkowski", "Jacobs," once its nickname is out)
            first, last = "", " ".join(p for p in (first, middle) if p)
            middle = ""
        out |= {
            "first_name": first or None,
            "middle_name": middle or None,
            "last_name": last or None,
            "name_suffix": _suffix(n.suffix) if n.suffix else None,
            "name_title": title or None,
        }
        if n.nickname and not out["nickname"]:
            out["nickname"] = n.nickname.upper()
    for k in ("first_name", "middle_name", "last_name"):
        if out[k]:
            out[k] = fold_accents(out[k].upper().strip(","))
    if not out["first_name"] and out["nickname"]:
        # '"Jack" Radosta': the nickname is the only first name given; as first_name the exact, canonical and
        # nickname levels of the PersonName comparison can use it (a null first name is "name missing").
        out["first_name"] = out["nickname"]
    out["first_name_canonical"] = canonical_first(out["first_name"])
    return out


def _title_as_first(title: str, first: str, middle: str, last: str) -> tuple[str, str, str, str]:
    """(first, middle, last, title) with a title word that is really the first name moved back: "Baron P. Hill"
    (title Baron, first P.) -> Baron, P., Hill; "Field Reichardt" (title + last) -> Field, Reichardt; "Prince
    Fielder" (title + first, no last) -> Prince, Fielder. "Dr. Jane Smith" and "Senator John Smith" keep theirs."""
    words = title.split()
    word = words[-1] if words else ""
    if not word or word.endswith(".") or word.lower() in HONORIFICS:
        return first, middle, last, title
    if first and last and not INITIAL.match(first):
        return first, middle, last, title
    rest = " ".join(words[:-1])
    if first and last:
        return word, " ".join(p for p in (first, middle) if p), last, rest
    return word, middle, last or first, rest


def _parse_chunk(args: tuple[list[str], str]) -> list[dict]:
    values, fmt = args
    return [parse_name(v, fmt) for v in values]


def parse_names(values, fmt: str = "auto", processes: int | None = None) -> dict[str, dict]:
    """Parse each distinct value once: {raw value: fields}. Large inputs are spread over the machine's cores."""
    import gc
    import os
    from concurrent.futures import ProcessPoolExecutor

    distinct = list(dict.fromkeys(v for v in values if v is not None))
    workers = processes or os.cpu_count() or 1
    if workers < 2 or len(distinct) < 50_000:
        return {v: parse_name(v, fmt) for v in distinct}
    size = -(-len(distinct) // (workers * 4))
    chunks = [(distinct[i : i + size], fmt) for i in range(0, len(distinct), size)]
    # The workers are forked: garbage of the parent's (a DuckDB connection no longer referenced) must not be
    # collected in a child, where its finalizer crashed the worker (a segfault seen in CI). Collected here, and
    # what remains frozen, as Python's gc docs advise before fork.
    gc.collect()
    gc.freeze()
    try:
        with ProcessPoolExecutor(workers) as pool:
            parsed = [row for part in pool.map(_parse_chunk, chunks) for row in part]
    finally:
        gc.unfreeze()
    return dict(zip(distinct, parsed))
