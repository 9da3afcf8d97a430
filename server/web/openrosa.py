"""OpenRosa 1.0 for ODK Collect and Enketo (views). Two ways in, the same routes under each:
- `/openrosa/key/<token>/…`: a device token (records/devices.py), as Collect's server URL;
- `/openrosa/…`: Basic auth with the user's own name and password, over HTTPS only (or from this
  machine), never over plain HTTP where the password would travel in clear.
No cookies and no session here, so the CSRF check does not apply (auth.check_csrf skips /openrosa/).
Every answer is OpenRosa XML with `X-OpenRosa-Version: 1.0`; the rules live in services/openrosa.py.
"""

import ipaddress

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.exceptions import HTTPException

from server.core import images
from server.core.i18n import tr
from server.core.problems import HTTP_TEXTS, Problem
from server.forms import formdefs, xform
from server.records import devices, users
from server.services import openrosa
from server.web.auth import User, throttle

bp = Blueprint("openrosa", __name__, url_prefix="/openrosa")
XML = "text/xml; charset=utf-8"
MULTIPART_MARGIN = 256 * 1024


def accept_bytes(app=None):
    """The largest submission Collect should send in one request (instance and files together):
    the body limit every request has (MAX_CONTENT_LENGTH, which waitress and nginx enforce too),
    less room for the multipart framing. Collect sends a larger submission in parts."""
    config = (app or current_app).config
    return config.get("OPENROSA_MAX_BYTES") or config["MAX_CONTENT_LENGTH"] - MULTIPART_MARGIN


def _xml(data, status=200, headers=None):
    return Response(data, status=status, content_type=XML, headers=headers or {})


def _is_loopback(address):
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _basic_user():
    """The account named by Basic auth, over HTTPS or from this machine only."""
    if not request.is_secure and not _is_loopback(request.remote_addr):
        raise Problem("basic_needs_https")
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise Problem("login_required")
    username = users.normalise_username(auth.username)
    doc = users.get(username) if username else None
    attempt, wait = throttle().begin(request.remote_addr, username, known=doc is not None)
    if attempt is None:
        raise Problem("too_many_attempts", wait=wait, extra={"retry_after": wait})
    if username is None or not users.check_password(doc, auth.password or ""):
        attempt.failed()
        raise Problem("bad_login")
    attempt.succeeded()
    if not users.is_active(doc):
        raise Problem("account_inactive")
    return User(doc)


def _user(token):
    if token is None:
        return _basic_user()
    doc = devices.resolve(token)
    if doc is None:
        raise Problem("device_unknown")
    return User(doc)


def _url(endpoint, token, **values):
    """A link under the same way in the request came by (token or Basic)."""
    if token is None:
        return url_for(f"openrosa.{endpoint}", _external=True, **values)
    return url_for(f"openrosa.key_{endpoint}", token=token, _external=True, **values)


def _definition(form_id, version):
    definition = formdefs.registry().get(form_id, version)
    if definition is None:
        raise Problem("form_not_found")
    return definition


# ---- the views (each registered twice: with a token, and for Basic auth) ------------------------


def form_list(token=None):
    _user(token)
    registry = formdefs.registry()
    wanted = request.args.get("formID")
    entries = []
    for current in registry.current():
        if wanted and current["id"] != wanted:
            continue
        definition = registry.get(current["id"], current["version"])
        try:
            data = xform.xform_bytes(definition)
        except xform.XFormError as e:  # one form that cannot be an XForm leaves the others listed
            current_app.logger.warning("not listed for OpenRosa: %s", e)
            continue
        entries.append({
            "id": definition["id"], "name": tr(definition["title"]["zh"], definition["title"]["en"]),
            "version": str(definition["version"]), "hash": xform.md5_hash(data),
            "download": _url("form", token, form_id=definition["id"], version=definition["version"]),
            "manifest": _url("manifest", token, form_id=definition["id"], version=definition["version"])})
    return _xml(openrosa.form_list(entries))


def form(form_id, version, token=None):
    _user(token)
    try:
        return _xml(xform.xform_bytes(_definition(form_id, version)))
    except xform.XFormError as e:
        current_app.logger.warning("no XForm: %s", e)
        raise Problem("form_not_found") from None


def manifest(form_id, version, token=None):
    user = _user(token)
    _definition(form_id, version)
    data = openrosa.households_csv(user)
    return _xml(openrosa.manifest([{
        "filename": xform.HOUSEHOLDS_MEDIA, "hash": xform.md5_hash(data),
        "download": _url("media", token, form_id=form_id, version=version)}]))


def media(form_id, version, token=None):
    user = _user(token)
    _definition(form_id, version)
    return Response(openrosa.households_csv(user), content_type="text/csv; charset=utf-8")


def submission(token=None):
    user = _user(token)
    if request.method == "HEAD":
        return Response(status=204)
    request.max_content_length = accept_bytes() + MULTIPART_MARGIN
    upload = request.files.get("xml_submission_file")
    if upload is None:
        raise Problem("openrosa_no_instance")
    config = current_app.config
    limit = config["MAX_ATTACHMENT_BYTES"]
    xml_data = upload.stream.read(openrosa.MAX_XML_BYTES + 1)
    files = [((f.filename or key).rsplit("/", 1)[-1], f.stream.read(limit + 1))
             for key, f in request.files.items(multi=True) if key != "xml_submission_file"]
    status, zh, en = openrosa.submit(
        user, xml_data, files, formdefs.registry(), formdefs.served_settings(current_app),
        max_attachment_bytes=limit, max_pixels=config.get("IMAGE_MAX_PIXELS", images.MAX_PIXELS),
        files_dir=config["FILES_DIR"], incomplete=request.form.get("*isIncomplete*") == "yes")
    return _xml(openrosa.response(tr(zh, en), nature="submit_success"), status)


for rule, view, methods in (("formList", form_list, ["GET"]),
                            ("forms/<form_id>/<int:version>.xml", form, ["GET"]),
                            ("forms/<form_id>/<int:version>/manifest", manifest, ["GET"]),
                            ("forms/<form_id>/<int:version>/households.csv", media, ["GET"]),
                            ("submission", submission, ["HEAD", "POST"])):
    name = view.__name__
    bp.add_url_rule(f"/{rule}", name, view, methods=methods)
    bp.add_url_rule(f"/key/<token>/{rule}", f"key_{name}", view, methods=methods)


# ---- every answer: OpenRosa headers, errors as OpenRosa XML --------------------------------------


@bp.after_app_request
def _openrosa_headers(resp):
    """On every answer under /openrosa/, a 404 or 405 of the router's too."""
    if not request.path.startswith("/openrosa/"):
        return resp
    resp.headers["X-OpenRosa-Version"] = "1.0"
    if request.endpoint and request.endpoint.endswith("submission"):
        resp.headers["X-OpenRosa-Accept-Content-Length"] = str(accept_bytes())
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _error(status, zh, en, basic=False):
    headers = {"WWW-Authenticate": 'Basic realm="Jiedui", charset="UTF-8"'} if basic else {}
    return _xml(openrosa.response(tr(zh, en)), status, headers)


@bp.errorhandler(Problem)
def _problem(p):
    basic = p.status == 401 and (request.view_args or {}).get("token") is None
    headers = {"Retry-After": str(p.extra["retry_after"])} if "retry_after" in p.extra else {}
    resp = _error(p.status, p.zh, p.en, basic=basic)
    resp.headers.update(headers)
    return resp


@bp.errorhandler(HTTPException)
def _http(e):
    _code, zh, en = HTTP_TEXTS.get(e.code, ("error", e.name, e.name))
    return _error(e.code, zh, en)


