import re

import pytest

from splink_er import SettingsError, load_settings
from splink_er.settings import PREPARE_STEPS, apply_overrides


def test_unknown_key_is_named(demo_dict):
    demo_dict["routing"]["thresold"] = 0.5
    with pytest.raises(SettingsError, match=r"routing\.thresold: unknown key"):
        load_settings(demo_dict)


def test_unknown_comparison_kind_lists_allowed(demo_dict):
    demo_dict["comparisons"][0]["kind"] = "NameComparisn"
    with pytest.raises(SettingsError) as e:
        load_settings(demo_dict)
    assert "comparisons.0" in str(e.value) and "NameComparison" in str(e.value)


def test_bad_comparison_argument_lists_accepted_ones(demo_dict):
    demo_dict["comparisons"][0]["args"] = {"jaro_thresholds": [0.9]}
    with pytest.raises(SettingsError, match="jaro_winkler_thresholds"):
        load_settings(demo_dict)


def test_low_must_be_below_high(demo_dict):
    demo_dict["routing"] = {"low": 0.9, "high": 0.5}
    with pytest.raises(SettingsError, match=r"routing: .*low \(0.9\) must be below high"):
        load_settings(demo_dict)


@pytest.mark.e2e
def test_strata_must_sum_to_one(demo_dict):
    demo_dict["sampling"]["strata"] = {"random": 0.5, "high": 0.6}
    with pytest.raises(SettingsError, match="sampling.strata"):
        load_settings(demo_dict)


def test_truth_judge_needs_truth_column(demo_dict):
    demo_dict.pop("truth_column")
    with pytest.raises(SettingsError, match="truth_column"):
        load_settings(demo_dict)


def test_dotted_overrides_parse_yaml_values(demo_dict):
    s = load_settings(
        demo_dict,
        [
            "judge.kind=none",
            "routing.high=0.9",
            "sampling.strata.random=1",
            "sampling.strata.high=0",
            "sampling.strata.ambiguous=0",
            "sampling.strata.low=0",
            "sources.0.id_column=unique_id",
        ],
    )
    assert s.judge.kind == "none" and s.routing.high == 0.9 and s.sampling.strata["random"] == 1


def test_bad_override_says_the_form():
    with pytest.raises(SettingsError, match="dotted.key=value"):
        apply_overrides({}, ["judge.kind"])
    with pytest.raises(SettingsError, match="is a list"):
        apply_overrides({"sources": [{}]}, ["sources.x.path=a"])


def test_missing_file_points_at_presets(tmp_path):
    with pytest.raises(SettingsError, match="settings/"):
        load_settings(tmp_path / "nope.yaml")


def test_presets_load():
    from conftest import REPO

    for p in sorted((REPO / "settings").glob("*.yaml")):
        s = load_settings(p)
        assert s.sources and all(s.input_path(src).exists() for src in s.sources), p


def test_a_key_of_another_judge_kind_names_the_kinds_that_take_it(demo_dict):
    demo_dict["judge"] = {"kind": "truth", "model": "gemini-2.5-pro"}
    with pytest.raises(SettingsError, match=r"judge\.model: not a setting of kind 'truth'; it belongs to kind auto"):
        load_settings(demo_dict)


def test_a_key_of_another_prepare_kind_is_refused(demo_dict):
    demo_dict["sources"][0]["prepare"] = [{"column": "city", "kind": "state", "region": "GB"}]
    with pytest.raises(
        SettingsError, match=r"prepare\.0\.region: not a setting of kind 'state'; it belongs to kind phone"
    ):
        load_settings(demo_dict)


def test_an_unknown_prepare_kind_lists_the_normalizers(demo_dict):
    demo_dict["sources"][0]["prepare"] = [{"column": "city", "kind": "town"}]
    kinds = re.escape(", ".join(PREPARE_STEPS))
    with pytest.raises(SettingsError, match=rf"kind 'town' is not known; use one of: {kinds}$"):
        load_settings(demo_dict)


def test_keys_of_the_old_flat_judge_section_say_where_they_moved(demo_dict):
    demo_dict["judge"]["log_path"] = "x.jsonl"
    with pytest.raises(SettingsError, match=r"judge\.log_path is now decision_log\.path"):
        load_settings(demo_dict)


def test_switching_the_judge_kind_drops_the_keys_the_new_kind_does_not_take(demo_dict):
    demo_dict["judge"] = {"kind": "gemini", "model": "gemini-2.5-pro", "max_pairs": 30, "base_url": "http://x"}
    s = load_settings(demo_dict, overrides=["judge.kind=truth"])
    assert s.judge.kind == "truth" and s.judge.max_pairs == 30
    with pytest.raises(SettingsError, match="not a setting of kind 'truth'"):  # only --set judge.kind drops keys
        load_settings(demo_dict | {"judge": demo_dict["judge"] | {"kind": "truth"}})


def test_a_term_frequency_level_without_its_exact_match_level_is_refused_before_any_work(demo_dict):
    levels = [
        {"sql": "city_l IS NULL OR city_r IS NULL", "null_level": True},
        {"sql": "city_l = city_r AND dob_l = dob_r", "label": "same city and dob", "tf_adjustment_column": "city"},
        {"sql": "ELSE"},
    ]
    demo_dict["comparisons"].append({"kind": "custom", "output_column_name": "place", "levels": levels})
    with pytest.raises(
        SettingsError, match=r"comparison 'place': tf_adjustment_column 'city' needs a level `city_l = city_r`"
    ):
        load_settings(demo_dict)
    levels.insert(2, {"sql": '"city_l" = "city_r"', "label": "same city"})  # quoted: still Splink's exact match
    load_settings(demo_dict)
