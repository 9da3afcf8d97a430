"""Review pages, attachments and thumbnails, household history with undo, and the audit page,
all through HTTP."""

import hashlib
import io
import re
import struct
import zlib

from PIL import Image

from tests.conftest import Api
from tests.helpers import household, login, new_uuid, push, review, visit, visit2


def visible_text(html):
    """What a person reads: tags, attributes and scripts left out."""
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def form_post(api, url, **fields):
    return api.client.post(url, data=dict(fields, csrf_token=api.token))


def test_queue_page_is_for_supervisors_and_admins_and_filters(app):
    cadre = login(app.test_client(), "cadre1")
    first = visit2("v1-0001", visit_date="2026-05-01")
    second = visit2("v1-0002", visit_date="2026-05-08")
    push(cadre, first, second)
    push(login(app.test_client(), "cadre2"), theirs := visit2("v2-0001", visit_date="2026-05-04"))
    assert cadre.get("/review").status_code == 403
    supervisor = login(app.test_client(), "super")
    page = supervisor.get("/review").get_data(as_text=True)
    for item in (first, second, theirs):
        assert item["uuid"] in page
    text = visible_text(page)
    assert "待审核" in text and "入户走访记录" in text and "household_visit" not in text
    only_v2 = supervisor.get("/review?village=v2").get_data(as_text=True)
    assert theirs["uuid"] in only_v2 and first["uuid"] not in only_v2
    dated = supervisor.get("/review?from=2026-05-02&to=2026-05-07").get_data(as_text=True)
    assert theirs["uuid"] in dated and first["uuid"] not in dated and second["uuid"] not in dated
    by_cadre = supervisor.get("/review?cadre=cadre2").get_data(as_text=True)
    assert theirs["uuid"] in by_cadre and first["uuid"] not in by_cadre
    assert first["uuid"] not in supervisor.get("/review?state=approved").get_data(as_text=True)
    assert first["uuid"] not in supervisor.get("/review?form=pv_enrollment").get_data(as_text=True)
    for bad in ("from=2026-02-30", "state=lost", "form=nope", "to=x"):
        r = supervisor.get(f"/review?{bad}")
        assert r.status_code == 400 and "<h1>" in r.get_data(as_text=True), bad
    assert supervisor.get("/review?village=v9").status_code == 404
    assert login(app.test_client(), "admin").get("/review").status_code == 200


def test_opened_visit_shows_labels_sections_repeats_and_the_household_change(app):
    cadre = login(app.test_client(), "cadre1")
    before = household(cadre)
    item = visit2("v1-0001", topics=["income_jobs", "schooling"], family_changes=["migrant_work"],
                  members=[{"name": "张v11", "relation": "户主", "sex": "male", "birth_year": 1970,
                            "work": "省外务工"}],
                  help_given=[{"product": "土鸡蛋", "quantity": 120, "unit": "个", "price": 1.2}],
                  location={"lat": 28.731, "lon": 113.5824, "accuracy": 9})
    item["base_version"] = before["version"]
    push(cadre, item)
    supervisor = login(app.test_client(), "super")
    r = supervisor.get(f"/review/{item['uuid']}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    text = visible_text(html)
    for words in ("走访情况", "家庭情况", "走访内容", "收入与就业、子女上学", "入户走访", "外出务工", "土鸡蛋",
                  "单价（元）", "28.731000, 113.582400", "±9 米", "待审核", "李干部",
                  "走访时的农户情况", "依据第 1 版", "务工情况 务农 → 省外务工", "家庭人口 3 → 1"):
        assert words in text, words
    for code in ("household_visit", "received", "income_jobs", "migrant_work"):
        assert code not in text, code
    assert 'src="/app/pages/review-keys.js"' in html and "<script>" not in html  # no inline script
    keys = supervisor.get("/app/pages/review-keys.js")
    assert keys.status_code == 200 and keys.mimetype == "text/javascript" and b"data-key" in keys.get_data()
    assert 'name="field.present"' in html and 'name="csrf_token"' in html
    supervisor.client.set_cookie("lang", "en")
    english = visible_text(supervisor.get(f"/review/{item['uuid']}").get_data(as_text=True))
    assert "Income and jobs" in english and "Received" in english


def test_decide_from_the_page_with_field_comments_then_next(app):
    cadre = login(app.test_client(), "cadre1")
    older = visit2("v1-0001", visit_date="2026-05-01")
    newer = visit2("v1-0002", visit_date="2026-05-09")
    push(cadre, older, newer)
    supervisor = login(app.test_client(), "super")
    detail = supervisor.get(f"/review/{newer['uuid']}").get_data(as_text=True)
    assert f'/review/{older["uuid"]}' in detail and 'accesskey="j"' in detail  # next in the queue
    # returning needs a reason
    r = form_post(supervisor, f"/review/{newer['uuid']}", state="has_issues", comment="")
    assert r.status_code == 400 and "退回修改时请写明原因" in r.get_data(as_text=True)
    r = form_post(supervisor, f"/review/{newer['uuid']}", state="has_issues", comment="",
                  **{"field.present": "请写全名", "field.notes": ""})
    assert r.status_code == 302 and r.headers["Location"].startswith(f"/review/{older['uuid']}")
    stored = cadre.get(f"/api/v1/submissions/{newer['uuid']}").get_json()["review"]
    assert stored["state"] == "has_issues" and stored["fields"] == {"present": "请写全名"}
    r = form_post(supervisor, f"/review/{older['uuid']}", state="approved", comment="好")
    assert r.status_code == 302 and r.headers["Location"].startswith("/review")
    assert cadre.get(f"/api/v1/submissions/{older['uuid']}").get_json()["review"]["state"] == "approved"
    # a comment too long and a missing token change nothing
    r = form_post(supervisor, f"/review/{older['uuid']}", state="has_issues", comment="x" * 2001)
    assert r.status_code == 400 and "2000" in r.get_data(as_text=True)
    r = supervisor.client.post(f"/review/{older['uuid']}", data={"state": "has_issues", "comment": "x"})
    assert r.status_code == 400
    assert cadre.get(f"/api/v1/submissions/{older['uuid']}").get_json()["review"]["state"] == "approved"
    assert cadre.client.post(f"/review/{older['uuid']}", data={"state": "approved",
                                                             "csrf_token": cadre.token}).status_code == 403
    with app.app_context():
        from server.records import users
        users.create("super2", "supervisor", "correct-horse-42", villages=["v2"])
    assert login(app.test_client(), "super2").get(f"/review/{older['uuid']}").status_code == 404


def tiny_png_header(width, height):
    """A PNG that claims a huge size in a few bytes (what a decompression bomb looks like)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def upload(api, sub_uuid, name, data):
    return api.put(f"/api/v1/submissions/{sub_uuid}/attachments/{name}", data=data,
                   headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest()})


def test_attachments_and_thumbnails_are_served_in_scope_only(app):
    cadre = login(app.test_client(), "cadre1")
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (30, 120, 30)).save(buf, "JPEG", quality=70)
    big = buf.getvalue()
    bomb = tiny_png_header(10_000, 5_000)
    item = visit2("v1-0001", photo_1="big.jpg", signature="sig.png")
    item["attachments"] = [{"name": "big.jpg", "sha256": hashlib.sha256(big).hexdigest(), "size": len(big), "type": "image/jpeg"},
                           {"name": "sig.png", "sha256": hashlib.sha256(bomb).hexdigest(), "size": len(bomb), "type": "image/png"}]
    push(cadre, item)
    url = f"/api/v1/submissions/{item['uuid']}/attachments"
    supervisor = login(app.test_client(), "super")
    assert supervisor.get(f"{url}/big.jpg").status_code == 404  # not arrived yet
    assert upload(cadre, item["uuid"], "big.jpg", big).status_code == 200
    assert upload(cadre, item["uuid"], "sig.png", bomb).status_code == 413  # refused by its header
    with app.app_context():  # one that reached the folder before uploads were checked
        from server.records import attachments, submissions
        from server.store import get_store
        doc = submissions.find(get_store(), item["uuid"])
        attachments.store(app.config["FILES_DIR"], doc, "sig.png", bomb, get_store())
    r = supervisor.get(f"{url}/big.jpg")
    assert r.status_code == 200 and r.data == big and r.mimetype == "image/jpeg"
    assert "private" in r.headers["Cache-Control"] and r.headers["X-Content-Type-Options"] == "nosniff"
    thumb = supervisor.get(f"{url}/big.jpg?thumb=1")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.data)).size) == 480 and len(thumb.data) < len(big)
    import os
    assert os.path.exists(os.path.join(app.config["FILES_DIR"], "thumbs", "480", item["uuid"], "big.jpg.jpg"))
    assert supervisor.get(f"{url}/big.jpg?thumb=1").data == thumb.data  # from the cache
    open(os.path.join(app.config["FILES_DIR"], "thumbs", "480", item["uuid"], "big.jpg.jpg"), "wb").close()
    assert supervisor.get(f"{url}/big.jpg?thumb=1").data == thumb.data  # an empty one (power cut) made again
    refused = supervisor.get(f"{url}/sig.png?thumb=1")
    assert refused.status_code == 413 and refused.get_json()["error"] == "image_too_large"
    assert cadre.get(f"{url}/big.jpg").status_code == 200  # the cadre fixing a returned visit
    for who in ("cadre2",):
        assert login(app.test_client(), who).get(f"{url}/big.jpg").status_code == 404
    assert supervisor.get(f"{url}/nope.jpg").status_code == 404
    assert supervisor.get(f"{url}/big.jpg?thumb=2").status_code == 400
    assert supervisor.get(f"{url}/..%2F..%2Fsecret_key").status_code in (400, 404)
    assert Api(app.test_client()).get(f"{url}/big.jpg").status_code == 401
    page = supervisor.get(f"/review/{item['uuid']}").get_data(as_text=True)
    assert f'src="{url}/big.jpg?thumb=1"' in page


def test_household_history_shows_labels_and_a_supervisor_can_undo_one_change(app):
    cadre = login(app.test_client(), "cadre1")
    original = household(cadre)
    item = visit2("v1-0001", family_changes=["birth"],
                  members=[{"name": "张v11", "relation": "户主", "sex": "male", "birth_year": 1970},
                           {"name": "张小宝", "relation": "孙子", "sex": "male", "birth_year": 2026}])
    push(cadre, item)
    changed = household(cadre)
    assert changed["population"] == 2 and changed["version"] == original["version"] + 1
    supervisor = login(app.test_client(), "super")
    page = supervisor.get("/households/v1-0001").get_data(as_text=True)
    text = visible_text(page)
    assert "修改历史" in text and "家庭成员" in text and "新增：张小宝" in text and "家庭人口" in text
    assert "走访/登记记录" in text and "submission:" not in text and "population" not in text
    entry = re.search(r'data-history="([0-9a-f]+)"', page).group(1)
    undo_url = f"/households/v1-0001/history/{entry}/undo"
    assert undo_url in page
    assert cadre.get(undo_url).status_code == 403
    assert "undo" not in re.sub(r"<script.*?</script>", "", cadre.get("/households/v1-0001").get_data(as_text=True)).lower()
    confirm = supervisor.get(undo_url)
    assert confirm.status_code == 200 and "确认撤销" in confirm.get_data(as_text=True)
    assert supervisor.client.post(undo_url, data={}).status_code == 400  # no CSRF token
    assert household(cadre)["version"] == changed["version"]
    r = form_post(supervisor, undo_url)
    assert r.status_code == 302 and r.headers["Location"].endswith("/households/v1-0001#history")
    after = household(cadre)
    assert after["version"] == changed["version"] + 1
    assert after["members"] == original["members"] and after["population"] == original["population"]
    assert "已撤销" in supervisor.get("/households/v1-0001").get_data(as_text=True)
    with app.app_context():
        from server.records import audit
        undone = [e for e in audit.entries(action="household_edit", target="v1-0001")
                  if e["details"]["source"] == f"undo:{entry}"]
    assert len(undone) == 1 and undone[0]["user"] == "super"
    assert form_post(supervisor, "/households/v1-0001/history/feedbeef/undo").status_code == 404
    with app.app_context():
        from server.records import users
        users.create("super2", "supervisor", "correct-horse-42", villages=["v2"])
    other = login(app.test_client(), "super2")
    assert other.get(undo_url).status_code == 404 and form_post(other, undo_url).status_code == 404


def test_audit_page_filters_pages_and_exports(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    items = [visit2("v1-0001"), visit2("v1-0002"), visit2("v1-0003")]
    push(cadre, *items)
    review(supervisor, items[0]["uuid"], state="approved")
    review(supervisor, items[1]["uuid"], state="has_issues", comment="=cmd|' /C calc'!A0")
    assert supervisor.get("/admin/audit").status_code == 403
    admin = login(app.test_client(), "admin")
    page = admin.get("/admin/audit").get_data(as_text=True)
    text = visible_text(page)
    assert "操作日志" in text and "审核" in text and "提交记录" in text and "赵督导" in text
    assert text.index(items[1]["uuid"]) < text.index(items[0]["uuid"])  # newest first
    reviews_only = visible_text(admin.get("/admin/audit?action=review").get_data(as_text=True))
    assert items[2]["uuid"] not in reviews_only and items[0]["uuid"] in reviews_only
    by_household = visible_text(admin.get("/admin/audit?household=v1-0002").get_data(as_text=True))
    assert items[1]["uuid"] in by_household and items[0]["uuid"] not in by_household
    by_user = visible_text(admin.get("/admin/audit?user=cadre1").get_data(as_text=True))
    assert "审核" not in by_user.split("详情", 1)[1]
    from server.core import clock
    with app.app_context():
        today = clock.today_iso()
    assert items[0]["uuid"] in admin.get(f"/admin/audit?from={today}&to={today}").get_data(as_text=True)
    assert items[0]["uuid"] not in admin.get("/admin/audit?to=2020-01-01").get_data(as_text=True)
    for bad in ("from=2026-02-31", "action=delete_everything", "page=0", "from=2026-06-01&to=2026-05-01"):
        r = admin.get(f"/admin/audit?{bad}")
        assert r.status_code == 400, bad
    assert "<form method=\"post\"" not in page.split("<main>", 1)[1].split("</main>")[0].replace(
        'action="/logout"', "")  # never editable
    csv_body = admin.get("/admin/audit.csv?action=review")
    assert csv_body.status_code == 200 and csv_body.data.startswith(b"\xef\xbb\xbf")
    import csv as csvlib
    table = list(csvlib.reader(io.StringIO(csv_body.data.decode("utf-8-sig"))))
    assert table[1][:4] == ["time", "user", "user_name", "action"] and len(table) == 4
    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(admin.get("/admin/audit.xlsx?action=review").data))
    assert len(list(book["audit"].iter_rows())) == 4


def test_every_form_and_version_opens_on_the_review_page(app):
    cadre = login(app.test_client(), "cadre1")
    pv = {"uuid": new_uuid(), "form": "pv_enrollment", "form_version": 2,
          "household_id": "v1-0002", "created_at": "2026-05-01T10:00:00+08:00",
          "answers": {"interested": "no", "lecture_attended": "no"}}
    old = visit("v1-0003", notes="第一版表单")
    assert [r["status"] for r in push(cadre, pv, old).get_json()["results"]] == ["created", "created"]
    supervisor = login(app.test_client(), "super")
    pv_page = visible_text(supervisor.get(f"/review/{pv['uuid']}").get_data(as_text=True))
    assert "户用光伏登记" in pv_page and "无意向" in pv_page and "光伏 （空） → 无意向" in pv_page
    old_page = supervisor.get(f"/review/{old['uuid']}")
    assert old_page.status_code == 200 and "第一版表单" in old_page.get_data(as_text=True)
    queue = visible_text(supervisor.get("/review?state=all").get_data(as_text=True))
    assert "户用光伏登记" in queue and "pv_enrollment" not in queue


def test_audit_details_are_words_on_the_page_and_json_in_the_export(app):
    """No raw codes on a page (issue 12): the details of an account's creation and a review read as
    labelled words; the CSV keeps them as JSON for a machine to read back."""
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    item = visit2("v1-0001")
    push(cadre, item)
    review(supervisor, item["uuid"], state="has_issues", comment="请补充")
    admin = login(app.test_client(), "admin")
    text = visible_text(admin.get("/admin/audit").get_data(as_text=True))
    assert "角色：驻村干部" in text and "状态：需修改" in text and "原状态：待审核" in text
    assert '"role"' not in text and "has_issues" not in text and '{"' not in text
    csv_text = admin.get("/admin/audit.csv").get_data(as_text=True)
    assert '""state"": ""has_issues""' in csv_text


def test_every_action_the_server_audits_has_words_for_the_audit_page(app):
    """The audit page's action column and filter show words, never a code: every action name the
    server's code records (a literal third argument of audit.record, or an `action = "..."` choice
    before it) has a label in both languages."""
    import pathlib
    from server.forms import labels
    names = set()
    for path in pathlib.Path("server").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r'audit\.record\(\s*\w+,\s*[\w"]+,\s*"([a-z_]+)"', text))
        names |= set(re.findall(r'audit\.record\(\s*\w+,\s*[\w"]+,\s*"([a-z_]+)" if', text))
        names |= {n for n in re.findall(r'action = "([a-z_]+)"', text)}
    assert {"submission", "review", "user_password", "village_create", "backup"} <= names
    missing = sorted(n for n in names if n not in labels.ACTIONS)
    assert not missing, missing
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert labels.action_label("pairing_move") == "Pairing moved"
