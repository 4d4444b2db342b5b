"""SIMULATED person/contact records with known duplicates, for presets, tests and scale benchmarks.

    python -m benchmarks.synthetic_persons 100000 out.parquet [--seed 7]

Every record is generated; none describes a real person. An entity has a true name, birth date, e-mail, phone,
title, employer, city, state and ZIP (names drawn with Zipf-like frequencies; 15% of entities are relatives of
another, sharing surname, phone and address, a quarter of them the family e-mail); it appears 1 + Poisson(dup_mean) times, and each extra record is corrupted the
way CRM and voter-file copies are: keyboard typos in names, a nickname for the first name (Bob for Robert, from the
shipped nickname table), a changed or missing e-mail (a new job), phones written in other formats or missing,
dates with day and month swapped, ZIP+4 or a lost leading zero, missing city. Vectorised with numpy: 1M records in
a few seconds. Names: given names and surnames of FEBRL (BSD-3, data/febrl) plus generated syllable surnames, so that
large files are not made of a few thousand names. Truth column: `entity`.
"""

from __future__ import annotations

import argparse
import string
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
NICKNAMES = REPO / "splink_er" / "normalize" / "data" / "nicknames.csv"
FEBRL = REPO / "data" / "febrl" / "dataset4a.csv"
PLACES = [  # city, state, ZIP prefix (3 digits, inside the state's USPS area)
    ("RALEIGH", "NC", "276"),
    ("CHARLOTTE", "NC", "282"),
    ("DURHAM", "NC", "277"),
    ("ASHEVILLE", "NC", "288"),
    ("RICHMOND", "VA", "232"),
    ("NORFOLK", "VA", "235"),
    ("ATLANTA", "GA", "303"),
    ("SAVANNAH", "GA", "314"),
    ("COLUMBUS", "OH", "432"),
    ("CLEVELAND", "OH", "441"),
    ("DETROIT", "MI", "482"),
    ("LANSING", "MI", "489"),
    ("CHICAGO", "IL", "606"),
    ("SPRINGFIELD", "IL", "627"),
    ("HOUSTON", "TX", "770"),
    ("AUSTIN", "TX", "787"),
    ("DENVER", "CO", "802"),
    ("PHOENIX", "AZ", "850"),
    ("SEATTLE", "WA", "981"),
    ("PORTLAND", "OR", "972"),
    ("BOSTON", "MA", "021"),
    ("HARTFORD", "CT", "061"),
    ("NEWARK", "NJ", "071"),
    ("ALBANY", "NY", "122"),
    ("PHILADELPHIA", "PA", "191"),
    ("PITTSBURGH", "PA", "152"),
    ("MIAMI", "FL", "331"),
    ("TAMPA", "FL", "336"),
    ("NASHVILLE", "TN", "372"),
    ("MADISON", "WI", "537"),
]
TITLES = [
    "DIRECTOR",
    "MANAGER",
    "ANALYST",
    "ENGINEER",
    "TEACHER",
    "NURSE",
    "ATTORNEY",
    "ORGANIZER",
    "CONSULTANT",
    "OWNER",
    "CLERK",
    "COMMISSIONER",
    "TREASURER",
    "VOLUNTEER",
    "RETIRED",
]
EMPLOYERS = [
    "ACME CORP",
    "CITY OF RALEIGH",
    "STATE OF OHIO",
    "BLUE RIDGE BANK",
    "UNITED WAY",
    "SELF EMPLOYED",
    "COUNTY SCHOOLS",
    "MERCY HOSPITAL",
    "LAKESIDE LLC",
    "NORTHSTAR INC",
    "RIVERSIDE COLLEGE",
    "US ARMY",
]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "aol.com", "icloud.com"]


def _vocab(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, list[str]], np.ndarray]:
    febrl = pd.read_csv(FEBRL, skipinitialspace=True, dtype=str)
    nick = pd.read_csv(NICKNAMES)
    by_canonical = nick.groupby("canonical")["nickname"].apply(list).to_dict()
    given = sorted(set(febrl.given_name.dropna().str.lower()) | set(by_canonical))
    syll = [
        "bar",
        "ton",
        "mer",
        "ley",
        "son",
        "wick",
        "ham",
        "dal",
        "ford",
        "ring",
        "cot",
        "ver",
        "lan",
        "sel",
        "mor",
        "ash",
        "ber",
        "kin",
        "wel",
        "ros",
    ]
    made = {"".join(rng.choice(syll, 3)) for _ in range(20000)}
    surnames = np.array(sorted(set(febrl.surname.dropna().str.lower()) | made))
    return np.array(given), by_canonical, surnames


def _typo(words: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One keyboard error per word: a deletion, a swap of neighbours or a substitution."""
    out = words.astype(object).copy()
    kinds = rng.integers(0, 3, len(out))
    pos = rng.random(len(out))
    letters = rng.choice(list(string.ascii_lowercase), len(out))
    for i, w in enumerate(out):
        if not isinstance(w, str) or len(w) < 3:
            continue
        p = 1 + int(pos[i] * (len(w) - 2))
        out[i] = (
            w[:p] + w[p + 1 :]
            if kinds[i] == 0
            else w[: p - 1] + w[p] + w[p - 1] + w[p + 1 :]
            if kinds[i] == 1
            else w[:p] + letters[i] + w[p + 1 :]
        )
    return out


def _phone_formats(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(0, 4, len(digits))
    fmt = [
        lambda d: f"({d[:3]}) {d[3:6]}-{d[6:]}",
        lambda d: f"{d[:3]}.{d[3:6]}.{d[6:]}",
        lambda d: f"+1 {d[:3]} {d[3:6]} {d[6:]}",
        lambda d: d,
    ]
    return np.array([fmt[k](d) for k, d in zip(kind, digits)], dtype=object)


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / (np.arange(n) + 10.0)
    return w / w.sum()


def make_persons(n_records: int, seed: int = 7, dup_mean: float = 1.0, household_share: float = 0.15) -> pd.DataFrame:
    """About n_records SIMULATED records (columns below), with truth in `entity`."""
    rng = np.random.default_rng(seed)
    given, by_canonical, surnames = _vocab(rng)
    n_ent = max(1, int(n_records / (1 + dup_mean)))
    # Name frequencies fall off like real ones (a few very common names), so same-name strangers exist.
    first = rng.choice(given, n_ent, p=_zipf(len(given)))
    last = rng.choice(surnames, n_ent, p=_zipf(len(surnames)))
    dob = pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 365 * 62, n_ent), unit="D")
    place = rng.integers(0, len(PLACES), n_ent)
    phone = np.array(
        [
            f"{a}{b:03d}{c:04d}"
            for a, b, c in zip(
                rng.choice(["919", "704", "404", "614", "312", "713", "303", "206", "617", "215"], n_ent),
                rng.integers(200, 999, n_ent),
                rng.integers(0, 10000, n_ent),
            )
        ]
    )
    local = np.char.add(np.char.add(first.astype(str), "."), last.astype(str))
    email = np.char.add(
        np.char.add(np.char.add(local, rng.integers(1, 99, n_ent).astype(str)), "@"), rng.choice(DOMAINS, n_ent)
    )
    ent = pd.DataFrame(
        {
            "entity": np.arange(n_ent),
            "first_name": first,
            "last_name": last,
            "dob": dob.strftime("%Y-%m-%d"),
            "email": email,
            "phone": phone,
            "title": rng.choice(TITLES, n_ent),
            "employer": rng.choice(EMPLOYERS, n_ent),
            "city": [PLACES[p][0] for p in place],
            "state": [PLACES[p][1] for p in place],
            "zip": [PLACES[p][2] + f"{z:02d}" for p, z in zip(place, rng.integers(0, 100, n_ent))],
        }
    )
    # Households: some entities are relatives of the one before (same surname, phone and address, sometimes the
    # family e-mail), the hard negatives of contact data.
    rel = np.flatnonzero(rng.random(n_ent) < household_share)
    rel = rel[rel > 0]
    for col in ("last_name", "phone", "city", "state", "zip"):
        ent.loc[rel, col] = ent.loc[rel - 1, col].to_numpy()
    fam = rel[rng.random(len(rel)) < 0.25]
    ent.loc[fam, "email"] = ent.loc[fam - 1, "email"].to_numpy()
    copies = 1 + rng.poisson(dup_mean, n_ent)
    rec = ent.loc[ent.index.repeat(copies)].reset_index(drop=True)
    dup = rec.duplicated("entity").to_numpy()  # the first copy of each entity stays clean
    n = len(rec)

    def pick(p: float) -> np.ndarray:
        return dup & (rng.random(n) < p)

    m = pick(0.20)
    rec.loc[m, "last_name"] = _typo(rec.loc[m, "last_name"].to_numpy(), rng)
    m = pick(0.10)
    rec.loc[m, "first_name"] = _typo(rec.loc[m, "first_name"].to_numpy(), rng)
    has_nick = rec.first_name.isin(list(by_canonical)).to_numpy()
    m = pick(0.30) & has_nick
    rec.loc[m, "first_name"] = [rng.choice(by_canonical[f]) for f in rec.loc[m, "first_name"]]
    m = pick(0.05)  # day and month swapped
    parts = rec.loc[m, "dob"].str.split("-", expand=True)
    if len(parts):
        ok = parts[2].astype(int) <= 12
        rec.loc[parts.index[ok], "dob"] = parts[0][ok] + "-" + parts[2][ok] + "-" + parts[1][ok]
    m = pick(0.15)  # a new job: another e-mail, title and employer
    rec.loc[m, "email"] = np.char.add(
        np.char.add(rec.loc[m, "first_name"].to_numpy().astype(str), "@"),
        rng.choice(["work.org", "corp.com", "gov.us"], m.sum()),
    )
    rec.loc[m, "employer"] = rng.choice(EMPLOYERS, m.sum())
    rec.loc[m, "title"] = rng.choice(TITLES, m.sum())
    m = pick(0.10)  # Gmail-style variants: upper case and a +tag reach the same inbox
    rec.loc[m, "email"] = rec.loc[m, "email"].str.upper().str.replace("@", "+news@", regex=False)
    rec["phone"] = _phone_formats(rec["phone"].to_numpy(), rng)
    m = pick(0.30)
    rec.loc[m, "zip"] = (
        rec.loc[m, "zip"] + "-" + pd.Series(rng.integers(1000, 9999, m.sum()), index=rec.index[m]).astype(str)
    )
    for col, p in [
        ("email", 0.20),
        ("phone", 0.35),
        ("dob", 0.10),
        ("city", 0.15),
        ("title", 0.30),
        ("employer", 0.30),
    ]:
        rec.loc[pick(p), col] = None
    rec["first_name"] = rec.first_name.str.title()
    rec["last_name"] = rec.last_name.str.title()
    rec = rec.sample(frac=1, random_state=seed).reset_index(drop=True)
    rec.insert(0, "record_id", [f"P{i:07d}" for i in range(1, len(rec) + 1)])
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n_records", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    df = make_persons(a.n_records, a.seed)
    (df.to_parquet if a.out.suffix == ".parquet" else df.to_csv)(a.out, index=False)
    print(f"{len(df):,} records, {df.entity.nunique():,} entities -> {a.out}")


if __name__ == "__main__":
    main()
