"""Publishing a form from the web: check an uploaded YAML file exactly as the loader would at the
next start, then write it into the published-forms folder beside the data (formdefs.published_dir:
never the code's forms/, so a git pull cannot meet it; shared by every app server), archive it, and
swap the app's registry, so the running server serves the new version without a restart and phones
see it in their next bootstrap. The version it replaces stays in the archive, so submissions made
with it still validate.

A file that is not YAML, is too large, breaks the condition language, reuses a version or changes
a served version's content is refused with the loader's message, and nothing changes.

An XLSForm workbook (.xlsx, .xls) goes the same way: server/forms/xlsform.py reads it into a
definition, which is written as YAML and then checked and published like an uploaded YAML file.
"""

import shutil
import tempfile
import threading
from pathlib import Path

import yaml

from server.forms import formdefs, xlsform
from server.core.files import write_atomic
from server.forms.formdefs import FormDefinitionError
from server.forms.wording import said
from server.records import audit
from server.store import get_store

MAX_FORM_BYTES = 256 * 1024
_lock = threading.Lock()


def _problems(exc):
    """A loader error as [(field, message)] lines: the checker's own list when it has one (each
    message carries .zh and .en: server/forms/wording.py; the page shows its language's), else the
    message split at '; '."""
    if exc.problems:
        return [(field, message) for field, message in exc.problems]
    if hasattr(exc.message, "zh"):
        return [(exc.field, exc.message)]
    parts = [p.strip() for p in exc.message.split("; ") if p.strip()] or [exc.message]
    out = []
    for part in parts:
        if part.startswith("field ") and ": " in part:
            field, message = part[len("field "):].split(": ", 1)
            out.append((field, message))
        else:
            out.append((exc.field if len(parts) == 1 else None, part))
    return out


def _current_file(folder, form_id):
    for suffix in (".yaml", ".yml"):
        path = folder / f"{form_id}{suffix}"
        if path.is_file():
            return path
    return None


def is_workbook(data, filename=None):
    name = (filename or "").lower()
    return name.endswith((".xlsx", ".xlsm", ".xls")) or data[:2] == b"PK" or data[:4] == b"\xd0\xcf\x11\xe0"


def _from_workbook(data, filename, attachments, out):
    """The YAML text of an XLSForm's definition, or None with out["errors"] and problems set."""
    try:
        definition, notes = xlsform.read_xlsform(data, filename or "form.xlsx", attachments)
    except xlsform.XLSFormError as exc:
        out["errors"] = exc.errors
        out["problems"] = [(_where(e), said(e["zh"], e["en"])) for e in exc.errors]
        return None
    out["notes"] = notes
    return yaml.safe_dump(definition, allow_unicode=True, sort_keys=False, width=100)


def _where(error):
    parts = [p for p in (error.get("sheet"), f"row {error['row']}" if error.get("row") else None,
                         error.get("column")) if p]
    return " ".join(parts) or None


def check(app, data, filename=None, attachments=None):
    """Check uploaded bytes (a YAML file, or an XLSForm workbook with its CSV attachments):
    {"ok", "problems": [(field, message)], "errors" (XLSForm: [{"sheet", "row", "column", "zh",
    "en"}]), "notes", "definition", "text", "form_id", "version", "previous"} — previous: the
    version served now (None for a new form)."""
    out = {"ok": False, "problems": [], "errors": [], "notes": [], "definition": None, "text": None,
           "form_id": None, "version": None, "previous": None, "xlsform": False}
    if is_workbook(data, filename):
        out["xlsform"] = True
        text = _from_workbook(data, filename, attachments, out)
        if text is None:
            return out
        data = text.encode("utf-8")
    elif len(data) > MAX_FORM_BYTES:
        out["problems"] = [(None, said(f"文件大于 {MAX_FORM_BYTES // 1024} KB",
                                      f"the file is larger than {MAX_FORM_BYTES // 1024} KB"))]
        return out
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        out["problems"] = [(None, said("不是 UTF-8 文本：请把文件存为 UTF-8", "not UTF-8 text: save the file as UTF-8"))]
        return out
    try:
        raw = formdefs.parse_yaml(text)
    except formdefs.YamlRefused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        out["problems"] = [(None, said((f"第 {line} 行：" if line else "") + exc.zh,
                                       (f"line {line}: " if line else "") + exc.en))]
        return out
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where_zh = f"第 {mark.line + 1} 行第 {mark.column + 1} 列：" if mark else ""
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        detail = getattr(exc, 'problem', None) or exc
        out["problems"] = [(None, said(f"不是有效的 YAML：{where_zh}{detail}", f"not valid YAML: {where}{detail}"))]
        return out
    except RecursionError:
        out["problems"] = [(None, said("不是有效的 YAML：嵌套太深", "not valid YAML: nested too deeply"))]
        return out
    form_id = raw.get("id") if isinstance(raw, dict) else None
    try:
        definition = formdefs.check_definition(raw, "upload")
    except FormDefinitionError as exc:
        out["problems"] = _problems(exc)
        return out
    except RecursionError:
        out["problems"] = [(None, said("表单定义嵌套太深", "the definition is nested too deeply"))]
        return out
    form_id, version = definition["id"], definition["version"]
    out.update(definition=definition, text=text, form_id=form_id, version=version)
    registry = formdefs.registry(app)
    previous = registry.versions(form_id)
    served = registry.get(form_id)
    out["previous"] = served["version"] if served else None
    if version in previous:
        same = registry.sha256(form_id, version) == formdefs.definition_sha256(
            formdefs._with_settings(definition, registry.settings))
        out["problems"] = [("version", said(
            f"第 {version} 版已经发布" + ("，内容完全相同：无需发布" if same else
                                       f"，内容不同；请改为第 {max(previous) + 1} 版"),
            f"version {version} is already published"
            + (" with exactly this content: nothing to publish" if same else
               f" with other content; give it version {max(previous) + 1}")))]
        return out
    if previous and version < max(previous):
        out["problems"] = [("version", said(
            f"第 {version} 版比已发布的第 {max(previous)} 版旧；请改为第 {max(previous) + 1} 版",
            f"version {version} is older than version {max(previous)}, "
            f"which is published; give it version {max(previous) + 1}"))]
        return out
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _stage(Path(formdefs.published_dir(app)), Path(tmp), form_id, text)
            formdefs.load_registry(app, write_archive=False, published=tmp)
    except FormDefinitionError as exc:
        out["problems"] = _problems(exc)
        return out
    out["ok"] = True
    return out


def _stage(published, target, form_id, text):
    """A copy of the published-forms folder as it will be after publishing (for a dry run)."""
    if published.is_dir():
        shutil.copytree(published, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
    current = _current_file(target, form_id)
    if current is not None:
        current.unlink()
    (target / f"{form_id}.yaml").write_text(text, encoding="utf-8")


def publish(app, data, actor=None, filename=None, attachments=None):
    """Check, then write and serve: (result of check, registry or None). One at a time. A publish
    by a person (`actor`) is audited here, with the version it replaced and the file's sha256."""
    with _lock:
        checked = check(app, data, filename, attachments)
        if not checked["ok"]:
            return checked, None
        published = Path(formdefs.published_dir(app))
        form_id = checked["form_id"]
        current = _current_file(published, form_id)
        old_text = current.read_text(encoding="utf-8") if current is not None else None
        target = published / f"{form_id}.yaml"
        try:
            write_atomic(target, checked["text"])
            if current is not None and current != target:
                current.unlink()
            registry = formdefs.load_registry(app)
        except (FormDefinitionError, OSError) as exc:
            # Put the folder back as it was: the served version must not change.
            if old_text is not None:
                write_atomic(current, old_text)
                if current != target and target.exists():
                    target.unlink()
            elif target.exists():
                target.unlink()
            checked["ok"] = False
            checked["problems"] = (_problems(exc) if isinstance(exc, FormDefinitionError)
                                   else [(None, said(f"无法写入已发布表单的文件夹：{exc.strerror}",
                                                 f"cannot write the published-forms folder: {exc.strerror}"))])
            return checked, None
        app.extensions["jiedui_forms"] = registry
    if actor is not None:
        version = checked["version"]
        details = {"version": version, "previous": checked["previous"],
                   "sha256": registry.sha256(form_id, version)}
        get_store(app).write(lambda tx: audit.record(tx, actor, "form_publish", form_id, details))
    return checked, registry
