"""The dashboard: /api/v1/stats equals the lists behind it (demo data, and around midnight in
Asia/Shanghai), every number on the page links to a list of that size, scope, bad input."""

import html
import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from server import create_app
from server.forms import formdefs
from server.services.demo import load_demo
from server.records import households, submissions, users
from server.store import close_app_store, get_store
from tests.conftest import PASSWORD, Api
from tests.helpers import (VILLAGE_KINDS, app_config, assert_stats_match_lists, listed,
                           new_uuid, visit2)


def push(api, *items):
    r = api.post("/api/v1/submissions", {"submissions": list(items)})
    assert r.status_code == 200, r.get_json()
    results = r.get_json()["results"]
    assert all(x["status"] == "created" for x in results), results
    return results


# ---- demo data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    app = create_app(app_config(str(tmp_path_factory.mktemp("demo")), FIXED_NOW="2026-06-12T02:00:00Z"))
    with app.app_context():
        load_demo(get_store(), formdefs.registry(), formdefs.served_settings(app))
        store = get_store()
        some = sorted((s for s in submissions.in_village("430699101001", store)
                       if s["form"] == "household_visit" and "promises" not in s["answers"]
                       and s["review"]["state"] == "received"), key=lambda s: s["uuid"])[:3]
    # three visits returned by the supervisor; the cadre corrects the third, which leaves the count
    supervisor = Api(app.test_client())
    supervisor.login("zhoujian", "super-demo-2026")
    for s in some:
        r = supervisor.post(f"/api/v1/submissions/{s['uuid']}/review",
                            {"state": "has_issues", "comment": "请补充收入情况"})
        assert r.status_code == 200, r.get_json()
    cadre = Api(app.test_client())
    cadre.login(some[2]["cadre_id"], "cadre-demo-2026")
    fix = {k: some[2][k] for k in ("form", "form_version", "household_id", "created_at", "answers")}
    fix.update(uuid=new_uuid(), supersedes=some[2]["uuid"])
    assert cadre.post("/api/v1/submissions", {"submissions": [fix]}).get_json()["results"][0]["status"] == "created"
    app.config["TEST_RETURNED"] = ([s["uuid"] for s in some[:2]], some[2]["uuid"])
    yield app
    close_app_store(app)


@pytest.fixture
def demo_api(demo_app):
    return Api(demo_app.test_client())


def test_stats_on_demo_data_equal_the_lists_behind_them(demo_api):
    for username, password in (("admin", "admin-demo-2026"), ("zhoujian", "super-demo-2026")):
        assert demo_api.login(username, password).status_code == 200
        stats = demo_api.get("/api/v1/stats").get_json()
        assert set(stats) >= {"as_of", "villages", "cadres"}
        assert stats["as_of"].startswith("2026-06-12T10:00:00+08:00")
        assert len(stats["villages"]) == 3 and len(stats["cadres"]) == 7
        for row in stats["villages"]:
            assert set(row) >= {"id", "name", "households", "paired", "never_visited", "not_visited_30d",
                                "visits_this_month", "overdue_followups", "returned", "pv", "help_value"}
        for c in stats["cadres"]:
            assert set(c) >= {"id", "name", "households", "visits_this_month", "never_visited"}
        totals = {k: sum(r[k] for r in stats["villages"]) for k in VILLAGE_KINDS}
        # the demo makes every figure mean something
        assert totals["households"] == 200 and totals["never_visited"] > 0
        assert totals["visits_this_month"] > 0 and totals["overdue_followups"] > 0
        returned, corrected = demo_api.client.application.config["TEST_RETURNED"]
        listed_returned = {i["uuid"] for i in listed(demo_api, "returned")["items"]}
        assert set(returned) <= listed_returned and corrected not in listed_returned
        assert sum(sum(r["pv"].values()) for r in stats["villages"]) == 6
        assert_stats_match_lists(demo_api, stats)
        one = demo_api.get("/api/v1/stats?village=430699101002").get_json()
        assert [r["id"] for r in one["villages"]] == ["430699101002"]
        assert one["villages"][0] == next(r for r in stats["villages"] if r["id"] == "430699101002")
        assert {c["id"] for c in one["cadres"]} == {"huangtao", "zhoumin"}


def test_pv_stages_follow_the_pv_form_in_its_order(demo_api):
    demo_api.login("admin", "admin-demo-2026")
    stats = demo_api.get("/api/v1/stats").get_json()
    pv = stats["villages"][0]["pv"]
    assert set(pv) == {"interested", "none", "applied", "approved", "installed", "connected", "declined"}
    page = demo_api.get("/dashboard").get_data(as_text=True)
    order = [page.index(word) for word in ("有意向", "未申请", "已申请", "已批复", "已安装", "已并网发电", "无意向")]
    assert order == sorted(order)


NUMBER_LINK = re.compile(r'<a[^>]*href="(/dashboard/list\?[^"]*)"([^>]*)>(.*?)</a>', re.S)


def test_every_number_on_the_dashboard_links_to_a_list_of_that_size(demo_api):
    """A number is its list's size, or (data-sum="FIELD") the sum of that field of its items."""
    demo_api.login("zhoujian", "super-demo-2026")
    for path in ("/dashboard", "/dashboard?village=430699101001",
                 "/dashboard?range=this_year&question=household_visit:visit_type",
                 "/dashboard?from=2026-03-01&to=2026-05-31&question=household_visit:income_total"):
        page = demo_api.get(path).get_data(as_text=True)
        links = NUMBER_LINK.findall(page)
        assert len(links) > 50
        for n, (href, attrs, inner) in enumerate(links):
            aria = re.search(r'aria-label="[^"]*: ([\d,.]+)"', attrs)
            shown = aria.group(1) if aria else re.sub(r"<[^>]+>", " ", inner).split()[0]
            number = float(shown.replace(",", ""))
            params = dict(parse_qsl(urlsplit(html.unescape(href)).query))
            summed = params.pop("sum", None)
            body = listed(demo_api, params.pop("kind"), **params)
            marked = re.search(r'data-sum="(\w+)"', attrs)
            if summed == "area_mu":  # the ledger's area: the sum over its list of plots
                assert round(sum(i["area_mu"] or 0 for i in body["items"]), 4) == number, href
            elif marked and marked.group(1) != "count":
                assert abs(sum(i[marked.group(1)] for i in body["items"]) - number) < 0.006, href
            elif "help_value" in href and not marked:
                assert round(sum(i["help_value"] for i in body["items"]), 2) == number, href
            else:
                assert body["count"] == number, href
            if n % 7 == 0:
                assert demo_api.get(html.unescape(href)).status_code == 200


def test_demo_help_is_counted_by_buyer_channel_and_the_rows_add_up(demo_api):
    demo_api.login("zhoujian", "super-demo-2026")
    help_ = demo_api.get("/api/v1/stats?range=this_year").get_json()["range"]["help"]
    assert help_["channel_is"] == "channel" and {c["kind"] for c in help_["by_channel"]} == {"channel"}
    assert "单位食堂采购" in [c["name"] for c in help_["by_channel"]] and help_["by_channel"][-1]["id"] == "-"
    assert round(sum(c["value"] for c in help_["by_channel"]), 2) == help_["value"]
    assert sum(c["entries"] for c in help_["by_channel"]) == help_["entries"]


def test_dashboard_page_has_accessible_charts_and_prints(demo_api):
    demo_api.login("admin", "admin-demo-2026")
    page = demo_api.get("/dashboard").get_data(as_text=True)
    assert page.count("<svg") == 3 and page.count("<title id=") == 3 and page.count("<desc id=") == 3
    assert "近 12 周每周走访" in page and "光伏进度" in page and "各村本月走访" in page
    assert "dashboard.css" in page
    css = demo_api.get("/app/css/dashboard.css").get_data(as_text=True)
    assert "@media print" in css
    for code in (">household_visit<", ">received<", ">applied<", ">tuopin<"):
        assert code not in page


# ---- around midnight in Asia/Shanghai ------------------------------------------------------------


def test_this_month_and_overdue_follow_the_shanghai_calendar_at_midnight(app, api):
    app.config["FIXED_NOW"] = "2026-05-31T16:10:00Z"  # 2026-06-01 00:10 in Shanghai, still May in UTC
    api.login("cadre1")
    may = visit2("v1-0001", "2026-05-31", created_at="2026-05-31T23:30:00+08:00",
                followups=[{"action": "联系人社局", "due_date": "2026-05-31"}])
    june = visit2("v1-0002", "2026-06-01", created_at="2026-06-01T00:10:00+08:00",
                 help_given=[{"product": "红薯", "quantity": 100, "unit": "斤", "price": 1.5}])
    push(api, may, june)
    api.login("super")
    stats = api.get("/api/v1/stats").get_json()
    assert stats["as_of"].startswith("2026-06-01T00:10:00+08:00")
    v1 = next(r for r in stats["villages"] if r["id"] == "v1")
    assert v1["visits_this_month"] == 1
    assert [i["uuid"] for i in listed(api, "visits_this_month", village="v1")["items"]] == [june["uuid"]]
    assert v1["overdue_followups"] == 1  # due 31 May, and it is 1 June in Shanghai
    assert v1["never_visited"] == 1 and v1["help_value"] == 150.0
    assert_stats_match_lists(api, stats)

    app.config["FIXED_NOW"] = "2026-05-31T15:50:00Z"  # 23:50 on 31 May in Shanghai
    stats = api.get("/api/v1/stats").get_json()
    v1 = next(r for r in stats["villages"] if r["id"] == "v1")
    assert v1["visits_this_month"] == 1
    assert [i["uuid"] for i in listed(api, "visits_this_month", village="v1")["items"]] == [may["uuid"]]
    assert v1["overdue_followups"] == 0  # due today: not overdue yet
    assert_stats_match_lists(api, stats)


def test_not_visited_in_30_days_counts_from_the_local_day(app, api):
    app.config["FIXED_NOW"] = "2026-07-01T16:30:00Z"  # 2 July 00:30 in Shanghai
    api.login("cadre1")
    push(api, visit2("v1-0001", "2026-06-02"), visit2("v1-0002", "2026-06-01"))
    api.login("super")
    v1 = next(r for r in api.get("/api/v1/stats").get_json()["villages"] if r["id"] == "v1")
    # 2 June is 30 days before 2 July: visited within 30 days; 1 June is not; v1-0003 never
    assert v1["not_visited_30d"] == 2 and v1["never_visited"] == 1
    ids = {i["id"] for i in listed(api, "not_visited_30d", village="v1")["items"]}
    assert ids == {"v1-0002", "v1-0003"}


def test_a_corrected_visit_counts_once(app, api):
    app.config["FIXED_NOW"] = "2026-05-20T02:00:00Z"
    api.login("cadre1")
    first = visit2("v1-0001", "2026-05-10")
    push(api, first)
    fixed = visit2("v1-0001", "2026-05-11")
    fixed["supersedes"] = first["uuid"]
    push(api, fixed)
    assert submissions.find(get_store(app), first["uuid"])["superseded_by"] == fixed["uuid"]
    api.login("super")
    v1 = next(r for r in api.get("/api/v1/stats").get_json()["villages"] if r["id"] == "v1")
    assert v1["visits_this_month"] == 1
    items = listed(api, "visits_this_month", village="v1")["items"]
    assert [i["uuid"] for i in items] == [fixed["uuid"]]


# ---- the cache --------------------------------------------------------------------------------------


def test_an_unchanged_village_is_not_recomputed_and_a_changed_one_is(app, api):
    app.config["FIXED_NOW"] = "2026-05-20T02:00:00Z"
    api.login("super")
    from server.services.stats import cache_of
    before = api.get("/api/v1/stats").get_json()
    cache = cache_of(app)
    computed = cache.computed
    assert api.get("/api/v1/stats").get_json() == before
    assert cache.computed == computed
    api.login("cadre2")
    push(api, visit2("v2-0001", "2026-05-19"))
    api.login("super")
    after = api.get("/api/v1/stats").get_json()
    assert cache.computed == computed + 1  # only v2 was read again
    v2 = next(r for r in after["villages"] if r["id"] == "v2")
    assert v2["visits_this_month"] == 1 and v2["never_visited"] == 1


# ---- scope and bad input ------------------------------------------------------------------------


def test_scope_cadres_get_403_and_other_villages_404(app, api):
    assert api.get("/api/v1/stats").status_code == 401
    assert api.get("/dashboard").status_code == 302
    api.login("cadre1")
    for path in ("/api/v1/stats", "/api/v1/stats?village=v1", "/api/v1/stats/list?kind=households",
                 "/dashboard", "/dashboard/list?kind=households"):
        assert api.get(path).status_code == 403, path
    assert api.get("/api/v1/stats").get_json()["error"] == "forbidden"
    users.create("super1", "supervisor", PASSWORD, villages=["v1"], store=get_store(app))
    api.login("super1")
    stats = api.get("/api/v1/stats").get_json()
    assert [r["id"] for r in stats["villages"]] == ["v1"]
    assert [c["id"] for c in stats["cadres"]] == ["cadre1"]
    for path in ("/api/v1/stats?village=v2", "/api/v1/stats/list?kind=households&village=v2",
                 "/dashboard?village=v2", "/dashboard/list?kind=never_visited&village=v2",
                 "/api/v1/stats?village=nowhere"):
        assert api.get(path).status_code == 404, path
    # a cadre of another village: nothing of theirs is in scope
    assert listed(api, "households", cadre="cadre2")["count"] == 0
    api.login("admin")
    assert {r["id"] for r in api.get("/api/v1/stats").get_json()["villages"]} == {"v1", "v2"}


BAD_QUERIES = (
    "village=../etc", "village=%00", "village=" + "x" * 40, "kind=everything", "", "kind=visits&from=2026-13-01",
    "kind=visits&from=yesterday", "kind=visits&from=2026-06-02&to=2026-06-01", "kind=pv&stage=a%20b",
    "kind=households&cadre=Not%20A%20User", "kind=households&limit=0", "kind=households&offset=-1",
    "kind=households&limit=abc")


def test_bad_list_parameters_are_messages_not_500s(api):
    api.login("super")
    for query in BAD_QUERIES:
        r = api.get(f"/api/v1/stats/list?{query}")
        assert r.status_code == 400, (query, r.get_json())
        assert r.get_json()["error"] == "bad_parameter" and r.get_json()["message"]
        page = api.get(f"/dashboard/list?{query.replace('limit', 'page').replace('offset', 'page')}")
        assert page.status_code == 400 and "参数" in page.get_data(as_text=True), query


def test_unknown_cadre_is_404_and_bad_page_a_message(api):
    api.login("super")
    assert api.get("/api/v1/stats/list?kind=households&cadre=nobody").status_code == 404
    assert api.get("/dashboard/list?kind=households&page=0").status_code == 400
    assert api.get("/api/v1/stats?village=v1%2F..").status_code == 400


def test_list_pages_show_words_not_codes(app, api):
    app.config["FIXED_NOW"] = "2026-05-20T02:00:00Z"
    api.login("cadre1")
    push(api, visit2("v1-0001", "2026-05-19"))
    api.login("super")
    page = api.get("/dashboard/list?kind=visits_this_month&village=v1").get_data(as_text=True)
    assert "入户走访记录" in page and "待审核" in page and "李干部" in page
    assert ">household_visit<" not in page and ">received<" not in page
    page = api.get("/dashboard/list?kind=never_visited&village=v1").get_data(as_text=True)
    assert "脱贫户" in page and "张v12" in page and ">tuopin<" not in page


# ---- landing ------------------------------------------------------------------------------------------


def test_supervisors_and_admins_land_on_the_dashboard_cadres_on_households(app, client):
    for username, landing in (("super", "/dashboard"), ("admin", "/dashboard"), ("cadre1", "/households")):
        c = app.test_client()
        token = c.get("/api/v1/csrf").get_json()["csrf_token"]
        r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 302 and r.headers["Location"].endswith(landing), username
        assert c.get("/").headers["Location"].endswith(landing)
    api = Api(app.test_client())
    r = api.login("super")
    assert r.status_code == 200 and r.get_json()["user"]["id"] == "super"  # the phone's JSON login


def test_times_on_pages_are_shown_in_the_deployment_zone(api):
    api.login("super")
    page = api.get("/households/v1-0001").get_data(as_text=True)
    assert "2026-01-01 08:00" in page  # stored as 2026-01-01T00:00:00+00:00


def test_household_page_and_edit_page_use_words_and_choices(app, api):
    api.login("cadre1")
    pv = {"uuid": new_uuid(), "form": "pv_enrollment", "form_version": 2,
          "household_id": "v1-0001", "created_at": "2026-05-01T10:00:00+08:00",
          "answers": {"interested": "yes", "consent": "yes", "roof_type": "flat_concrete",
                      "roof_area_m2": 80, "orientation": "flat", "shading": "none", "structure_ok": "yes",
                      "capacity_kw": 8, "funding_mode": "subsidised", "grid_stage": "applied",
                      "lecture_attended": "no"}}
    push(api, pv)
    page = api.get("/households/v1-0001").get_data(as_text=True)
    assert "已申请" in page and "户用光伏登记" in page and "待审核" in page
    for code in ("applied ·", "· pv_enrollment ·", "· received"):
        assert code not in page
    edit = api.get("/households/v1-0001/edit").get_data(as_text=True)
    assert '<select id="m0sex" name="members.0.sex">' in edit and '<option value="male" selected>男</option>' in edit
    assert 'list="relations"' in edit and '<datalist id="relations">' in edit and '<option value="户主">' in edit
    assert '<select id="category" name="category">' in edit
    r = api.client.post("/households/v1-0001/edit", data={
        "csrf_token": api.token, "base_version": households.get("v1-0001", get_store(app))["version"],
        "head_name": "张v11", "population": "x"})
    assert r.status_code == 400 and "家庭人口" in r.get_data(as_text=True)


def test_one_villages_ledger_progress_is_also_shown_per_group_each_number_its_list(demo_api):
    """The land ledger per group (issue 25): each figure of each group links to its list, and the
    groups add up to the village."""
    demo_api.login("zhoujian", "super-demo-2026")
    page = demo_api.get("/dashboard?village=430699101001").get_data(as_text=True)
    table = page[page.index('id="ledger-groups"'):]
    table = table[:table.index("</table>")]
    groups = {}
    for href, inner in re.findall(r'<a href="([^"]+)" data-ledger="households" data-group="[^"]*">([\d,.]+)</a>', table):
        params = dict(parse_qsl(urlsplit(html.unescape(href)).query))
        body = listed(demo_api, params.pop("kind"), **params)
        assert body["count"] == int(inner), href
        groups[params["group"]] = int(inner)
    assert len(groups) > 1
    stats = demo_api.get("/api/v1/stats?village=430699101001").get_json()["villages"][0]
    assert sum(groups.values()) == stats["ledger"]["households"]
    assert sum(g["households"] for g in stats["ledger_groups"].values()) == stats["ledger"]["households"]
