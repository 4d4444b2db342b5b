"""Election presets run on the data in the repo and beat plain Splink with the (SIMULATED) truth judge."""

import json
from pathlib import Path

import pandas as pd
import pytest

import splink_er

REPO = Path(__file__).resolve().parents[1]


def run_preset(name: str, tmp_path):
    """Run a preset with the SIMULATED truth judge: (job, plain Splink metrics, result)."""
    job = splink_er.prepare(
        REPO / f"settings/{name}.yaml",
        quiet=True,
        overrides=["judge.kind=truth", f"output_dir={tmp_path}", f"labels.path={tmp_path / 'labels.jsonl'}"],
    )
    job.bootstrap()
    job.score()
    plain = job.metrics_for_scores("scores", "match_probability >= 0.5")
    job.run_rounds()
    return job, plain, job.finish()


@pytest.mark.e2e
def test_nc_candidate_dedupe_preset(tmp_path):
    """NC filings as persons across years (SILVER truth): readable person ids, chains, entity checks."""
    job, plain, result = run_preset("nc_candidate_dedupe", tmp_path)
    assert result.metrics["blocking_recall"] == 1.0
    assert result.metrics["f1"] > plain["f1"] and result.metrics["f1"] > 0.95
    ids = result.clusters.entity_id
    assert ids.str.fullmatch(r"person:nc:[a-z-]+:[a-z0-9-]+-[a-z0-9-]+-\d+").all()
    # One chain link per person, election and contest; every candidacy in one.
    assert result.chains["records"].sum() == len(result.clusters)
    found = json.loads((result.output_dir / "verification.json").read_text())
    assert found["contradictions"]["action"] == "split" and "changes:party_candidate" in found
    # No entity keeps two candidacies the judge said are different people.
    judged_apart = result.decisions.query("decided_by == 'judge' and not final_match")
    entity = dict(zip(result.clusters.unique_id, ids))
    assert all(entity[a] != entity[b] for a, b in zip(judged_apart.unique_id_l, judged_apart.unique_id_r))


@pytest.mark.e2e
@pytest.mark.slow
def test_fec_candidate_dedupe_preset(tmp_path):
    job, plain, result = run_preset("fec_candidate_dedupe", tmp_path)
    # Names arrive as "Last, First M. #" and are parsed by the person_name step; accents are folded.
    assert (
        job.con.execute(
            f"SELECT count(*) FROM {job.loaded.tables['fec']} WHERE last_name = 'GRIJALVA' AND first_name = 'RAUL'"
        ).fetchone()[0]
        >= 2
    )
    assert result.metrics["blocking_recall"] > 0.97
    assert result.metrics["f1"] > plain["f1"] + 0.01 and result.metrics["f1"] > 0.95
    # Readable stable ids, canonical names, aliases and one chain link per candidate and election.
    ids = result.clusters.entity_id
    assert ids.str.fullmatch(r"candidate:[a-z]{2}:[a-z0-9-]+-[a-z0-9-]+-\d+").all() and ids.is_unique is False
    entities = result.entities.set_index("entity_id")
    assert len(entities) == ids.nunique() and entities["candidate_name"].notna().all()
    chains = result.chains
    assert chains.groupby(["entity_id", "year", "chamber", "district_norm"]).size().max() == 1
    assert chains["general_votes"].sum() == pytest.approx(
        pd.read_csv(REPO / "data/fec/fec_2008_2014.csv")["general_votes"].sum()
    )
    assert result.run["registry"]["aliases"] > len(entities)  # some candidates appear under several names


@pytest.mark.e2e
@pytest.mark.slow
def test_candidate_to_results_preset(tmp_path):
    """CRM candidacies <-> NC results: election types apart, runoffs found on later dates, one result per candidacy."""
    job, plain, result = run_preset("candidate_to_results", tmp_path)
    m = result.metrics
    assert m["f1"] >= 0.995 and m["f1"] > plain["f1"]
    assert result.run["judge"]["pairs_judged"] <= 0.02 * result.run["blocked_pairs"]
    con = job.con
    crm, res = REPO / "data/ncsbe/crm.csv", REPO / "data/ncsbe/results.csv"
    # Every pair in the output is crm (left) vs results (right), of one election type.
    cross_type = con.execute(f"""SELECT count(*) FROM '{tmp_path}/decisions.parquet' d
        JOIN '{crm}' c ON c.crm_id = d.unique_id_l JOIN '{res}' r ON r.result_id = d.unique_id_r
        WHERE c.election_type <> r.election_type AND d.final_match""").fetchone()[0]
    assert cross_type == 0
    # Runoffs are filed under the base election's date in the CRM, yet all are found.
    runoffs, found = con.execute(f"""SELECT count(*), count(m.unique_id_l) FROM '{crm}' c
        JOIN '{res}' r ON r.candidacy = c.candidacy
        LEFT JOIN '{tmp_path}/matches.parquet' m ON m.unique_id_l = c.crm_id AND m.unique_id_r = r.result_id
        WHERE c.election_type = 'runoff'""").fetchone()
    assert runoffs > 100 and found == runoffs
    assert (
        con.execute(
            f"SELECT count(*) FROM read_csv('{crm}', all_varchar = true) WHERE election_type = 'runoff' "
            "AND election_date NOT IN "
            "('03/03/2020', '05/17/2022', '03/05/2024')"
        ).fetchone()[0]
        == 0
    )
    # One result per candidacy and one candidacy per result; carried columns beside both ids.
    matches = result.matches
    assert matches.unique_id_l.is_unique and matches.unique_id_r.is_unique
    assert {"name_on_ballot_r", "vote_for_r", "term_r", "entity_id"} <= set(matches.columns)
    assert matches.name_on_ballot_r.notna().all()


@pytest.mark.e2e
@pytest.mark.slow
def test_contacts_preset(tmp_path):
    """E-mail and phone anchors, normalized first (formats, case, +tags), weaker when two first names share them."""
    job, plain, result = run_preset("contacts", tmp_path)
    con = job.con
    table = job.loaded.tables["contacts"]
    # '(919) 555-0100', '919.555.0100' and '+1 919 555 0100' are one number; 'X+news@Y' and 'x@y' one inbox.
    formats, e164 = con.execute(
        f"SELECT count(DISTINCT phone), count(DISTINCT phone_norm) FROM {table} WHERE phone IS NOT NULL"
    ).fetchall()[0]
    assert e164 < formats * 0.8
    assert (
        con.execute(
            f"SELECT count(*) FROM {table} WHERE email ILIKE '%+news@%' AND email_norm LIKE '%+%' "
            "AND split_part(email_norm, '@', 2) IN ('gmail.com', 'outlook.com', 'icloud.com')"
        ).fetchall()[0][0]
        == 0
    )
    assert result.metrics["f1"] > plain["f1"] + 0.01 and result.metrics["f1"] > 0.95
    # The household level must be weaker evidence than the same inbox with the same first name.
    levels = {
        lv.get("label_for_charts"): lv
        for c in job.model["comparisons"]
        if c["output_column_name"] == "email_anchor"
        for lv in c["comparison_levels"]
    }
    bayes = {k: v["m_probability"] / v["u_probability"] for k, v in levels.items() if "m_probability" in v}
    assert bayes["same e-mail, same first name"] > bayes["same e-mail, other first name (shared inbox)"]


@pytest.mark.e2e
@pytest.mark.slow
def test_district_to_position_preset(tmp_path):
    """Voter-file districts -> office positions: the best candidate or none, one-to-one, rare seats weigh more."""
    job, plain, result = run_preset("district_to_position", tmp_path)
    assert result.metrics["f1"] >= 0.99 and result.metrics["f1"] > plain["f1"]
    assert result.run["judge"]["pairs_judged"] <= 0.02 * result.run["blocked_pairs"]
    matches = result.matches
    assert matches.unique_id_l.is_unique and matches.unique_id_r.is_unique
    # Districts whose answer is "none" (one extra per set) get no position.
    districts = job.con.execute(
        f"SELECT district_id FROM read_csv('{REPO / 'data/ncsbe/districts.csv'}') WHERE position_key LIKE 'none-%'"
    ).df()
    assert len(districts) > 100 and not matches.unique_id_l.isin(districts.district_id).any()
