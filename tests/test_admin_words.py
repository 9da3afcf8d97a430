"""Admin pages in words: the audit log says what happened without raw keys or empty "key:" pairs,
and every admin page carries the admin navigation."""

import re

import pytest

from tests.helpers import login, push, visit2

RAW_KEYS = ("source", "submission", "supersedes", "clash", "household_id", "from_state", "sha256",
            "previous", "fields", "form_version")


def details_cells(html):
    return [re.sub(r"<[^>]+>", "", m) for m in re.findall(r'<span class="details-text">(.*?)</span>', html, re.S)]


def test_the_audit_log_reads_in_words_for_every_kind_of_entry(app):
    cadre = login(app.test_client(), "cadre1")
    h = cadre.get("/api/v1/households/v1-0001").get_json()
    assert cadre.put("/api/v1/households/v1-0001", json={"base_version": h["version"],
                                                         "changes": {"phone": "13900139000"}}).status_code == 200
    push(cadre, visit2("v1-0001", visit_date="2026-05-01"))
    admin = login(app.test_client(), "admin")
    admin.client.post("/admin/users/cadre2", data={"action": "deactivate", "csrf_token": admin.token})
    html = admin.get("/admin/audit").get_data(as_text=True)
    cells = details_cells(html)
    assert cells, html
    for text in cells:
        for key in RAW_KEYS:
            assert not re.search(rf"(^|[；;]\s*){key}\s*[:：]", text), (key, text)
        assert not re.search(r"[:：]\s*([；;]|$)", text), text  # no "key:" with nothing after it
    assert any("来源：手机修改" in t for t in cells)
    assert any("字段：电话" in t for t in cells)


@pytest.mark.parametrize("path", ["/admin/users", "/admin/users/cadre1", "/admin/roster", "/admin/audit",
                                  "/admin/villages", "/admin/forms", "/admin/backup", "/admin/pairing"])
def test_every_admin_page_has_the_admin_navigation(app, path):
    admin = login(app.test_client(), "admin")
    html = admin.get(path).get_data(as_text=True)
    nav = re.search(r'<nav class="subnav".*?</nav>', html, re.S)
    assert nav, path
    assert nav.group(0).count("<a ") == 7
