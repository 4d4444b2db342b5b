"""New entity ids from `entities.id_template`.

`{uuid}` gives a random UUID. Any other `{field}` takes the entity's most common non-empty value of that input
column, as a slug (lower case, runs of other characters as one '-'; 'unknown' when no member has a value), and
`{seq}` the smallest number from 1 that makes the id unused by any entity the store ever held (retired ids are
never given again):

    >>> IdTemplate("person:{state}:{last_name}-{first_name}-{seq}").fields
    ['state', 'last_name', 'first_name']
    >>> minter = IdTemplate("person:{state}:{last_name}-{seq}").minter(taken={"person:nc:lance-1"})
    >>> [minter({"state": "NC", "last_name": "Lance"}), minter({"state": "NC", "last_name": "Lance"})]
    ['person:nc:lance-2', 'person:nc:lance-3']
    >>> slug("  O'Brien-Smith, Jr. ")
    'o-brien-smith-jr'
"""

from __future__ import annotations

import re
import string
import unicodedata
import uuid
from collections.abc import Callable


def slug(value) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


class IdTemplate:
    def __init__(self, template: str) -> None:
        self.template = template
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        self.fields = [f for f in names if f not in ("uuid", "seq")]

    def minter(self, taken: set[str]) -> Callable[[dict], str]:
        """A function: an entity's field values -> a new id not in `taken` (which it extends)."""
        next_seq: dict[str, int] = {}

        def mint(values: dict) -> str:
            parts = {f: slug(values.get(f)) if values.get(f) not in (None, "") else "unknown" for f in self.fields}
            if "{seq}" not in self.template:
                new = self.template.format(uuid=uuid.uuid4(), **parts)
            else:
                key = self.template.format(uuid="", seq="\0", **parts)
                n = next_seq.get(key, 1)
                while (new := self.template.format(uuid=uuid.uuid4(), seq=n, **parts)) in taken:
                    n += 1
                next_seq[key] = n + 1
            taken.add(new)
            return new

        return mint


def mint_ids(con, template: str, groups_sql: str, members: dict[str, str], taken_sql: str) -> dict:
    """{group: new id} for groups of records. `groups_sql` rows: g (the group), k (its sort key: ids are minted
    in that order, so a `{seq}` is deterministic), source_dataset, unique_id of each member. `members`: source ->
    table holding the template's fields; `taken_sql`: the ids in use (read only when the template has `{seq}`:
    a uuid cannot repeat, and reading a million ids would cost more than minting)."""
    import pandas as pd

    from ..sql import quote_ident

    tpl = IdTemplate(template)
    groups = [r[0] for r in con.execute(f"SELECT g FROM ({groups_sql}) GROUP BY g ORDER BY min(k)").fetchall()]
    values = pd.DataFrame(index=pd.Index(groups, dtype=object))
    if tpl.fields and groups:
        cols = ", ".join(quote_ident(f) for f in tpl.fields)
        union = " UNION ALL ".join(f"SELECT source_dataset, unique_id, {cols} FROM {t}" for t in members.values())
        for f in tpl.fields:  # the most common non-empty value of each field per group (ties: the smallest)
            v = f"CAST(m.{quote_ident(f)} AS VARCHAR)"
            top = con.execute(f"""
                SELECT g, v FROM (
                    SELECT x.g, {v} AS v, row_number() OVER (PARTITION BY x.g ORDER BY count(*) DESC, {v}) AS rk
                    FROM ({groups_sql}) x JOIN ({union}) m USING (source_dataset, unique_id)
                    WHERE nullif({v}, '') IS NOT NULL
                    GROUP BY x.g, {v}) WHERE rk = 1""").df()
            values[f] = top.set_index("g")["v"]
    taken = {r[0] for r in con.execute(taken_sql).fetchall()} if "{seq}" in tpl.template else set()
    mint = tpl.minter(taken)
    rows = values.astype(object).where(values.notna(), None).to_dict("records") if tpl.fields else [{}] * len(groups)
    return {g: mint(r) for g, r in zip(groups, rows)}
