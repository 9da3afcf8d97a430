"""The review API: the queue a supervisor's tool pages through, and a decision on a submission."""

from flask import jsonify
from flask_login import current_user, login_required

from server.forms import formdefs
from server.web.parse import int_arg, json_body
from server.core.problems import Problem
from server.records import reviews, submissions, users
from server.web.review import bp, filters



def require_reviewer():
    if not users.is_reviewer(current_user):
        raise Problem("forbidden")


@bp.get("/api/v1/review")
@login_required
def api_queue():
    """Submissions waiting in (or decided from) the queue, changed after `since`, oldest first."""
    require_reviewer()
    wanted = filters.parse()
    since = int_arg("since", 0, 0, 2**62)
    limit = int_arg("limit", 200, 1, 1000)
    page, nxt = reviews.changed_since(current_user, wanted, since, limit)
    return jsonify({"submissions": page, "next": nxt})


@bp.post("/api/v1/submissions/<sub_uuid>/review")
@login_required
def api_decide(sub_uuid):
    """200 with the submission's review (plus its uuid); 403 for a cadre, 404 out of scope, 400
    naming the field for a bad decision, 409 when the submission was corrected meanwhile."""
    require_reviewer()
    doc = submissions.get_for(current_user, sub_uuid)
    if doc is None:
        raise Problem("submission_not_found")
    body = json_body(64 * 1024, shape='{"state": "approved"|"has_issues", "comment", "fields"}')
    review = reviews.decide(current_user, doc, body, formdefs.registry())
    return jsonify(dict(review, uuid=doc["uuid"]))
