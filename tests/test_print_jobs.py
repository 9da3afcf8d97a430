"""Profiles through the app: the PDF route, the cache, village print jobs and the print CLI."""

import io
import os
import re
import shutil
import subprocess
import zipfile

import pytest
from pypdf import PdfReader

from server.printing import print_jobs
from server.printing import forms_for
from server.printing.jobs import cache_dir, merge_pdfs, print_village
from tests import print_samples as samples
from server.store import get_store


def text_of(pdf_bytes):
    reader = PdfReader(io.BytesIO(pdf_bytes))
    return re.sub(r"\s+", "", "".join(p.extract_text() or "" for p in reader.pages))


def top_bookmarks(reader):
    return [o.title for o in reader.outline if not isinstance(o, list)]


def cached_files(app):
    folder = cache_dir(app.config["FILES_DIR"], "v1")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def add_visit(app, household_id, i=0, photos=()):
    """A received household visit, stored as the sync API would store it."""
    vid = household_id.split("-")[0]
    sub = samples.visit(household_id, i, photos=photos)
    sub.update(village_id=vid, cadre_id="cadre1")
    sub.pop("seq")                                 # the store stamps its own
    for name in photos:
        samples.write_photo(os.path.join(app.config["FILES_DIR"], "attachments", sub["uuid"], name))
    with app.app_context():
        get_store().write(lambda tx: tx.put(vid, "submissions", sub))
    return sub


def print_v1(app, **kw):
    """Village v1 printed as a batch job prints it: (summary, path of the village PDF)."""
    out = os.path.join(app.config["DATA_DIR"], "out.pdf")
    with app.app_context():
        return print_village(get_store(), "v1", out, files_dir=app.config["FILES_DIR"],
                             forms=forms_for(app), lang="zh", mask=True, printed_by="测试", **kw), out


def test_profile_pdf_route_prints_masked_and_reprints_from_cache(app, api):
    add_visit(app, "v1-0001", photos=["photo_1.jpg"])
    assert api.login("cadre1").status_code == 200
    r = api.get("/households/v1-0001/profile.pdf")
    assert r.status_code == 200
    assert r.mimetype == "application/pdf"
    assert r.headers["X-Profile-Cache"] == "miss"
    text = text_of(r.data)
    for expected in ("张v11", "青石村", "李干部", "县农业农村局", "第1次走访", "打印：李干部", "138****8000"):
        assert expected in text, expected
    assert "13800138000" not in text
    first = cached_files(app)
    assert len(first) == 1
    mtime = os.stat(os.path.join(cache_dir(app.config["FILES_DIR"], "v1"), first[0])).st_mtime_ns

    again = api.get("/households/v1-0001/profile.pdf")
    assert again.headers["X-Profile-Cache"] == "hit"
    assert cached_files(app) == first
    assert os.stat(os.path.join(cache_dir(app.config["FILES_DIR"], "v1"), first[0])).st_mtime_ns == mtime
    assert "打印：李干部" in text_of(again.data)

    add_visit(app, "v1-0001", i=1)                 # a new visit: the profile must change
    changed = api.get("/households/v1-0001/profile.pdf")
    assert changed.headers["X-Profile-Cache"] == "miss"
    assert "第2次走访" in text_of(changed.data)
    assert len(cached_files(app)) == 1 and cached_files(app) != first   # the old one evicted


def test_cached_profile_carries_no_print_stamp_and_admins_see_phones(app, api):
    api.login("admin")
    r = api.get("/households/v1-0002/profile.pdf?lang=en")
    assert r.status_code == 200
    text = text_of(r.data)
    assert "13800138000" in text and "Printedby管理员" in text and "Page1of1" in text
    (name,) = cached_files(app)
    with open(os.path.join(cache_dir(app.config["FILES_DIR"], "v1"), name), "rb") as f:
        assert "管理员" not in text_of(f.read())
    assert "_en_u_" in name


def test_profile_pdf_route_refuses_out_of_scope_and_bad_input(app, api, client):
    r = client.get("/households/v1-0001/profile.pdf", headers={"Accept": "application/json"})
    assert r.status_code == 401
    api.login("cadre1")
    assert api.get("/households/v2-0001/profile.pdf").status_code == 404   # another village
    assert api.get("/households/v1-9999/profile.pdf").status_code == 404
    assert api.get("/households/..%2F..%2Fetc/profile.pdf").status_code == 404
    r = api.get("/households/v1-0001/profile.pdf?lang=fr", headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_lang"
    assert cached_files(app) == []


def test_village_print_job_gives_one_pdf_with_a_bookmark_per_household(app, api):
    add_visit(app, "v1-0002", photos=["photo_1.jpg"])
    api.login("cadre1")
    r = api.post("/villages/v1/print-jobs", {"lang": "zh"})
    assert r.status_code == 202
    job = r.get_json()
    assert job["state"] in ("queued", "running", "done") and job["village_id"] == "v1"
    print_jobs.wait(job["id"], timeout=300)

    status = api.get(job["status_url"]).get_json()
    assert (status["state"], status["done"], status["total"]) == ("done", 3, 3)
    pdf = api.get(status["download_url"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.data))
    marks = top_bookmarks(reader)
    assert len(marks) == 3
    assert [m.split("（")[0] for m in marks] == ["张v11", "张v12", "张v13"]
    text = text_of(pdf.data)
    assert text.count("打印：李干部") == len(reader.pages)   # the stamp on every page

    z = api.get(status["zip_url"])
    assert z.status_code == 200
    with zipfile.ZipFile(io.BytesIO(z.data)) as zf:
        names = sorted(zf.namelist())
        assert names == ["v1-0001-张v11.pdf", "v1-0002-张v12.pdf", "v1-0003-张v13.pdf"]
        assert "打印：李干部" in text_of(zf.read(names[0]))

    page = api.get(f"/villages/v1/print?job={job['id']}")
    assert page.status_code == 200
    assert b'id="print-progress"' in page.data and status["download_url"].encode() in page.data


@pytest.mark.parametrize("damage", ["removed", "emptied"])
def test_a_zip_whose_singles_went_from_the_cache_asks_to_print_again(app, api, damage):
    """The ZIP of singles is made at its first download, from the cache. If one has gone since
    (evicted by a newer print) or is unreadable (emptied by a power cut), the answer is 409
    `stale` (print_stale) in JSON, not a server error; the village PDF itself is still there."""
    api.login("cadre1")
    job = api.post("/villages/v1/print-jobs", {"lang": "zh"}).get_json()
    print_jobs.wait(job["id"], timeout=300)
    status = api.get(job["status_url"]).get_json()
    path = os.path.join(cache_dir(app.config["FILES_DIR"], "v1"), cached_files(app)[1])
    if damage == "removed":
        os.remove(path)
    else:
        open(path, "wb").close()
    r = api.get(status["zip_url"], headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.get_json()["error"] == "stale"
    assert api.get(status["download_url"]).status_code == 200


def test_print_jobs_are_scoped_and_csrf_protected(app, api, client):
    api.login("cadre1")
    assert client.post("/villages/v1/print-jobs", data={"lang": "zh"}).status_code == 400  # no token
    assert api.post("/villages/v2/print-jobs", {}).status_code == 404   # not this cadre's village
    assert api.post("/villages/nope/print-jobs", {}).status_code == 404
    assert api.post("/villages/v1/print-jobs", {"lang": "xx"}).status_code == 400
    started = api.post("/villages/v1/print-jobs", {}).get_json()
    print_jobs.wait(started["id"], timeout=300)
    job = api.get(started["status_url"]).get_json()
    assert job["state"] == "done"
    assert api.get(job["download_url"] + "?format=rar").status_code == 400
    assert api.get("/villages/v1/print-jobs/0000000000000000").status_code == 404

    other = type(api)(app.test_client())
    other.login("super")                      # sees the village, but not another user's job
    assert other.get(job["status_url"]).status_code == 404
    assert other.get(job["download_url"]).status_code == 404
    admin = type(api)(app.test_client())
    admin.login("admin")
    assert admin.get(job["download_url"]).status_code == 200


def cached_mtimes(app):
    folder = cache_dir(app.config["FILES_DIR"], "v1")
    return {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in cached_files(app)}


def heads(reader):
    """The household heads of a village PDF's top-level bookmarks, in order."""
    return [b.split("（")[0] for b in top_bookmarks(reader)]


def test_village_reprint_comes_from_cache(app):
    first, out = print_v1(app)
    assert (first["rendered"], first["cache_hits"]) == (3, 0)
    mtimes = cached_mtimes(app)
    seen = []
    second, _ = print_v1(app, progress=lambda d, t: seen.append((d, t)))
    assert (second["rendered"], second["cache_hits"]) == (0, 3)
    assert seen[-1] == (3, 3)
    assert cached_mtimes(app) == mtimes
    assert len(top_bookmarks(PdfReader(out))) == 3


def test_a_village_of_cached_and_changed_households_merges_in_household_order(app):
    """After one household gets a visit, a reprint renders only that one; the others come from the
    cache, and the village PDF still lists the households in order with the new visit in it."""
    print_v1(app)
    add_visit(app, "v1-0002")
    again, out = print_v1(app)
    assert (again["rendered"], again["cache_hits"], again["errors"]) == (1, 2, [])
    reader = PdfReader(out)
    assert heads(reader) == ["张v11", "张v12", "张v13"]
    pages = [re.sub(r"\s+", "", p.extract_text()) for p in reader.pages]
    with_visit = [p for p in pages if "第1次走访" in p]   # later pages carry the id as running head
    assert with_visit and all("v1-0002" in p for p in with_visit)


def test_a_profile_evicted_before_it_is_merged_is_rendered_again(app):
    """Profiles are appended to the village PDF as they come, in household order. One that a
    concurrent print of a newer version evicted from the cache meanwhile is rendered again, not lost
    and not an error."""
    first, _ = print_v1(app)
    evicted = first["paths"][1]

    def evict_when_all_found(done, total):
        if done == total:              # every profile found in the cache, none merged yet
            os.remove(evicted)
    second, out = print_v1(app, progress=evict_when_all_found)
    assert (second["cache_hits"], second["errors"]) == (3, [])
    assert os.path.exists(evicted)
    reader = PdfReader(out)
    assert heads(reader) == ["张v11", "张v12", "张v13"]
    assert "户编号v1-0002" in text_of(reader.stream.getvalue())


def test_a_cached_profile_cut_short_is_rendered_again(app, api):
    """The cache is written without fsync, so a power cut can leave a cached profile empty or cut
    short. A print then renders it afresh, instead of failing until the household changes."""
    assert api.login("cadre1").status_code == 200
    assert api.get("/households/v1-0001/profile.pdf").status_code == 200
    (name,) = cached_files(app)
    path = os.path.join(cache_dir(app.config["FILES_DIR"], "v1"), name)
    open(path, "wb").close()                       # empty, as after a power cut
    r = api.get("/households/v1-0001/profile.pdf")
    assert r.status_code == 200 and r.headers["X-Profile-Cache"] == "miss"
    assert "户编号v1-0001" in text_of(r.data) and os.path.getsize(path) > 1000

    first, _ = print_v1(app)
    cut = first["paths"][2]
    with open(cut, "r+b") as f:
        f.truncate(os.path.getsize(cut) // 2)      # cut in half
    again, out = print_v1(app)
    assert (again["cache_hits"], again["errors"]) == (3, [])
    reader = PdfReader(out)
    assert heads(reader) == ["张v11", "张v12", "张v13"]
    assert "户编号v1-0003" in text_of(reader.stream.getvalue())


def test_a_profile_that_fails_leaves_the_rest_of_the_village(app):
    """One household whose profile cannot be made (here: a record link too long for any QR code,
    which the worker fails on) is reported by id; the village PDF holds the others, in order."""
    link = {"v1-0002": "http://example.test/" + "x" * 5000}
    summary, out = print_v1(app, record_url_for=lambda hid: link.get(hid, f"http://example.test/{hid}"))
    assert [e["household_id"] for e in summary["errors"]] == ["v1-0002"]
    assert summary["rendered"] == 2
    assert heads(PdfReader(out)) == ["张v11", "张v13"]


def test_print_profiles_command_works_while_the_server_holds_the_data(app, runner, tmp_path):
    with app.app_context():
        get_store()                       # the "server" owns the folder lock
    add_visit(app, "v1-0003")
    out = tmp_path / "v1.pdf"
    result = runner.invoke(args=["print-profiles", "--village", "v1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    reader = PdfReader(str(out))
    assert len(top_bookmarks(reader)) == 3
    assert "第1次走访" in text_of(out.read_bytes())

    bad = runner.invoke(args=["print-profiles", "--village", "nope", "-o", str(tmp_path / "x.pdf")])
    assert bad.exit_code != 0 and "Unknown village" in bad.output
    assert not (tmp_path / "x.pdf").exists()


def font_programs(reader):
    """Distinct embedded font programs referenced by the pages (and the stamp they draw)."""
    found = set()
    for page in reader.pages:
        resources = [page["/Resources"]]
        resources += [x.get_object()["/Resources"] for x in (page["/Resources"].get("/XObject") or {}).values()
                      if x.get_object().get("/Subtype") == "/Form"]
        for res in resources:
            for font in (res.get_object().get("/Font") or {}).values():
                font = font.get_object()
                fd = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
                found.add(fd.raw_get("/FontFile3").idnum)
    return found


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="needs poppler's pdftoppm")
def test_batch_shares_one_font_program_and_looks_the_same(app, tmp_path):
    summary, _ = print_v1(app)
    shared, separate = tmp_path / "shared.pdf", tmp_path / "separate.pdf"
    merge_pdfs(summary["paths"], summary["stamp"], str(shared), share=True)
    merge_pdfs(summary["paths"], summary["stamp"], str(separate), share=False)
    assert len(font_programs(PdfReader(str(separate)))) == 4   # three profiles and the stamp
    assert len(font_programs(PdfReader(str(shared)))) == 1
    assert shared.stat().st_size * 2 < separate.stat().st_size
    assert len(top_bookmarks(PdfReader(str(shared)))) == 3
    for name, path in (("a", shared), ("b", separate)):
        subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(tmp_path / name)], check=True)
    pages_a = sorted(tmp_path.glob("a-*.png"))
    assert len(pages_a) == 3
    for a in pages_a:
        b = tmp_path / ("b" + a.name[1:])
        assert a.read_bytes() == b.read_bytes(), a.name   # pixel for pixel the same
