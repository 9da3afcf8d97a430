"""What every response carries for safety, where redirects may go, and who the client is behind a
reverse proxy."""

import ipaddress
import re

from flask import current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from server.core.problems import Problem

# Pages use only files from this site: no inline script or style (the one exception, the phone
# app's shell, with its stylesheet and a small loader inline, allowed by their hashes:
# policy_allowing), no frames, no plugins. Images may be blob: URLs (the phone app shows photos
# and signatures before they are sent).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "connect-src 'self'",
    "font-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def policy_allowing(*, styles=(), scripts=()):
    """The page policy plus inline styles and scripts named by their hashes ('sha256-…'): the
    phone app's shell, whose own two are known when it is served."""
    policy = CONTENT_SECURITY_POLICY
    if styles:
        policy = policy.replace("style-src 'self'", "style-src 'self' " + " ".join(f"'{h}'" for h in styles))
    if scripts:
        policy = policy.replace("script-src 'self'", "script-src 'self' " + " ".join(f"'{h}'" for h in scripts))
    return policy


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Control characters, DEL, whitespace browsers strip from URLs, and backslashes (which browsers read
# as "/"): "/\t/evil.com" becomes "//evil.com", a link to another site.
_UNSAFE_IN_TARGET = re.compile(r"[\x00-\x20\x7f\\]")
MAX_TARGET = 2000


def safe_redirect_target(target, default=None):
    """`target` when it is a path on this site ("/households?page=2", "/app/#/drafts"), else
    `default`. Never a scheme, a host (//host, /\\host) or a control character."""
    if not isinstance(target, str) or not target or len(target) > MAX_TARGET:
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    if _UNSAFE_IN_TARGET.search(target):
        return default
    return target


def _add_headers(resp):
    for name, value in HEADERS.items():
        resp.headers.setdefault(name, value)
    # Only pages: a CSP on a PDF stops Chrome's built-in viewer from showing it.
    if resp.mimetype == "text/html":
        resp.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return resp


def proxy_hops(raw):
    """JIEDUI_PROXY_HOPS: how many reverse proxies in front of us to trust (0-5, default 0)."""
    if raw is None or str(raw).strip() == "":
        return 0
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or int(text) > 5:
        raise ValueError(f"JIEDUI_PROXY_HOPS must be a whole number 0-5, not {text[:20]!r}")
    return int(text)


def proxy_address(raw):
    """JIEDUI_PROXY_ADDRESS: the address the proxy connects from (default 127.0.0.1, nginx on this
    machine); only its X-Forwarded-For is believed under `serve`."""
    text = str(raw or "").strip() or "127.0.0.1"
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        raise ValueError(f"JIEDUI_PROXY_ADDRESS must be an IP address, not {text[:40]!r}") from None


def _refuse_huge_forms():
    """werkzeug bounds multipart text fields (MAX_FORM_MEMORY_SIZE) but reads a url-encoded form whole,
    up to MAX_CONTENT_LENGTH: refuse one past the same bound before anything reads it."""
    limit = current_app.config.get("MAX_FORM_MEMORY_SIZE")
    if (limit and request.mimetype == "application/x-www-form-urlencoded"
            and (request.content_length or 0) > limit):
        raise Problem("too_large", limit=f"{limit // 1000} KB")


def init_app(app):
    app.after_request(_add_headers)
    app.before_request(_refuse_huge_forms)  # before the CSRF check, which reads the form
    hops = app.config.get("PROXY_HOPS", 0)
    if hops:
        # The client address (and https) come from X-Forwarded-For/-Proto only as far as the
        # proxies we were told to trust; with 0 a client can't pretend to be someone else.
        # Under `serve` waitress reads them instead, and only from PROXY_ADDRESS (web/serving.py).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
