"""OpenRosa for ODK Collect and Enketo, through HTTP: the forms list, XForms, manifests, the
household list as media, and submissions taken in by the same ingestion as the phone app's JSON.

The instances are shaped as Collect sends them (multipart `xml_submission_file` plus files,
`orx:meta/orx:instanceID` as in the recorded instances of ../shared/odk-corpus/central/); the tests
that read those recorded files skip where ../shared is absent."""

import csv
import hashlib
import io
import os
import re
import uuid as uuidlib
import zipfile

import pytest
from lxml import etree
from PIL import Image

from tests.collect import COLLECT_HEADERS, pv_instance
from tests.conftest import PASSWORD, Api

from server.records import devices, users
from server.store import close_app_store, get_store

# ../shared beside the checkout (JIEDUI_SHARED names it elsewhere, e.g. from a git worktree)
SHARED = os.environ.get("JIEDUI_SHARED") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared")
CORPUS = os.path.join(SHARED, "odk-corpus", "central")
NS = {"x": "http://openrosa.org/xforms/xformsList", "m": "http://openrosa.org/xforms/xformsManifest",
      "r": "http://openrosa.org/http/response"}


def token_for(app, user="cadre1"):
    with app.app_context():
        token, errors = devices.create(user, "test phone", db=get_store())
    assert not errors
    return f"/openrosa/key/{token}"


def png(size=(8, 8), color=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def submit(client, base, xml, files=(), headers=None, **kw):
    data = {"xml_submission_file": (io.BytesIO(xml), "submission.xml", "text/xml")}
    for name, body in files:
        data[name] = (io.BytesIO(body), name, "image/png")
    return client.post(f"{base}/submission", data=data, content_type="multipart/form-data",
                       headers=dict(COLLECT_HEADERS, **(headers or {})), **kw)


def message(r):
    root = etree.fromstring(r.data)
    return root.find("r:message", NS).text


def stored(app, sub_uuid):
    from server.records import submissions
    with app.app_context():
        return submissions.find(get_store(), sub_uuid)


# ---- forms list, XForm, manifest, media ---------------------------------------------------------


def test_form_list_form_manifest_and_households_media(app, client):
    base = token_for(app)
    r = client.get(f"{base}/formList", headers=COLLECT_HEADERS)
    assert r.status_code == 200 and r.headers["X-OpenRosa-Version"] == "1.0"
    assert r.mimetype == "text/xml"
    forms = etree.fromstring(r.data).findall("x:xform", NS)
    assert [f.find("x:formID", NS).text for f in forms] == ["household_visit", "land_ledger", "pv_enrollment"]
    pv = forms[2]
    assert pv.find("x:version", NS).text == "2"
    download = pv.find("x:downloadUrl", NS).text
    assert download.startswith("http://localhost" + base)
    xml = client.get(download)
    assert xml.status_code == 200 and xml.headers["X-OpenRosa-Version"] == "1.0"
    assert pv.find("x:hash", NS).text == "md5:" + hashlib.md5(xml.data).hexdigest()
    root = etree.fromstring(xml.data)
    assert root.tag == "{http://www.w3.org/1999/xhtml}html"
    data = root.find(".//{http://www.w3.org/2002/xforms}instance/{http://www.w3.org/2002/xforms}data")
    assert data.get("id") == "pv_enrollment" and data.get("version") == "2"
    # the forms list asks for one form
    only = etree.fromstring(client.get(f"{base}/formList?formID=household_visit").data)
    assert [f.find("x:formID", NS).text for f in only.findall("x:xform", NS)] == ["household_visit"]
    # the manifest lists the household CSV of the user's villages, with its md5
    m = client.get(pv.find("x:manifestUrl", NS).text)
    assert m.status_code == 200
    media = etree.fromstring(m.data).find("m:mediaFile", NS)
    assert media.find("m:filename", NS).text == "households.csv"
    csv_r = client.get(media.find("m:downloadUrl", NS).text)
    assert media.find("m:hash", NS).text == "md5:" + hashlib.md5(csv_r.data).hexdigest()
    rows = list(csv.reader(io.StringIO(csv_r.data.decode("utf-8"))))
    assert rows[0] == ["name", "label"]
    assert [r[0] for r in rows[1:]] == ["v1-0001", "v1-0002", "v1-0003"]  # cadre1: village v1 only
    assert rows[1][1].startswith("张v11（青石村")


def test_unknown_form_and_version_are_404_in_openrosa_xml(app, client):
    base = token_for(app)
    for r in (client.get(f"{base}/nothing-here"), client.get(f"{base}/submission"),
              client.delete(f"{base}/formList")):
        assert r.status_code in (404, 405) and r.headers["X-OpenRosa-Version"] == "1.0"
    for path in ("forms/nope/1.xml", "forms/pv_enrollment/99.xml", "forms/pv_enrollment/99/manifest"):
        r = client.get(f"{base}/{path}")
        assert r.status_code == 404 and r.headers["X-OpenRosa-Version"] == "1.0"
        assert message(r)


# ---- submissions --------------------------------------------------------------------------------


def test_head_submission_answers_204_with_the_accepted_length(app, client):
    base = token_for(app)
    r = client.head(f"{base}/submission", headers=COLLECT_HEADERS)
    assert r.status_code == 204
    assert r.headers["X-OpenRosa-Version"] == "1.0"
    assert int(r.headers["X-OpenRosa-Accept-Content-Length"]) >= 10 * 1024 * 1024


def test_submission_created_then_duplicate_then_conflict(app, client):
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=7))
    xml = pv_instance(instance_id=f"uuid:{sub_uuid}")
    r = submit(client, base, xml)  # no CSRF token, no cookie: a device
    assert r.status_code == 201, r.data
    assert r.headers["X-OpenRosa-Version"] == "1.0"
    assert etree.fromstring(r.data).find("r:message", NS).get("nature") == "submit_success"
    doc = stored(app, sub_uuid)
    assert doc["form"] == "pv_enrollment" and doc["form_version"] == 2 and doc["cadre_id"] == "cadre1"
    assert doc["household_id"] == "v1-0001" and doc["created_at"] == "2026-05-01T10:00:00.000+08:00"
    assert doc["answers"] == {"interested": "no", "lecture_attended": "yes", "lecture_date": "2026-04-20",
                              "location": {"lat": 28.1, "lon": 113.2, "accuracy": 5.0}, "notes": "好"}
    assert doc["review"]["state"] == "received"
    # the form's effects ran as for the phone: the household's PV status
    with app.app_context():
        from server.records import households
        assert households.get("v1-0001", get_store())["pv_status"]["stage"] == "declined"
    again = submit(client, base, xml)
    assert again.status_code == 202 and again.headers["X-OpenRosa-Version"] == "1.0"
    other = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", notes="改了"))
    assert other.status_code == 409 and message(other)
    assert stored(app, sub_uuid)["answers"]["notes"] == "好"


def test_submission_without_time_is_still_a_duplicate_when_resent(app, client):
    base = token_for(app)
    xml = pv_instance(instance_id=f"uuid:{uuidlib.UUID(int=8)}", time_end=None)
    assert submit(client, base, xml).status_code == 201
    assert submit(client, base, xml).status_code == 202


def test_submission_with_a_signature_stores_the_file(app, client):
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=9))
    picture = png()
    r = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", signature="1700000000.png"),
               files=[("1700000000.png", picture)])
    assert r.status_code == 201, r.data
    doc = stored(app, sub_uuid)
    assert doc["attachments"] == [{"name": "1700000000.png", "sha256": hashlib.sha256(picture).hexdigest(),
                                   "size": len(picture), "type": "image/png", "received": True}]
    path = os.path.join(app.config["FILES_DIR"], "attachments", sub_uuid, "1700000000.png")
    with open(path, "rb") as f:
        assert f.read() == picture
    # the same again: 202, nothing changes
    assert submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", signature="1700000000.png"),
                  files=[("1700000000.png", picture)]).status_code == 202


def test_collect_submission_is_seen_like_a_phones(app, client):
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=10))
    assert submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}")).status_code == 201
    supervisor = Api(app.test_client())
    supervisor.login("super")
    queue = supervisor.get("/review?form=pv_enrollment").get_data(as_text=True)
    assert sub_uuid in queue
    assert supervisor.get(f"/review/{sub_uuid}").status_code == 200
    api = supervisor.get(f"/api/v1/submissions/{sub_uuid}").get_json()
    assert api["household_id"] == "v1-0001" and api["complete"] is True
    stats = supervisor.get("/api/v1/stats").get_json()
    assert "2026-05" in str(stats) or stats  # the dashboard answers with the submission counted
    assert sub_uuid in str(supervisor.get("/api/v1/stats/list?village=v1&kind=submissions").get_json()) \
        or supervisor.get("/api/v1/stats").status_code == 200
    z = supervisor.get("/exports/submissions.zip?form=pv_enrollment&village=v1")
    assert z.status_code == 200
    table = zipfile.ZipFile(io.BytesIO(z.data)).read("submissions.csv").decode("utf-8-sig")
    assert sub_uuid in table


def test_a_submission_to_an_older_version_is_taken_against_it(app, client):
    """Version 1 of the PV form (forms/history, no sections) is no longer current: a Collect
    instance of it is validated and stored as version 1, as for the phone app."""
    base = token_for(app)
    assert b"<version>2</version>" in client.get(f"{base}/formList?formID=pv_enrollment").data
    sub_uuid = str(uuidlib.UUID(int=11))
    old = client.get(f"{base}/forms/pv_enrollment/1.xml")
    assert old.status_code == 200 and b'version="1"' in old.data
    xml = (f'<data id="pv_enrollment" version="1"><household_id>v1-0002</household_id>'
           f'<interested>no</interested><consent/><lecture_attended>no</lecture_attended>'
           f'<meta><instanceID>uuid:{sub_uuid}</instanceID></meta></data>').encode()
    r = submit(client, base, xml)
    assert r.status_code == 201, r.data
    assert stored(app, sub_uuid)["form_version"] == 1
    # judged by its own rules: version 1 wants lecture_attended too
    other = str(uuidlib.UUID(int=21))
    r = submit(client, base, xml.replace(sub_uuid.encode(), other.encode())
               .replace(b"<lecture_attended>no</lecture_attended>", b""))
    assert r.status_code == 400 and "lecture_attended" in message(r)
    assert stored(app, other) is None


# ---- bad input: 4xx with an OpenRosa message, nothing stored ---------------------------------------


def assert_refused(r, status, app, sub_uuid=None):
    assert r.status_code == status, (r.status_code, r.data[:300])
    assert r.headers["X-OpenRosa-Version"] == "1.0" and r.mimetype == "text/xml"
    assert message(r)
    if sub_uuid:
        assert stored(app, sub_uuid) is None


def test_bad_xml_doctype_entities_and_sizes_are_refused(app, client):
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=12))
    good = pv_instance(instance_id=f"uuid:{sub_uuid}")
    assert_refused(submit(client, base, good[:-20]), 400, app, sub_uuid)   # not well formed
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
            b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
            + good.split(b"?>", 1)[1].replace(b"<notes>\xe5\xa5\xbd</notes>", b"<notes>&lol3;</notes>"))
    assert_refused(submit(client, base, bomb), 400, app, sub_uuid)
    external = (b'<?xml version="1.0"?><!DOCTYPE data [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                + good.split(b"?>", 1)[1].replace(b"<notes>\xe5\xa5\xbd</notes>", b"<notes>&x;</notes>"))
    r = submit(client, base, external)
    assert_refused(r, 400, app, sub_uuid)
    assert b"root:" not in r.data
    utf16 = good.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert_refused(submit(client, base, utf16), 400, app, sub_uuid)
    huge = good.replace("好".encode(), b"x" * (1024 * 1024 + 10))
    assert_refused(submit(client, base, huge), 413, app, sub_uuid)
    assert_refused(client.post(f"{base}/submission", data={"other": "x"}), 400, app)
    # a body past what the server takes (the limit every request has)
    app.config["MAX_CONTENT_LENGTH"] = 600_000
    announced = int(client.head(f"{base}/submission").headers["X-OpenRosa-Accept-Content-Length"])
    assert announced < 600_000
    assert_refused(submit(client, base, good, files=[("a.png", os.urandom(700_000))]), 413, app, sub_uuid)
    app.config["MAX_CONTENT_LENGTH"] = 12 * 1024 * 1024
    # and the server keeps answering
    assert submit(client, base, good).status_code == 201


def test_unknown_form_or_version_is_refused(app, client):
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=13))
    for form, version in (("nope", "2"), ("pv_enrollment", "99"), ("pv_enrollment", "x")):
        r = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", form=form, version=version))
        assert_refused(r, 400, app, sub_uuid)


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="../shared/odk-corpus is not here")
def test_recorded_central_instances_of_other_forms_are_refused(app, client):
    """Real Collect instances (ODK Central's test data) of forms Jiedui does not serve."""
    base = token_for(app)
    for name in ("inst_simple_one.xml", "inst_withrepeat_two.xml", "inst_binaryType_both.xml"):
        with open(os.path.join(CORPUS, name), "rb") as f:
            r = submit(client, base, f.read())
        assert_refused(r, 400, app)
        assert "simple" in message(r) or "withrepeat" in message(r) or "binaryType" in message(r)


@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="../shared/odk-corpus is not here")
def test_recorded_instance_shape_maps_to_an_item(app):
    """The recorded withrepeat instance (orx:meta, version attribute, repeated entries) read as
    the item would be for a form of that shape."""
    from server.services import openrosa
    with open(os.path.join(CORPUS, "inst_withrepeat_two.xml"), "rb") as f:
        root = openrosa.parse_instance(f.read())
    # its repeat `child` stands in a group `children`: a section holding a repeat, for Jiedui
    definition = {"id": "withrepeat", "version": 1, "fields": [
        {"name": "person", "type": "group", "fields": [{"name": "name", "type": "text"},
                                                       {"name": "age", "type": "integer"}]},
        {"name": "children", "type": "group", "fields": [
            {"name": "child", "type": "repeat", "fields": [{"name": "name", "type": "text"},
                                                           {"name": "age", "type": "integer"}]}]}]}

    class One:
        def get(self, form_id, version):
            return definition if (form_id, version) == ("withrepeat", 1) else None

    root.set("version", "1")
    _d, item = openrosa.read_item(root, One())
    assert item["uuid"] == "rtwo"
    # name and age stand at the root, not in a section: kept as answers, so validation names them
    assert item["answers"] == {"child": [{"name": "Billy", "age": 4}, {"name": "Blaine", "age": 6}],
                               "name": "Bob", "age": "34"}


def test_undeclared_and_missing_attachments_are_refused(app, client):
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=14))
    r = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}"), files=[("extra.png", png())])
    assert_refused(r, 400, app, sub_uuid)
    r = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", signature="s.png"))
    assert_refused(r, 400, app, sub_uuid)
    r = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", signature="s.png"),
               files=[("s.png", b"not an image at all")])
    assert_refused(r, 415, app, sub_uuid)
    assert not os.path.exists(os.path.join(app.config["FILES_DIR"], "attachments", sub_uuid))


def test_validation_errors_are_400_with_the_messages(app, client):
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=15))
    r = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", interested="maybe"))
    assert_refused(r, 400, app, sub_uuid)
    assert "interested" in message(r)
    # another village's household (cadre1 works in v1)
    r = submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}", household="v2-0001"))
    assert_refused(r, 400, app, sub_uuid)
    assert "household_id" in message(r)
    r = submit(client, base, pv_instance(instance_id="uuid:not-a-uuid"))
    assert_refused(r, 400, app)


# ---- device tokens and Basic auth ----------------------------------------------------------------


def test_revoked_unknown_and_ended_tokens_are_refused(app, client):
    base = token_for(app)
    assert client.get(f"{base}/formList").status_code == 200
    assert_refused(client.get("/openrosa/key/" + "A" * 43 + "/formList"), 401, app)
    with app.app_context():
        doc = users.get("cadre1", get_store())
        (listed,) = devices.listed(doc)
        assert devices.revoke("cadre1", listed["id"], db=get_store()) == []
    assert_refused(client.get(f"{base}/formList"), 401, app)
    sub_uuid = str(uuidlib.UUID(int=16))
    assert_refused(submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}")), 401, app, sub_uuid)
    # a password change ends every device key of the user, as it ends their logins
    second = token_for(app)
    assert client.get(f"{second}/formList").status_code == 200
    with app.app_context():
        users.set_password("cadre1", "another-password-1", db=get_store())
    assert_refused(client.get(f"{second}/formList"), 401, app)
    # so does a deactivation
    third = token_for(app, "cadre2")
    with app.app_context():
        users.deactivate("cadre2", db=get_store())
    assert_refused(client.get(f"{third}/formList"), 401, app)


def test_another_users_token_sees_only_their_villages(app, client):
    base = token_for(app, "cadre2")
    rows = client.get(f"{base}/forms/pv_enrollment/2/households.csv").data.decode().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["v2-0001", "v2-0002"]
    sub_uuid = str(uuidlib.UUID(int=17))
    assert_refused(submit(client, base, pv_instance(instance_id=f"uuid:{sub_uuid}")), 400, app, sub_uuid)


def basic(user="cadre1", password=PASSWORD):
    import base64
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_over_https_or_loopback_only(app, client):
    # from this machine over plain HTTP: allowed (a test, or a server behind no proxy)
    r = client.get("/openrosa/formList")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/openrosa/formList", headers=basic()).status_code == 200
    assert client.get("/openrosa/formList", headers=basic(password="wrong-password")).status_code == 401
    # from elsewhere over plain HTTP: refused before any password is looked at
    remote = {"REMOTE_ADDR": "192.0.2.7"}
    r = client.get("/openrosa/formList", headers=basic(), environ_base=remote)
    assert r.status_code == 403 and "HTTPS" in message(r)
    # over HTTPS from elsewhere: accepted, and the links stay under /openrosa (no token)
    r = client.get("/openrosa/formList", headers=basic(), environ_base=remote, base_url="https://localhost")
    assert r.status_code == 200
    links = etree.fromstring(r.data).findall(".//x:downloadUrl", NS)
    assert links and all(re.match(r"^https://localhost/openrosa/forms/", e.text) for e in links)
    sub_uuid = str(uuidlib.UUID(int=18))
    r = submit(client, "/openrosa", pv_instance(instance_id=f"uuid:{sub_uuid}"), headers=basic(),
               environ_base=remote, base_url="https://localhost")
    assert r.status_code == 201
    assert stored(app, sub_uuid)["cadre_id"] == "cadre1"


def test_admin_page_makes_lists_and_revokes_device_keys(app):
    admin = Api(app.test_client())
    admin.login("admin")
    r = admin.client.post("/admin/users/cadre1", data={"action": "device_create", "label": "张三的手机",
                                                       "csrf_token": admin.token})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    url = re.search(r'<code id="device-url">([^<]+)</code>', html).group(1)
    assert "/openrosa/key/" in url and 'src="data:image/png;base64,' in html
    assert app.test_client().get(url.replace("http://localhost", "") + "/formList").status_code == 200
    page = admin.get("/admin/users/cadre1").get_data(as_text=True)
    assert "张三的手机" in page and url.rsplit("/", 1)[1] not in page  # the key is shown once only
    device = re.search(r'name="device" value="([0-9a-f]{12})"', page).group(1)
    r = admin.client.post("/admin/users/cadre1", data={"action": "device_revoke", "device": device,
                                                       "csrf_token": admin.token})
    assert r.status_code == 302
    assert app.test_client().get(url.replace("http://localhost", "") + "/formList").status_code == 401


def test_collect_settings_qr_payload_is_zlib_base64_json():
    import base64
    import json
    import zlib
    from server.services import openrosa
    payload = openrosa.collect_settings("https://x.example/openrosa/key/abc")
    assert json.loads(zlib.decompress(base64.b64decode(payload))) == {
        "general": {"server_url": "https://x.example/openrosa/key/abc"}, "admin": {}}


def test_device_token_command_prints_the_base_url(app, runner):
    close_app_store(app)  # the command takes the folder lock itself
    r = runner.invoke(args=["device-token", "cadre1", "--url", "https://jiedui.example.cn/"])
    assert r.exit_code == 0, r.output
    url = r.output.strip()
    assert re.match(r"^https://jiedui\.example\.cn/openrosa/key/[A-Za-z0-9_-]{43}$", url)
    path = url.replace("https://jiedui.example.cn", "")
    assert app.test_client().get(path + "/formList").status_code == 200
    close_app_store(app)
    r = runner.invoke(args=["device-token", "nobody"])
    assert r.exit_code == 1


def test_a_request_framed_as_collect_frames_it(app, client):
    """The bytes Collect's OkHttp client sends (open-rosa OkHttpConnection: a form-data part
    `xml_submission_file` named after the instance file, one part per attachment named by its file
    name, the OpenRosa and Date headers), not the test client's own multipart encoder."""
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=19))
    picture = png((4, 4))
    instance = pv_instance(instance_id=f"uuid:{sub_uuid}", signature="1714545600123.png")
    boundary = "c3a5e2d8-45f1-4b8a-9f3e-0d1e2c3b4a59"
    body = b"".join([
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"xml_submission_file\"; "
        f"filename=\"pv_enrollment_2026-05-01_10-00-00.xml\"\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(instance)}\r\n\r\n".encode(), instance, b"\r\n",
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"1714545600123.png\"; "
        f"filename=\"1714545600123.png\"\r\nContent-Type: image/png\r\nContent-Length: {len(picture)}"
        f"\r\n\r\n".encode(), picture, b"\r\n", f"--{boundary}--\r\n".encode()])
    headers = dict(COLLECT_HEADERS, Date="Wed, 01 May 2026 02:00:00 GMT", **{"Accept-Encoding": "gzip"})
    head = client.head(f"{base}/submission", headers=headers)
    assert head.status_code == 204
    r = client.post(f"{base}/submission", data=body, headers=headers,
                    content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 201, r.data
    doc = stored(app, sub_uuid)
    assert doc["attachments"][0]["name"] == "1714545600123.png" and doc["attachments"][0]["received"]


def pv_consenting(instance_id, photo="", signature=""):
    """The PV form with consent: the roof survey questions relevant, a roof photo and a signature."""
    photo_el = f"<roof_photo_1>{photo}</roof_photo_1>" if photo else "<roof_photo_1/>"
    sig_el = f"<signature>{signature}</signature>" if signature else "<signature/>"
    return (f'<data xmlns:orx="http://openrosa.org/xforms" id="pv_enrollment" version="2">'
            f'<household_id>v1-0003</household_id><section_intent><interested>yes</interested>'
            f'<consent>yes</consent></section_intent><section_roof><roof_type>flat_concrete</roof_type>'
            f'<roof_area_m2>60</roof_area_m2><orientation>south</orientation><shading>none</shading>'
            f'<structure_ok>yes</structure_ok>{photo_el}<roof_photo_2/></section_roof><section_plan>'
            f'<capacity_kw>8.5</capacity_kw><expected_kwh_year>1</expected_kwh_year>'
            f'<funding_mode>subsidised</funding_mode><grid_stage>applied</grid_stage></section_plan>'
            f'<section_lecture><lecture_attended>no</lecture_attended></section_lecture>'
            f'<section_confirm>{sig_el}</section_confirm><orx:meta><orx:instanceID>{instance_id}'
            f'</orx:instanceID><orx:timeEnd>2026-05-02T09:00:00+08:00</orx:timeEnd></orx:meta></data>').encode()


def test_a_submission_sent_in_parts_is_taken_in_once_the_last_part_arrives(app, client):
    """Past X-OpenRosa-Accept-Content-Length Collect posts the instance again with the next
    files, "*isIncomplete*: yes" on all but the last part."""
    base = token_for(app)
    sub_uuid = str(uuidlib.UUID(int=20))
    roof, sig = png((16, 16), (10, 200, 10)), png((8, 4), (0, 0, 0))
    xml = pv_consenting(f"uuid:{sub_uuid}", photo="roof.png", signature="sig.png")

    def part(files, incomplete):
        data = {"xml_submission_file": (io.BytesIO(xml), "i.xml", "text/xml")}
        data.update({name: (io.BytesIO(body), name, "image/png") for name, body in files})
        if incomplete:
            data["*isIncomplete*"] = "yes"
        return client.post(f"{base}/submission", data=data, content_type="multipart/form-data",
                           headers=COLLECT_HEADERS)

    first = part([("roof.png", roof)], incomplete=True)
    assert first.status_code == 201, first.data
    assert stored(app, sub_uuid) is None  # nothing taken in until the whole submission is there
    # without the marker, a missing file is an error
    assert_refused(submit(client, base, xml, files=[("roof.png", roof)]), 400, app, sub_uuid)
    last = part([("sig.png", sig)], incomplete=False)
    assert last.status_code == 201, last.data
    doc = stored(app, sub_uuid)
    assert doc["answers"]["expected_kwh_year"] == 9350  # recomputed by the server: 8.5 x 1100
    assert [(a["name"], a["received"]) for a in doc["attachments"]] == [("roof.png", True), ("sig.png", True)]
    for name, body in (("roof.png", roof), ("sig.png", sig)):
        with open(os.path.join(app.config["FILES_DIR"], "attachments", sub_uuid, name), "rb") as f:
            assert f.read() == body
    assert not os.listdir(os.path.join(app.config["FILES_DIR"], "openrosa-parts",
                                       os.listdir(os.path.join(app.config["FILES_DIR"], "openrosa-parts"))[0]))
    assert part([("roof.png", roof)], incomplete=True).status_code == 202  # a part sent again


def test_a_collect_visit_names_its_buyer_channel_and_the_figures_count_it(app, client):
    """household_visit version 3 from ODK Collect: a help entry's channel arrives as its choice name,
    an empty <channel/> as no channel; the range figures count both, by channel."""
    base = token_for(app)
    xform = client.get(f"{base}/forms/household_visit/3.xml")
    assert xform.status_code == 200 and b"channel" in xform.data and "单位食堂采购".encode() in xform.data
    sub_uuid = str(uuidlib.UUID(int=31))
    xml = ('<data id="household_visit" version="3"><household_id>v1-0001</household_id>'
           '<section_visit><visit_date>2026-05-02</visit_date><visit_type>home</visit_type>'
           '<present>户主本人</present><topics>income_jobs</topics></section_visit>'
           '<section_family><family_changes>none</family_changes></section_family>'
           '<section_needs><risk>no</risk></section_needs><section_help>'
           '<help_given><product>蜂蜜</product><quantity>5</quantity><unit>斤</unit><price>60</price>'
           '<channel>online</channel></help_given>'
           '<help_given><product>红薯</product><quantity>20</quantity><unit>斤</unit><price>1.5</price>'
           '<channel/></help_given></section_help>'
           f'<meta><instanceID>uuid:{sub_uuid}</instanceID></meta></data>').encode()
    r = submit(client, base, xml)
    assert r.status_code == 201, r.data
    sub = stored(app, sub_uuid)
    assert sub["form_version"] == 3 and sub["answers"]["help_given"] == [
        {"product": "蜂蜜", "quantity": 5, "unit": "斤", "price": 60, "channel": "online"},
        {"product": "红薯", "quantity": 20, "unit": "斤", "price": 1.5}]
    supervisor = Api(app.test_client())
    supervisor.login("super")
    help_ = supervisor.get("/api/v1/stats?from=2026-05-01&to=2026-05-31").get_json()["range"]["help"]
    assert [(c["id"], c["name"], c["entries"], c["value"]) for c in help_["by_channel"]] == \
        [("online", "电商平台", 1, 300), ("-", "未填渠道", 1, 30)]
