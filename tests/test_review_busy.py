"""Review for a busy supervisor: the filtered queue approved at once (with its count and a
confirmation), a correction shown against the visit it corrects, comments on one row of a repeat."""

import re

from tests.helpers import login, push, review, visit2


def form_post(api, url, **fields):
    return api.client.post(url, data=dict(fields, csrf_token=api.token))


def state_of(api, sub_uuid):
    return api.get(f"/api/v1/submissions/{sub_uuid}").get_json()["review"]["state"]


def confirm_page(supervisor, **filters):
    r = form_post(supervisor, "/review/approve-all", **filters)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    mark = re.search(r'name="mark" value="([0-9a-f]+)"', html).group(1)
    return html, mark


def test_the_filtered_queue_is_approved_at_once_after_a_confirmation_with_its_count(app):
    cadre = login(app.test_client(), "cadre1")
    items = [visit2(f"v1-000{i}", visit_date=f"2026-05-0{i}") for i in (1, 2, 3)]
    push(cadre, *items)
    other = visit2("v2-0001", visit_date="2026-05-04")
    push(login(app.test_client(), "cadre2"), other)
    supervisor = login(app.test_client(), "super")
    queue = supervisor.get("/review?village=v1").get_data(as_text=True)
    assert 'data-action="approve-all"' in queue and "全部通过（3 条）" in queue

    html, mark = confirm_page(supervisor, village="v1", state="received")
    assert "全部 3 条" in html and all(state_of(cadre, i["uuid"]) == "received" for i in items)
    r = form_post(supervisor, "/review/approve-all", village="v1", state="received", mark=mark, confirm="1")
    assert r.status_code == 303
    assert all(state_of(cadre, i["uuid"]) == "approved" for i in items)
    assert state_of(supervisor, other["uuid"]) == "received"  # another village: not in the filter
    audit = login(app.test_client(), "admin").get("/admin/audit.csv?action=review")
    assert sum(i["uuid"] in audit.get_data(as_text=True) for i in items) == 3


def test_a_queue_that_changed_while_confirming_approves_nothing(app):
    cadre = login(app.test_client(), "cadre1")
    first = visit2("v1-0001", visit_date="2026-05-01")
    push(cadre, first)
    supervisor = login(app.test_client(), "super")
    _, mark = confirm_page(supervisor, state="received")
    late = visit2("v1-0002", visit_date="2026-05-02")
    push(cadre, late)
    r = form_post(supervisor, "/review/approve-all", state="received", mark=mark, confirm="1")
    assert r.status_code == 303
    assert state_of(cadre, first["uuid"]) == "received" and state_of(cadre, late["uuid"]) == "received"
    assert "列表在确认期间有变化" in supervisor.get("/review").get_data(as_text=True)


def test_bulk_approval_is_for_reviewers_and_waiting_submissions_only(app):
    cadre = login(app.test_client(), "cadre1")
    push(cadre, item := visit2("v1-0001", visit_date="2026-05-01"))
    assert form_post(cadre, "/review/approve-all", state="received").status_code == 403
    supervisor = login(app.test_client(), "super")
    r = form_post(supervisor, "/review/approve-all", state="approved", confirm="1", mark="x")
    assert r.status_code == 302 and state_of(cadre, item["uuid"]) == "received"
    assert form_post(supervisor, "/review/approve-all", state="lost").status_code == 400
    assert form_post(supervisor, "/review/approve-all", village="v9").status_code == 404


def test_a_correction_is_shown_as_what_it_changed_against_the_visit_it_corrects(app):
    cadre = login(app.test_client(), "cadre1")
    first = visit2("v1-0001", visit_date="2026-05-01", notes="第一次",
                   help_given=[{"product": "红薯", "quantity": 50, "unit": "斤", "price": 1.5}])
    push(cadre, first)
    supervisor = login(app.test_client(), "super")
    assert review(supervisor, first["uuid"], state="has_issues", comment="数量不对").status_code == 200
    fix = visit2("v1-0001", visit_date="2026-05-01", notes="第一次",
                 help_given=[{"product": "红薯", "quantity": 80, "unit": "斤", "price": 1.5}])
    fix["supersedes"] = first["uuid"]
    assert push(cadre, fix).get_json()["results"][0]["status"] == "created"
    html = supervisor.get(f"/review/{fix['uuid']}").get_data(as_text=True)
    diff = html[html.index("本次更正改了什么"):html.index('class="review-form"')]
    assert 'data-changed="help_given"' in diff and "50" in diff and "80" in diff
    assert 'data-changed="notes"' not in diff  # unchanged answers are left out
    assert "本次更正改了什么" not in supervisor.get(f"/review/{first['uuid']}").get_data(as_text=True)


def test_a_comment_on_one_row_of_a_repeat_from_the_web_reaches_the_phone(app):
    cadre = login(app.test_client(), "cadre1")
    item = visit2("v1-0001", visit_date="2026-05-01",
                  help_given=[{"product": "红薯", "quantity": 50, "unit": "斤", "price": 1.5},
                              {"product": "蜂蜜", "quantity": 2, "unit": "斤", "price": 60}])
    push(cadre, item)
    supervisor = login(app.test_client(), "super")
    page = supervisor.get(f"/review/{item['uuid']}").get_data(as_text=True)
    assert 'name="field.help_given.1.price"' in page
    r = form_post(supervisor, f"/review/{item['uuid']}", state="has_issues",
                  **{"field.help_given.1.price": "蜂蜜单价请核实"})
    assert r.status_code == 302
    got = cadre.get(f"/api/v1/submissions/{item['uuid']}").get_json()["review"]
    assert got["state"] == "has_issues" and got["fields"] == {"help_given.1.price": "蜂蜜单价请核实"}
    shown = supervisor.get(f"/review/{item['uuid']}").get_data(as_text=True)
    assert "蜂蜜单价请核实" in shown
    bad = form_post(supervisor, f"/review/{item['uuid']}", state="has_issues",
                    **{"field.help_given.9.price": "没有第 10 条"})
    assert bad.status_code == 400
