"""Accounts: Flask-Login sessions that last on phones, roles and village scopes, CSRF, throttling."""

import hmac
import secrets
import threading
import time

from flask import (Blueprint, abort, current_app, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from .errors import error_response, wants_json
from .parse import json_body
from .records import users

bp = Blueprint("auth", __name__)
login_manager = LoginManager()

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class User(UserMixin):
    """The logged-in account: a read-only view of the users document."""

    def __init__(self, doc):
        self.doc = doc
        self.id = doc["id"]
        self.role = doc["role"]
        self.display_name = doc.get("display_name") or doc["id"]

    @property
    def is_active(self):
        return bool(self.doc.get("active", True))

    @property
    def is_admin(self):
        return self.role == "admin"

    def village_scope(self):
        """None means every village (admins); otherwise the list of village ids."""
        if self.role == "admin":
            return None
        return list(self.doc.get("villages") or [])

    def can_see_village(self, village_id):
        scope = self.village_scope()
        return scope is None or village_id in scope

    def public(self):
        return users.public(self.doc)


# ---- users --------------------------------------------------------------------------------------


def get_user(user_id):
    doc = users.get(user_id)
    return User(doc) if doc else None


class LoginThrottle:
    """Counts recent failures per (username, address); memory only, which is enough to slow guessing."""

    def __init__(self):
        self._lock = threading.Lock()
        self._failures = {}

    def _recent(self, key, window):
        cutoff = time.monotonic() - window
        times = [t for t in self._failures.get(key, []) if t > cutoff]
        self._failures[key] = times
        return times

    def retry_after(self, key, limit, window):
        with self._lock:
            times = self._recent(key, window)
            if len(times) >= limit:
                return max(1, int(times[0] + window - time.monotonic()))
            return 0

    def fail(self, key):
        with self._lock:
            self._failures.setdefault(key, []).append(time.monotonic())

    def clear(self, key):
        with self._lock:
            self._failures.pop(key, None)


def throttle():
    return current_app.extensions["jiedui_login_throttle"]


def authenticate(username, password):
    """Returns (user, error) where error is None or (status, code, zh, en, extra)."""
    cfg = current_app.config
    username = username.strip().lower() if isinstance(username, str) else ""
    key = (username, request.remote_addr)
    wait = throttle().retry_after(key, cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_WINDOW_SECONDS"])
    if wait:
        minutes = (wait + 59) // 60
        return None, (429, "too_many_attempts", f"登录失败次数过多，请 {minutes} 分钟后再试。",
                      f"Too many failed logins; try again in {minutes} min.", {"retry_after": wait})
    doc = users.get(username) if username else None
    if not users.check_password(doc, password) or not doc.get("active", True):
        throttle().fail(key)
        return None, (401, "bad_login", "用户名或密码不正确。", "Wrong username or password.", {})
    throttle().clear(key)
    return User(doc), None


# ---- CSRF ----------------------------------------------------------------------------------------


def csrf_token():
    token = session.get("csrf_token")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf_token"] = token
    return token


def check_csrf():
    if request.method not in UNSAFE_METHODS:
        return None
    if current_app.config.get("CSRF_DISABLED"):
        return None
    expected = session.get("csrf_token")
    sent = request.headers.get("X-CSRFToken")
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = request.form.get("csrf_token")
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        return error_response(400, "csrf", "安全令牌缺失或已过期，请刷新页面后重试。",
                              "The security token is missing or expired; reload the page and retry.")
    return None


# ---- views ---------------------------------------------------------------------------------------


def _safe_next(target):
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return None


@bp.get("/api/v1/csrf")
def api_csrf():
    return jsonify({"csrf_token": csrf_token()})


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(request.args.get("next")) or url_for("households.index"))
        return render_template("login.html", next=_safe_next(request.args.get("next")) or "")
    if request.is_json:
        body = json_body(64 * 1024, shape='{"username", "password", "remember"}')
        username, password = body.get("username"), body.get("password")
        remember = body.get("remember", True) is not False
    else:
        username, password = request.form.get("username", ""), request.form.get("password", "")
        remember = request.form.get("remember", "on") == "on"
    user, err = authenticate(username, password)
    if err:
        status, code, zh, en, extra = err
        if request.is_json or wants_json():
            return error_response(status, code, zh, en, **extra)
        return render_template("login.html", error=(zh, en), username=username or "",
                               next=_safe_next(request.form.get("next")) or ""), status
    session.permanent = True
    login_user(user, remember=remember)
    session["csrf_token"] = secrets.token_urlsafe(32)  # a new token for the new login
    if request.is_json:
        return jsonify({"user": user.public(), "csrf_token": session["csrf_token"]})
    return redirect(_safe_next(request.form.get("next")) or url_for("households.index"))


@bp.post("/logout")
def logout():
    logout_user()  # also tells Flask-Login to delete the remember-me cookie
    session.pop("csrf_token", None)
    if wants_json():
        return jsonify({"ok": True})
    return redirect(url_for("auth.login"))


# ---- decorators and set-up -------------------------------------------------------------------


def role_required(*roles):
    def decorate(view):
        from functools import wraps

        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorate


def init_app(app):
    app.extensions["jiedui_login_throttle"] = LoginThrottle()
    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id):
        user = get_user(user_id)
        return user if user and user.is_active else None

    @login_manager.unauthorized_handler
    def unauthorized():
        if wants_json():
            return error_response(401, "login_required", "请先登录。", "Please log in first.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
