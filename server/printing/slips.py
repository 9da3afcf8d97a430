"""Login slips: an A4 sheet of cut-out slips, one per new account (name, username, one-time
password, the app's address and its QR code), for a township to hand out. Printed with the
profiles' fonts (the print font config of profile.py) so every name prints; no passwords are
kept anywhere: the sheet is made from what the caller passes and returned."""

import os

from server.printing.profile import (TEMPLATE_DIR, _DataOnlyFetcher, _font_config, _html_class, _jinja,
                                     qr_data_uri)

MAX_SLIPS = 2000


def render_slips_pdf(slips, app_url, *, title="", lang="zh"):
    """PDF bytes: `slips` [{"username", "display_name", "password"}], eight to a page."""
    html = _jinja().get_template("slips.html").render(
        slips=list(slips)[:MAX_SLIPS], app_url=app_url, qr=qr_data_uri(app_url), title=title,
        html_lang="en" if lang == "en" else "zh-CN")
    doc = _html_class()(string=html, base_url=TEMPLATE_DIR + os.sep, url_fetcher=_DataOnlyFetcher())
    return doc.write_pdf(font_config=_font_config())


def app_url(app, host_url=None):
    """The phone app's address printed on the slips: JIEDUI_PUBLIC_URL when set, else the address
    the request came in on (or the local server, from the command line)."""
    base = (app.config.get("PUBLIC_BASE_URL") or host_url or "http://127.0.0.1:5000").rstrip("/")
    return base + "/app/"
