"""An imported XLSForm on a 360 px phone, rendered and answered like a YAML form (issue 27): a
time, a range, an acknowledgement, a county offered by the province chosen before it
(choice_filter), a repeat inside a repeat, metadata filled in and a default pre-filled; the
submission reaches the server, which validates it and stores it as created."""

import io
import json
import os
import subprocess

import pytest

from tests.browser.phone_steps import (log_in, open_new_form, open_page, server_submission, server_submissions, submit,
                                      wait_pending)
from tests.conftest import PASSWORD
from tests.live import PYTHON, ROOT, Client, LiveServer, seed


def _workbook():
    from openpyxl import Workbook
    book = Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label::中文 (zh)", "label::English (en)", "parameters", "choice_filter",
                   "default", "required", "appearance"])
    for row in (
        ["start", "started"], ["end", "ended"], ["today", "day"], ["deviceid", "device"],
        ["time", "arrived", "到达时间", "Arrival time", "", "", "", "yes"],
        ["range", "score", "满意度", "Satisfaction", "start=1 end=5 step=1", "", "", "yes"],
        ["acknowledge", "consent", "户主同意", "Consent", "", "", "", "yes"],
        ["select_one prov", "province", "省", "Province", "", "", "", "yes", "minimal"],
        ["select_one county", "county", "县", "County", "", "prov = ${province}", "", "yes", "quick"],
        ["text", "village_note", "备注", "Note", "", "", "无", ""],
        ["rank prov", "order", "排序", "Order", "", "", "", "yes"],
        ["geotrace", "path", "路线", "Route", "", "", "", "yes"],
        ["datetime", "next_visit", "下次走访", "Next visit", "", "", "", "yes"],
        ["barcode", "code", "条码", "Barcode"],
        ["audio", "voice", "录音", "Voice"],
        ["begin repeat", "plots", "地块", "Plots"],
        ["text", "plot_name", "地块名", "Plot name", "", "", "", "yes"],
        ["begin repeat", "visits", "查看", "Checks"],
        ["integer", "pests", "虫数", "Pests", "", "", "", "yes"],
        ["end repeat", ""],
        ["end repeat", ""],
    ):
        survey.append(row)
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", "label::中文 (zh)", "label::English (en)", "prov"])
    for row in (["prov", "yn", "云南", "Yunnan", ""], ["prov", "gz", "贵州", "Guizhou", ""],
                ["county", "km", "昆明", "Kunming", "yn"], ["county", "dl", "大理", "Dali", "yn"],
                ["county", "gy", "贵阳", "Guiyang", "gz"]):
        choices.append(row)
    settings = book.create_sheet("settings")
    settings.append(["form_id", "version", "form_title"])
    settings.append(["xls_types", "1", "新题型"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def xls_server(tmp_path):
    """The tests' world with the XLSForm published through the command line before the server starts."""
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    book = tmp_path / "xls_types.xlsx"
    book.write_bytes(_workbook())
    done = subprocess.run([PYTHON, "-m", "flask", "--app", "server", "form", "import", str(book), "--publish"],
                          cwd=ROOT, env=dict(os.environ, JIEDUI_DATA_DIR=str(data)), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["published"] is True
    live = LiveServer(data, faults=True).start()
    yield live
    live.stop()


def test_an_imported_xlsform_is_answered_on_the_phone_and_taken_by_the_server(xls_server, launch_phone):
    page = open_page(launch_phone("xls", geolocation={"latitude": 25.04, "longitude": 102.71, "accuracy": 8},
                                  permissions=["geolocation"]))
    log_in(page, xls_server.url, "cadre1")
    open_new_form(page, xls_server.url, "v1-0001", "xls_types")

    # Metadata are filled in and not shown; the default is pre-filled.
    assert page.locator("input[name=started]").is_hidden()
    assert page.input_value("input[name=day]") != ""
    assert page.input_value("input[name=device]").startswith("jiedui:")
    assert page.input_value("input[name=village_note]") == "无"

    page.fill("input[name=arrived]", "09:30")
    assert page.get_attribute("input[name=arrived]", "type") == "time"
    slider = page.locator("input[name=score]")
    assert slider.get_attribute("type") == "range"
    slider.fill("4")
    assert page.locator("[data-field=score] output").inner_text() == "4"
    page.check("input[name=consent]")

    # The counties follow the province: Guiyang only for Guizhou.
    county = lambda name: page.locator(f"input[name=county][value={name}]")  # noqa: E731
    assert county("km").is_hidden() and county("gy").is_hidden()
    page.check("input[name=province][value=gz]")
    assert county("gy").is_visible() and county("km").is_hidden()
    page.check("input[name=county][value=gy]")
    page.check("input[name=province][value=yn]")  # the county chosen is no longer offered: cleared
    assert county("gy").is_hidden() and not county("gy").is_checked()
    page.check("input[name=county][value=dl]")

    # Rank: Guizhou moved above Yunnan; a route of two points; a date and time; a typed barcode;
    # audio is left to ODK Collect, and said so.
    page.click("[data-field=order] li[data-choice=gz] [data-action=rank-up]")
    assert page.input_value("input[name=order]") == "gz yn"
    page.click("[data-field=path] [data-action=add-point]")
    page.wait_for_function("() => document.querySelector('input[name=path]').value.includes('25.04')")
    page.click("[data-field=path] [data-action=add-point]")
    page.wait_for_function("() => JSON.parse(document.querySelector('input[name=path]').value || '[]').length === 2")
    page.fill("input[name=next_visit]", "2026-01-05T14:30")
    page.fill("input[name=code]", "6901234567892")
    assert page.locator("[data-field=voice] [data-unsupported=audio]").is_visible()

    # A repeat inside a repeat: two plots, the second with two checks.
    page.click("[data-action=add-repeat][data-repeat=plots]")
    page.fill("input[name='plots.0.plot_name']", "东坡")
    page.click("[data-action=add-repeat][data-repeat='plots.0.visits']")
    page.fill("input[name='plots.0.visits.0.pests']", "3")
    page.click("[data-action=add-repeat][data-repeat=plots]")
    page.fill("input[name='plots.1.plot_name']", "西坡")
    page.click("[data-action=add-repeat][data-repeat='plots.1.visits']")
    page.fill("input[name='plots.1.visits.0.pests']", "0")
    page.click("[data-action=add-repeat][data-repeat='plots.1.visits']")
    page.fill("input[name='plots.1.visits.1.pests']", "12")

    submit(page)
    wait_pending(page, 0)

    client = Client(xls_server.url)
    client.login("super", PASSWORD)
    subs = [s for s in server_submissions(client, "v1-0001") if s["form"] == "xls_types"]
    assert len(subs) == 1, subs
    body = server_submission(client, subs[0]["uuid"])
    assert body["complete"] is True
    answers = body["answers"]
    assert answers["arrived"] == "09:30:00"
    assert answers["score"] == 4
    assert answers["consent"] == "OK"
    assert (answers["province"], answers["county"]) == ("yn", "dl")
    assert answers["village_note"] == "无"
    assert answers["order"] == ["gz", "yn"]
    assert answers["path"] == [{"lat": 25.04, "lon": 102.71, "accuracy": 8}] * 2
    assert answers["next_visit"].startswith("2026-01-05T14:30:00") and answers["next_visit"][19] in "+-Z"
    assert answers["code"] == "6901234567892"
    assert "voice" not in answers
    assert answers["plots"] == [{"plot_name": "东坡", "visits": [{"pests": 3}]},
                                {"plot_name": "西坡", "visits": [{"pests": 0}, {"pests": 12}]}]
    assert answers["device"].startswith("jiedui:")
    assert answers["day"] == answers["started"][:10]
    assert answers["started"] <= answers["ended"]
    assert page.script_errors == []
