"""The land ledger on paper: the 公示表 a village posts (every plot of a village or group) and the
承包地块确认书 a household signs (its plots, four boundaries, contract number, signature and
fingerprint boxes, and the signature captured from afar when there is one).

Same print font, page style and safe HTML reading as the profiles (printing/profile.py). A village's
confirmation sheets come in one document, a bookmark per household (WeasyPrint makes PDF bookmarks
from headings), as the village print does."""

import functools
import os
from datetime import timedelta

from server.core import idcard
from server.core.clock import parse_date, show, today
from server.core.ledger_words import STATE_LABELS
from server.printing.profile import (TEMPLATE_DIR, _DataOnlyFetcher, _font_config, _html_class, _jinja,
                                     image_data_uri)

PUBLICITY_DAYS = 7


def _area(value):
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")


@functools.lru_cache(maxsize=1)
def _css():
    from weasyprint import CSS
    return CSS(filename=os.path.join(TEMPLATE_DIR, "ledger.css"), font_config=_font_config())


def _render(template, **context):
    html = _jinja().get_template(template).render(**context)
    doc = _html_class()(string=html, base_url=TEMPLATE_DIR + os.sep, url_fetcher=_DataOnlyFetcher())
    return doc.render(stylesheets=[_css()], font_config=_font_config()).write_pdf()


def _plot_rows(household):
    return [{"name": p.get("name", ""), "code": p.get("code", ""), "area": _area(p.get("area_mu")),
             "east": p.get("east", ""), "west": p.get("west", ""), "south": p.get("south", ""),
             "north": p.get("north", ""), "contract_no": p.get("contract_no", "")}
            for p in household.get("plots") or []]


def notice_pdf(village, docs, *, group=None, start=None, days=PUBLICITY_DAYS, printed_by=""):
    """The 公示表: every plot of the households given (a village, or one group of it)."""
    start = (parse_date(start) if isinstance(start, str) else None) or today()
    rows, total_area = [], 0.0
    for h in docs:
        for p in _plot_rows(h):
            rows.append(dict(p, household=h.get("head_name", ""), household_id=h["id"],
                             group=h.get("group", "")))
        total_area += sum(p.get("area_mu") or 0 for p in h.get("plots") or [])
    return _render("ledger_notice.html", village=village, group=group, rows=rows,
                   households=len(docs), total_area=_area(round(total_area, 4)),
                   start=start.isoformat(), end=(start + timedelta(days=days - 1)).isoformat(),
                   days=days, printed_by=printed_by, printed_on=today().isoformat())


def _sheet(household, files_dir, mask, signature_path, phone_signature=None):
    ledger = household.get("ledger") or {}
    head = next((m for m in household.get("members") or [] if m.get("relation") == "户主"), None)
    card = (head or {}).get("id_card") or ""
    signature = None
    if ledger.get("signature") and signature_path:
        signature = image_data_uri(signature_path(files_dir, household["id"], ledger["signature"]), 600,
                                   signature=True)
    if signature is None and phone_signature:
        signature = image_data_uri(phone_signature, 600, signature=True)
    contract_nos = sorted({p.get("contract_no") for p in household.get("plots") or [] if p.get("contract_no")})
    return {"id": household["id"], "head_name": household.get("head_name", ""),
            "group": household.get("group", ""), "id_card": idcard.mask(card) if mask else card,
            "plots": _plot_rows(household), "contract_no": "、".join(contract_nos),
            "total_area": _area(round(sum(p.get("area_mu") or 0 for p in household.get("plots") or []), 4)),
            "state": STATE_LABELS.get(ledger.get("state") or "not_started", ("", ""))[0],
            "consultants": "、".join(ledger.get("consultants") or []),
            "signed_on": ledger.get("signed_on") or "",
            "confirmed_by": ledger.get("confirmed_by") or "",
            "confirmed_at": show(ledger["confirmed_at"]) if ledger.get("confirmed_at") else "",
            "signature": signature}


CHUNK = 40  # households a worker lays out at a time: big enough to amortise, small enough to share


def render_sheets(village, sheets, printed_by, printed_on):
    """The confirmation sheets of some households (plain data in, PDF bytes out): run in the print
    worker processes."""
    return _render("ledger_sheet.html", village=village, sheets=sheets, printed_by=printed_by,
                   printed_on=printed_on)


def sheets_pdf(village, docs, *, files_dir, mask=True, signature_path=None, phone_signatures=None,
               printed_by="", workers=None):
    """承包地块确认书: one page or more per household, in one document with a bookmark each.
    ID numbers masked unless `mask` is False (an admin). The signature printed is the one given
    from afar, else the one given on a cadre's phone (`phone_signatures`: {household id: path}).
    A village's sheets are laid out in chunks
    by the print workers (printing/jobs.py's pool) and merged in household order, their fonts
    shared, as the village print does; one household's is rendered here."""
    phone_signatures = phone_signatures or {}
    sheets = [_sheet(h, files_dir, mask, signature_path, phone_signatures.get(h["id"])) for h in docs]
    printed_on = today().isoformat()
    if len(sheets) <= CHUNK or not workers:
        return render_sheets(village, sheets, printed_by, printed_on)
    import io
    from pypdf import PdfReader, PdfWriter
    from server.printing import jobs
    from server.printing.fonts import share_fonts
    pool = jobs.get_pool(workers)
    futures = [pool.submit(render_sheets, village, sheets[i:i + CHUNK], printed_by, printed_on)
               for i in range(0, len(sheets), CHUNK)]
    writer = PdfWriter()
    for f in futures:
        writer.append(PdfReader(io.BytesIO(f.result(timeout=jobs.RENDER_TIMEOUT))), import_outline=True)
    share_fonts(writer)
    writer.add_metadata({"/Title": f"{village.get('name', '')}承包地块确认书"})
    writer.page_mode = "/UseOutlines"
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
