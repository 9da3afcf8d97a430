"""Two devices, one promise (issue 24, item 5): two devices of one cadre answer the same open promise
offline; the second visit is stored whole, its answer kept, and the difference is a clash to review."""

from tests.conftest import Api
from tests.helpers import household, push, visit2


def login(app, name):
    api = Api(app.test_client())
    assert api.login(name).status_code == 200
    return api


def test_a_second_answer_to_a_promise_closed_elsewhere_is_stored_as_a_clash(app):
    tablet, phone = login(app, "cadre1"), login(app, "cadre1")
    supervisor = login(app, "super")
    made = visit2(visit_date="2026-05-01", followups=[{"action": "送两袋化肥", "due_date": "2026-05-20"}])
    assert push(tablet, made).get_json()["results"][0]["status"] == "created"
    promise = f"{made['uuid']}:0"

    # both devices answer it offline; the tablet syncs first and closes it
    first = visit2(visit_date="2026-05-08", promises=[{"followup_id": promise, "status": "done", "note": "已送到"}])
    second = visit2(visit_date="2026-05-09",
                    promises=[{"followup_id": promise, "status": "in_progress", "note": "只送了一袋，还差一袋"}])
    assert push(tablet, first).get_json()["results"][0]["status"] == "created"
    assert household(tablet)["open_followups"] == []

    result = push(phone, second).get_json()["results"][0]
    assert result["status"] == "created", result
    stored = phone.get(f"/api/v1/submissions/{second['uuid']}").get_json()
    assert stored["answers"]["promises"][0]["note"] == "只送了一袋，还差一袋"  # nothing the cadre wrote is lost
    h = household(phone)
    assert h["open_followups"] == [] and h["last_visit_date"] == "2026-05-09"  # the first close stands

    page = supervisor.get("/households/v1-0001").get_data(as_text=True)
    assert "跟进事项已在别处办结" in page and "送两袋化肥" in page
    assert "只送了一袋，还差一袋" in page and "已送到" in page
    with app.app_context():
        from server.records import households
        from server.web.auth import get_user
        clashes = households.clashes_of(get_user("super"), "v1-0001")
    assert len(clashes) == 1
    clash = clashes[0]
    assert clash["kind"] == "followup" and clash["resolved"] is False
    assert clash["submission"] == second["uuid"] and clash["followups"] == [promise]
    assert clash["incoming"][promise]["status"] == "in_progress"
    assert clash["closed_by"][promise]["submission"] == first["uuid"]
    assert clash["closed_by"][promise]["status"] == "done"

    # the same push again is a duplicate, not a second clash
    assert push(phone, second).get_json()["results"][0]["status"] == "duplicate"
    with app.app_context():
        assert len(households.clashes_of(get_user("super"), "v1-0001")) == 1


def test_an_answer_to_a_promise_never_made_is_still_refused(app):
    cadre = login(app, "cadre1")
    made = visit2(visit_date="2026-05-01", followups=[{"action": "送化肥", "due_date": "2026-05-20"}])
    assert push(cadre, made).get_json()["results"][0]["status"] == "created"
    other = visit2("v1-0002", visit_date="2026-05-01")
    assert push(cadre, other).get_json()["results"][0]["status"] == "created"
    for bogus in (f"{made['uuid']}:7", f"{other['uuid']}:0", "00000000-0000-4000-8000-000000000000:0",
                  "not-an-id"):
        item = visit2(visit_date="2026-05-09", promises=[{"followup_id": bogus, "status": "done", "note": ""}])
        result = push(cadre, item).get_json()["results"][0]
        assert result["status"] == "rejected", bogus
        assert result["errors"][0]["field"] == "promises.0.followup_id"
    # a promise of another household is not this one's either
    item = visit2("v1-0002", visit_date="2026-05-09",
                  promises=[{"followup_id": f"{made['uuid']}:0", "status": "done", "note": ""}])
    assert push(cadre, item).get_json()["results"][0]["status"] == "rejected"
