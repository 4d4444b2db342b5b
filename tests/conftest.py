import copy
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import settings as hypothesis_settings

import splink_er

REPO = Path(__file__).resolve().parents[1]

# The test command draws the same examples every run, so a pass or fail is the code's, not the draw's. Exploring
# fresh examples is a separate, deliberate act: HYPOTHESIS_PROFILE=explore pytest ... (a find becomes an @example).
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def rows_differing(con, a: str, b: str) -> int:
    """Rows in one relation and not the other, duplicates counted (0: the same rows, every column)."""
    return con.execute(
        f"SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) "
        f"UNION ALL (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}))"
    ).fetchall()[0][0]


@pytest.fixture
def demo_dict(tmp_path):
    """The demo settings as a dict, writing into tmp_path (input path made absolute)."""
    path = splink_er.demo_settings_path()
    data = yaml.safe_load(path.read_text())
    data["sources"][0]["path"] = str(path.parent / data["sources"][0]["path"])
    data["output_dir"] = str(tmp_path / "out")
    data["labels"] = {"path": str(tmp_path / "labels.jsonl")}
    return copy.deepcopy(data)


@pytest.fixture
def febrl4_overrides(tmp_path):
    return [f"output_dir={tmp_path / 'febrl4'}", f"labels.path={tmp_path / 'febrl4.jsonl'}", "judge.kind=truth"]


@pytest.fixture(autouse=True)
def no_real_api_keys(monkeypatch):
    """Tests never call a real API: provider keys from the developer's environment are hidden from every test
    (tests that need a key set a fake one and point the judge at a loopback server)."""
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def finished_demo(tmp_path_factory):
    """One finished run of the demo (SIMULATED truth judge), shared by tests that only read its outputs.
    Returns (the RunResult, the --set/--out arguments that name its output directory and label store)."""
    out = tmp_path_factory.mktemp("finished_demo") / "demo"
    overrides = [f"output_dir={out}", f"labels.path={out}/labels.jsonl"]
    result = splink_er.run(splink_er.demo_settings_path(), overrides=overrides, quiet=True)
    return result, ["--set", f"labels.path={out}/labels.jsonl", "--out", str(out)]


@pytest.fixture
def stored_demo(demo_dict, tmp_path):
    """A function of a judge kind: a batch run over 90% of the demo's records with that judge, returning (the
    settings dict, the RunResult, the other 10% of the records with new ids): what resolve tests send."""
    import pandas as pd

    def make(judge_kind: str):
        rows = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
        later = rows.sample(frac=0.1, random_state=5)
        rows.drop(later.index).to_csv(tmp_path / "base.csv", index=False)
        demo_dict["sources"][0]["path"] = str(tmp_path / "base.csv")
        demo_dict["judge"] = {"kind": judge_kind}
        first = splink_er.run(demo_dict, quiet=True)
        return demo_dict, first, later.assign(unique_id=[f"new-{i}" for i in range(len(later))])

    return make
