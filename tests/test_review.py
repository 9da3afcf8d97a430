"""Review round trip through the API: push, return with comments, the phone's pull, a correction
that names the visit it replaces, approval; scope, roles, bad input, concurrent decisions."""

import threading

from tests.conftest import Api
from tests.helpers import household, login, new_uuid, push, review, visit, visit2


def pull_own(api, since=0):
    """What a phone does after a sync: its own submissions changed since the cursor."""
    seen, cursor = {}, since
    while True:
        body = api.get(f"/api/v1/submissions?since={cursor}&limit=50").get_json()
        if not body["submissions"]:
            return seen, cursor
        for s in body["submissions"]:
            seen[s["uuid"]] = s
        cursor = body["next"]


def test_round_trip_push_return_pull_correct_approve(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    first = visit(visit_date="2026-05-01", present="户主", notes="第一次")
    assert push(cadre, first).get_json()["results"][0]["status"] == "created"
    _, cursor = pull_own(cadre)

    queue = supervisor.get("/api/v1/review?state=received").get_json()
    assert [s["uuid"] for s in queue["submissions"]] == [first["uuid"]]

    r = review(supervisor, first["uuid"], state="has_issues", comment="请补充在场人员",
               fields={"present": "写全名", "visit_type": "确认方式"})
    assert r.status_code == 200, r.get_json()
    returned = r.get_json()
    assert returned["state"] == "has_issues" and returned["comment"] == "请补充在场人员"
    assert returned["fields"] == {"present": "写全名", "visit_type": "确认方式"}
    assert returned["by"] == "super" and returned["at"]
    assert [h["state"] for h in returned["history"]] == ["has_issues"]

    # The phone learns the decision from its pull, with the comments on the answers they name.
    changed, cursor = pull_own(cadre, cursor)
    assert changed[first["uuid"]]["review"]["state"] == "has_issues"
    assert changed[first["uuid"]]["review"]["fields"]["present"] == "写全名"
    assert api_queue(supervisor, "has_issues") == [first["uuid"]]

    fixed = visit(visit_date="2026-05-01", present="张三、李四", notes="已补充")
    fixed["supersedes"] = first["uuid"]
    result = push(cadre, fixed).get_json()["results"][0]
    assert result["status"] == "created", result
    changed, cursor = pull_own(cadre, cursor)
    assert changed[first["uuid"]]["superseded_by"] == fixed["uuid"]
    assert changed[fixed["uuid"]]["review"]["state"] == "received"
    assert changed[fixed["uuid"]]["supersedes"] == first["uuid"]

    # The original left the queue; the correction is in it.
    assert api_queue(supervisor, "received") == [fixed["uuid"]]
    assert api_queue(supervisor, "has_issues") == []
    assert review(supervisor, first["uuid"], state="approved").status_code == 409

    r = review(supervisor, fixed["uuid"], state="approved", comment="")
    assert r.status_code == 200 and r.get_json()["state"] == "approved"
    changed, _ = pull_own(cadre, cursor)
    assert changed[fixed["uuid"]]["review"]["state"] == "approved"
    assert api_queue(supervisor, "approved") == [fixed["uuid"]]

    # An approved visit can no longer be corrected.
    again = visit(visit_date="2026-05-01")
    again["supersedes"] = fixed["uuid"]
    result = push(cadre, again).get_json()["results"][0]
    assert result["status"] == "rejected" and result["errors"][0]["field"] == "supersedes"


def api_queue(api, state):
    body = api.get(f"/api/v1/review?state={state}").get_json()
    return [s["uuid"] for s in body["submissions"]]


def test_a_correction_of_a_correction_works_the_same_way(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    chain = [visit()]
    push(cadre, chain[0])
    for n in range(2):
        assert review(supervisor, chain[-1]["uuid"], state="has_issues", comment=f"第{n}次").status_code == 200
        nxt = visit(notes=f"更正{n}")
        nxt["supersedes"] = chain[-1]["uuid"]
        assert push(cadre, nxt).get_json()["results"][0]["status"] == "created"
        chain.append(nxt)
    docs = [supervisor.get(f"/api/v1/submissions/{v['uuid']}").get_json() for v in chain]
    assert [d["superseded_by"] for d in docs] == [chain[1]["uuid"], chain[2]["uuid"], None]
    assert api_queue(supervisor, "has_issues") == [] and api_queue(supervisor, "received") == [chain[2]["uuid"]]


def test_bad_corrections_are_rejected_naming_supersedes_and_the_rest_is_stored(app):
    cadre1 = login(app.test_client(), "cadre1")
    cadre2 = login(app.test_client(), "cadre2")
    admin = login(app.test_client(), "admin")
    mine = visit("v1-0001")
    other_household = visit("v1-0002")
    theirs = visit("v2-0001")
    pv = {"uuid": new_uuid(), "form": "pv_enrollment", "form_version": 2,
          "household_id": "v1-0001", "created_at": "2026-05-01T10:00:00+08:00",
          "answers": {"interested": "no", "lecture_attended": "no"}}
    push(cadre1, mine, other_household, pv)
    push(cadre2, theirs)
    approved = visit("v1-0001")
    push(cadre1, approved)
    assert review(admin, approved["uuid"], state="approved").status_code == 200
    # cadre2's visit to v1-0001 is impossible (scope), so "someone else's": an admin's own visit
    by_admin = visit("v1-0001")
    assert push(admin, by_admin).get_json()["results"][0]["status"] == "created"

    def correction(of, household="v1-0001"):
        item = visit(household)
        item["supersedes"] = of
        return item

    good = correction(mine["uuid"])
    items = [correction(other_household["uuid"]),        # another household
             correction(pv["uuid"]),                     # another form
             correction(by_admin["uuid"]),               # someone else's
             correction(approved["uuid"]),               # approved
             correction(theirs["uuid"]),                 # another village, out of sight
             correction(new_uuid()),              # nothing there
             good]
    results = push(cadre1, *items).get_json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 6 + ["created"]
    for r in results[:6]:
        assert [e["field"] for e in r["errors"]] == ["supersedes"], r
        assert r["errors"][0]["message"]
    messages = [r["errors"][0]["message_en"] for r in results[:6]]
    assert "household" in messages[0] and "form" in messages[1] and "someone else" in messages[2]
    assert "approved" in messages[3]
    # the same original corrected twice: the second is refused (already corrected)
    twice = correction(mine["uuid"])
    r = push(cadre1, twice).get_json()["results"][0]
    assert r["status"] == "rejected" and "already corrected" in r["errors"][0]["message_en"]
    assert admin.get(f"/api/v1/submissions/{mine['uuid']}").get_json()["superseded_by"] == good["uuid"]


def test_concurrent_corrections_of_one_visit_only_one_wins(app):
    cadre = login(app.test_client(), "cadre1")
    first = visit()
    push(cadre, first)
    corrections = []
    for _ in range(6):
        item = visit(notes="并发")
        item["supersedes"] = first["uuid"]
        corrections.append(item)
    results = []

    def send(item):
        api = login(app.test_client(), "cadre1")
        results.append(push(api, item).get_json()["results"][0]["status"])

    threads = [threading.Thread(target=send, args=(c,)) for c in corrections]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["created"] + ["rejected"] * 5


def test_review_roles_and_scope(app):
    cadre = login(app.test_client(), "cadre1")
    item = visit()
    push(cadre, item)
    assert review(cadre, item["uuid"], state="approved").status_code == 403
    assert cadre.get("/api/v1/review").status_code == 403
    # a supervisor of v2 only: v1's visit is out of scope, alike with a missing one
    from server.records import users
    with app.app_context():
        users.create("super2", "supervisor", "correct-horse-42", villages=["v2"])
    super2 = login(app.test_client(), "super2")
    r = review(super2, item["uuid"], state="approved")
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"
    assert review(super2, new_uuid(), state="approved").status_code == 404
    assert super2.get("/api/v1/review").get_json()["submissions"] == []
    assert super2.get("/api/v1/review?village=v1").status_code == 404
    admin = login(app.test_client(), "admin")
    assert [s["uuid"] for s in admin.get("/api/v1/review").get_json()["submissions"]] == [item["uuid"]]
    anonymous = Api(app.test_client())
    assert anonymous.post(f"/api/v1/submissions/{item['uuid']}/review", {"state": "approved"}).status_code == 401


def test_bad_decisions_are_400_naming_the_field_and_change_nothing(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    item = visit(help_given=[{"product": "红薯", "quantity": 100, "unit": "斤", "price": 1.5}])
    push(cadre, item)
    cases = [({"state": "rejected"}, "state"),
             ({"state": "received"}, "state"),
             ({}, "state"),
             ({"state": "has_issues", "comment": "x" * 2001}, "comment"),
             ({"state": "has_issues", "comment": 5}, "comment"),
             ({"state": "has_issues", "fields": {"favourite_colour": "?"}}, "favourite_colour"),
             ({"state": "has_issues", "fields": {"section_visit": "?"}}, "section_visit"),
             ({"state": "has_issues", "fields": {"help_given.3.product": "?"}}, "help_given.3.product"),
             ({"state": "has_issues", "fields": {"help_given.².product": "?"}}, "help_given.².product"),
             ({"state": "has_issues", "fields": {"help_given.-0.product": "?"}}, "help_given.-0.product"),
             ({"state": "has_issues", "fields": {"present": "y" * 2001}}, "present"),
             ({"state": "has_issues", "fields": ["present"]}, "fields"),
             ({"state": "approved", "verdict": "ok"}, "verdict")]
    for body, field in cases:
        r = review(supervisor, item["uuid"], **body)
        assert r.status_code == 400, (body, r.get_json())
        assert field in [e["field"] for e in r.get_json()["errors"]], (body, r.get_json())
    r = supervisor.client.post(f"/api/v1/submissions/{item['uuid']}/review", data="state=approved",
                               headers={"X-CSRFToken": supervisor.token,
                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_body"
    stored = supervisor.get(f"/api/v1/submissions/{item['uuid']}").get_json()
    assert stored["review"]["state"] == "received" and stored["review"]["history"] == []
    # a comment of exactly 2,000 characters and one on a repeat entry's answer are fine
    ok = review(supervisor, item["uuid"], state="has_issues", comment="x" * 2000,
                fields={"help_given.0.price": "单价偏低？"})
    assert ok.status_code == 200 and ok.get_json()["fields"] == {"help_given.0.price": "单价偏低？"}


def test_field_comments_follow_the_submissions_own_form_version(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    old = visit()  # version 1 of the visit form
    push(cadre, old)
    from server.forms import formdefs
    with app.app_context():
        v1 = {f["name"] for f in formdefs.answer_fields(formdefs.registry().get("household_visit", 1))}
        v2 = {f["name"] for f in formdefs.answer_fields(formdefs.registry().get("household_visit", 2))}
    only_v2 = sorted(v2 - v1)
    assert only_v2, "version 2 asks something version 1 did not"
    r = review(supervisor, old["uuid"], state="has_issues", fields={only_v2[0]: "?"})
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == only_v2[0]


def test_two_supervisors_deciding_at_once_both_stay_in_history(app):
    cadre = login(app.test_client(), "cadre1")
    push(cadre, item := visit())
    from server.records import users
    with app.app_context():
        users.create("super3", "supervisor", "correct-horse-42", villages=["v1"])
    a, b = login(app.test_client(), "super"), login(app.test_client(), "super3")
    barrier = threading.Barrier(2)
    answers = {}

    def decide(api, state):
        barrier.wait()
        answers[state] = review(api, item["uuid"], state=state, comment=state).get_json()

    threads = [threading.Thread(target=decide, args=(a, "approved")),
               threading.Thread(target=decide, args=(b, "has_issues"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = a.get(f"/api/v1/submissions/{item['uuid']}").get_json()["review"]
    assert sorted(h["state"] for h in stored["history"]) == ["approved", "has_issues"]
    later = stored["history"][-1]
    assert stored["state"] == later["state"] and stored["by"] == later["by"]
    assert {h["by"] for h in stored["history"]} == {"super", "super3"}


def test_every_decision_is_in_the_audit_log(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    push(cadre, item := visit())
    review(supervisor, item["uuid"], state="has_issues", comment="补照片", fields={"present": "?"})
    review(supervisor, item["uuid"], state="approved")
    from server.records import audit
    with app.app_context():
        entries = audit.entries(action="review", target=item["uuid"])
    assert [(e["user"], e["details"]["state"]) for e in reversed(entries)] == \
        [("super", "has_issues"), ("super", "approved")]
    assert entries[-1]["details"]["fields"] == ["present"] and entries[-1]["details"]["household_id"] == "v1-0001"


def test_queue_api_filters_and_pages_by_seq(app):
    cadre1 = login(app.test_client(), "cadre1")
    cadre2 = login(app.test_client(), "cadre2")
    supervisor = login(app.test_client(), "super")
    v1 = [visit("v1-0001") for _ in range(3)]
    push(cadre1, *v1)
    push(cadre2, v2 := visit("v2-0001"))
    seen, since = [], 0
    while True:
        body = supervisor.get(f"/api/v1/review?since={since}&limit=2").get_json()
        if not body["submissions"]:
            break
        assert len(body["submissions"]) <= 2
        seen += [s["uuid"] for s in body["submissions"]]
        since = body["next"]
    assert sorted(seen) == sorted([v["uuid"] for v in v1] + [v2["uuid"]])
    assert [s["uuid"] for s in supervisor.get("/api/v1/review?village=v2").get_json()["submissions"]] == [v2["uuid"]]
    assert supervisor.get("/api/v1/review?form=pv_enrollment").get_json()["submissions"] == []
    review(supervisor, v1[0]["uuid"], state="approved")
    body = supervisor.get(f"/api/v1/review?since={since}").get_json()
    assert [s["uuid"] for s in body["submissions"]] == [v1[0]["uuid"]]  # the decision moved its seq
    for bad in ("state=done", "since=-1", "limit=0", "form=nope", "since=abc"):
        r = supervisor.get(f"/api/v1/review?{bad}")
        assert r.status_code == 400 and r.get_json()["error"] == "bad_parameter", bad


def test_a_correction_replaces_the_originals_effects_on_the_household(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    member = {"name": "张v11", "relation": "户主", "sex": "male", "birth_year": 1970}
    first = visit2(visit_date="2026-05-01", followups=[{"action": "办理慢病卡", "due_date": "2026-06-01"}],
                   family_changes=["migrant_work"],
                   members=[member, {"name": "张小军", "relation": "长子", "sex": "male", "birth_year": 1998}])
    assert push(cadre, first).get_json()["results"][0]["status"] == "created"
    promise = f"{first['uuid']}:0"
    h = household(cadre)
    assert [f["id"] for f in h["open_followups"]] == [promise] and h["population"] == 2

    # A later visit closes the promise; it is returned, and its correction says it is still open.
    closing = visit2(visit_date="2026-05-10", promises=[{"followup_id": promise, "status": "done", "note": "已办"}])
    assert push(cadre, closing).get_json()["results"][0]["status"] == "created"
    assert household(cadre)["open_followups"] == []
    review(supervisor, closing["uuid"], state="has_issues", fields={"promises": "卡还没拿到"})
    reopened = visit2(visit_date="2026-05-10",
                      promises=[{"followup_id": promise, "status": "in_progress", "note": "在办"}])
    reopened["supersedes"] = closing["uuid"]
    result = push(cadre, reopened).get_json()["results"][0]
    assert result["status"] == "created", result
    h = household(cadre)
    assert [(f["id"], f["status"], f["action"]) for f in h["open_followups"]] == \
        [(promise, "in_progress", "办理慢病卡")]

    # The first visit is returned and corrected: its promise gives way to the correction's, and the
    # correction's member list applies as a visit's change, in the household's history.
    review(supervisor, first["uuid"], state="has_issues", fields={"members": "长子出生年份有误"})
    fixed = visit2(visit_date="2026-05-01", followups=[{"action": "联系务工岗位", "due_date": "2026-06-15"}],
                   family_changes=["migrant_work"],
                   members=[member, {"name": "张小军", "relation": "长子", "sex": "male", "birth_year": 1999}])
    fixed["supersedes"] = first["uuid"]
    assert push(cadre, fixed).get_json()["results"][0]["status"] == "created"
    h = household(cadre)
    assert [f["id"] for f in h["open_followups"]] == [f"{fixed['uuid']}:0"]
    assert [m["birth_year"] for m in h["members"]] == [1970, 1999]
    with app.app_context():
        from server.records import households
        from server.web.auth import get_user
        history = households.history_of(get_user("super"), "v1-0001")
    assert history[0]["submission"] == fixed["uuid"] and history[0]["fields"] == ["members"]
    assert history[0]["before"]["members"][1]["birth_year"] == 1998


def test_a_correction_that_moves_the_visit_date_back_moves_the_last_visit_back(app):
    cadre = login(app.test_client(), "cadre1")
    supervisor = login(app.test_client(), "super")
    push(cadre, visit2(visit_date="2026-05-03"))
    push(cadre, late := visit2(visit_date="2026-05-20"))
    assert household(cadre)["last_visit_date"] == "2026-05-20"
    review(supervisor, late["uuid"], state="has_issues", fields={"visit_date": "日期写错了"})
    fixed = visit2(visit_date="2026-05-02")
    fixed["supersedes"] = late["uuid"]
    push(cadre, fixed)
    assert household(cadre)["last_visit_date"] == "2026-05-03"
