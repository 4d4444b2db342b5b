"""Named comparison building blocks for settings (`comparisons[].kind`): PersonName, Office, Party.

Each is a Splink custom comparison whose levels encode what election and person data needs: nicknames are the
same first name, Jr. and Sr. are different people, the same office in another district is a different seat,
fusion party lines are one candidate. Columns come from the normalizers (`sources[].prepare`) by default.
"""

from __future__ import annotations

DEFAULTS = {
    "PersonName": {
        "first": "first_name",
        "middle": "middle_name",
        "last": "last_name",
        "suffix": "name_suffix",
        "canonical": "first_name_canonical",
        "nickname": "nickname",
    },
    "Office": {"level": "office_level", "role": "office_role", "district": "office_district"},
    "Party": {"column": "party", "fusion": []},
}


def _lv(sql: str, label: str, **extra) -> dict:
    return {"sql_condition": sql, "label_for_charts": label, **extra}


def person_name(
    first: str,
    last: str,
    middle: str | None = None,
    suffix: str | None = None,
    canonical: str | None = None,
    nickname: str | None = None,
) -> dict:
    f, l = (f'"{first}_l"', f'"{first}_r"'), (f'"{last}_l"', f'"{last}_r"')
    same_last = f"{l[0]} = {l[1]}"
    levels = [
        _lv(f"{f[0]} IS NULL OR {f[1]} IS NULL OR {l[0]} IS NULL OR {l[1]} IS NULL", "name missing", is_null_level=True)
    ]
    if suffix:
        s = (f'"{suffix}_l"', f'"{suffix}_r"')
        # JR and II are written for one another on ballots and filings (measured on NC); JR vs SR is a conflict.
        levels.append(
            _lv(
                f"{s[0]} IS NOT NULL AND {s[1]} IS NOT NULL AND {s[0]} <> {s[1]} "
                f"AND NOT ({s[0]} IN ('JR', 'II') AND {s[1]} IN ('JR', 'II'))",
                "suffix conflict (Jr vs Sr): different people",
            )
        )
    exact = f"{f[0]} = {f[1]} AND {same_last}"
    if middle:
        m = (f'"{middle}_l"', f'"{middle}_r"')
        exact += f" AND ({m[0]} IS NULL OR {m[1]} IS NULL OR left({m[0]}, 1) = left({m[1]}, 1))"
    levels.append(_lv(exact, "exact full name", tf_adjustment_column=last, tf_adjustment_weight=1.0))
    if canonical:
        c = (f'"{canonical}_l"', f'"{canonical}_r"')
        levels.append(_lv(f"{c[0]} = {c[1]} AND {same_last}", "same canonical first name (nickname), same last"))
    if nickname:
        n = (f'"{nickname}_l"', f'"{nickname}_r"')
        levels.append(
            _lv(
                f"({n[0]} = {f[1]} OR {n[1]} = {f[0]} OR {n[0]} = {n[1]}) AND {same_last}",
                "nickname on one side is the other's first name, same last",
            )
        )
    if middle:
        levels.append(
            _lv(f"({f[0]} = {m[1]} OR {m[0]} = {f[1]}) AND {same_last}", "first and middle swapped, same last")
        )
    same_first = f"({f[0]} = {f[1]}" + (f" OR {c[0]} = {c[1]})" if canonical else ")")
    # "Robert Morales Vergara" parses to last VERGARA; the filing says MORALES VERGARA (and "Van Canipe" / CANIPE).
    w0, w1 = (f"(' ' || replace({x}, '-', ' ') || ' ')" for x in l)  # whole words: LEE is not inside LEEDS
    levels.append(
        _lv(
            f"{same_first} AND (contains({w0}, {w1}) OR contains({w1}, {w0}))",
            "same first name, one last name contains the other (compound surname)",
        )
    )
    levels += [
        _lv(
            f"left({f[0]}, 1) = left({f[1]}, 1) AND (length({f[0]}) <= 2 OR length({f[1]}) <= 2) AND {same_last}",
            "initial matches, same last",
        ),
        _lv(
            f"jaro_winkler_similarity({f[0]}, {f[1]}) >= 0.92 AND jaro_winkler_similarity({l[0]}, {l[1]}) >= 0.92",
            "first and last Jaro-Winkler >= 0.92",
        ),
        _lv(same_last, "same last, first differs", tf_adjustment_column=last, tf_adjustment_weight=1.0),
        _lv(f"jaro_winkler_similarity({l[0]}, {l[1]}) >= 0.88", "last Jaro-Winkler >= 0.88"),
        _lv("ELSE", "names differ"),
    ]
    return {"output_column_name": "person_name", "comparison_levels": levels}


def office(level: str, role: str, district: str) -> dict:
    lv, ro, di = (
        (f'"{level}_l"', f'"{level}_r"'),
        (f'"{role}_l"', f'"{role}_r"'),
        (f'"{district}_l"', f'"{district}_r"'),
    )
    same = f"{lv[0]} = {lv[1]} AND {ro[0]} = {ro[1]}"
    return {
        "output_column_name": "office",
        "comparison_levels": [
            _lv(f"{lv[0]} IS NULL OR {lv[1]} IS NULL", "office unknown", is_null_level=True),
            _lv(f"{same} AND {di[0]} = {di[1]}", "same office and district"),
            _lv(f"{same} AND ({di[0]} IS NULL OR {di[1]} IS NULL)", "same office, district on one side only"),
            _lv(same, "same office, different district"),
            _lv(f"{lv[0]} = {lv[1]}", "same level, different role"),
            _lv("ELSE", "different level"),
        ],
    }


def party(column: str, fusion: list[list[str]]) -> dict:
    p = (f'"{column}_l"', f'"{column}_r"')
    levels = [
        _lv(f"{p[0]} IS NULL OR {p[1]} IS NULL", "party unknown", is_null_level=True),
        _lv(f"{p[0]} = {p[1]}", "same party"),
    ]
    if fusion:
        pairs = " OR ".join(
            f"({p[0]} = '{a}' AND {p[1]} = '{b}') OR ({p[0]} = '{b}' AND {p[1]} = '{a}')"
            for a, b in (tuple(x) for x in fusion)
        )
        levels.append(_lv(pairs, "fusion lines of one candidate (e.g. DEM and WFP)"))
    levels.append(_lv("ELSE", "different party"))
    return {"output_column_name": "party", "comparison_levels": levels}


BUILDERS = {"PersonName": person_name, "Office": office, "Party": party}


def build(kind: str, args: dict) -> dict:
    """The Splink comparison dict of a named building block, defaults filled in."""
    return BUILDERS[kind](**(DEFAULTS[kind] | args))
