"""The session cookie: Flask's signed cookie, re-sent when it changed or once a day rather than
on every request. Re-signing a lasting (permanent) session on every request cost each request of
a phone pushing one visit at a time a signature and a Set-Cookie; a day's granularity keeps it
lasting (PERMANENT_SESSION_LIFETIME counts from its last re-signing, at most a day ago)."""

import time

from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

REFRESH_AFTER_SECONDS = 24 * 3600


def _now():
    return time.time()


class LastingSessionInterface(SecureCookieSessionInterface):
    """Flask's session interface; the cookie is re-signed when the session changed, or when the
    one the browser sent was signed more than a day ago. Its serializer is built once per key."""

    def __init__(self):
        self._serializer = (None, None)

    def get_signing_serializer(self, app):
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached_key, serializer = self._serializer
        if cached_key != key or serializer is None:
            serializer = super().get_signing_serializer(app)
            self._serializer = (key, serializer)
        return serializer

    def open_session(self, app, request):
        s = self.get_signing_serializer(app)
        if s is None:
            return None
        val = request.cookies.get(self.get_cookie_name(app))
        if not val:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed = s.loads(val, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        session.signed_at = signed.timestamp()
        return session

    def should_set_cookie(self, app, session):
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        signed = getattr(session, "signed_at", None)
        return signed is None or _now() - signed >= REFRESH_AFTER_SECONDS


def init_app(app):
    app.session_interface = LastingSessionInterface()
