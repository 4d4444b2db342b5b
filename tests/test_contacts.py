"""State, ZIP, phone, e-mail and date normalizers, alone and as prepare steps."""

import pandas as pd
import pytest

from splink_er.normalize.contacts import email_norm, phone_e164, state_code, zip5, zip_region_matches_state


@pytest.mark.parametrize(
    "raw,code",
    [
        ("Calif.", "CA"),
        ("N. Carolina", "NC"),
        ("nc", "NC"),
        ("37", "NC"),
        ("North Carolina", "NC"),
        ("Washington DC", "DC"),
        ("D.C.", "DC"),
        ("TEXAS", "TX"),
        ("Narnia", None),
        (None, None),
        ("", None),
    ],
)
def test_states(raw, code):
    assert state_code(raw) == code


@pytest.mark.parametrize(
    "raw,z",
    [
        ("27601-1234", "27601"),
        ("276011234", "27601"),
        (2138, "02138"),
        ("2138.0", "02138"),
        ("02138", "02138"),
        ("123", None),
        ("abcde", None),
        (None, None),
    ],
)
def test_zips(raw, z):
    assert zip5(raw) == z


def test_zip_region_check():
    assert zip_region_matches_state("27601", "NC") and zip_region_matches_state("90210", "CA")
    assert zip_region_matches_state("90210", "NC") is False and zip_region_matches_state(None, "NC") is None


def test_phones_and_emails():
    assert phone_e164("(919) 814-0700") == "+19198140700" and phone_e164("919.814.0700") == "+19198140700"
    assert phone_e164("555-0134") is None and phone_e164("+44 20 7946 0018") == "+442079460018"
    assert email_norm(" Jane.Doe+news@GMail.com ") == "janedoe@gmail.com"
    assert email_norm("jane.doe+news@googlemail.com") == "janedoe@gmail.com"
    assert email_norm("A.B+x@Outlook.com") == "a.b@outlook.com"  # +tags yes, dots stay outside Gmail
    assert (
        email_norm("a.b+x@yahoo.com") == "a.b+x@yahoo.com" and email_norm("a.b+x@gmail.com", False) == "a.b+x@gmail.com"
    )
    assert email_norm("not an address") is None


@pytest.mark.e2e
def test_prepare_steps_for_contacts_and_dates(demo_dict):
    import splink_er

    frame = pd.DataFrame(
        {
            "id": ["1", "2", "3"],
            "st": ["N. Carolina", "nc", "Narnia"],
            "zip": ["27601-1234", "2138", None],
            "phone": ["(919) 814-0700", "919.814.0700", "12"],
            "mail": ["Jane.Doe+x@gmail.com", "janedoe@gmail.com", "x"],
            "dob": ["1970-01-31", "01/31/1970", "31.01.1970"],
        }
    )
    steps = [
        {"column": "st", "kind": "state"},
        {"column": "zip", "kind": "zip"},
        {"column": "phone", "kind": "phone"},
        {"column": "mail", "kind": "email", "into": "email"},
        {"column": "dob", "kind": "date"},
    ]
    keep = ["st_norm", "zip_norm", "phone_norm", "email", "dob_norm"]
    settings = {
        "name": "c",
        "link_type": "dedupe_only",
        "sources": [{"name": "c", "id_column": "id", "prepare": steps}],
        "comparisons": [{"kind": "ExactMatch", "column": "email"}],
        "blocking_rules": [["email"]],
        "columns_to_keep": keep,
        "judge": {"kind": "none"},
        "output_dir": demo_dict["output_dir"],
        "labels": demo_dict["labels"],
    }
    job = splink_er.prepare(settings, data={"c": frame}, quiet=True)
    rows = job.con.execute(f"SELECT unique_id, {', '.join(keep)} FROM {job.loaded.tables['c']} ORDER BY 1").fetchall()
    import datetime

    d = datetime.date(1970, 1, 31)
    assert rows == [
        ("1", "NC", "27601", "+19198140700", "janedoe@gmail.com", d),
        ("2", "NC", "02138", "+19198140700", "janedoe@gmail.com", d),
        ("3", None, None, None, None, None),
    ]


@pytest.mark.parametrize("provider_rules", [True, False])
def test_email_sql_matches_python(provider_rules):
    """The vectorised DuckDB e-mail rules give exactly the Python function's answers."""
    import duckdb

    from splink_er.normalize.contacts import email_norm, email_norm_sql

    values = [
        " Jane.Doe+news@GMail.com ",
        "jane.doe+news@googlemail.com",
        "a.b+x@yahoo.com",
        "A.B+x@Outlook.com",
        "x",
        "@gmail.com",
        "a@b",
        "a@@b.com",
        "a@b.com\t",
        "+tag@gmail.com",
        "Ünï@Exämple.de",
        "",
        None,
        "first.last@icloud.com",
        "p+q+r@fastmail.com",
    ]
    con = duckdb.connect()
    got = [
        r[0]
        for r in con.execute(f"SELECT {email_norm_sql('v', provider_rules)} FROM unnest(?) t(v)", [values]).fetchall()
    ]
    assert got == [email_norm(v, provider_rules) for v in values]
