"""Profiles print forms as data (issue 10): each submission with the labels of its own form version,
what a form prints declared in its `profile:` block, a third form printed with no code change;
promises with their state (issue 13); every time in JIEDUI_TIMEZONE."""

import functools
import os
import shutil

import pytest

from server import create_app
from server.store import close_app_store, get_store
from tests.conftest import Api, seed_world
from tests.helpers import app_config, new_uuid, pdf_text, visit2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIRD = os.path.join(ROOT, "tests", "fixtures", "print_forms")


@pytest.fixture
def third_app(tmp_path):
    """The app with the project's forms plus a third one (industry_support, versions 1 and 2)."""
    forms = tmp_path / "forms"
    shutil.copytree(os.path.join(ROOT, "forms"), forms)
    shutil.copy(os.path.join(THIRD, "industry_support.yaml"), forms)
    shutil.copy(os.path.join(THIRD, "history", "industry_support.1.yaml"), forms / "history")
    app = create_app(app_config(tmp_path / "data", FORMS_DIR=str(forms),
                                FIXED_NOW="2026-05-04T23:30:00+00:00"))
    with app.app_context():
        seed_world(get_store())
    yield app
    close_app_store(app)


def item(form, version, answers, household="v1-0001", created_at="2026-05-04T10:00:00+08:00", **extra):
    return {"uuid": new_uuid(), "form": form, "form_version": version, "household_id": household,
            "created_at": created_at, "answers": answers, **extra}


visit = functools.partial(visit2, created_at="2026-05-04T10:00:00+08:00")


def push(api, *items):
    r = api.post("/api/v1/submissions", {"submissions": list(items)})
    assert r.status_code == 200, r.get_json()
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["created"] * len(items), results
    return results


def print_text(api, household="v1-0001", lang="zh"):
    r = api.get(f"/households/{household}/profile.pdf?lang={lang}")
    assert r.status_code == 200, r.data[:300]
    return pdf_text(r.data)


def test_a_third_form_is_validated_updates_the_household_and_prints_with_no_code_change(third_app):
    api = Api(third_app.test_client())
    api.login("cadre1")
    bad = item("industry_support", 2, {"support_date": "2026-04-20", "support_type": "rice"})
    r = api.post("/api/v1/submissions", {"submissions": [bad]}).get_json()["results"][0]
    assert r["status"] == "rejected" and r["errors"][0]["field"] == "support_type"
    push(api, item("industry_support", 2, {
        "support_date": "2026-04-20", "support_type": "bees", "amount_yuan": 3000,
        "seedlings": [{"item": "蜂箱", "count": 10}, {"item": "蜂种", "count": 5}],
        "next_steps": [{"step": "联系合作社收购蜂蜜", "due_date": "2026-06-30"}],
        "remarks": "首批蜂箱已安放在屋后山坡。"}))
    household = api.get("/api/v1/households/v1-0001").get_json()
    assert household["last_visit_date"] == "2026-04-20"                      # the form's effects
    assert [f["action"] for f in household["open_followups"]] == ["联系合作社收购蜂蜜"]
    text = print_text(api)
    for expected in ("2026-04-20", "产业帮扶记录",                           # its date, its title
                     "帮扶产业：中蜂养殖",                                    # a choice, labelled
                     "发放物资：", "1.物资名称蜂箱，数量10", "2.物资名称蜂种，数量5",  # a repeat
                     "扶持资金（元）：3,000",
                     "下一步安排：联系合作社收购蜂蜜（期限2026-06-30）未办结",      # its promise
                     "帮扶说明：首批蜂箱已安放在屋后山坡。"):
        assert expected in text, expected
    english = print_text(api, lang="en")
    assert "Industrysupported:Beekeeping" in english


def test_each_submission_prints_with_the_labels_of_its_own_form_version(third_app):
    api = Api(third_app.test_client())
    api.login("cadre1")
    push(api, item("industry_support", 1, {"support_date": "2026-03-01", "support_type": "tea"}),
         item("industry_support", 2, {"support_date": "2026-04-01", "support_type": "bees"}))
    text = print_text(api)
    assert "扶持项目：茶叶种植" in text and "帮扶产业：茶叶种植" not in text     # version 1's label
    assert "帮扶产业：中蜂养殖" in text and "扶持项目：中蜂养殖" not in text     # version 2's label
    assert text.index("2026-03-01") < text.index("2026-04-01")                 # oldest first


def test_a_promise_closed_by_a_later_visit_prints_closed_with_that_visit_and_note(app):
    api = Api(app.test_client())
    api.login("cadre1")
    first = visit(visit_date="2026-04-01", followups=[
        {"action": "联系人社局就业岗位", "due_date": "2026-06-06"},
        {"action": "办理慢病卡", "due_date": "2026-05-20"}])
    push(api, first)
    opened = api.get("/api/v1/households/v1-0001").get_json()["open_followups"]
    ids = {f["action"]: f["id"] for f in opened}
    push(api, visit(visit_date="2026-04-28", promises=[
        {"followup_id": ids["联系人社局就业岗位"], "status": "done", "note": "已安排到县城物流园上班"},
        {"followup_id": ids["办理慢病卡"], "status": "in_progress", "note": "材料已交卫生院"}]))
    left = api.get("/api/v1/households/v1-0001").get_json()["open_followups"]
    assert [f["action"] for f in left] == ["办理慢病卡"]
    text = print_text(api)
    # in the visit that promised it: closed, when, and the note
    assert ("联系人社局就业岗位（期限2026-06-06）已办结2026-04-28走访确认：已安排到县城物流园上班"
            in text), text
    assert "办理慢病卡（期限2026-05-20）办理中2026-04-28走访确认：材料已交卫生院" in text
    # in the visit that closed it: what it answered about each earlier promise
    assert "上次答应的事：1.联系人社局就业岗位（期限2026-06-06）已办结：已安排到县城物流园上班" in text
    english = print_text(api, lang="en")
    assert "Done" in english and "confirmedonthevisitof2026-04-28" in english


def test_times_print_in_the_deployment_time_zone(third_app):
    """A form without a date question prints under its created_at day in Asia/Shanghai, and the
    stamp's time is Shanghai's: 2026-05-04T23:30Z is the 5th at 07:30 there."""
    api = Api(third_app.test_client())
    api.login("cadre1")
    push(api, item("industry_support", 2, {"support_date": "2026-05-03", "support_type": "tea"},
                   created_at="2026-05-04T23:30:00+00:00"))
    text = print_text(api)
    assert "打印：李干部2026-05-0507:30" in text
    from server.printing import profile
    with third_app.app_context():
        assert profile._day("2026-05-04T23:30:00+00:00") == "2026-05-05"
        assert profile._day("2026-05-04") == "2026-05-04"


def test_a_reprint_is_served_from_the_cache_only_while_nothing_it_shows_changed(app, api):
    """The cache is found by a cheap key (the seq of everything the profile shows); any change to
    the household, its visits, its village or the cadres named makes a new profile."""
    from server.records import users, villages
    api.login("cadre1")
    push(api, visit())
    url = "/households/v1-0001/profile.pdf"
    assert api.get(url).headers["X-Profile-Cache"] == "miss"
    assert api.get(url).headers["X-Profile-Cache"] == "hit"
    with app.app_context():
        store = get_store()
        store.write(lambda tx: villages.put(tx, dict(villages.get("v1", store), name="青石新村")))
    r = api.get(url)
    assert r.headers["X-Profile-Cache"] == "miss" and "青石新村" in pdf_text(r.data)
    with app.app_context():
        users.create("cadre1", "cadre", "another-horse-42", villages=["v1"], display_name="李新干部",
                     unit="县农业农村局", update=True, store=get_store())
    api.login("cadre1", "another-horse-42")
    r = api.get(url)
    assert r.headers["X-Profile-Cache"] == "miss" and "李新干部" in pdf_text(r.data)
    push(api, visit(visit_date="2026-05-02"))
    assert api.get(url).headers["X-Profile-Cache"] == "miss"
    assert api.get(url).headers["X-Profile-Cache"] == "hit"


def test_the_lead_third_form_prints_in_the_pv_section(tmp_path):
    """The PV-lecture form (tests/fixtures/pv_lecture.yaml, section pv) prints with its own labels
    in the PV section: the household's pv_status, then its shown answers."""
    forms = tmp_path / "forms"
    shutil.copytree(os.path.join(ROOT, "forms"), forms)
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "pv_lecture.yaml"), forms)
    app = create_app(app_config(str(tmp_path / "data"), FORMS_DIR=str(forms)))
    with app.app_context():
        seed_world(get_store())
    try:
        api = Api(app.test_client())
        api.login("cadre1")
        push(api, item("pv_lecture", 1, {"lecture_date": "2026-05-03", "attended": "yes",
                                         "who_attended": "张v11", "questions": "补贴什么时候到账？"}))
        text = print_text(api)
        section = text[text.index("光伏帮扶"):]
        for expected in ("参加宣讲已参加", "宣讲日期2026-05-03",               # pv_status, labelled
                         "最近一次登记（2026-05-03）",
                         "是否参加：参加了", "参加人：张v11"):
            assert expected in section, expected
        assert "尚无走访记录" in text                                       # not in the timeline
    finally:
        close_app_store(app)


def test_a_corrected_visit_prints_only_as_its_correction(app):
    cadre, supervisor = Api(app.test_client()), Api(app.test_client())
    cadre.login("cadre1")
    supervisor.login("super")
    first = visit(notes="第一次的记录")
    push(cadre, first)
    r = supervisor.post(f"/api/v1/submissions/{first['uuid']}/review",
                        {"state": "has_issues", "comment": "请补充"})
    assert r.status_code == 200, r.get_json()
    fixed = visit(notes="更正后的记录")
    fixed["supersedes"] = first["uuid"]
    push(cadre, fixed)
    text = print_text(cadre)
    assert "更正后的记录" in text and "第一次的记录" not in text
    assert "共1条记录" in text
