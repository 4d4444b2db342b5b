"""gold.parquet: one row per record of the primary source, with its best match or none and how it was decided."""

import pandas as pd
import pytest

import splink_er
from splink_er import SplinkERError
from splink_er.gold import GOLD_COLUMNS
from splink_er.outputs import OUTPUT_GUIDE


def _final_partners(d: pd.DataFrame) -> dict[str, set[str]]:
    m = d[d.final_match]
    out: dict[str, set[str]] = {}
    for a, b in zip(m.unique_id_l, m.unique_id_r, strict=True):
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return out


@pytest.mark.e2e
def test_gold_has_every_record_once_with_its_best_match_and_how_it_was_decided(demo_dict):
    demo_dict["routing"] = {"accept_rules": [{"name": "same_email", "sql": "email_l = email_r"}]}
    r = splink_er.run(demo_dict, quiet=True)
    gold = pd.read_parquet(r.output_dir / "gold.parquet")
    assert list(gold.columns) == GOLD_COLUMNS
    # Every file the run wrote is explained in the guide the run prints.
    written = {p.name for p in r.output_dir.iterdir() if p.is_file()}
    assert not {n for n in written if n.endswith((".parquet", ".json", ".html"))} - set(OUTPUT_GUIDE)
    records = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
    assert sorted(gold.unique_id) == sorted(records.unique_id)  # every record, once
    d = r.decisions
    partners = _final_partners(d)
    # has_match exactly when the record has a final match, and the match named is one of them.
    assert gold.has_match.tolist() == [u in partners for u in gold.unique_id]
    matched = gold[gold.has_match]
    assert all(m in partners[u] for u, m in zip(matched.unique_id, matched.match_unique_id, strict=True))
    assert gold[~gold.has_match].match_unique_id.isna().all()
    # The strongest evidence is named: a record with a judged final match never shows a model accept.
    judged = {
        u for _, x in d[(d.decided_by == "judge") & d.final_match].iterrows() for u in (x.unique_id_l, x.unique_id_r)
    }
    assert not ((gold.unique_id.isin(judged)) & gold.decided_by.eq("model_accept")).any()
    stages = dict(zip(gold.decided_by, gold.stage, strict=True))
    assert stages.get("rule") == "exact" and stages.get("judge") == "llm" and stages.get("model_accept") == "model"
    rule = gold[gold.decided_by == "rule"]
    assert len(rule) and (rule.confidence == 1.0).all() and (rule.reasoning == "rule: same_email").all()
    assert gold.model_version.nunique() == 1 and gold.run_id.eq(r.run["run_id"]).all()
    assert gold.confidence.dropna().between(0, 1).all()
    entity = dict(zip(r.clusters.unique_id, r.clusters.entity_id, strict=True))
    assert (gold.entity_id == gold.unique_id.map(entity)).all()


@pytest.mark.e2e
def test_gold_follows_the_chosen_primary_source_and_names_review(demo_dict, tmp_path):
    """A link job: gold rows are the chosen source's records, their matches come from the other source; without a
    judge, band pairs leave records needing review."""
    records = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
    a, b = records.iloc[::2], records.iloc[1::2]
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    demo_dict["link_type"] = "link_only"
    demo_dict["sources"] = [
        {"name": "crm", "path": str(tmp_path / "a.csv"), "id_column": "unique_id"},
        {"name": "results", "path": str(tmp_path / "b.csv"), "id_column": "unique_id"},
    ]
    demo_dict["judge"] = {"kind": "none"}
    demo_dict["outputs"] = {"gold_source": "results"}
    r = splink_er.run(demo_dict, quiet=True)
    gold = pd.read_parquet(r.output_dir / "gold.parquet")
    assert set(gold.source_dataset) == {"results"} and sorted(gold.unique_id) == sorted(b.unique_id)
    assert set(gold.match_source_dataset.dropna()) == {"crm"}
    review = gold[gold.needs_review]
    assert len(review) and "review" in set(gold.stage)
    assert gold.reasoning[gold.stage.eq("review")].str.contains("waits for review").all()
    demo_dict["outputs"] = {"gold_source": "nope"}
    with pytest.raises(SplinkERError, match="outputs.gold_source names no source"):
        splink_er.run(demo_dict, quiet=True)
