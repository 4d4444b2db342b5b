"""The README's settings reference is generated from the schema; this keeps the two from drifting apart."""

from splink_er import settings_reference
from splink_er.normalize import NORMALIZERS
from splink_er.settings import PREPARE_STEPS


def test_readme_settings_reference_is_current():
    readme = settings_reference.README.read_text()
    assert settings_reference.readme_section(readme) == settings_reference.reference(), (
        "README.md's settings reference is out of date: run `python -m splink_er.settings_reference --write`"
    )


def test_every_settings_key_is_in_the_reference_and_described():
    text = settings_reference.reference()
    for key in ("judge.error_rate", "judge.log", "decision_log.final_decisions", "sources[].prepare[].region"):
        assert f"| `{key}` |" in text
    undescribed = [line for line in text.splitlines() if line.endswith("|  |")]
    assert not undescribed, f"settings fields without a description: {undescribed}"


def test_every_prepare_kind_has_a_normalizer():
    assert set(NORMALIZERS) == set(PREPARE_STEPS)
