"""Where a Problem (or any HTTP error) becomes a reply: JSON under /api/ and for JSON clients, a page
for people. Never a bare 500 for what a client sent: those are all catalogued in problems.py."""

import errno

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from server.core.i18n import tr
from server.core.problems import HTTP_TEXTS, Problem
from server.store import RETRY_AFTER_SECONDS, PartitionUnavailable, StoreUnavailable


def wants_json():
    return (request.path.startswith("/api/") or request.is_json
            or request.accept_mimetypes.best == "application/json")


def localise_errors(errors):
    """Field errors {"field", "zh", "en"} as replies carry them: the message in the page's language
    beside both texts."""
    return [{"field": e.get("field"), "message": tr(e.get("zh", ""), e.get("en", "")),
             "message_zh": e.get("zh", ""), "message_en": e.get("en", "")} for e in errors]


def error_response(status, code, zh, en, **extra):
    if "errors" in extra:
        extra["errors"] = localise_errors(extra["errors"])
    if wants_json():
        body = {"error": code, "message": tr(zh, en), "message_zh": zh, "message_en": en}
        body.update(extra)
        resp = jsonify(body)
    else:
        resp = render_template("error.html", status=status, text=tr(zh, en),
                               errors=extra.get("errors") or [])
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return resp, status, headers


def problem_response(p):
    return error_response(p.status, p.code, p.zh, p.en, **p.extra)


DISK_FULL_RETRY_AFTER = 60
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_full(e):
    """This error, or one it was raised from, says the disk (or the quota) is full."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            return True
        if type(e).__name__ == "DiskFull":   # PostgreSQL's SQLSTATE 53100 (psycopg.errors.DiskFull)
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def init_app(app):
    @app.errorhandler(Problem)
    def handle_problem(e):
        return problem_response(e)

    @app.errorhandler(StoreUnavailable)
    def handle_unavailable(e):
        """The database is unreachable or every connection is busy: the write was not committed
        (or it was, and the phone's retry answers `duplicate`), so the client retries later."""
        app.logger.warning("store unavailable: %s", e)
        return problem_response(Problem("database_unavailable", retry_after=RETRY_AFTER_SECONDS,
                                         extra={"retry_after": RETRY_AFTER_SECONDS}))

    @app.errorhandler(PartitionUnavailable)
    def handle_partition_unavailable(e):
        """A village whose file cannot be read answers 503 naming it; the rest keeps working."""
        return problem_response(Problem("partition_unavailable", partition=e.partition,
                                        extra={"partition": e.partition}))

    @app.errorhandler(HTTPException)
    def handle_http(e):
        code, zh, en = HTTP_TEXTS.get(e.code, ((e.name or "error").lower().replace(" ", "_"),
                                               e.name, e.name))
        return error_response(e.code, code, zh, en)

    @app.errorhandler(Exception)
    def handle_unexpected(e):
        if disk_full(e):
            # The journal, an attachment or a temp file found no room: nothing was acknowledged,
            # so the phone keeps it in its outbox and retries.
            app.logger.error("disk full: %s", e)
            return problem_response(Problem("storage_full", retry_after=DISK_FULL_RETRY_AFTER,
                                            extra={"retry_after": DISK_FULL_RETRY_AFTER}))
        app.logger.exception("unexpected error")
        return error_response(500, "internal_error", "服务器内部错误，已记录。",
                              "Internal server error; it has been logged.")
