"""Confirmation from afar: a link's whole life through the HTTP API and the no-login page, and the
admin page's preview -> confirm, and the ledger PDFs read back as text."""

import base64
import io
import re
import subprocess

import pytest
from PIL import Image

from server.core import idcard
from server.records import audit, households
from server.services import ledger
from server.store import get_store
from tests import ledger_files as lf

FIXED = "2026-06-01T02:00:00+00:00"


@pytest.fixture
def imported(app):
    with app.app_context():
        report, _ = ledger.run("v1", [("l.xlsx", lf.three_sheets())], actor="admin", store=get_store(),
                               confirm=True)
    assert report["errors"] == []
    return app


def make_link(api, hid="v1-0011", **body):
    r = api.post(f"/api/v1/households/{hid}/ledger/link", body)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def path_of(url):
    return re.sub(r"^https?://[^/]+", "", url)


def signature_png():
    im = Image.new("RGBA", (200, 80), (255, 255, 255, 0))
    for x in range(20, 180):
        im.putpixel((x, 40 + (x % 7)), (0, 0, 0, 255))
    out = io.BytesIO()
    im.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def household(app, hid="v1-0011"):
    with app.app_context():
        return households.get(hid, get_store())


def test_link_whole_life(imported, api, client):
    app = imported
    api.login("cadre1")
    link = make_link(api)
    assert set(link) == {"url", "code", "expires_at"} and len(link["code"]) == 8
    token = link["url"].rsplit("/", 1)[1]
    assert len(base64.urlsafe_b64decode(token + "==")) * 8 >= 128
    path = path_of(link["url"])
    anon = app.test_client()
    page = anon.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "大塘坵" in html and "陈家田" in html and link["code"] in html
    assert "长坵" not in html and "陈老四" not in html and "青石村" not in html  # nothing of others
    assert "<script>" not in html and 'src="/c/remote.js"' in html
    size = len(page.data) + len(anon.get("/c/remote.js").data) + len(anon.get("/c/remote.css").data)
    assert size <= 50 * 1024
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    # the token's household only: the same token under another household's id is unknown
    assert anon.get(path.replace("v1-0011", "v1-0012")).status_code == 404
    assert anon.get("/c/v1-0011/" + "A" * 32).status_code == 404
    # confirm with a finger signature
    r = anon.post(path, data={"decision": "confirm", "name": "王大山", "objection": "",
                              "signature": signature_png()})
    assert r.status_code == 200 and "已确认" in r.get_data(as_text=True)
    h = household(app)
    assert h["ledger"]["state"] == "confirmed_remote" and h["ledger"]["confirmed_by"] == "王大山"
    assert len(h["ledger"]["signature"]) == 64
    # used once: the same link again is refused with the plain page
    again = anon.get(path)
    assert again.status_code == 410 and "链接无效或已过期" in again.get_data(as_text=True)
    assert "大塘坵" not in again.get_data(as_text=True)
    assert anon.post(path, data={"decision": "confirm", "name": "x"}).status_code == 410
    with app.app_context():
        uses = audit.entries(get_store(), action="ledger_link_use")
    assert uses and uses[0]["details"]["address"] and uses[0]["time"]
    # the signed sheet carries the captured signature and the name
    pdf = api.get("/households/v1-0011/ledger.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = pdftotext(pdf.data)
    assert "承包地块确认书" in text and "王大山" in text and "远程确认" in text


def test_object_revoke_and_expiry(imported, api):
    app = imported
    api.login("super")
    anon = app.test_client()
    path = path_of(make_link(api, "v1-0012")["url"])
    r = anon.post(path, data={"decision": "object", "name": "陈春燕", "objection": "茶山北至应为山脊"})
    assert r.status_code == 200
    assert household(app, "v1-0012")["ledger"]["state"] == "objected"
    assert household(app, "v1-0012")["ledger"]["objection"] == "茶山北至应为山脊"
    # revoked through the link route
    path = path_of(make_link(api, "v1-0012")["url"])
    r = api.client.delete(path, headers={"X-CSRFToken": api.token})
    assert r.status_code == 200 and r.get_json() == {"revoked": 1}
    assert anon.get(path).status_code == 410
    # revoked through the household route
    path = path_of(make_link(api, "v1-0012")["url"])
    r = api.client.delete("/api/v1/households/v1-0012/ledger/link", headers={"X-CSRFToken": api.token})
    assert r.get_json() == {"revoked": 1} and anon.get(path).status_code == 410
    # expired: the clock moves past the link's 1 day
    path = path_of(make_link(api, "v1-0012", days=1)["url"])
    assert anon.get(path).status_code == 200
    app.config["FIXED_NOW"] = "2099-01-01T00:00:00+00:00"
    try:
        gone = anon.get(path)
    finally:
        app.config.pop("FIXED_NOW")
    assert gone.status_code == 410 and "链接无效或已过期" in gone.get_data(as_text=True)


def test_link_from_the_household_page(imported, api):
    api.login("cadre1")
    page = api.get("/households/v1-0011").get_data(as_text=True)
    assert 'data-action="ledger-link"' in page
    r = api.client.post("/households/v1-0011/ledger-link", data={"csrf_token": api.token})
    assert r.status_code == 200
    url = re.search(r'id="link-url" readonly value="([^"]+)"', r.get_data(as_text=True)).group(1)
    assert imported.test_client().get(path_of(url)).status_code == 200
    assert api.client.post("/households/v2-0001/ledger-link", data={"csrf_token": api.token}).status_code == 404


def test_link_scope_and_bad_input(imported, api):
    app = imported
    api.login("cadre2")  # village v2 only
    assert api.post("/api/v1/households/v1-0011/ledger/link", {}).status_code == 404
    api.client.post("/logout", headers={"X-CSRFToken": api.token})
    api.token = None
    api.login("cadre1")
    assert api.post("/api/v1/households/v1-0011/ledger/link", {"days": 0}).status_code == 400
    path = path_of(make_link(api)["url"])
    anon = app.test_client()
    assert anon.post(path, data={"decision": "maybe", "name": "x"}).status_code == 400
    assert anon.post(path, data={"decision": "object", "name": "x", "objection": ""}).status_code == 400
    assert anon.post(path, data={"decision": "confirm", "name": "x",
                                 "signature": "data:image/png;base64,AAAA"}).status_code == 400
    assert household(app).get("ledger") is None  # nothing changed by the refusals
    assert anon.get(path).status_code == 200      # and the link still works


def test_link_rate_limited(imported, api):
    app = imported
    app.config["LEDGER_LINK_RATE"] = 3
    app.extensions.pop("jiedui_link_limit", None)
    anon = app.test_client()
    codes = [anon.get("/c/v1-0011/" + "B" * 32).status_code for _ in range(5)]
    assert codes == [404, 404, 404, 429, 429]


def pdftotext(data):
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode()


def test_notice_and_sheets_pdfs(imported, api):
    api.login("super")
    r = api.get("/villages/v1/ledger-notice.pdf")
    assert r.status_code == 200
    text = pdftotext(r.data)
    assert "公示表" in text and "村民委员会" in text
    for code in ("4306260102001", "4306260102002", "4306260103001", "4306260103002"):
        assert code in text
    assert "河堤" in text and "2.35" in text
    dated = pdftotext(api.get("/villages/v1/ledger-notice.pdf?start=2026-06-01&days=10").data)
    assert "2026-06-01" in dated and "2026-06-10" in dated and "10 天" in dated
    assert api.get("/villages/v1/ledger-notice.pdf?start=2026-13-45").status_code == 200
    grouped = pdftotext(api.get("/villages/v1/ledger-notice.pdf?group=3组").data)
    assert "4306260103001" in grouped and "4306260102001" not in grouped
    sheets = api.get("/villages/v1/ledger-sheets.pdf")
    text = pdftotext(sheets.data)
    assert text.count("承包地块确认书") >= 2 and "手印" in text and "HT-011" in text
    # the head's ID number masked for a supervisor, whole for an admin
    assert idcard.mask(lf.IDS["王大山"]) in text and lf.IDS["王大山"] not in text
    assert api.get("/villages/v2/ledger-notice.pdf").status_code == 200
    api.client.post("/logout", headers={"X-CSRFToken": api.token})
    api.token = None
    api.login("admin")
    text = pdftotext(api.get("/households/v1-0011/ledger.pdf").data)
    assert lf.IDS["王大山"] in text


def test_admin_page_preview_then_confirm(app, api):
    api.login("super")
    page = api.get("/admin/ledger")
    assert page.status_code == 200 and "template.xlsx" in page.get_data(as_text=True)
    tpl = api.get("/admin/ledger/template.xlsx")
    with app.app_context():
        report, _ = ledger.run("v1", [("t.xlsx", tpl.data)], actor="x", store=get_store())
    assert report["errors"] == [] and sum(report["plots"].values()) == 1 and sum(report["members"].values()) == 1
    r = api.client.post("/admin/ledger", data={"csrf_token": api.token, "village": "v1",
                                               "file": (io.BytesIO(lf.three_sheets()), "l.xlsx")},
                        content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "预览" in html and 'id="ledger-changes"' in html
    assert lf.IDS["王大山"] not in html and idcard.mask(lf.IDS["王大山"]) in html
    assert household(app, "v1-0011") is None
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    r = api.client.post("/admin/ledger/confirm", data={"csrf_token": api.token, "token": token})
    assert r.status_code == 200 and 'id="ledger-done"' in r.get_data(as_text=True)
    assert household(app, "v1-0011")["head_name"] == "王大山"
    # the token is spent; a stranger's token never works
    assert api.client.post("/admin/ledger/confirm", data={"csrf_token": api.token, "token": token}).status_code == 400
    # an upload with errors: the table names them, nothing written
    hh, members, plots = [list(r) for r in lf.HOUSEHOLDS], [list(r) for r in lf.MEMBERS], [list(r) for r in lf.PLOTS]
    plots[1][3] = -1
    r = api.client.post("/admin/ledger", data={"csrf_token": api.token, "village": "v1",
                                               "file": (io.BytesIO(lf.three_sheets(hh, members, plots)), "l.xlsx")},
                        content_type="multipart/form-data")
    assert r.status_code == 400 and 'id="ledger-errors"' in r.get_data(as_text=True)
    assert 'name="token" value=""' in r.get_data(as_text=True)
    # cadres may not import
    api.client.post("/logout", headers={"X-CSRFToken": api.token})
    api.token = None
    api.login("cadre1")
    assert api.get("/admin/ledger").status_code == 403
