"""Image bombs (issue 9 #8): a 13000×13000 PNG of a few hundred KB is refused on upload by its
header, and one already on disk prints as a placeholder, quickly and without decoding it."""

import hashlib
import io
import os

import pytest
from PIL import Image

from server.core import images
from server.records import attachments, submissions
from server.store import get_store
from tests.bombs import png_bomb, scan_bomb
from tests.helpers import new_uuid, pdf_text


def jpeg(size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def peak_rss_reset():
    """Reset this process's peak RSS (Linux: clear_refs 5) so a later peak measures what came after."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS here")


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no VmHWM")


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def visit_with(name, data, mime):
    return {"uuid": new_uuid(), "form": "household_visit", "form_version": 2,
            "household_id": "v1-0001", "created_at": "2026-05-01T10:00:00+08:00",
            "answers": {"visit_date": "2026-05-01", "visit_type": "home", "present": "户主本人",
                        "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no",
                        "photo_1": name},
            "attachments": [{"name": name, "sha256": hashlib.sha256(data).hexdigest(),
                             "size": len(data), "type": mime}]}


def upload(api, item, name, data):
    return api.put(f"/api/v1/submissions/{item['uuid']}/attachments/{name}", data=data,
                   headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest(),
                            "Content-Type": "application/octet-stream"})


def test_the_bomb_is_a_small_file_claiming_169_megapixels():
    bomb = png_bomb()
    assert len(bomb) < 700 * 1024
    assert images.pixel_size(bomb) == (13000, 13000)


def test_a_png_bomb_is_refused_at_upload_by_its_header_without_big_memory(app, api):
    bomb = png_bomb()
    api.login("cadre1")
    item = visit_with("photo_1.png", bomb, "image/png")
    assert api.post("/api/v1/submissions", {"submissions": [item]}).get_json()["results"][0]["status"] == "created"
    base = rss_mb()
    peak_rss_reset()
    r = upload(api, item, "photo_1.png", bomb)
    grew = peak_rss_mb() - base
    assert r.status_code == 413 and r.get_json()["error"] == "image_too_large"
    assert "40" in r.get_json()["message_en"]
    assert grew < 60, f"peak RSS grew {grew:.0f} MB (decoding it whole would take 169 MB)"
    stored = api.get(f"/api/v1/submissions/{item['uuid']}").get_json()
    assert stored["complete"] is False                                  # kept, still waiting
    assert not os.path.exists(os.path.join(app.config["FILES_DIR"], "attachments", item["uuid"],
                                           "photo_1.png"))


def test_undecodable_images_are_refused_and_good_ones_stored(api):
    api.login("cadre1")
    good = jpeg()
    truncated = good[: len(good) // 2]
    for data, expected in ((truncated, 415), (good, 200)):
        item = visit_with("p.jpg", data, "image/jpeg")
        api.post("/api/v1/submissions", {"submissions": [item]})
        r = upload(api, item, "p.jpg", data)
        assert r.status_code == expected, r.get_json()
        if expected == 415:
            assert r.get_json()["error"] == "image_unreadable"
    png = io.BytesIO()
    Image.new("RGBA", (300, 100), (0, 0, 0, 0)).save(png, "PNG")
    broken_png = bytearray(png.getvalue())
    broken_png[60] ^= 0xFF                                                # a checksum no longer holds
    item = visit_with("s.png", bytes(broken_png), "image/png")
    api.post("/api/v1/submissions", {"submissions": [item]})
    assert upload(api, item, "s.png", bytes(broken_png)).status_code == 415


def test_a_bomb_already_on_disk_is_not_decoded_when_shrinking(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb())
    base = rss_mb()
    peak_rss_reset()
    with pytest.raises(images.ImageRefused) as refused:
        images.thumbnail(str(path), 520)
    assert refused.value.reason == "too_large"
    assert peak_rss_mb() - base < 40


def test_a_large_jpeg_within_the_budget_is_decoded_at_a_fraction_of_its_size(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (10, 200, 90)).save(path, "JPEG")     # 24 MP, 72 MB decoded whole
    base = rss_mb()
    peak_rss_reset()
    im = images.thumbnail(str(path), 520)
    assert max(im.size) == 520
    assert peak_rss_mb() - base < 30, "draft() should decode it at 1/8 scale"


def test_a_wide_phone_photo_is_decoded_at_half_size_for_print_and_preview(tmp_path):
    """A 16:9 photo of 1600x900 (the phone's largest) printed 520 px wide needs 800x450 decoded. Asking
    draft() for a 520x520 square decoded it whole (450 < 520), four times the pixels (for a 1280x960
    photo, 21 ms of CPU instead of 6)."""
    from server.core import thumbnails
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (1600, 900), (10, 200, 90)).save(path, "JPEG")
    with Image.open(path) as im:
        im.draft("RGB", images.draft_size(im.size, 520))
        assert im.size == (800, 450)
    assert images.thumbnail(str(path), 520).size == (520, 293)
    # the preview's own budget is checked on what draft() will decode: 800x450 fits, 1600x900 not
    dest = thumbnails.make(str(path), str(tmp_path / "wide_thumb.jpg"), box=480, budget=800 * 450)
    with Image.open(dest) as im:
        assert im.size == (480, 270)


def test_a_bomb_on_disk_prints_with_a_placeholder(app, api):
    """A bomb that reached the attachments folder before the upload check existed."""
    api.login("cadre1")
    bomb = png_bomb()
    item = visit_with("photo_1.png", bomb, "image/png")
    api.post("/api/v1/submissions", {"submissions": [item]})
    with app.app_context():
        doc = submissions.find(get_store(), item["uuid"])
        attachments.store(app.config["FILES_DIR"], doc, "photo_1.png", bomb, get_store())
    r = api.get("/households/v1-0001/profile.pdf")
    assert r.status_code == 200
    text = pdf_text(r.data)
    assert "照片缺失或无法读取" in text


# ---- scan bombs (issue 24 #3): a progressive JPEG is decoded once per scan ------------------------

def progressive(size=(640, 480)):
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "JPEG", progressive=True)
    return out.getvalue()


def test_scans_are_counted_from_the_markers():
    assert images.jpeg_scans(jpeg()) == 1
    assert images.jpeg_scans(progressive()) == 10
    assert images.jpeg_scans(scan_bomb()) == images.MAX_SCANS + 1       # stops counting there
    assert images.jpeg_scans(scan_bomb(), limit=5000) == 1010
    # stray bytes between segments (libjpeg warns, skips them and reads on) do not hide scans
    data = scan_bomb()
    first_sos = data.index(b"\xff\xda")
    sloppy = data[:first_sos] + b"\x00\x17" + data[first_sos:].replace(b"\xff\xda", b"\x17\xff\xda")
    assert images.jpeg_scans(sloppy, limit=5000) == 1010
    with Image.open(io.BytesIO(scan_bomb())) as im:                     # Pillow reads it as a photo
        assert im.size == (1600, 1200) and im.info.get("progressive")


def test_a_scan_bomb_is_refused_at_upload_and_a_normal_progressive_jpeg_is_not(app, api):
    api.login("cadre1")
    bomb = scan_bomb()
    assert len(bomb) < 200 * 1024
    item = visit_with("photo_1.jpg", bomb, "image/jpeg")
    api.post("/api/v1/submissions", {"submissions": [item]})
    r = upload(api, item, "photo_1.jpg", bomb)
    assert r.status_code == 413, r.get_json()
    body = r.get_json()
    assert body["error"] == "image_too_complex"
    assert "JPEG" in body["message_en"] and "渐进式" in body["message_zh"]
    assert api.get(f"/api/v1/submissions/{item['uuid']}").get_json()["complete"] is False
    assert not os.path.exists(os.path.join(app.config["FILES_DIR"], "attachments", item["uuid"],
                                           "photo_1.jpg"))
    fine = progressive()
    item = visit_with("photo_1.jpg", fine, "image/jpeg")
    api.post("/api/v1/submissions", {"submissions": [item]})
    assert upload(api, item, "photo_1.jpg", fine).status_code == 200


def test_a_large_progressive_jpeg_is_refused_before_its_decode(api, monkeypatch):
    """libjpeg holds every coefficient of a progressive picture whatever draft() asks: past
    MAX_PROGRESSIVE_PIXELS it is refused from the header (the budget shrunk here to keep it small)."""
    monkeypatch.setattr(images, "MAX_PROGRESSIVE_PIXELS", 640 * 480 - 1)
    api.login("cadre1")
    data = progressive((640, 480))
    item = visit_with("photo_1.jpg", data, "image/jpeg")
    api.post("/api/v1/submissions", {"submissions": [item]})
    r = upload(api, item, "photo_1.jpg", data)
    assert r.status_code == 413 and r.get_json()["error"] == "image_too_complex"
    baseline = jpeg((640, 480))                                          # a baseline one that size is fine
    item = visit_with("photo_1.jpg", baseline, "image/jpeg")
    api.post("/api/v1/submissions", {"submissions": [item]})
    assert upload(api, item, "photo_1.jpg", baseline).status_code == 200


def _on_disk(app, api, name, data, mime):
    """An attachment that reached the folder before the upload checks existed."""
    api.login("cadre1")
    item = visit_with(name, data, mime)
    api.post("/api/v1/submissions", {"submissions": [item]})
    with app.app_context():
        doc = submissions.find(get_store(), item["uuid"])
        attachments.store(app.config["FILES_DIR"], doc, name, data, get_store())
    return item


def test_a_scan_bomb_on_disk_is_neither_previewed_nor_printed(app, api):
    from tests.helpers import pdf_text
    item = _on_disk(app, api, "photo_1.jpg", scan_bomb(), "image/jpeg")
    r = api.get(f"/api/v1/submissions/{item['uuid']}/attachments/photo_1.jpg?thumb=1")
    assert r.status_code == 413 and r.get_json()["error"] == "image_too_complex"
    with pytest.raises(images.ImageRefused) as refused:
        images.thumbnail(os.path.join(app.config["FILES_DIR"], "attachments", item["uuid"],
                                      "photo_1.jpg"), 520)
    assert refused.value.reason == "too_complex"
    r = api.get("/households/v1-0001/profile.pdf")
    assert r.status_code == 200 and "照片缺失或无法读取" in pdf_text(r.data)


def test_a_preview_never_decodes_a_png_past_its_own_budget(app, api):
    """A 14-megapixel PNG is within the upload budget (40) but a preview of it would hold 56 MB
    while resizing: sixteen at once took the server from 58 MB to 1.2 GB. Previews stop at 12."""
    from server.core import thumbnails
    bomb = png_bomb(4000, 3500)
    item = _on_disk(app, api, "photo_1.png", bomb, "image/png")
    base = rss_mb()
    peak_rss_reset()
    r = api.get(f"/api/v1/submissions/{item['uuid']}/attachments/photo_1.png?thumb=1")
    assert r.status_code == 413 and r.get_json()["error"] == "image_too_large"
    assert str(thumbnails.MAX_DECODE_PIXELS // 1_000_000) in r.get_json()["message_en"]
    assert peak_rss_mb() - base < 30
