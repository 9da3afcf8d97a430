"""Errors answer JSON under /api/ and a readable page elsewhere; never a bare 500 for bad input."""

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .i18n import tr

TEXTS = {
    400: ("请求格式不正确。", "The request is malformed."),
    401: ("请先登录。", "Please log in first."),
    403: ("没有权限。", "You are not allowed to do this."),
    404: ("找不到该内容。", "Not found."),
    405: ("不支持该请求方法。", "Method not allowed."),
    409: ("与现有数据冲突。", "Conflicts with existing data."),
    413: ("内容太大。", "The body is too large."),
    415: ("不支持的内容类型。", "Unsupported content type."),
    429: ("尝试次数过多，请稍后再试。", "Too many attempts; try again later."),
}


class ApiError(Exception):
    """Raised by views and domain code; becomes {"error": code, "message": text}."""

    def __init__(self, status, code, zh, en, **extra):
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.extra = status, code, zh, en, extra


def wants_json():
    return (request.path.startswith("/api/") or request.is_json
            or request.accept_mimetypes.best == "application/json")


def error_response(status, code, zh, en, **extra):
    if wants_json():
        body = {"error": code, "message": tr(zh, en), "message_zh": zh, "message_en": en}
        body.update(extra)
        return jsonify(body), status
    return render_template("error.html", status=status, text=tr(zh, en)), status


def init_app(app):
    @app.errorhandler(ApiError)
    def handle_api_error(e):
        return error_response(e.status, e.code, e.zh, e.en, **e.extra)

    @app.errorhandler(HTTPException)
    def handle_http(e):
        zh, en = TEXTS.get(e.code, (e.name, e.name))
        code = (e.name or "error").lower().replace(" ", "_")
        return error_response(e.code, code, zh, en)

    @app.errorhandler(Exception)
    def handle_unexpected(e):
        app.logger.exception("unexpected error")
        return error_response(500, "internal_error", "服务器内部错误，已记录。",
                              "Internal server error; it has been logged.")


def int_arg(name, default, lo, hi):
    """A bounded integer query parameter, or a clear 400 naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"参数 {name} 须为整数。", f"Parameter {name} must be an integer.")
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"参数 {name} 超出范围 {lo}–{hi}。",
                       f"Parameter {name} is out of range {lo}–{hi}.")
    return value
