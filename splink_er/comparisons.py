"""Named comparison building blocks for settings (`comparisons[].kind`): PersonName, Office, Party, AnyShared.

Each is a Splink comparison creator (like `splink.comparison_library`'s) whose levels encode what election and
person data needs: nicknames are the same first name, Jr. and Sr. are different people, the same office in another
district is a different seat, fusion party lines are one candidate. Levels are Splink's own level objects where
Splink has one (null, exact match, Jaro-Winkler, and/or/not), so Splink writes them in each engine's dialect; the
rest are DuckDB SQL that Splink transpiles. Columns come from the normalizers (`sources[].prepare`) by default.

Example:
    >>> levels = PersonName().get_comparison("duckdb").as_dict()["comparison_levels"]
    >>> [lv["label_for_charts"] for lv in levels][:3]
    ['name missing', 'suffix conflict (Jr vs Sr): different people', 'exact full name']
"""

from __future__ import annotations

import inspect

import splink.comparison_level_library as cll
from splink.internals.comparison_creator import ComparisonCreator


def _q(column: str, side: str) -> str:
    return f'"{column}_{side}"'


def _custom(sql: str, label: str):
    return cll.CustomLevel(sql, label_for_charts=label, base_dialect_str="duckdb")


class PersonName(ComparisonCreator):
    """A person's name from the person_name normalizer's columns (set a column to null to leave it out).

    `first_last_swap` adds a level for first and last names exchanged between sources ("Nimrod Allen" filed as
    "Allen, Nimrod"). Off by default: a new level changes every trained model that has this comparison."""

    def __init__(
        self,
        first: str = "first_name",
        last: str = "last_name",
        middle: str | None = "middle_name",
        suffix: str | None = "name_suffix",
        canonical: str | None = "first_name_canonical",
        nickname: str | None = "nickname",
        first_last_swap: bool = False,
    ) -> None:
        self.names = {"first": first, "last": last, "middle": middle, "suffix": suffix}
        self.names |= {"canonical": canonical, "nickname": nickname}
        self.first_last_swap = first_last_swap
        super().__init__({k: v for k, v in self.names.items() if v})

    def create_output_column_name(self) -> str:
        return "person_name"

    def create_comparison_levels(self) -> list:
        n = self.names
        first, last, middle, suffix = n["first"], n["last"], n["middle"], n["suffix"]
        canonical, nickname = n["canonical"], n["nickname"]
        f, l = (_q(first, "l"), _q(first, "r")), (_q(last, "l"), _q(last, "r"))
        same_first, same_last = cll.ExactMatchLevel(first), cll.ExactMatchLevel(last)
        levels = [cll.Or(cll.NullLevel(first), cll.NullLevel(last)).configure(label_for_charts="name missing")]
        if suffix:
            s = (_q(suffix, "l"), _q(suffix, "r"))
            # JR and II are written for one another on ballots and filings (measured on NC); JR vs SR is a conflict.
            levels.append(
                _custom(
                    f"{s[0]} IS NOT NULL AND {s[1]} IS NOT NULL AND {s[0]} <> {s[1]} "
                    f"AND NOT ({s[0]} IN ('JR', 'II') AND {s[1]} IN ('JR', 'II'))",
                    "suffix conflict (Jr vs Sr): different people",
                )
            )
        exact = [same_first, same_last]
        if middle:
            m = (_q(middle, "l"), _q(middle, "r"))
            exact.append(_custom(f"{m[0]} IS NULL OR {m[1]} IS NULL OR left({m[0]}, 1) = left({m[1]}, 1)", "middle"))
        levels.append(
            cll.And(*exact).configure(
                label_for_charts="exact full name", tf_adjustment_column=last, tf_adjustment_weight=1.0
            )
        )
        if canonical:
            levels.append(
                cll.And(cll.ExactMatchLevel(canonical), same_last).configure(
                    label_for_charts="same canonical first name (nickname), same last"
                )
            )
        if nickname:
            k = (_q(nickname, "l"), _q(nickname, "r"))
            levels.append(
                cll.And(
                    _custom(f"{k[0]} = {f[1]} OR {k[1]} = {f[0]} OR {k[0]} = {k[1]}", "nickname"), same_last
                ).configure(label_for_charts="nickname on one side is the other's first name, same last")
            )
        if middle:
            levels.append(
                cll.And(_custom(f"{f[0]} = {m[1]} OR {m[0]} = {f[1]}", "swapped"), same_last).configure(
                    label_for_charts="first and middle swapped, same last"
                )
            )
        if self.first_last_swap:  # after the levels where names agree as filed, before the partial ones
            levels.append(
                _custom(f"{f[0]} = {l[1]} AND {l[0]} = {f[1]}", "first and last swapped (Allen Nimrod, Nimrod Allen)")
            )
        first_or_canonical = cll.Or(same_first, cll.ExactMatchLevel(canonical)) if canonical else same_first
        # "Robert Morales Vergara" parses to last VERGARA; the filing says MORALES VERGARA (and "Van Canipe" / CANIPE).
        w0, w1 = (f"(' ' || replace({x}, '-', ' ') || ' ')" for x in l)  # whole words: LEE is not inside LEEDS
        levels += [
            cll.And(first_or_canonical, _custom(f"contains({w0}, {w1}) OR contains({w1}, {w0})", "contains")).configure(
                label_for_charts="same first name, one last name contains the other (compound surname)"
            ),
            cll.And(
                _custom(f"left({f[0]}, 1) = left({f[1]}, 1) AND (length({f[0]}) <= 2 OR length({f[1]}) <= 2)", "i"),
                same_last,
            ).configure(label_for_charts="initial matches, same last"),
            cll.And(cll.JaroWinklerLevel(first, 0.92), cll.JaroWinklerLevel(last, 0.92)).configure(
                label_for_charts="first and last Jaro-Winkler >= 0.92"
            ),
            cll.ExactMatchLevel(last).configure(
                label_for_charts="same last, first differs", tf_adjustment_column=last, tf_adjustment_weight=1.0
            ),
            cll.JaroWinklerLevel(last, 0.88).configure(label_for_charts="last Jaro-Winkler >= 0.88"),
            cll.ElseLevel().configure(label_for_charts="names differ"),
        ]
        return levels


class Office(ComparisonCreator):
    """An office from the office normalizer's columns: level, role and district."""

    def __init__(self, level: str = "office_level", role: str = "office_role", district: str = "office_district"):
        super().__init__({"level": level, "role": role, "district": district})

    def create_output_column_name(self) -> str:
        return "office"

    def create_comparison_levels(self) -> list:
        c = self.col_expressions
        same_level, same_role, same_district = (cll.ExactMatchLevel(c[k]) for k in ("level", "role", "district"))
        district_on_one_side = cll.NullLevel(c["district"])
        return [
            cll.NullLevel(c["level"]).configure(label_for_charts="office unknown"),
            cll.And(same_level, same_role, same_district).configure(label_for_charts="same office and district"),
            cll.And(same_level, same_role, district_on_one_side).configure(
                label_for_charts="same office, district on one side only"
            ),
            cll.And(same_level, same_role).configure(label_for_charts="same office, different district"),
            cll.ExactMatchLevel(c["level"]).configure(label_for_charts="same level, different role"),
            cll.ElseLevel().configure(label_for_charts="different level"),
        ]


class Party(ComparisonCreator):
    """A party code, with fusion lines (pairs of codes one candidate runs on, e.g. DEM and WF) as their own level."""

    def __init__(self, column: str = "party", fusion: list[list[str]] | None = None) -> None:
        self.fusion = [tuple(x) for x in fusion or []]
        super().__init__(column)

    def create_output_column_name(self) -> str:
        return "party"

    def create_comparison_levels(self) -> list:
        col = self.col_expression.raw_sql_expression
        p = (_q(col, "l"), _q(col, "r"))
        levels = [
            cll.NullLevel(self.col_expression).configure(label_for_charts="party unknown"),
            cll.ExactMatchLevel(self.col_expression).configure(label_for_charts="same party"),
        ]
        if self.fusion:
            pairs = " OR ".join(
                f"({p[0]} = '{a}' AND {p[1]} = '{b}') OR ({p[0]} = '{b}' AND {p[1]} = '{a}')" for a, b in self.fusion
            )
            levels.append(_custom(pairs, "fusion lines of one candidate (e.g. DEM and WFP)"))
        levels.append(cll.ElseLevel().configure(label_for_charts="different party"))
        return levels


class AnyShared(ComparisonCreator):
    """Two lists (the `emails` / `phones` prepare steps' columns) that share at least one value: one shared
    e-mail or phone is the anchor, whatever else each side lists."""

    def __init__(self, column: str = "emails") -> None:
        super().__init__(column)

    def create_output_column_name(self) -> str:
        return self.col_expression.raw_sql_expression

    def create_comparison_levels(self) -> list:
        col = self.col_expression.raw_sql_expression
        # An empty list is "unknown" like null (the prepare steps write null, a derive may not).
        return [
            _custom(
                f"{_q(col, 'l')} IS NULL OR {_q(col, 'r')} IS NULL OR len({_q(col, 'l')}) = 0 "
                f"OR len({_q(col, 'r')}) = 0",
                f"{col} missing",
            ).configure(is_null_level=True),
            _custom(f"list_has_any({_q(col, 'l')}, {_q(col, 'r')})", f"{col}: a value shared"),
            cll.ElseLevel().configure(label_for_charts=f"{col}: none shared"),
        ]


BUILDERS = {"PersonName": PersonName, "Office": Office, "Party": Party, "AnyShared": AnyShared}
# Arguments each block takes (settings validation lists them in its error).
DEFAULTS = {
    kind: {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"}
    for kind, cls in BUILDERS.items()
}


def build(kind: str, args: dict, party_codes: frozenset[str] = frozenset()) -> ComparisonCreator:
    """The Splink comparison creator of a named building block. A Party comparison reading the code column of a
    `party` prepare step (`party_codes`) gets the shipped fusion pairs unless its args set `fusion` (`[]`: none).

    >>> [lv.label_for_charts for lv in build("Party", {"column": "p_norm"}, frozenset({"p_norm"})).create_comparison_levels()][2]
    'fusion lines of one candidate (e.g. DEM and WFP)'
    """
    if kind == "Party" and "fusion" not in args and args.get("column", DEFAULTS["Party"]["column"]) in party_codes:
        from .normalize.parties import fusion_pairs

        args = {**args, "fusion": fusion_pairs()}
    return BUILDERS[kind](**args)
