"""Supervisors' side (the `review` blueprint): the review queue and its API, a submission's page
with its decision, attachments served to people in scope (with thumbnails), and the exports.
Views check access, parse and call the record owners (records/reviews.py, submissions.py)."""

from flask import Blueprint

bp = Blueprint("review", __name__)


from server.web.review import api, attachments, exports, history, pages  # noqa: E402,F401  (they add their routes to bp)
