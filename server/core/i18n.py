"""Two languages everywhere: Chinese by default (and for zh browsers), English on request."""

from flask import g, request

LANGS = ("zh", "en")


def current_lang():
    if "lang" not in g:
        chosen = request.cookies.get("lang") if request else None
        if chosen not in LANGS:
            best = request.accept_languages.best_match(["zh", "zh-CN", "en"]) if request else None
            chosen = "en" if best == "en" else "zh"
        g.lang = chosen
    return g.lang


def tr(zh, en):
    """Pick the text for the current language: templates call tr("中文", "English")."""
    return en if current_lang() == "en" else zh


def label(obj):
    """A {zh, en} dict (as in form definitions) in the current language."""
    if isinstance(obj, dict):
        return obj.get(current_lang()) or obj.get("zh") or obj.get("en") or ""
    return "" if obj is None else str(obj)


CATEGORY_LABELS = {
    "tuopin": ("脱贫户", "Poverty-alleviated"),
    "jiance": ("监测户", "Monitored"),
    "dibao": ("低保户", "Low-income (dibao)"),
    "ordinary": ("一般户", "Ordinary"),
}
# PV stages a form sets as literals, without a choice question to label them (the PV form's own
# words: its "no" choice reads 无意向). The dashboard, the pages and the profile PDF all use these.
PV_STAGE_WORDS = {
    "interested": ("有意向", "Interested"),
    "declined": ("无意向", "Declined"),
    "none": ("未申请", "Not applied"),
    "consented": ("已同意", "Consented"),
    "surveyed": ("已勘察", "Surveyed"),
    "lecture": ("已参加宣讲", "Lecture attended"),
}
ROLE_LABELS = {
    "cadre": ("驻村干部", "Cadre"),
    "supervisor": ("督导", "Supervisor"),
    "admin": ("管理员", "Administrator"),
}


def category_label(code):
    zh, en = CATEGORY_LABELS.get(code, (code or "", code or ""))
    return tr(zh, en)


def role_label(code):
    zh, en = ROLE_LABELS.get(code, (code, code))
    return tr(zh, en)


def when(iso):
    """A stored time as people read it: date and minutes in JIEDUI_TIMEZONE (clock.show)."""
    from server.core.clock import show
    if not isinstance(iso, str):
        return ""
    return show(iso)


def init_app(app):
    app.add_template_filter(when)
    app.add_url_rule("/lang/<code>", "pages_lang", lambda code: _switch_language(code))
    app.jinja_env.globals.update(tr=tr, label=label, current_lang=current_lang,
                                 category_label=category_label, role_label=role_label)
    from server.core.ledger_words import state_label as ledger_state_label
    app.jinja_env.globals["ledger_state_label"] = ledger_state_label


def _switch_language(code):
    from flask import redirect, request as req
    from server.web.security import safe_redirect_target
    resp = redirect(safe_redirect_target(req.args.get("next"), "/"))
    if code in LANGS:
        resp.set_cookie("lang", code, max_age=365 * 24 * 3600, samesite="Lax")
    return resp
