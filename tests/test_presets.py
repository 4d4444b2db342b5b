"""Election presets run on the data in the repo and beat plain Splink with the (SIMULATED) truth judge."""

from pathlib import Path

import splink_er

REPO = Path(__file__).resolve().parents[1]


def test_fec_candidate_dedupe_preset(tmp_path):
    job = splink_er.prepare(REPO / "settings/fec_candidate_dedupe.yaml", quiet=True, overrides=[
        "judge.kind=truth", f"output_dir={tmp_path}", f"labels.path={tmp_path / 'labels.jsonl'}"])
    job.bootstrap()
    job.score()
    plain = job.metrics_for_scores("scores", "match_probability >= 0.5")
    job.run_rounds()
    result = job.finish()
    # Names arrive as "Last, First M. #" and are parsed by the person_name step; accents are folded.
    assert job.con.execute(f"SELECT count(*) FROM {job.loaded.tables['fec']} WHERE last_name = 'GRIJALVA' "
                           "AND first_name = 'RAUL'").fetchone()[0] >= 2
    assert result.metrics["blocking_recall"] > 0.97
    assert result.metrics["f1"] > plain["f1"] + 0.01 and result.metrics["f1"] > 0.95
