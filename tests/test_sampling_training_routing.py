import duckdb
import numpy as np
import pandas as pd
import pytest

from splink_er import load_settings
from splink_er.pairs import PAIR_KEY
from splink_er.routing import decide, pair_scores, pairs_to_judge, route, route_counts, routes_sql
from splink_er.sampling import allocate, draw_sample, inclusion_probabilities
from splink_er.training import train_from_labels


def _scores(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    p = np.concatenate(
        [rng.uniform(0, 0.1, n // 2), rng.uniform(0.1, 0.95, n // 4), rng.uniform(0.95, 1, n - n // 2 - n // 4)]
    )
    return pd.DataFrame(
        {
            "source_dataset_l": "a",
            "unique_id_l": [f"{i:05d}" for i in range(n)],
            "source_dataset_r": "b",
            "unique_id_r": [f"{i % 50:05d}" for i in range(n)],
            "match_probability": p,
            "match_weight": np.log2(p / (1 - p + 1e-12) + 1e-12),
            "gamma_x": (p > 0.5).astype(int),
        }
    )


def _scores_con():
    """A connection holding `_routing_scores()` as the table `scores`."""
    con = duckdb.connect()
    con.register("sc", _routing_scores())
    con.execute("CREATE TABLE scores AS SELECT * FROM sc")
    return con


ROUTING_LABEL_COLUMNS = PAIR_KEY + ["match", "confidence", "reasoning", "source", "source_kind"]


def _route(con, labels, s, table: bool) -> None:
    """Route the `scores` table as a run does: through what routing reads of it (pair_scores), a copy or a view."""
    route(con, pair_scores(con, "scores", s, table), labels, s, hashed=table)


def test_allocation_adds_up():
    a = allocate(101, {"random": 0.3, "high": 0.25, "ambiguous": 0.25, "low": 0.2})
    assert sum(a.values()) == 101 and a == {"random": 31, "high": 25, "ambiguous": 25, "low": 20}


def test_inclusion_probabilities_are_exact_and_ht_is_unbiased(demo_dict):
    s = load_settings(demo_dict)
    con = duckdb.connect()
    con.register("scores_df", _scores())
    con.execute("CREATE TABLE scores AS SELECT * FROM scores_df")
    view = inclusion_probabilities(con, "scores", s, 100)
    total_pi, n = con.execute(f"SELECT sum(inclusion_probability), count(*) FROM {view}").fetchall()[0]
    sizes = [len(draw_sample(con, "scores", s, r)) for r in range(1, 41)]
    # Sum of pi over the population is the expected sample size (draws overlap, so it is <= the budget).
    assert total_pi == pytest.approx(np.mean(sizes), rel=0.02) and total_pi <= 100
    # Horvitz-Thompson estimate of the population size, averaged over rounds (seeds), is close to N.
    ht = [(1 / draw_sample(con, "scores", s, r)["inclusion_probability"]).sum() for r in range(1, 41)]
    assert np.mean(ht) == pytest.approx(n, rel=0.05)


def test_sample_is_deterministic_and_strata_cover(demo_dict):
    s = load_settings(demo_dict)
    con = duckdb.connect()
    con.register("scores_df", _scores())
    con.execute("CREATE TABLE scores AS SELECT * FROM scores_df")
    a, b = draw_sample(con, "scores", s, 1), draw_sample(con, "scores", s, 1)
    assert a.equals(b)
    assert set(a["stratum"]) == {"high", "ambiguous", "low"} and (a["drawn_by"].str.startswith("random")).any()


def _model():
    def levels(ms):
        out = [{"sql_condition": "x_l IS NULL", "is_null_level": True}]
        for i, m in enumerate(ms):
            out.append(
                {"sql_condition": "ELSE" if i == len(ms) - 1 else f"lvl{i}", "m_probability": m, "u_probability": 0.1}
            )
        return out

    return {
        "comparisons": [{"output_column_name": "x", "comparison_levels": levels([0.5, 0.3, 0.2])}],
        "probability_two_random_records_match": 0.001,
    }


def test_negatives_do_not_corrupt_m(demo_dict):
    s = load_settings(demo_dict, ["training.min_positive_labels=5", "training.smoothing=0"])
    con = duckdb.connect()
    pairs = pd.DataFrame(
        {
            "source_dataset_l": "a",
            "unique_id_l": [str(i) for i in range(60)],
            "source_dataset_r": "b",
            "unique_id_r": [str(i) for i in range(60)],
            # 20 positives all at the top level (cvv 2); 40 negatives all at ELSE (cvv 0)
            "gamma_x": [2] * 20 + [0] * 40,
        }
    )
    con.register("sc", pairs)
    con.execute("CREATE TABLE sc_t AS SELECT * FROM sc")
    labels = pairs[PAIR_KEY].assign(match=[True] * 20 + [False] * 40)
    no_design = pd.DataFrame(columns=PAIR_KEY + ["design", "inclusion_probability"])
    with_neg, rep = train_from_labels(con, "sc_t", labels, no_design, _model(), s, 10**6)
    only_pos, _ = train_from_labels(con, "sc_t", labels[labels.match], no_design, _model(), s, 10**6)
    m = [lv.get("m_probability") for lv in with_neg["comparisons"][0]["comparison_levels"][1:]]
    assert m == [lv.get("m_probability") for lv in only_pos["comparisons"][0]["comparison_levels"][1:]]
    assert m[0] == pytest.approx(1.0) and rep.positives == 20 and rep.negatives == 40


def test_smoothing_keeps_unseen_levels_near_bootstrap(demo_dict):
    s = load_settings(demo_dict, ["training.min_positive_labels=5", "training.smoothing=5"])
    con = duckdb.connect()
    pairs = pd.DataFrame(
        {
            "source_dataset_l": "a",
            "unique_id_l": [str(i) for i in range(5)],
            "source_dataset_r": "b",
            "unique_id_r": [str(i) for i in range(5)],
            "gamma_x": [2] * 5,
        }
    )
    con.register("sc", pairs)
    con.execute("CREATE TABLE sc_t AS SELECT * FROM sc")
    design = pairs[PAIR_KEY].assign(design="d1", inclusion_probability=0.5)
    model, rep = train_from_labels(con, "sc_t", pairs[PAIR_KEY].assign(match=True), design, _model(), s, 10**4)
    m = [lv["m_probability"] for lv in model["comparisons"][0]["comparison_levels"][1:]]
    assert m[1] == pytest.approx(0.15) and m[2] == pytest.approx(0.1)  # (5*0 + 5*base) / 10
    assert model["probability_two_random_records_match"] == pytest.approx(10 / 10**4)  # 5 matches / pi 0.5


def test_too_few_labels_keep_bootstrap(demo_dict):
    s = load_settings(demo_dict)
    con = duckdb.connect()
    labels = pd.DataFrame({c: ["a"] for c in PAIR_KEY}).assign(match=True)
    model, rep = train_from_labels(
        con, "x", labels, pd.DataFrame(columns=PAIR_KEY + ["design", "inclusion_probability"]), _model(), s, 10
    )
    assert model == _model() and not rep.used_labels and "kept the bootstrap" in rep.reason


def _routing_scores():
    rows = [  # key, p, last name similarity proxy
        ("a", "1", "b", "1", 0.99),
        ("a", "1", "b", "2", 0.97),  # a:1 has two confident candidates: conflict
        ("a", "2", "b", "3", 0.99),  # clean accept
        ("a", "3", "b", "4", 0.50),
        ("a", "4", "b", "5", 0.30),  # band
        ("a", "5", "b", "6", 0.02),  # reject
        ("a", "6", "b", "7", 0.60),  # band, but gated
        ("a", "7", "b", "8", 0.70),  # band, labelled by a human
    ]
    df = pd.DataFrame(rows, columns=PAIR_KEY + ["match_probability"])
    df["match_weight"] = 0.0
    df["surname_l"] = ["s"] * 6 + ["abc", "s"]
    df["surname_r"] = ["s"] * 6 + ["xyz", "s"]
    return df


@pytest.mark.parametrize("table", [True, False], ids=["table", "view"])
def test_routing_counts_conflicts_gates_and_labels(demo_dict, table):
    demo_dict["link_type"] = "link_only"
    demo_dict["sources"].append(dict(demo_dict["sources"][0], name="other"))
    demo_dict["routing"] = {
        "one_to_one": True,
        "gates": [{"name": "surname_far", "sql": "jaro_winkler_similarity(surname_l, surname_r) < 0.5"}],
    }
    s = load_settings(demo_dict)
    con = _scores_con()
    labels = pd.DataFrame(
        [("a", "7", "b", "8", False, 1.0, "checked", "human", "human")],
        columns=ROUTING_LABEL_COLUMNS,
    )
    _route(con, labels, s, table)
    assert route_counts(con, "routed") == {
        "band": 2,
        "conflict": 2,
        "gate": 1,
        "human": 1,
        "model_accept": 1,
        "model_reject": 1,
    }
    todo = pairs_to_judge(con, "routed", s)
    assert list(todo["reason"]) == ["conflict", "conflict", "band", "band"]
    assert list(todo["match_probability"][2:]) == [0.5, 0.3]  # nearest 0.5 first
    decide(con, "routed", 1)
    d = con.execute("SELECT unique_id_l, decided_by, final_match, needs_review FROM decisions ORDER BY 1, 2").df()
    human = d[d.unique_id_l == "7"].iloc[0]
    assert human.decided_by == "human" and not human.final_match and not human.needs_review
    assert (d[d.unique_id_l == "1"].decided_by == "needs_review").all()  # conflicts never auto-accepted
    # Unjudged, both conflict pairs lean to a match; one-to-one keeps only the more probable one.
    decide(con, "routed", 1, one_to_one=True)
    d = con.execute(
        "SELECT unique_id_r, decided_by, final_match FROM decisions WHERE unique_id_l = '1' ORDER BY 2"
    ).df()
    assert d.to_dict("records") == [
        {"unique_id_r": "1", "decided_by": "needs_review", "final_match": True},
        {"unique_id_r": "2", "decided_by": "one_to_one", "final_match": False},
    ]


GATE_AND_RULE = {
    "gates": [{"name": "surname_far", "sql": "jaro_winkler_similarity(surname_l, surname_r) < 0.5"}],
    "accept_rules": [{"name": "same_key", "sql": "unique_id_l IN ('4', '5', '6')"}],
}


def _routing_settings(demo_dict, **routing):
    demo_dict["link_type"] = "link_only"
    demo_dict["sources"].append(dict(demo_dict["sources"][0], name="other"))
    demo_dict["routing"] = routing
    return load_settings(demo_dict)


@pytest.mark.parametrize("table", [True, False], ids=["table", "view"])
def test_accept_rules_decide_before_the_judge_and_gates_still_reject(demo_dict, table):
    # a:4-b:5 (band) and a:5-b:6 (model reject) share an exact key; a:6-b:7 too, but its gate wins.
    s = _routing_settings(demo_dict, **GATE_AND_RULE)
    con = _scores_con()
    _route(con, pd.DataFrame(columns=PAIR_KEY), s, table)
    assert route_counts(con, "routed") == {"band": 2, "gate": 1, "model_accept": 3, "rule": 2}
    decide(con, "routed", 1)
    d = con.execute(
        "SELECT unique_id_l, decided_by, final_match, judge_confidence, judge_reasoning FROM decisions ORDER BY 1"
    ).df()
    by = d.set_index("unique_id_l")
    for uid in ("4", "5"):  # accepted at no cost, even the pair the model rejected
        assert by.loc[uid, "decided_by"] == "rule" and by.loc[uid, "final_match"]
        assert by.loc[uid, "judge_confidence"] == 1.0 and by.loc[uid, "judge_reasoning"] == "rule: same_key"
    assert by.loc["6", "decided_by"] == "gate" and not by.loc["6", "final_match"]
    assert list(pairs_to_judge(con, "routed", s)["unique_id_l"]) == ["3", "7"]  # rule pairs never reach the judge


@pytest.mark.parametrize("table", [True, False], ids=["table", "view"])
def test_judge_answers_below_the_confidence_floor_need_review(demo_dict, table):
    s = _routing_settings(demo_dict, min_judge_confidence=0.7)
    con = _scores_con()
    labels = pd.DataFrame(
        [
            ("a", "3", "b", "4", True, 0.55, "names close, dates unclear", "gemini", "judge"),
            ("a", "4", "b", "5", False, 0.9, "different people", "gemini", "judge"),
            ("a", "7", "b", "8", False, 0.1, "a person said so", "human", "human"),  # humans are always final
        ],
        columns=ROUTING_LABEL_COLUMNS,
    )
    _route(con, labels, s, table)
    counts = route_counts(con, "routed")
    assert counts["unsure"] == 1 and counts["judge"] == 1 and counts["human"] == 1
    assert "3" not in set(pairs_to_judge(con, "routed", s)["unique_id_l"])  # an answer is never paid for twice
    decide(con, "routed", 1, min_confidence=0.7)
    d = con.execute("SELECT * FROM decisions ORDER BY unique_id_l").df().set_index("unique_id_l")
    unsure = d.loc["3"]
    assert unsure.decided_by == "needs_review" and unsure.needs_review and unsure.final_match  # the judge's answer
    assert unsure.judge_reasoning.startswith("judge confidence 0.55 below routing.min_judge_confidence 0.7")
    assert d.loc["4", "decided_by"] == "judge" and not d.loc["4", "needs_review"]
    assert d.loc["7", "decided_by"] == "human" and not d.loc["7", "needs_review"]
    # A floor of 0 makes every answer final (the behaviour before the floor existed).
    s0 = load_settings(demo_dict | {"routing": {"min_judge_confidence": 0}})
    _route(con, labels, s0, table)
    assert "unsure" not in route_counts(con, "routed")


def test_labels_find_their_pairs_by_key_when_every_pair_hash_collides(demo_dict):
    """In a pair_scores table a label finds its pair by the key's hash, then checks the key itself: with every
    pair given the label's hash (all collide), the label still reaches exactly its pair, as through the view."""
    s = _routing_settings(demo_dict)
    con = _scores_con()
    labels = pd.DataFrame(
        [("a", "3", "b", "4", True, 0.9, "same person", "gemini", "judge")],
        columns=ROUTING_LABEL_COLUMNS,
    )
    routes = {}
    for table in (False, True):
        pairs = pair_scores(con, "scores", s, table)
        if table:
            con.execute(f"UPDATE {pairs} SET pair_hash = hash('a', '3', 'b', '4')")
        route(con, pairs, labels, s, hashed=table)
        routes[table] = con.execute("SELECT unique_id_l, unique_id_r, route FROM routed ORDER BY ALL").fetchall()
    assert routes[True] == routes[False]
    assert [r[:2] for r in routes[True] if r[2] == "judge"] == [("3", "4")]


def test_one_to_one_keeps_the_strongest_evidence_first():
    """A person's match beats an accept rule's even at a lower probability; an unsure judge answer (needs_review)
    does not outrank a model accept through its judge confidence."""
    from splink_er.routing import _keep_one_match

    rows = [  # l, r, decided_by, judge_confidence, p
        ("1", "1", "human", 1.0, 0.60),
        ("1", "2", "rule", 1.0, 0.90),
        ("2", "3", "needs_review", 0.55, 0.70),
        ("2", "4", "model_accept", None, 0.99),
        ("3", "5", "imported", 1.0, 0.50),
        ("3", "6", "judge", 0.80, 0.40),
    ]
    df = pd.DataFrame(
        rows, columns=["unique_id_l", "unique_id_r", "decided_by", "judge_confidence", "match_probability"]
    )
    df.insert(0, "source_dataset_l", "a")
    df.insert(2, "source_dataset_r", "b")
    df["final_match"], df["judge_reasoning"] = True, None
    con = duckdb.connect()
    con.register("d", df)
    _keep_one_match(con, "d", "kept")
    kept = con.execute("SELECT unique_id_r FROM kept WHERE final_match ORDER BY 1").fetchall()
    assert [r for (r,) in kept] == ["1", "4", "6"]  # the person, the model accept, the judge


def test_rule_accepted_pairs_are_counted_for_the_prior_unless_gated(demo_dict):
    """Sampling never sees rule-accepted pairs, so the labels-trained prior adds them as known matches; a pair a
    gate rejects is not one."""
    from splink_er.routing import rule_accepted_pairs

    s = _routing_settings(demo_dict, **GATE_AND_RULE)
    con = duckdb.connect()
    con.register("sc", _routing_scores())
    assert rule_accepted_pairs(con, "sc", s) == 2  # a:6 is gated
    assert rule_accepted_pairs(con, "sc", load_settings(demo_dict | {"routing": {}})) == 0


@pytest.mark.parametrize("routes", [("band", "conflict"), ("band", "model_accept")])
def test_routes_read_with_pushed_filters_are_exactly_the_routed_rows(demo_dict, routes):
    # Every kind of pair the branches of routes_sql must split right: at the thresholds, without a probability,
    # a conflict inside the band, labelled, gated or accepted by a rule.
    s = _routing_settings(demo_dict)
    low, high = s.routing.low, s.routing.high
    probabilities = [None, 0.0, low, 0.3, 0.5, 0.9, high, 1.0]
    rows = []
    for i, (p, conflict, gate, rule) in enumerate(
        (p, c, g, r) for p in probabilities for c in (False, True) for g in (None, "g") for r in (None, "r")
    ):
        rows.append(("a", str(i), "b", str(i), p, None, gate, rule, conflict))
    ps = pd.DataFrame(rows, columns=PAIR_KEY + ["match_probability", "match_weight", "gate", "accept_rule", "conflict"])
    con = duckdb.connect()
    con.register("ps_frame", ps)
    con.execute("CREATE TABLE ps AS SELECT * FROM ps_frame")
    # Pair 24 (p 0.3, nothing else) is band and pair 36 (p 0.5, a conflict) a conflict, until judged.
    assert rows[24][4:] == (0.3, None, None, None, False) and rows[36][4:] == (0.5, None, None, None, True)
    labels = pd.DataFrame(
        [
            ("a", "24", "b", "24", True, 0.9, "same", "g", "judge"),
            ("a", "36", "b", "36", False, 0.9, "no", "g", "judge"),
        ],
        columns=ROUTING_LABEL_COLUMNS,
    )
    route(con, "ps", labels, s)
    plain = f"SELECT * FROM routed WHERE route IN {routes}"
    pushed = f"SELECT * FROM {routes_sql('routed', routes, s)}"
    assert sorted(map(str, con.execute(plain).fetchall())) == sorted(map(str, con.execute(pushed).fetchall()))
    assert not {"24", "36"} & {r[1] for r in con.execute(pushed).fetchall()}  # judged: out of the queue
    assert con.execute(f"SELECT count(DISTINCT route) FROM ({plain})").fetchall()[0][0] == 2  # both routes occur
