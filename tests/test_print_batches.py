"""Prints an office files: a batch opens with a cover and an index of the page each household
starts on; a cadre prints "my households", anyone in scope one group; a profile lists the help
given with amounts and ends with the sign-off block, read back from the PDFs as text."""

import io
import re
import subprocess

from pypdf import PdfReader

from server.printing import print_jobs
from tests.helpers import login, push, visit2


def pdf_pages(pdf_bytes):
    reader = PdfReader(io.BytesIO(pdf_bytes))
    return [re.sub(r"\s+", "", p.extract_text() or "") for p in reader.pages]


def pdftotext(pdf_bytes, *pages):
    span = ["-f", str(pages[0]), "-l", str(pages[-1])] if pages else []
    out = subprocess.run(["pdftotext", "-layout", *span, "-", "-"], input=pdf_bytes, capture_output=True,
                         check=True)
    return out.stdout.decode("utf-8")


def print_batch(api, village="v1", **body):
    r = api.post(f"/villages/{village}/print-jobs", dict({"lang": "zh"}, **body))
    assert r.status_code == 202, r.get_json()
    job = r.get_json()
    print_jobs.wait(job["id"], timeout=300)
    status = api.get(job["status_url"]).get_json()
    assert status["state"] == "done", status
    return status, api.get(status["download_url"]).data


def move_to_group(admin, hid, group):
    base = admin.get(f"/api/v1/households/{hid}").get_json()["version"]
    assert admin.put(f"/api/v1/households/{hid}", json={"base_version": base,
                                                         "changes": {"group": group}}).status_code == 200


def test_a_village_batch_opens_with_a_cover_and_an_index_of_start_pages(app):
    cadre = login(app.test_client(), "cadre1")
    status, pdf = print_batch(cadre)
    pages = pdf_pages(pdf)
    assert "青石村" in pages[0] and "长寿镇" in pages[0] and "户数3" in pages[0]
    index = pdftotext(pdf, 2)
    assert "目录" in index
    starts = {hid: int(n) for hid, n in re.findall(r"(v1-000\d)\s+1组\s+(\d+)\s*$", index, re.M)}
    assert set(starts) == {"v1-0001", "v1-0002", "v1-0003"}
    for hid, page in starts.items():  # the index points at the page where that profile starts
        assert hid in pages[page - 1] and "结对帮扶一户一档" in pages[page - 1]
    assert sorted(starts.values())[0] == 3  # after the cover and the index


def test_a_cadre_prints_their_own_households_and_a_group(app):
    admin = login(app.test_client(), "admin")
    move_to_group(admin, "v1-0003", "2组")
    cadre = login(app.test_client(), "cadre1")
    page = cadre.get("/villages/v1/print?scope=mine").get_data(as_text=True)
    assert 'data-action="print-mine"' in page and "我的结对户 3 户" in page and "2组" in page
    status, pdf = print_batch(cadre, group="1组")
    assert status["total"] == 2 and status["scope"] == "1组"
    text = "".join(pdf_pages(pdf))
    assert "v1-0001" in text and "v1-0002" in text and "v1-0003" not in text
    status, _pdf = print_batch(cadre, scope="mine")
    assert status["total"] == 3 and "李干部" in status["scope"]
    supervisor = login(app.test_client(), "super")  # paired with nobody
    r = supervisor.post("/villages/v1/print-jobs", {"scope": "mine"})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_parameter"
    assert supervisor.post("/villages/v1/print-jobs", {"group": "9组"}).status_code == 400
    assert supervisor.post("/villages/v1/print-jobs", {"scope": "theirs"}).status_code == 400
    assert supervisor.post("/villages/v1/print-jobs", {"group": "1组\n"}).status_code == 400
    status, _pdf = print_batch(supervisor, group="2组")
    assert status["total"] == 1


def test_a_profile_lists_the_help_with_amounts_and_ends_with_the_sign_off(app):
    cadre = login(app.test_client(), "cadre1")
    push(cadre, visit2("v1-0001", visit_date="2026-05-01",
                       help_given=[{"product": "土鸡蛋", "quantity": 120, "unit": "个", "price": 1.2},
                                   {"product": "蜂蜜", "quantity": 2, "unit": "斤", "price": 60}]))
    pdf = cadre.get("/households/v1-0001/profile.pdf").data
    text = pdftotext(pdf)
    assert "消费帮扶明细" in text and "土鸡蛋" in text and "144.00" in text and "120.00" in text
    assert "264.00" in text  # the total
    for words in ("户主签字", "帮扶干部签字", "村委会（盖章）"):
        assert words in text
    last = pdf_pages(pdf)[-1]
    assert "户主签字" in last


def test_a_short_profile_keeps_its_sign_off_on_its_one_page(app):
    cadre = login(app.test_client(), "cadre1")
    pdf = cadre.get("/households/v1-0002/profile.pdf").data
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1 and "户主签字" in pdftotext(pdf)
