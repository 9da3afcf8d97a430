"""Photos and signatures of a submission, to people who may see its village (the cadre who sent
it, on a phone fixing a returned visit; supervisors; admins): the file, or `?thumb=1` a cached
JPEG preview, made in the preview lane (server/web/lanes.py) when it is not cached yet. The upload
(PUT on the same address) lives in sync_api.py."""

from flask import current_app, send_file
from flask_login import current_user, login_required
from PIL import UnidentifiedImageError

from server.forms import formdefs
from server.core import thumbnails
from server.web import lanes
from server.web.errors import disk_full
from server.web.parse import choice_arg
from server.core.problems import Problem
from server.records import attachments, submissions
from server.web.review import bp


@bp.get("/api/v1/submissions/<sub_uuid>/attachments/<name>")
@login_required
def attachment(sub_uuid, name):
    if not formdefs.is_safe_attachment_name(name):
        raise Problem("bad_attachment_name")
    thumb = choice_arg("thumb", ("1",)) == "1"
    doc = submissions.get_for(current_user, sub_uuid)
    if doc is None:
        raise Problem("submission_not_found")
    declared = next((a for a in doc.get("attachments") or [] if a["name"] == name), None)
    if declared is None or not declared.get("received"):
        raise Problem("attachment_not_declared" if declared is None else "not_found")
    files_dir = current_app.config["FILES_DIR"]
    path = attachments.path(files_dir, doc["uuid"], name)
    mimetype = declared.get("type") or "application/octet-stream"
    if thumb:
        try:
            dest = thumbnails.path_for(files_dir, doc["uuid"], name)
            if thumbnails.cached(dest):
                path = dest
            else:   # a decode: in the preview lane, so a flood of them holds a few threads at most
                source = path
                path = lanes.run("preview", current_user.id, lambda: thumbnails.make(source, dest))
        except FileNotFoundError:
            raise Problem("not_found") from None
        except thumbnails.TooLarge:
            raise Problem("image_too_large", limit=thumbnails.MAX_DECODE_PIXELS // 1_000_000) from None
        except thumbnails.TooComplex:
            raise Problem("image_too_complex") from None
        except (UnidentifiedImageError, OSError) as e:
            if disk_full(e):
                raise   # no room for the preview: 503 storage_full, not the photo's fault
            raise Problem("attachment_bad_type") from None
        mimetype = "image/jpeg"
    try:
        resp = send_file(path, mimetype=mimetype, etag=f"{declared['sha256']}{'-t' if thumb else ''}",
                         conditional=True, max_age=86400)
    except FileNotFoundError:
        raise Problem("not_found") from None
    resp.headers["Cache-Control"] = "private, max-age=86400"  # never in a shared cache
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
