"""The household profile PDF, pure core: hand-built documents in, PDF read back with pypdf."""

import io
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from server.printing import profile
from tests import print_samples as samples
from server.printing.profile import build_profile_context, mask_phone, render_profile_pdf
from tests.helpers import pdf_text

FORMS = samples.project_forms()
ADMIN = {"id": "admin", "display_name": "管理员", "role": "admin"}
CADRE = {"id": "liwei", "display_name": "李伟", "role": "cadre"}


def page_count(pdf):
    return len(PdfReader(io.BytesIO(pdf)).pages)


def fonts_of(pdf):
    """(base font name, has embedded program) of every font used on any page."""
    found = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            desc = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            fd = desc["/FontDescriptor"].get_object()
            found[str(font["/BaseFont"])] = any(k in fd for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    return found


def context(tmp_path, visits=12, photos=3, printed_by=CADRE, lang="zh", **kw):
    att = str(tmp_path / "attachments")
    household, village, cadres, subs, forms = samples.profile_inputs(att, visits=visits, photos=photos)
    return build_profile_context(household, village, cadres, subs, forms, printed_by, lang, att,
                                 record_url="http://example.test/households/430000001-0007", **kw)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One 12-visit profile with photos, rendered once for the tests that only read it."""
    ctx = context(tmp_path_factory.mktemp("p"))
    return ctx, render_profile_pdf(ctx)


def test_profile_shows_head_members_cadres_and_visit_details(rendered):
    ctx, pdf = rendered
    text = pdf_text(pdf)
    assert pdf.startswith(b"%PDF")
    for expected in ["张桂兰", "430000001-0007", "红星村", "石门乡", "脱贫户",
                     *[m["name"] for m in ctx["members"]],
                     "李家田", "机耕道",                        # plot boundaries
                     "李伟", "县农业农村局",                    # paired cadre and sending unit
                     "第12次走访：红薯滞销约五百斤",             # a visit's needs in detail
                     "收入与就业", "农产品销售",                  # topic and need labels from the forms
                     "产品红薯，数量500，单位斤", "联系县电商中心收购红薯",  # help given, follow-up
                     "已安装", "9,350",                          # PV stage and expected generation
                     "打印：李伟", "第1页/共"]:                   # footer: printed by, page x of y
        assert expected in text, expected


def test_cjk_font_is_embedded_and_nothing_falls_back(rendered):
    _, pdf = rendered
    fonts = fonts_of(pdf)
    assert fonts, "no fonts found"
    assert all(fonts.values()), f"a font is not embedded: {fonts}"
    assert [name.split("+")[1] for name in fonts] == ["Jiedui-Print-Sans"], \
        f"a glyph fell back to another font, or the print font is not built (make): {fonts}"


def test_phones_are_masked_unless_an_admin_prints(tmp_path):
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("0731-88881234") == "073*****1234"
    assert mask_phone("") == ""
    masked = context(tmp_path, visits=1, photos=0, printed_by=CADRE)
    assert masked["household"]["phone"] == "138****5678"
    assert masked["cadres"][0]["phone"] == "139****4321"
    assert "13812345678" not in str(masked)
    full = context(tmp_path, visits=1, photos=0, printed_by=ADMIN)
    assert full["household"]["phone"] == "13812345678"
    assert "13812345678" in pdf_text(render_profile_pdf(full))


def test_page_count_grows_with_visits_and_every_visit_is_printed(tmp_path):
    one = render_profile_pdf(context(tmp_path, visits=1, photos=0))
    many = render_profile_pdf(context(tmp_path, visits=80, photos=0))
    assert page_count(many) >= page_count(one) + 10
    text = pdf_text(many)
    assert "共80条记录" in text
    for i in (1, 40, 80):
        assert f"第{i}次走访" in text


def test_income_takes_the_latest_visit_of_each_year(tmp_path):
    att = str(tmp_path)
    h = samples.household()
    early = samples.visit(h["id"], 0, seq=1)
    late = samples.visit(h["id"], 1, seq=2)
    early["answers"].update(visit_date="2024-03-01", income_wages=1000, income_total=None)
    late["answers"].update(visit_date="2024-11-01", income_wages=9000, income_total=None)
    other = samples.visit(h["id"], 2, seq=3)
    other["answers"].update(visit_date="2023-05-05", income_wages="junk", income_farming=500,
                            income_livestock=None, income_pv=None, income_transfers=None,
                            income_total=None)
    ctx = build_profile_context(h, samples.VILLAGE, samples.CADRES, [late, other, early],
                                FORMS, CADRE, "zh", att)
    rows = {r["year"]: r for r in ctx["income"]["rows"]}
    assert list(rows) == ["2023", "2024"]
    assert rows["2024"]["values"]["income_wages"] == 9000
    assert rows["2024"]["date"] == "2024-11-01"
    assert rows["2023"]["total"] == 500          # junk wages ignored, the sum computed
    assert rows["2024"]["per_capita"] == "4,325"  # (9000+3200+1500+1200+2400) / 4
    assert "<svg" in str(profile.income_chart_svg(ctx["income"], "zh"))


def test_script_text_is_escaped_not_interpreted(tmp_path):
    att = str(tmp_path)
    h = samples.household(head="<script>alert(1)</script>")
    h["address"] = '"><img src="file:///etc/passwd">'
    v = samples.visit(h["id"], 0)
    v["answers"]["notes"] = "<b>粗体</b>&amp;"
    ctx = build_profile_context(h, samples.VILLAGE, samples.CADRES, [v], FORMS,
                                {"display_name": "</style><h1>x</h1>", "role": "cadre"}, "zh", att)
    html = profile.render_profile_html(ctx)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>粗体</b>" not in html
    text = pdf_text(render_profile_pdf(ctx))
    assert "<script>alert(1)</script>" in text
    assert "<b>粗体</b>&amp;" in text
    assert "</style><h1>x</h1>" in text       # the printed-by name in the footer, as text


def test_missing_corrupt_and_unsafe_photos_give_placeholders(tmp_path):
    att = tmp_path / "attachments"
    h = samples.household()
    v = samples.visit(h["id"], 0, photos=["missing.jpg", "corrupt.jpg", "../../secret.jpg"],
                      signature="huge.png")
    folder = att / v["uuid"]
    folder.mkdir(parents=True)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    (folder / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (tmp_path / "secret.jpg").write_bytes(samples.jpeg_bytes())
    ctx = build_profile_context(h, samples.VILLAGE, samples.CADRES, [v], FORMS,
                                CADRE, "zh", str(att))
    assert [p["path"] for p in ctx["photos"]][2] is None   # no way out of the submission folder
    pdf = render_profile_pdf(ctx)
    assert page_count(pdf) >= 1
    text = pdf_text(pdf)
    assert text.count("照片缺失或无法读取") == 3
    assert "签名缺失或无法读取" in text


def test_photos_are_downscaled_jpegs_not_the_originals(tmp_path):
    path = tmp_path / "big.jpg"
    samples.write_photo(str(path), size=(3000, 2000))
    uri = profile.image_data_uri(str(path), profile.PHOTO_PX)
    assert uri.startswith("data:image/jpeg;base64,")
    import base64
    from PIL import Image
    data = base64.b64decode(uri.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        assert max(im.size) <= profile.PHOTO_PX
    assert len(data) < os.path.getsize(path)


def test_unknown_fields_choices_and_missing_forms_show_raw_values(tmp_path):
    h = samples.household()
    h["category"] = "weird_category"
    h["members"].append({"name": "无名", "sex": "other", "birth_year": "unknown"})
    h["plots"].append({"name": None, "area_mu": "n/a"})
    v = samples.visit(h["id"], 0)
    v["answers"].update(topics=["mystery_topic", "income_jobs"], visit_type="boat", needs="sales",
                        help_given=[{"product": "蜂蜜"}, "junk"], followups=[{"action": "回访", "done": "yes"}],
                        risk="yes", risk_reason="因病")
    broken = {"uuid": "x", "form": "household_visit", "answers": "not a dict"}
    for forms in ({}, FORMS):
        ctx = build_profile_context(h, None, None, [v, broken], forms, "某人", "zh", None)
        text = pdf_text(render_profile_pdf(ctx))
        for raw in ("mystery_topic", "weird_category", "boat", "蜂蜜", "因病", "无名", "回访"):
            assert raw in text, (forms, raw)


def test_english_profile_uses_english_labels(tmp_path):
    ctx = context(tmp_path, visits=2, photos=0, lang="en")
    text = pdf_text(render_profile_pdf(ctx))
    for expected in ("Householdassistanceprofile", "Householdmembers", "Poverty-alleviated",
                     "Incomeandjobs", "Page1of", "Printedby李伟"):
        assert expected in text, expected


def test_long_names_and_text_wrap_inside_the_page(tmp_path):
    """Nothing may run past the right margin, however long and unbroken the text."""
    h = samples.household(head="欧阳" * 60)
    h["address"] = "A" * 400
    h["members"][0]["name"] = "名字很长" * 30
    h["plots"][0]["east"] = "x" * 300
    v = samples.visit(h["id"], 0)
    v["answers"]["needs_detail"] = "说明" * 2000 + "Z" * 500
    ctx = build_profile_context(h, samples.VILLAGE, samples.CADRES, [v], FORMS,
                                CADRE, "zh", str(tmp_path))
    doc = profile.render_profile_document(ctx)
    for page in doc.pages:
        right_edge = page.width - page._page_box.margin_right + 0.5
        for box in page._page_box.descendants():
            if getattr(box, "text", None):
                assert box.position_x + box.width <= right_edge, (box.text[:20], box.position_x)
    assert "说明说明" in pdf_text(doc.write_pdf())


def test_context_digest_ignores_the_print_stamp_only(tmp_path):
    a = context(tmp_path, visits=2, photos=0, printed_by=CADRE)
    b = context(tmp_path, visits=2, photos=0, printed_by={"display_name": "别人", "role": "cadre"})
    assert profile.context_digest(a) == profile.context_digest(b)
    c = context(tmp_path, visits=3, photos=0)
    assert profile.context_digest(a) != profile.context_digest(c)


def test_project_forms_label_every_fixed_choice():
    """The printed labels come from forms/*.yaml: every fixed choice name has a label there."""
    visit = profile.FormLabels(FORMS.get("household_visit"), "zh")
    for topic in ("income_jobs", "health_insurance", "schooling", "housing_safety",
                  "drinking_water", "industry", "land_ledger", "sales_help", "pv"):
        assert visit.choice("topics", topic) != topic
    pv = profile.FormLabels(FORMS.get("pv_enrollment"), "en")
    for stage in ("none", "applied", "approved", "installed", "connected"):
        assert pv.choice("grid_stage", stage) != stage


def test_the_qr_code_prints_as_sharp_modules_of_the_record_link(rendered):
    """8 pixels a module, drawn without smoothing (/Interpolate false), and those modules are the
    code of the household's link: a phone scanning the paper lands on the record."""
    import qrcode
    ctx, pdf = rendered
    first = PdfReader(io.BytesIO(pdf)).pages[0]
    unsmoothed = [f for f in first.images if f.indirect_reference.get_object()["/Interpolate"] is False
                  or str(f.indirect_reference.get_object()["/Interpolate"]).lower() == "false"]
    assert len(unsmoothed) == 1
    printed = unsmoothed[0].image.convert("L")
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=1, mask_pattern=0)
    qr.add_data(ctx["record_url"])
    qr.make(fit=True)
    modules = qr.get_matrix()                      # True is a dark module, border included
    assert printed.size == (8 * len(modules), 8 * len(modules))
    assert [[printed.getpixel((8 * x + 4, 8 * y + 4)) < 128 for x in range(len(modules))]
            for y in range(len(modules))] == modules


def _laid_out(ctx):
    """Every box of every page: kind, tag, position, size and text."""
    boxes = []

    def walk(box, depth):
        size = tuple(round(v, 2) if isinstance(v, (int, float)) else v for v in (box.width, box.height))
        boxes.append((depth, type(box).__name__, box.element_tag, round(box.position_x, 2),
                      round(box.position_y, 2), size, getattr(box, "text", None)))
        for child in getattr(box, "children", ()):
            walk(child, depth + 1)
    for page in profile.render_profile_document(ctx).pages:
        walk(page._page_box, 0)
    return boxes


def test_the_profile_is_read_as_xml_and_laid_out_as_the_html5_parser_would(tmp_path, monkeypatch):
    """The template is well-formed XML, so it is read by expat instead of WeasyPrint's HTML5 parser
    (35 ms a profile); the pages come out box for box the same."""
    import tinyhtml5
    ctx = context(tmp_path)
    assert profile.parse_profile_html(profile.render_profile_html(ctx))[1] == "xml"
    fast = _laid_out(ctx)
    monkeypatch.setattr(profile, "parse_profile_html",
                        lambda html: (tinyhtml5.parse(html, namespace_html_elements=False), "html5"))
    assert fast == _laid_out(ctx)
    assert len(fast) > 500


def test_control_characters_are_dropped_and_the_text_layer_stays_readable(tmp_path):
    """A control character in a roster's address garbled the whole PDF's text layer (search and copy
    found nothing). It is dropped from what prints, so the page stays XML too."""
    ctx = context(tmp_path, visits=1, photos=0)
    ctx["household"]["address"] = "石门乡\x0b二组\x00"
    html = profile.render_profile_html(ctx)
    assert "\x0b" not in html and profile.parse_profile_html(html)[1] == "xml"
    text = pdf_text(render_profile_pdf(ctx))
    assert "石门乡二组" in text and "张桂兰" in text


def test_a_page_xml_cannot_hold_is_read_as_html5():
    root, parser = profile.parse_profile_html("<!DOCTYPE html><html><body><p>a&nbsp;b<br></p></body></html>")
    assert parser == "html5" and root.find("body/p").text == "a\xa0b"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_any_text_in_any_printed_field_keeps_the_page_xml(tmp_path, text):
    """Whatever a roster or a phone put in a name, an address, a member or an answer, the page stays
    XML (the fast parser) and the text prints, less the characters XML cannot hold."""
    att = str(tmp_path)
    h = samples.household(head=text or "户主")
    h["address"] = text
    h["members"][0]["name"] = text
    v = samples.visit(h["id"], 0)
    v["answers"]["notes"] = text
    ctx = build_profile_context(h, samples.VILLAGE, samples.CADRES, [v], FORMS,
                                {"display_name": text, "role": "cadre"}, "zh", att)
    root, parser = profile.parse_profile_html(profile.render_profile_html(ctx))
    assert parser == "xml"
    printed = re.sub(r"\s+", "", "".join(root.itertext()))   # XML reads CR as LF, as HTML5 does
    assert re.sub(r"\s+", "", profile._NOT_PRINTABLE.sub("", text)) in printed


def test_the_print_font_lays_out_the_pages_as_noto_sans_cjk_does(tmp_path, monkeypatch):
    """The print font (Noto Sans CJK SC cut to GB2312; `make` builds it) has the same outlines and
    metrics: the pages come out box for box as with Noto alone, in a PDF 40% smaller."""
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration
    from server.printing import print_font
    assert print_font.path(), "the print font is not built: run make (server/printing/print_font.py)"
    ctx = context(tmp_path)
    with_print_font, small = _laid_out(ctx), render_profile_pdf(ctx)
    plain = FontConfiguration()
    css = CSS(filename=os.path.join(profile.TEMPLATE_DIR, "profile.css"), font_config=plain)
    monkeypatch.setattr(profile, "_font_config", lambda: plain)
    monkeypatch.setattr(profile, "_profile_css", lambda: css)
    assert _laid_out(ctx) == with_print_font
    noto = render_profile_pdf(ctx)
    assert [n.split("+")[1] for n in fonts_of(noto)] == ["Noto-Sans-CJK-SC"]
    assert len(small) < 0.7 * len(noto)


def test_a_character_outside_the_print_font_prints_in_noto(tmp_path):
    """堃 is not in GB2312: it comes from Noto Sans CJK SC, beside the print font."""
    with pytest.raises(UnicodeEncodeError):
        "堃".encode("gb2312")
    ctx = context(tmp_path, visits=1, photos=0)
    ctx["household"]["head_name"] = "王堃"
    pdf = render_profile_pdf(ctx)
    assert "王堃" in pdf_text(pdf)
    assert sorted(n.split("+")[1] for n in fonts_of(pdf)) == ["Jiedui-Print-Sans", "Noto-Sans-CJK-SC"]
    assert all(fonts_of(pdf).values())


def _margin_lines(page):
    """(at-keyword, [(left, right) of each line]) of the page's margin boxes, in CSS px."""
    from weasyprint.formatting_structure.boxes import LineBox, MarginBox
    found = {}

    def lines(box):
        for child in getattr(box, "children", ()):
            if isinstance(child, LineBox):
                texts = [t for t in child.descendants() if getattr(t, "text", None)]
                if texts:
                    yield (min(t.position_x for t in texts), max(t.position_x + t.width for t in texts))
            else:
                yield from lines(child)
    for box in page._page_box.children:
        if isinstance(box, MarginBox):
            found[box.at_keyword] = list(lines(box))
    return found


def test_the_running_heads_keep_to_the_page_margins(tmp_path):
    """The running heads (head and village at the left, the household id at the right) and the page
    number each sit on one line at their side of the page, for the longest ids a roster can hold.
    Their boxes have fixed widths (WeasyPrint measured auto ones on every page)."""
    ctx = context(tmp_path, visits=12, photos=0)
    ctx["household"]["id"] = "4306" * 8 + "-0001"          # the longest id: 32 characters, a 4-digit number
    ctx["household"]["head_name"] = "欧阳娜仁其木格"
    ctx["village"]["name"] = "石门乡新华村"
    doc = profile.render_profile_document(ctx)
    assert len(doc.pages) > 2
    mm = 96 / 25.4
    left, right = 14 * mm, (210 - 14) * mm
    for number, page in enumerate(doc.pages, start=1):
        heads = _margin_lines(page)
        if number > 1:
            (head,), (hid,) = heads["@top-left"], heads["@top-right"]
            assert abs(head[0] - left) < 0.5 and head[1] < right - 66 * mm
            assert abs(hid[1] - right) < 0.5 and hid[0] > left + 116 * mm
        (page_no,) = heads["@bottom-right"]
        assert abs(page_no[1] - right) < 0.5
    text = pdf_text(doc.write_pdf())
    assert ctx["household"]["id"] in text and "户主欧阳娜仁其木格·石门乡新华村" in text


def test_the_help_list_prints_each_entry_s_buyer_channel_by_its_label(tmp_path):
    """Version 3 of the visit asks who bought: the help list shows the channel's label after the
    product (an entry naming none, and a version-2 visit, print as before), within the page."""
    h = samples.household()
    old = samples.visit(h["id"], 0, seq=1)
    new = samples.visit(h["id"], 1, seq=2)
    new["form_version"] = 3
    new["answers"]["help_given"] = [
        {"product": "蜂蜜", "quantity": 5, "unit": "斤", "price": 60, "channel": "canteen"},
        {"product": "土鸡蛋", "quantity": 30, "unit": "枚", "price": 1.2, "channel": "market"},
        {"product": "茶叶" * 40, "quantity": 2, "unit": "斤", "price": 80, "channel": "staff"},
        {"product": "红薯", "quantity": 20, "unit": "斤", "price": 1.5}]
    ctx = build_profile_context(h, samples.VILLAGE, samples.CADRES, [new, old], FORMS, CADRE, "zh",
                                str(tmp_path))
    assert [r["item"] for r in ctx["help"]] == ["红薯 斤", "蜂蜜 斤（单位食堂采购）",
                                                "土鸡蛋 枚（展销会、超市或商户）",
                                                "茶叶" * 40 + " 斤（干部职工个人购买）", "红薯 斤"]
    doc = profile.render_profile_document(ctx)
    for page in doc.pages:  # a long product and its channel wrap inside the page
        right_edge = page.width - page._page_box.margin_right + 0.5
        for box in page._page_box.descendants():
            if getattr(box, "text", None):
                assert box.position_x + box.width <= right_edge, (box.text[:20], box.position_x)
    text = pdf_text(doc.write_pdf())
    assert "蜂蜜斤（单位食堂采购）" in text and "购买渠道" in text  # the list, and the visit's own lines
    en = build_profile_context(h, samples.VILLAGE, samples.CADRES, [new], FORMS, CADRE, "en", str(tmp_path))
    assert en["help"][0]["item"] == "蜂蜜 斤 (Work-unit canteen)"
