"""The page language: template helpers, and /lang/<code> to choose one (a cookie, then back where
the person was). The words themselves are in core/i18n.py."""

from flask import redirect, request

from server.core.i18n import LANGS, category_label, current_lang, label, role_label, tr, when
from server.web.security import safe_redirect_target


def init_app(app):
    app.add_template_filter(when)
    app.add_url_rule("/lang/<code>", "pages_lang", lambda code: _switch_language(code))
    app.jinja_env.globals.update(tr=tr, label=label, current_lang=current_lang,
                                 category_label=category_label, role_label=role_label)
    from server.core.ledger_words import state_label as ledger_state_label
    app.jinja_env.globals["ledger_state_label"] = ledger_state_label


def _switch_language(code):
    resp = redirect(safe_redirect_target(request.args.get("next"), "/"))
    if code in LANGS:
        resp.set_cookie("lang", code, max_age=365 * 24 * 3600, samesite="Lax")
    return resp
