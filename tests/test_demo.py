"""Demo data: deterministic, realistic in shape, consistent with the store's and the roster's rules."""

import os
import re
import uuid
from collections import Counter
from datetime import datetime

import pytest
from werkzeug.security import check_password_hash

from server.records.layout import LAYOUT
from server.forms import formdefs
from server.services.demo import DEMO_LOGINS, generate_demo, load_demo
from server.records import households as household_records
from server.records import submissions as submission_records
from server.records import users as user_records
from server.records.households import HOUSEHOLD_ID_RE, clean_changes
from server.records.users import USERNAME_RE
from server.services.roster import parse_phone
from server.store.tinydb import PARTITION_RE
from server.store import Store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TODAY = datetime(2026, 11, 29).date()


@pytest.fixture(scope="module")
def demo():
    return generate_demo(TODAY)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return formdefs.FormRegistry.load(os.path.join(ROOT, "forms"), str(tmp_path_factory.mktemp("archive")),
                                      settings={"pv_yield_kwh_per_kw": 1100})


def test_generate_demo_is_deterministic(demo):
    assert generate_demo(TODAY) == demo
    assert all("password_hash" not in u for u in demo["users"])


def test_three_villages_about_two_hundred_households(demo):
    villages = demo["villages"]
    assert len(villages) == 3
    for v in villages:
        assert re.fullmatch(r"\d{12}", v["id"]) and PARTITION_RE.match(v["id"])
        assert v["name"].endswith("村") and v["township"] and v["county"]
    per_village = Counter(h["village_id"] for h in demo["households"])
    assert set(per_village) == {v["id"] for v in villages}
    assert 190 <= sum(per_village.values()) <= 210
    assert min(per_village.values()) >= 50


def test_households_are_well_formed(demo):
    ids = [h["id"] for h in demo["households"]]
    assert len(ids) == len(set(ids))
    categories = Counter()
    for h in demo["households"]:
        m = HOUSEHOLD_ID_RE.match(h["id"])
        assert m and m.group(1) == h["village_id"]
        assert 2 <= len(h["members"]) <= 6 and h["population"] == len(h["members"])
        assert h["members"][0]["relation"] == "户主" and h["members"][0]["name"] == h["head_name"]
        assert 1 <= len(h["plots"]) <= 4 and all(p["area_mu"] > 0 for p in h["plots"])
        assert parse_phone(h["phone"]) is not None
        assert re.fullmatch(r"\d组", h["group"]) and h["group"] in h["address"]
        assert h["version"] == 1 and h["updated_at"]
        categories[h["category"]] += 1
        # the lead's own validation of edits accepts every demo value
        clean, errors = clean_changes({f: h[f] for f in ("head_name", "phone", "address", "group",
                                                         "category", "population", "members",
                                                         "plots", "pv_status")})
        assert errors == [], (h["id"], errors)
    assert set(categories) == {"tuopin", "jiance", "dibao", "ordinary"}
    assert categories["tuopin"] > len(demo["households"]) / 2


def test_every_cadre_is_paired_within_their_villages(demo):
    users = {u["id"]: u for u in demo["users"]}
    assert all(USERNAME_RE.match(uid) and u["username"] == uid for uid, u in users.items())
    cadres = {uid for uid, u in users.items() if u["role"] == "cadre"}
    assert 6 <= len(cadres) <= 8
    assert all(users[c]["unit"] for c in cadres)
    load = Counter()
    for h in demo["households"]:
        assert 1 <= len(h["cadre_ids"]) <= 2 and len(set(h["cadre_ids"])) == len(h["cadre_ids"])
        for c in h["cadre_ids"]:
            assert c in cadres and h["village_id"] in users[c]["villages"]
            load[c] += 1
    assert set(load) == cadres
    roles = Counter(u["role"] for u in users.values())
    assert roles["admin"] == 1 and roles["supervisor"] == 1
    supervisor = next(u for u in users.values() if u["role"] == "supervisor")
    assert sorted(supervisor["villages"]) == sorted(v["id"] for v in demo["villages"])
    assert {(u, r) for u, _p, r in DEMO_LOGINS} == {(uid, u["role"]) for uid, u in users.items()}


def test_submissions_belong_to_paired_households(demo):
    households = {h["id"]: h for h in demo["households"]}
    forms = Counter(s["form"] for s in demo["submissions"])
    assert forms["household_visit"] >= 10 and forms["pv_enrollment"] >= 2
    assert len({s["uuid"] for s in demo["submissions"]}) == len(demo["submissions"])
    for s in demo["submissions"]:
        assert str(uuid.UUID(s["uuid"])) == s["uuid"]
        h = households[s["household_id"]]
        assert s["cadre_id"] in h["cadre_ids"]
        assert s["form_version"] == (3 if s["form"] == "household_visit" else 2) and s["attachments"] == []
        assert datetime.fromisoformat(s["created_at"]) < datetime.fromisoformat(s["received_at"])
        a = s["answers"]
        if s["form"] == "household_visit":
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", a["visit_date"])
            assert a["income_total"] == sum(a[k] for k in ("income_wages", "income_farming",
                                                             "income_livestock", "income_pv",
                                                             "income_transfers"))
            assert a["topics"] and a["needs"] and a["needs_detail"]
            assert a["risk"] in ("yes", "no") and (a["risk"] == "yes") == ("risk_reason" in a)
            for item in a.get("help_given", []):
                assert set(item) - {"channel"} == {"product", "quantity", "unit", "price"}
        else:
            assert a["expected_kwh_year"] == a["capacity_kw"] * 1100
    helped = [i["product"] for s in demo["submissions"] for i in s["answers"].get("help_given", [])]
    assert helped  # 消费帮扶 shows up somewhere
    channels = [i.get("channel") for s in demo["submissions"] for i in s["answers"].get("help_given", [])]
    assert "canteen" in channels and None in channels  # who bought, and now and then not said


def test_load_demo_writes_once_through_the_pipeline_and_logins_work(tmp_path, registry):
    data_dir = str(tmp_path / "data")
    settings = {"pv_yield_kwh_per_kw": 1100}
    with Store(data_dir, layout=LAYOUT, snapshot_every=0) as store:
        counts = load_demo(store, registry, settings)
        assert counts["households"] == len(generate_demo()["households"])
        seq = store.seq
        assert load_demo(store, registry, settings) is None  # already there: nothing overwritten
        assert store.seq == seq
    with Store(data_dir, layout=LAYOUT, snapshot_every=0) as store:  # durable across a reopen
        assert len(store.village_ids()) == 3
        stored = [h for v in store.village_ids() for h in household_records.in_village(v, store)]
        assert len(stored) == counts["households"]
        subs = [s for v in store.village_ids() for s in submission_records.in_village(v, store)]
        assert len(subs) == counts["submissions"]
        # the forms' declared effects were applied: visits date their households, PV enrollments
        # set the PV status, promises made are open unless a later visit closed them
        visited = {s["household_id"] for s in subs if s["form"] == "household_visit"}
        by_id = {h["id"]: h for h in stored}
        assert all(by_id[hid]["last_visit_date"] for hid in visited)
        assert sum(1 for h in stored if h["pv_status"]) == sum(1 for s in subs if s["form"] == "pv_enrollment")
        promised = {f"{s['uuid']}:{i}" for s in subs for i, _ in enumerate(s["answers"].get("followups", []))}
        closed = {p["followup_id"] for s in subs for p in s["answers"].get("promises", [])
                  if p["status"] in ("done", "dropped")}
        still_open = {f["id"] for h in stored for f in h["open_followups"]}
        assert closed and still_open == promised - closed
        for username, password, role in DEMO_LOGINS:
            user = user_records.get(username, store)
            assert user["role"] == role and user["active"]
            assert check_password_hash(user["password_hash"], password)
            assert not check_password_hash(user["password_hash"], password + "x")


def test_demo_answers_pass_the_real_form_definitions(demo, registry):
    """What the server would accept from a phone: nothing dropped, computed fields agree."""
    for s in demo["submissions"]:
        definition = registry.get(s["form"], s["form_version"])
        clean, errors = formdefs.validate_answers(definition, s["answers"], today=TODAY.isoformat(),
                                                  settings={"pv_yield_kwh_per_kw": 1100})
        assert errors == [], (s["uuid"], errors)
        assert clean == s["answers"], s["uuid"]
