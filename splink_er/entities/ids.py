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
