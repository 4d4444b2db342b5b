"""Random and hostile values (unicode, control characters, huge strings, numbers where text is expected) through
every normalizer and the loader: a result or a clear error, never a traceback (hypothesis)."""

import tempfile

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splink_er
from splink_er import SplinkERError
from splink_er.normalize import NORMALIZERS, normalizer_for
from splink_er.settings import PREPARE_STEPS

HOSTILE = st.one_of(
    st.text(),  # any unicode, control characters and NUL included
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=5).map(lambda s: s * 40_000),  # ~100s of KB
    st.sampled_from(["", " ", "\x00", "\u202e", "NaN", "None", "null", "'", '"', "\\", "%", "%s", "{}", "--", "©" * 9]),
    st.integers().map(str),
    st.floats(allow_nan=True).map(str),
)


def step_of(kind: str):
    extra = {"formats": ["%Y-%m-%d", "%d/%m/%Y"]} if kind == "date" else {}
    extra = {"replace": [{"pattern": r"[_?]+|\s+", "replacement": " "}]} if kind == "clean" else extra
    extra = {"state": "w"} if kind == "zip_in_state" else extra
    if kind in ("emails", "phones"):  # several columns, no `column`
        return PREPARE_STEPS[kind](columns=["v", "w"], kind=kind)
    return PREPARE_STEPS[kind](column="v", kind=kind, **extra)


@pytest.mark.parametrize("kind", sorted(NORMALIZERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(HOSTILE, min_size=1, max_size=6, unique=True))
def test_every_normalizer_takes_any_text(kind, values):
    normalizer = normalizer_for(step_of(kind))
    columns = normalizer.output_columns()
    expr = normalizer.sql_expression("__value")
    if expr is None and normalizer.reads_rows:  # one tuple per row of the columns it reads, hostile in each
        values = [(v, values[(i + 1) % len(values)]) for i, v in enumerate(values)]
    if expr is None:
        rows = normalizer.normalize_values(values)
        assert [r[0] for r in rows] == values or sorted(r[0] for r in rows) == sorted(values)
    else:  # a SQL normalizer: DuckDB computes it over the column
        con = duckdb.connect()
        con.register("t", pd.DataFrame({"v": values}, dtype="string"))
        rows = con.execute(
            f"SELECT v, {expr} FROM (SELECT v, {normalizer.sql_input('v')} AS __value FROM t)"
        ).fetchall()
        assert len(rows) == len(values)
    for row in rows:
        assert len(row) == len(columns) + 1
        # Party flags are booleans, and the emails/phones steps give lists of text.
        assert all(
            x is None
            or isinstance(x, (str, bool))
            or hasattr(x, "isoformat")
            or (isinstance(x, list) and all(isinstance(y, str) for y in x))
            for x in row[1:]
        )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    column=st.sampled_from(["first_name", "surname", "dob", "city", "email", "unique_id"]),
    values=st.lists(st.one_of(HOSTILE, st.integers(), st.floats(), st.none()), min_size=3, max_size=3),
)
def test_the_loader_takes_hostile_values_or_says_what_is_wrong(column, values):
    frame = pd.read_csv(splink_er.demo_settings_path().parent / "fake_1000.csv", dtype=str).head(30)
    frame[column] = pd.Series(values * 10, dtype=object)
    out = tempfile.mkdtemp()  # (hypothesis runs the body many times: no function-scoped tmp_path)
    o = [f"output_dir={out}", f"labels.path={out}/labels.jsonl"]
    try:
        job = splink_er.prepare(splink_er.demo_settings_path(), data={"fake_1000": frame}, overrides=o, quiet=True)
    except SplinkERError as e:
        # Refused only with a message that says where: the ids (duplicate or missing), or a rule that cannot run
        # on numbers given where text is expected (a DataFrame keeps its types; CSV is read as text).
        assert ("unique_id" in str(e) and column == "unique_id") or "DuckDB cannot run" in str(e), e
        return
    assert sum(job.loaded.row_counts.values()) == 30
    job.close()
