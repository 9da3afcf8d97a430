"""Figures a report can quote: a date range on /api/v1/stats and the dashboard (visits, consumption
help by product, month and cadre, PV kW and stage changes), the question picker, each number equal
to its list, the range read in the county's calendar (Asia/Shanghai) around midnight, bad input."""

import pytest

from server.services import figures
from tests.helpers import new_uuid, push, visit2, visit3

PV = {"interested": "yes", "consent": "yes", "roof_type": "flat_concrete", "roof_area_m2": 80,
      "orientation": "flat", "shading": "none", "structure_ok": "yes", "capacity_kw": 8,
      "funding_mode": "subsidised", "grid_stage": "installed", "lecture_attended": "no"}


def pv_item(household, created_at, **answers):
    return {"uuid": new_uuid(), "form": "pv_enrollment", "form_version": 2, "household_id": household,
            "created_at": created_at, "answers": dict(PV, **answers)}


def sent(api, *items):
    r = push(api, *items)
    assert r.status_code == 200, r.get_json()
    assert [x["status"] for x in r.get_json()["results"]] == ["created"] * len(items), r.get_json()


def listed(api, kind, **params):
    query = "&".join(f"{k}={v}" for k, v in dict(kind=kind, limit=5000, **params).items() if v is not None)
    r = api.get(f"/api/v1/stats/list?{query}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def seed_midnight(app, api):
    """Two of everything, one at 23:30 Beijing time on 31 May and one at 00:30 on 1 June: both on
    31 May in UTC."""
    app.config["FIXED_NOW"] = "2026-06-10T02:00:00Z"
    api.login("cadre1")
    may = visit2("v1-0001", "2026-05-31", created_at="2026-05-31T23:30:00+08:00",
                 help_given=[{"product": "红薯", "quantity": 100, "unit": "斤", "price": 1.5},
                             {"product": "蜂蜜", "quantity": 2, "unit": "斤", "price": 60}])
    june = visit2("v1-0002", "2026-06-01", created_at="2026-06-01T00:30:00+08:00",
                  help_given=[{"product": "蜂蜜", "quantity": 3, "unit": "斤", "price": 60}])
    pv_may = pv_item("v1-0001", "2026-05-31T23:30:00+08:00", capacity_kw=8, roof_area_m2=80)
    pv_june = pv_item("v1-0002", "2026-06-01T00:30:00+08:00", capacity_kw=6.5, roof_area_m2=50)
    sent(api, may, june, pv_may, pv_june)
    api.login("super")
    return may, june


def test_a_range_ending_at_midnight_in_shanghai_counts_the_last_day_and_not_the_next(app, api):
    may, june = seed_midnight(app, api)
    r = api.get("/api/v1/stats?from=2026-05-01&to=2026-05-31&village=v1").get_json()["range"]
    assert (r["from"], r["to"], r["preset"]) == ("2026-05-01", "2026-05-31", None)
    assert r["visits"] == 1 and r["help"]["value"] == 270 and r["help"]["submissions"] == 1
    assert [(p["product"], p["unit"], p["quantity"], p["value"]) for p in r["help"]["by_product"]] == \
        [("红薯", "斤", 100, 150), ("蜂蜜", "斤", 2, 120)]  # the largest amount first
    assert r["help"]["by_month"] == [{"month": "2026-05", "entries": 2, "value": 270}]
    assert r["help"]["channel_is"] == "cadre"
    assert [(c["id"], c["value"]) for c in r["help"]["by_channel"]] == [("cadre1", 270)]
    assert r["pv"]["installed_kw"] == 8 and r["pv"]["connected_kw"] == 0
    assert r["pv"]["change_days"] == [{"day": "2026-05-31", "stage": "installed", "changes": 1, "kw": 8}]
    # PV households and kW per stage are as of now: both households are installed
    installed = next(s for s in r["pv"]["stages"] if s["stage"] == "installed")
    assert installed == {"stage": "installed", "households": 2, "kw": 14.5}

    window = {"from": "2026-05-01", "to": "2026-05-31", "village": "v1"}
    assert [i["uuid"] for i in listed(api, "visits", **window)["items"]] == [may["uuid"]]
    assert sum(i["help_value"] for i in listed(api, "help_value", **window)["items"]) == 270
    entries = listed(api, "help_entries", **window)["items"]
    assert sorted((e["product"], e["quantity"], e["price"], e["amount"]) for e in entries) == \
        [("红薯", 100, 1.5, 150), ("蜂蜜", 2, 60, 120)]
    honey = listed(api, "help_entries", product="蜂蜜", unit="斤", **window)
    assert honey["count"] == 1 and honey["items"][0]["uuid"] == may["uuid"]
    changes = listed(api, "stage_changes", stage="installed", **window)["items"]
    assert [(c["household_id"], c["day"], c["kw"], c["from_stage"]) for c in changes] == \
        [("v1-0001", "2026-05-31", 8, None)]
    capacity = listed(api, "pv_capacity", stage="installed", village="v1")["items"]
    assert sum(h["kw"] for h in capacity) == 14.5

    june_range = api.get("/api/v1/stats?from=2026-06-01&to=2026-06-30").get_json()["range"]
    assert june_range["visits"] == 1 and june_range["help"]["value"] == 180
    assert june_range["pv"]["installed_kw"] == 6.5
    assert [d["day"] for d in june_range["pv"]["change_days"]] == ["2026-06-01"]
    assert [i["uuid"] for i in listed(api, "visits", **{"from": "2026-06-01", "to": "2026-06-30"})["items"]] \
        == [june["uuid"]]

    # The question picker reads a form without a visit date by the local day it was filled in.
    q = api.get("/api/v1/stats/question?form=pv_enrollment&field=roof_area_m2&from=2026-05-01"
                "&to=2026-05-31").get_json()
    assert q["type"] == "decimal" and q["totals"] == {"submissions": 1, "answered": 1, "sum": 80}
    assert listed(api, "answers", form="pv_enrollment", field="roof_area_m2",
                  **{"from": "2026-05-01", "to": "2026-05-31"})["count"] == 1
    q = api.get("/api/v1/stats/question?form=pv_enrollment&field=grid_stage&from=2026-06-01"
                "&to=2026-06-01&village=v1").get_json()
    assert q["villages"] == [{"id": "v1", "name": "青石村", "submissions": 1, "answered": 1,
                              "counts": {"installed": 1}}]
    assert [c["id"] for c in q["cadres"]] == ["cadre1"] and q["cadres"][0]["counts"] == {"installed": 1}
    answers = listed(api, "answers", form="pv_enrollment", field="grid_stage", value="installed",
                     village="v1", cadre="cadre1", **{"from": "2026-06-01", "to": "2026-06-01"})
    assert answers["count"] == 1 and answers["items"][0]["text"] == "已安装"


def test_a_select_multiple_and_a_decimal_are_counted_per_village_and_cadre(app, api):
    app.config["FIXED_NOW"] = "2026-06-10T02:00:00Z"
    api.login("cadre1")
    sent(api, visit2("v1-0001", "2026-06-02", topics=["income_jobs", "schooling"], income_wages=1000.5),
         visit2("v1-0002", "2026-06-03", topics=["income_jobs"], income_wages=2000))
    api.login("cadre2")
    sent(api, visit2("v2-0001", "2026-06-04", topics=["schooling"]))
    api.login("super")
    q = api.get("/api/v1/stats/question?form=household_visit&field=topics&range=this_month").get_json()
    assert q["totals"]["counts"] == {"income_jobs": 2, "schooling": 2} and q["totals"]["answered"] == 3
    by_village = {v["id"]: v["counts"] for v in q["villages"]}
    assert by_village == {"v1": {"income_jobs": 2, "schooling": 1}, "v2": {"schooling": 1}}
    assert {c["id"]: c["counts"] for c in q["cadres"]} == {"cadre1": by_village["v1"],
                                                             "cadre2": by_village["v2"]}
    for vid, counts in by_village.items():
        for choice, n in counts.items():
            assert listed(api, "answers", form="household_visit", field="topics", value=choice,
                          village=vid, range="this_month", **{"from": "2026-06-01", "to": "2026-06-10"}
                          )["count"] == n
    wages = api.get("/api/v1/stats/question?form=household_visit&field=income_wages").get_json()
    assert wages["type"] == "decimal" and wages["totals"]["sum"] == 3000.5
    assert wages["choices"] == [] and wages["from"] is None
    items = listed(api, "answers", form="household_visit", field="income_wages")["items"]
    assert sum(i["value"] for i in items) == 3000.5
    page = api.get("/dashboard?range=this_month&question=household_visit:topics").get_data(as_text=True)
    assert "按问题统计" in page and "收入与就业" in page
    assert "kind=answers" in page and "value=schooling" in page
    # A question that cannot be counted is said on the page; the rest of the page stays.
    bad = api.get("/dashboard?question=household_visit:present")
    assert bad.status_code == 200 and "文本题" in bad.get_data(as_text=True)
    assert "本期统计" in bad.get_data(as_text=True)


@pytest.mark.parametrize("query, word_zh, word_en", [
    ("from=2026-05-02&to=2026-05-01", "结束日期早于开始日期", "end date is before the start date"),
    ("from=2010-01-01&to=2020-01-01", "不能超过 10 年", "more than 10 years"),
    ("from=2026-02-30", "须为日期", "must be a date"),
    ("range=next_year", "须为", "must be one of"),
])
def test_a_bad_range_is_a_400_in_both_languages_on_the_api_and_the_page(api, query, word_zh, word_en):
    api.login("super")
    for path in ("/api/v1/stats", "/api/v1/stats/question"):
        r = api.get(f"{path}?{query}&form=household_visit&field=risk")
        assert r.status_code == 400, (path, r.get_json())
        body = r.get_json()
        assert body["error"] == "bad_parameter"
        assert word_zh in body["message_zh"] and word_en in body["message_en"]
    page = api.get(f"/dashboard?{query}")
    assert page.status_code == 400 and word_zh in page.get_data(as_text=True)


@pytest.mark.parametrize("query, status, word", [
    ("form=household_visit&field=present", 400, "文本题"),
    ("form=household_visit&field=notes", 400, "只能统计单选、多选、整数和小数题"),
    ("form=household_visit&field=product", 400, "在重复组里"),
    ("form=household_visit&field=nothing_here", 400, "没有“nothing_here”"),
    ("form=no_such_form&field=risk", 400, "没有这个表单"),
    ("form=household_visit", 400, "请选择要统计的问题"),
    ("field=risk", 400, "请选择表单"),
    ("form=household_visit&field=risk&village=v9", 404, "找不到该村"),
    ("form=household_visit&field=risk&village=../x", 400, "村编号"),
])
def test_the_question_picker_says_why_a_question_cannot_be_counted(api, query, status, word):
    api.login("super")
    r = api.get(f"/api/v1/stats/question?{query}")
    assert r.status_code == status and word in r.get_json()["message_zh"], r.get_json()
    assert r.get_json()["message_en"]


def test_another_township_village_and_cadres_are_refused(app, api):
    api.login("cadre2")
    assert api.get("/api/v1/stats/question?form=household_visit&field=risk").status_code == 403
    assert api.get("/api/v1/stats?range=this_year").status_code == 403
    api.login("super")
    ok = api.get("/api/v1/stats/question?form=household_visit&field=risk&village=v2")
    assert ok.status_code == 200


def test_presets_follow_the_shanghai_calendar(app, api):
    app.config["FIXED_NOW"] = "2026-02-28T16:30:00Z"  # 1 March 00:30 in Shanghai
    api.login("super")

    def span(query):
        r = api.get(f"/api/v1/stats?{query}").get_json()["range"]
        return r["from"], r["to"], r["preset"]
    assert span("") == ("2026-03-01", "2026-03-01", "this_month")
    assert span("range=last_month") == ("2026-02-01", "2026-02-28", "last_month")
    assert span("range=this_year") == ("2026-01-01", "2026-03-01", "this_year")
    assert span("from=2025-12-01") == ("2025-12-01", "2026-03-01", None)
    assert span("to=2026-01-20") == ("2026-01-01", "2026-01-20", None)


def test_the_dashboard_prints_as_an_a4_report_with_its_range_and_time(app, api):
    seed_midnight(app, api)
    page = api.get("/dashboard?from=2026-05-01&to=2026-05-31").get_data(as_text=True)
    assert "本期统计" in page and "2026-05-01 至 2026-05-31" in page and "数据截至" in page
    assert "消费帮扶：按产品" in page and "红薯" in page and "按购买渠道（经办干部）" in page
    assert "光伏进度变化日期" in page and "2026-05-31" in page
    assert 'href="/app/css/figures.css"' in page
    css = api.get("/app/css/figures.css").get_data(as_text=True)
    assert "@media print" in css and "A4" in css
    api.client.set_cookie("lang", "en")
    page = api.get("/dashboard?range=last_month").get_data(as_text=True)
    assert "Figures for the period" in page and "Consumption help by product" in page


def test_range_figures_come_from_summaries_kept_until_the_village_changes(app, api):
    seed_midnight(app, api)
    cache = figures.cache_of(app)
    api.get("/api/v1/stats?range=this_year")
    computed = cache.computed
    api.get("/api/v1/stats?from=2026-05-01&to=2026-05-31")
    assert cache.computed == computed  # another range, the same summaries
    api.login("cadre1")
    sent(api, visit2("v1-0003", "2026-06-05",
                     help_given=[{"product": "土鸡", "quantity": 1, "unit": "只", "price": 120}]))
    api.login("super")
    r = api.get("/api/v1/stats?range=this_month").get_json()["range"]
    assert cache.computed == computed + 1  # v1 again; v2 unchanged
    assert "土鸡" in [p["product"] for p in r["help"]["by_product"]]


# ---- help by buyer channel (household_visit version 3) ------------------------------------------

MAY = {"from": "2026-05-01", "to": "2026-05-31"}


def seed_channels(app, api):
    """May: a version-2 visit (no channel) in v1, a version-3 visit in v1 with two channels and one
    entry naming none, and in v2 only a version-2 visit (so one village alone would have no
    channel). June: version 2 only."""
    app.config["FIXED_NOW"] = "2026-06-10T02:00:00Z"
    api.login("cadre1")
    old = visit2("v1-0001", "2026-05-03",
                 help_given=[{"product": "红薯", "quantity": 100, "unit": "斤", "price": 1.5}])
    new = visit3("v1-0002", "2026-05-20",
                 help_given=[{"product": "蜂蜜", "quantity": 5, "unit": "斤", "price": 60, "channel": "canteen"},
                             {"product": "土鸡蛋", "quantity": 30, "unit": "枚", "price": 1.2, "channel": "staff"},
                             {"product": "红薯", "quantity": 20, "unit": "斤", "price": 1.5},
                             {"product": "蜂蜜", "quantity": 1, "unit": "斤", "price": 60, "channel": "canteen"}])
    june = visit2("v1-0003", "2026-06-02",
                  help_given=[{"product": "土鸡", "quantity": 1, "unit": "只", "price": 120}])
    sent(api, old, new, june)
    api.login("cadre2")
    sent(api, visit2("v2-0001", "2026-05-10",
                     help_given=[{"product": "茶叶", "quantity": 2, "unit": "斤", "price": 80}]))
    api.login("super")
    return old, new


def test_help_by_buyer_channel_adds_up_with_old_and_new_visits_and_each_row_is_its_list(app, api):
    old, new = seed_channels(app, api)
    r = api.get("/api/v1/stats?from=2026-05-01&to=2026-05-31").get_json()["range"]
    help_ = r["help"]
    assert help_["value"] == 150 + 300 + 36 + 30 + 60 + 160 and help_["entries"] == 6
    assert help_["channel_is"] == "channel"
    rows = help_["by_channel"]
    # every row a channel (never a cadre), the largest first, the entries naming none last
    assert [(c["kind"], c["id"], c["name"], c["entries"], c["value"]) for c in rows] == [
        ("channel", "canteen", "单位食堂采购", 2, 360),
        ("channel", "staff", "干部职工个人购买", 1, 36),
        ("channel", "-", "未填渠道", 3, 150 + 30 + 160)]
    assert sum(c["value"] for c in rows) == help_["value"]
    assert sum(c["entries"] for c in rows) == help_["entries"]
    for c in rows:
        found = listed(api, "help_entries", channel=c["id"], **MAY)
        assert found["count"] == c["entries"], c
        assert round(sum(i["amount"] for i in found["items"]), 2) == c["value"], c
    canteen = listed(api, "help_entries", channel="canteen", **MAY)["items"]
    assert {(i["uuid"], i["index"], i["channel"], i["channel_text"]) for i in canteen} == \
        {(new["uuid"], 1, "canteen", "单位食堂采购"), (new["uuid"], 4, "canteen", "单位食堂采购")}
    unnamed = listed(api, "help_entries", channel="-", **MAY)["items"]
    assert sorted((i["uuid"], i["index"]) for i in unnamed) == sorted(
        [(old["uuid"], 1), (new["uuid"], 3)] + [(i["uuid"], 1) for i in unnamed if i["village_id"] == "v2"])
    assert all(i["channel"] is None and i["channel_text"] == "" for i in unnamed)
    # one village alone: v2 has no channel in May, so its table is by cadre
    v2 = api.get("/api/v1/stats?from=2026-05-01&to=2026-05-31&village=v2").get_json()["range"]["help"]
    assert v2["channel_is"] == "cadre" and [(c["kind"], c["id"], c["value"]) for c in v2["by_channel"]] == \
        [("cadre", "cadre2", 160)]
    # the labels follow the page's language; the ids do not
    api.client.set_cookie("lang", "en")
    en = api.get("/api/v1/stats?from=2026-05-01&to=2026-05-31").get_json()["range"]["help"]["by_channel"]
    assert [(c["id"], c["name"]) for c in en] == [("canteen", "Work-unit canteen"),
                                                  ("staff", "Bought by staff members"), ("-", "Not recorded")]


def test_a_range_without_any_channel_keeps_the_table_by_cadre(app, api):
    seed_channels(app, api)
    june = api.get("/api/v1/stats?from=2026-06-01&to=2026-06-30").get_json()["range"]["help"]
    assert june["channel_is"] == "cadre"
    assert [(c["kind"], c["id"], c["name"], c["entries"], c["value"]) for c in june["by_channel"]] == \
        [("cadre", "cadre1", "李干部", 1, 120)]
    found = listed(api, "help_entries", cadre="cadre1", **{"from": "2026-06-01", "to": "2026-06-30"})
    assert found["count"] == 1 and sum(i["amount"] for i in found["items"]) == 120
    page = api.get("/dashboard?from=2026-06-01&to=2026-06-30").get_data(as_text=True)
    assert "按购买渠道（经办干部）" in page and "未填渠道" not in page


def test_the_dashboard_links_every_channel_figure_to_its_list(app, api):
    seed_channels(app, api)
    page = api.get("/dashboard?from=2026-05-01&to=2026-05-31").get_data(as_text=True)
    table = page.split("按购买渠道", 1)[1].split("</table>", 1)[0]
    assert "（经办干部）" not in table[:20] and "李干部" not in table and "王干部" not in table
    assert "单位食堂采购" in table and "干部职工个人购买" in table and "未填渠道" in table
    for cid in ("canteen", "staff", "-"):
        assert table.count(f"kind=help_entries&amp;from=2026-05-01&amp;to=2026-05-31&amp;channel={cid}\"") == 2
    listing = api.get("/dashboard/list?kind=help_entries&from=2026-05-01&to=2026-05-31&channel=-")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert "未填渠道" in text and "红薯" in text and "蜂蜜" not in text
    text = api.get("/dashboard/list?kind=help_entries&from=2026-05-01&to=2026-05-31&channel=staff")\
        .get_data(as_text=True)
    assert "干部职工个人购买" in text and "土鸡蛋" in text
    api.client.set_cookie("lang", "en")
    page = api.get("/dashboard?from=2026-05-01&to=2026-05-31").get_data(as_text=True)
    assert "By buyer channel</h3>" in page and "Work-unit canteen" in page and "Not recorded" in page


@pytest.mark.parametrize("channel, status", [
    ("nonsense", 200), ("canteen%20x", 200), ("--", 200), ("%E5%8D%95%E4%BD%8D", 200),
    ("x" * 65, 400), ("a%01b", 400), ("a%0Ab", 400)])
def test_a_bad_channel_is_an_empty_list_or_a_400_never_a_500(app, api, channel, status):
    seed_channels(app, api)
    for path in ("/api/v1/stats/list", "/dashboard/list"):
        r = api.get(f"{path}?kind=help_entries&channel={channel}")
        assert r.status_code == status, (path, r.status_code)
        if path.startswith("/api") and status == 200:
            assert r.get_json()["count"] == 0
        if status == 400 and path.startswith("/api"):
            body = r.get_json()
            assert "channel" in body["message_zh"] + body["message_en"], body
