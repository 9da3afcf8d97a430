"""Accounts: Flask-Login sessions that last on phones, roles and village scopes, CSRF, throttling."""

import hmac
import secrets

from flask import (Blueprint, abort, current_app, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeSerializer

from server.web.errors import error_response, wants_json
from server.web.parse import json_body
from server.core.problems import Problem
from server.records import users
from server.web.security import safe_redirect_target
from server.web.throttle import LoginThrottle

bp = Blueprint("auth", __name__)
login_manager = LoginManager()

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
LOGIN_BODY_BYTES = 4 * 1024  # a username of 32 characters and a password of 200 fit many times over
OPENROSA_PREFIX = "/openrosa/"  # web/openrosa.py: a device token in the URL or Basic auth, no cookies


class User(UserMixin):
    """The logged-in account: a read-only view of the users document (for the logged-in person,
    the store's own copy: never change it), and which login it is."""

    def __init__(self, doc, login=None):
        self.doc = doc
        self.id = doc["id"]
        self.role = doc["role"]
        self.display_name = doc.get("display_name") or doc["id"]
        self.login = login

    def get_id(self):
        """What the session and remember-me cookies carry (Flask-Login's alternative id): user, session
        generation and this login's token. Logout, a new password, a deactivation or new villages
        make it unknown, so every cookie holding it stops working at once (records/users.py)."""
        return self.login

    @property
    def is_active(self):
        return users.is_active(self.doc)

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


def get_user(user_id):
    """An account as the code sees a user (scope, role), without a login: for server-side work."""
    doc = users.get(user_id)
    return User(doc) if doc else None


# ---- logging in ---------------------------------------------------------------------------------

DEVICE_COOKIE = "jiedui_device"
DEVICE_COOKIE_DAYS = 400


def throttle():
    return current_app.extensions["jiedui_login_throttle"]


def _device_serializer():
    return URLSafeSerializer(current_app.secret_key, salt="jiedui-device")


def trusted_device(username):
    """The id of this browser's device cookie when it has logged in to `username` before."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw or len(raw) > 300:
        return None
    try:
        data = _device_serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != username or not isinstance(data.get("d"), str):
        return None
    return data["d"][:40]


def _set_device_cookie(resp, username):
    value = _device_serializer().dumps({"u": username, "d": secrets.token_urlsafe(16)})
    resp.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_COOKIE_DAYS * 24 * 3600, path="/login",
                    httponly=True, samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return resp


def authenticate(raw_username, password):
    """The account for these credentials, or a Problem (bad_login, account_inactive or
    too_many_attempts). See throttle.py for who is slowed down and why."""
    username = users.normalise_username(raw_username)
    doc = users.get(username) if username else None
    device = trusted_device(username) if username else None
    attempt, wait = throttle().begin(request.remote_addr, username, known=doc is not None,
                                     device=device)
    if attempt is None:
        return None, Problem("too_many_attempts", wait=wait, extra={"retry_after": wait})
    # Every answer costs one hash of the standard method: an unknown name or one no account can
    # have is checked against a dummy hash, a cheaper stored hash is topped up (users.check_password).
    if not users.check_password(doc, password):
        attempt.failed()
        return None, Problem("bad_login")
    attempt.succeeded()
    if not users.is_active(doc):
        return None, Problem("account_inactive")
    doc, login = users.start_login(doc["id"], rehash=users.rehash_if_needed(doc, password))
    if doc is None:  # deactivated in between
        return None, Problem("account_inactive")
    return User(doc, login), None


# ---- CSRF ----------------------------------------------------------------------------------------


def csrf_token():
    token = session.get("csrf_token")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf_token"] = token
    return token


# The confirmation page of a ledger link is used without an account: the link's own random token
# (unguessable, single use) is what a forged cross-site post would lack, so no session token.
CSRF_EXEMPT = {"ledger.remote_submit"}


def check_csrf():
    if request.method not in UNSAFE_METHODS:
        return None
    if request.path.startswith(OPENROSA_PREFIX) or request.endpoint in CSRF_EXEMPT:
        # device clients (no cookies) and a confirmation link (its token is the secret): no CSRF to fear
        return None
    if current_app.config.get("CSRF_DISABLED"):
        return None
    if getattr(current_app.view_functions.get(request.endpoint), "csrf_exempt", False):
        return None  # a route authorised by a token in its path, never by a cookie (device_api.py)
    expected = session.get("csrf_token")
    sent = request.headers.get("X-CSRFToken")
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = request.form.get("csrf_token")
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        return error_response(400, "csrf", "安全令牌缺失或已过期，请刷新页面后重试。",
                              "The security token is missing or expired; reload the page and retry.")
    return None


# ---- views ---------------------------------------------------------------------------------------


@bp.get("/api/v1/csrf")
def api_csrf():
    return jsonify({"csrf_token": csrf_token()})


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        target = safe_redirect_target(request.args.get("next"))
        if current_user.is_authenticated:
            return redirect(target or landing_url(current_user))
        return render_template("login.html", next=target or "")
    if request.is_json:
        body = json_body(LOGIN_BODY_BYTES, shape='{"username", "password", "remember"}')
        username, password = body.get("username"), body.get("password")
        remember = body.get("remember", True) is not False
        target = None
    else:  # a form post: one past MAX_FORM_MEMORY_SIZE was refused unread (security.py)
        username, password = request.form.get("username", ""), request.form.get("password", "")
        remember = request.form.get("remember", "on") == "on"
        target = safe_redirect_target(request.form.get("next"))
    user, problem = authenticate(username, password)
    if problem:
        if request.is_json or wants_json():
            raise problem
        shown = username if isinstance(username, str) and len(username) <= users.USERNAME_MAX else ""
        headers = {"Retry-After": str(problem.extra["retry_after"])} if "retry_after" in problem.extra else {}
        return render_template("login.html", error=(problem.zh, problem.en), username=shown,
                               next=target or ""), problem.status, headers
    session.permanent = True
    login_user(user, remember=remember)
    session["csrf_token"] = secrets.token_urlsafe(32)  # a new token for the new login
    must_change = users.must_change_password(user.doc)
    if request.is_json:
        body = {"user": user.public(), "csrf_token": session["csrf_token"]}
        if must_change:
            body["password_change_required"] = True
        resp = jsonify(body)
    elif must_change:
        resp = redirect(url_for("auth.change_password", next=target or landing_url(user)))
    else:
        resp = redirect(target or landing_url(user))
    return _set_device_cookie(resp, user.id)


def landing_url(user):
    """Where a person lands after login: supervisors and admins on the dashboard, cadres on the
    household list (their phone opens /app/ itself)."""
    if users.is_reviewer(user):
        return url_for("dashboard.index")
    return url_for("households.index")


@bp.post("/logout")
def logout():
    """Ends this login: its session and remember-me cookies are refused from now on, even if kept."""
    if current_user.is_authenticated:
        users.end_login(current_user.get_id())
    logout_user()  # also tells Flask-Login to delete the remember-me cookie
    session.pop("csrf_token", None)
    if wants_json():
        return jsonify({"ok": True})
    return redirect(url_for("auth.login"))


# ---- choosing one's own password -------------------------------------------------------------------

# What a login holding a one-time password may still reach: logging out, the CSRF token, changing
# the password, the language switch, and the phone app's files (the app shows the API's 403 itself).
OPEN_WHILE_ONE_TIME = {"auth.logout", "auth.login", "auth.api_csrf", "auth.change_password",
                       "auth.api_change_password", "pages_lang"}


def password_gate():
    """Until a one-time password is replaced, the API answers 403 password_change_required and
    pages lead to the change-password page."""
    if not current_user.is_authenticated or not users.must_change_password(current_user.doc):
        return None
    endpoint = request.endpoint or ""
    if endpoint in OPEN_WHILE_ONE_TIME or request.blueprint == "phone" or endpoint == "static":
        return None
    if wants_json() or request.method != "GET":
        raise Problem("password_change_required")
    return redirect(url_for("auth.change_password", next=safe_redirect_target(request.full_path.rstrip("?"))
                            or None))


def _change_own(current, new):
    """Guessing the current password here is slowed down as guessing it at the login is."""
    attempt, wait = throttle().begin(request.remote_addr, current_user.id, known=True,
                                     device=trusted_device(current_user.id))
    if attempt is None:
        raise Problem("too_many_attempts", wait=wait, extra={"retry_after": wait})
    doc, errors = users.change_own_password(current_user.id, current, new)
    if any(e["field"] == "current_password" for e in errors):
        attempt.failed()
    else:
        attempt.succeeded()
    if not errors:
        refresh_login(doc)  # every other session ended; this one goes on
    return doc, errors


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    target = safe_redirect_target(request.values.get("next")) or landing_url(current_user)
    errors = []
    if request.method == "POST":
        new = request.form.get("new_password", "")
        if new != request.form.get("new_password2", ""):
            errors = [{"field": "new_password2", "zh": "两次输入的新密码不一致", "en": "The two new passwords differ"}]
        else:
            _doc, errors = _change_own(request.form.get("current_password", ""), new)
        if not errors:
            from flask import flash
            from server.core.i18n import tr
            flash(tr("密码已修改，其他设备上的登录已失效。", "Password changed; your other devices are logged out."))
            return redirect(target)
    return render_template("account_password.html", errors=errors, next=target,
                           required=users.must_change_password(current_user.doc)), (400 if errors else 200)


@bp.post("/api/v1/account/password")
@login_required
def api_change_password():
    """JSON {"current_password", "new_password"} → {"user", "csrf_token"}; 400 password_refused
    with the reasons per field."""
    body = json_body(LOGIN_BODY_BYTES, shape='{"current_password", "new_password"}')
    doc, errors = _change_own(body.get("current_password"), body.get("new_password"))
    if errors:
        from server.core.problems import invalid
        raise invalid(errors, code="password_refused")
    return jsonify({"user": users.public(doc), "csrf_token": csrf_token()})


def refresh_login(user_doc):
    """After changing one's own account (which ends all its sessions), stay logged in here."""
    doc, login = users.start_login(user_doc["id"])
    if doc is not None:
        login_user(User(doc, login), remember=True)


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
    from server.web import sessions
    sessions.init_app(app)
    app.extensions["jiedui_login_throttle"] = LoginThrottle()
    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(login):
        doc = users.resolve_login(login)
        return User(doc, login) if doc else None

    @login_manager.unauthorized_handler
    def unauthorized():
        if wants_json():
            return error_response(401, "login_required", "请先登录。", "Please log in first.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    app.before_request(check_csrf)
    app.before_request(password_gate)
    app.jinja_env.globals["csrf_token"] = csrf_token
