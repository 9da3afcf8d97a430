"""The ledger's progress in /api/v1/stats: the contract's keys, each number equal to its list, and
states changed like any attribute through PUT /api/v1/households/<id>."""

import re
import html

from server.services import ledger
from server.store import get_store
from tests import ledger_files as lf

FIGURES = {"households", "plots", "area_mu", "boundaries_confirmed", "publicised", "objections_open",
           "signed", "away", "confirmed_remote", "not_started"}


def put_ledger(api, hid, ledger_value):
    h = api.get(f"/api/v1/households/{hid}").get_json()
    return api.put(f"/api/v1/households/{hid}", json={"base_version": h["version"],
                                                      "changes": {"ledger": ledger_value}})


def test_ledger_states_and_stats_equal_their_lists(app, api):
    with app.app_context():
        assert ledger.run("v1", [("l.xlsx", lf.three_sheets())], actor="admin", store=get_store(),
                          confirm=True)[0]["errors"] == []
    api.login("super")
    r = put_ledger(api, "v1-0011", {"state": "signed", "consultants": ["刘长老", "陈长老", "王长老"],
                                    "signed_on": "2026-05-02"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["household"]["ledger"]["consultants"] == ["刘长老", "陈长老", "王长老"]
    assert put_ledger(api, "v1-0012", {"state": "away", "away_at": "浙江宁波"}).status_code == 200
    assert put_ledger(api, "v1-0001", {"state": "objected", "objection": "北至有误"}).status_code == 200
    # bad ledger values are refused, nothing changed
    for bad in ({"state": "done"}, {"state": "signed", "signed_on": "yesterday"},
                {"state": "signed", "extra": 1}, {"state": "signed", "consultants": 5}):
        r = put_ledger(api, "v1-0002", bad)
        assert r.status_code == 400, bad
    history = api.get("/households/v1-0011").get_data(as_text=True)
    assert "已签字" in history
    stats = api.get("/api/v1/stats?village=v1").get_json()
    lg = stats["villages"][0]["ledger"]
    assert set(lg) == FIGURES
    # v1's 3 seeded households have one plot each; the import adds 2 households and 4 plots
    assert lg["households"] == 5 and lg["plots"] == 7
    assert lg["area_mu"] == round(1.5 * 3 + 1.2 + 0.6 + 2.35 + 3, 4)
    assert (lg["signed"], lg["away"], lg["objections_open"], lg["not_started"]) == (1, 1, 1, 2)
    for figure, n in lg.items():
        kind = "ledger_plots" if figure == "area_mu" else f"ledger_{figure}"
        body = api.get(f"/api/v1/stats/list?kind={kind}&village=v1&limit=5000").get_json()
        if figure == "area_mu":
            assert round(sum(i["area_mu"] for i in body["items"]), 4) == n
        else:
            assert body["count"] == n, figure
    page = api.get("/dashboard?village=v1").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]+)" data-ledger="([a-z_]+)" data-village="v1">([\d.]+)</a>', page)
    assert {f for _h, f, _n in links} == FIGURES
    for href, figure, number in links:
        assert float(number) == lg[figure]
        assert api.get(html.unescape(href)).status_code == 200


def test_households_export_carries_the_register_and_masks_ids(app, api):
    import io
    from openpyxl import load_workbook
    with app.app_context():
        ledger.run("v1", [("l.xlsx", lf.three_sheets())], actor="admin", store=get_store(), confirm=True)
    api.login("super")
    put_ledger(api, "v1-0011", {"state": "signed", "consultants": ["刘长老", "陈长老"], "signed_on": "2026-05-02"})

    def book(url):
        r = api.get(url)
        assert r.status_code == 200
        wb = load_workbook(io.BytesIO(r.data), read_only=True)
        return {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in wb.worksheets}

    sheets = book("/exports/households.xlsx?village=v1")
    names = sheets["households"][1]
    row = next(r for r in sheets["households"] if r[0] == "v1-0011")
    cell = dict(zip(names, row))
    assert cell["ledger_state"] == "已签字" and cell["signed_on"] == "2026-05-02"
    assert cell["consultants"] == "刘长老、陈长老" and cell["plot_codes"] == "4306260102001、4306260102002"
    members = sheets["members"]
    cards = [dict(zip(members[1], r))["id_card"] for r in members[2:] if r[0] == "v1-0011"]
    assert cards[0] == "4306**********" + lf.IDS["王大山"][-4:]
    plots = sheets["plots"]
    assert "code" in plots[1], plots[1]
    assert any(dict(zip(plots[1], r)).get("code") == "4306260103001" for r in plots[2:]), plots
    assert api.get("/exports/households.xlsx?village=v1&ids=full").status_code == 403
    api.client.post("/logout", headers={"X-CSRFToken": api.token})
    api.token = None
    api.login("admin")
    masked = book("/exports/households.xlsx?village=v1")["members"]
    assert lf.IDS["王大山"] not in [c for r in masked for c in r]
    full = book("/exports/households.xlsx?village=v1&ids=full")["members"]
    assert lf.IDS["王大山"] in [c for r in full for c in r]
    from server.records import audit
    with app.app_context():
        assert audit.entries(get_store(), action="export_full_ids")


def test_phone_records_the_ledger_through_the_land_ledger_form(app, api):
    """The phone's side: a land_ledger submission (offline, synced like visits) sets the household's
    ledger through the form's declared effect, merged into what it had."""
    api.login("cadre1")
    boot = api.get("/api/v1/bootstrap").get_json()
    assert "land_ledger" in {f["id"] for f in boot["forms"]}
    h = api.get("/api/v1/households/v1-0001").get_json()

    def push(uuid, answers):
        item = {"uuid": uuid, "form": "land_ledger", "form_version": 1, "household_id": "v1-0001",
                "created_at": "2026-05-20T10:00:00+08:00", "answers": answers, "base_version": h["version"]}
        r = api.post("/api/v1/submissions", {"submissions": [item]})
        assert r.status_code == 200
        return r.get_json()["results"][0]

    result = push("0b7f6c1e-1111-4a5b-8c6d-7e8f9a0b1c2d",
                  {"state": "boundaries_confirmed", "consultants": "刘长老、陈长老，王长老",
                   "boundaries_confirmed_on": "2026-05-19"})
    assert result["status"] == "created", result
    ledger_now = api.get("/api/v1/households/v1-0001").get_json()["ledger"]
    assert ledger_now["state"] == "boundaries_confirmed"
    assert ledger_now["consultants"] == ["刘长老", "陈长老", "王长老"]
    assert push("0b7f6c1e-2222-4a5b-8c6d-7e8f9a0b1c2d",
                {"state": "away", "away_at": "广东东莞，微信联系"})["status"] == "created"
    ledger_now = api.get("/api/v1/households/v1-0001").get_json()["ledger"]
    assert ledger_now["state"] == "away" and ledger_now["away_at"] == "广东东莞，微信联系"
    # a required answer missing: refused like any form
    assert push("0b7f6c1e-3333-4a5b-8c6d-7e8f9a0b1c2d", {"state": "signed"})["status"] == "rejected"
