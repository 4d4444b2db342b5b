"""Person names as candidate data carries them, decomposed into first, middle, last, suffix and nickname.

Handles "CRIST, CHARLES JOSEPH", "Charlie Crist", "Milton F. (Toby) Fitch, Jr.", "Tom Wolf / John Fetterman",
"Mike Pence (R)", "BOB CASEY, JR", titles, particles (van, de la) and the comma-less voter-file format
"LAST FIRST MIDDLE" (declared, never guessed). A pre-pass removes what `nameparser` would misread (party tags it
would take for nicknames, running mates, quoted nicknames); `nameparser` does the rest; a post-pass fixes its
known traps (first names that are also titles: Judge, Prince; "J.D." read as a degree). The canonical first
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
# First names nameparser takes for titles; they are read as first names when nothing else is.
TITLE_TRAPS = {
    "judge",
    "prince",
    "king",
    "duke",
    "earl",
    "major",
    "bishop",
    "dean",
    "pastor",
    "sister",
    "royal",
    "justice",
    "chancellor",
    "marshal",
    "president",
    "governor",
    "colonel",
}
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
    return nickname_table().get(key, key).upper()


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
    return frozenset(w.lower() for s in sets for w in s) | frozenset(w.lower() for w in SUFFIXES) | TITLE_TRAPS


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
    party = PARTY_TAG.search(text)
    if party:
        out["party_tag"] = party.group(1).upper()
        text = PARTY_TAG.sub(" ", text).strip()
    mate = RUNNING_MATE.split(text, maxsplit=1)
    if len(mate) == 2:
        text, out["running_mate"] = mate[0].strip(), mate[1].strip()
    nick = QUOTED_NICK.search(text)
    if nick:
        out["nickname"] = next(g for g in nick.groups() if g).strip().upper()
        text = QUOTED_NICK.sub(" ", text, count=1).strip()
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
        first, middle, last, title = n.first, n.middle, n.last, n.title
        if title and title.lower().strip(".") in TITLE_TRAPS and (not first or not last):
            # The title word is the first name: "Judge Reinhold" (parsed title + last) -> first Judge;
            # "Prince Fielder" (parsed title + first, no last) -> first Prince, last Fielder.
            first, last = (title, last) if last else (title, first)
            title = ""
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
    out["first_name_canonical"] = canonical_first(out["first_name"])
    return out


def _parse_chunk(args: tuple[list[str], str]) -> list[dict]:
    values, fmt = args
    return [parse_name(v, fmt) for v in values]


def parse_names(values, fmt: str = "auto", processes: int | None = None) -> dict[str, dict]:
    """Parse each distinct value once: {raw value: fields}. Large inputs are spread over the machine's cores."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    distinct = list(dict.fromkeys(v for v in values if v is not None))
    workers = processes or os.cpu_count() or 1
    if workers < 2 or len(distinct) < 50_000:
        return {v: parse_name(v, fmt) for v in distinct}
    size = -(-len(distinct) // (workers * 4))
    chunks = [(distinct[i : i + size], fmt) for i in range(0, len(distinct), size)]
    with ProcessPoolExecutor(workers) as pool:
        parsed = [row for part in pool.map(_parse_chunk, chunks) for row in part]
    return dict(zip(distinct, parsed))
