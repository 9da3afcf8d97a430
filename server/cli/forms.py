"""`flask --app server form import FILE.xlsx [--publish]`: an XLSForm (or YAML) form checked as
/admin/forms checks it, and published with --publish. Prints {"id", "version", "published",
"notes"}; refused: exit status 1 and {"errors": [{"sheet", "row", "column", "zh", "en"}]}, and
nothing is written. CSV files a select_one_from_file names are read from beside the workbook."""

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from server.forms import xlsform
from server.forms.wording import en_of, zh_of
from server.services import form_publish


class _Beside(Mapping):
    """The files beside the workbook, read only when the form names one (no paths, no '..')."""

    def __init__(self, folder):
        self.folder = folder

    def __getitem__(self, name):
        if "/" in name or "\\" in name or name.startswith("."):
            raise KeyError(name)
        path = self.folder / name
        if not path.is_file():
            raise KeyError(name)
        with path.open("rb") as f:
            return f.read(xlsform.MAX_CSV_BYTES + 1)

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __iter__(self):
        return iter(p.name for p in self.folder.iterdir() if p.is_file())

    def __len__(self):
        return sum(1 for _ in self)


def _errors(checked):
    """Every refusal in the XLSForm error shape (the version rules' too)."""
    if checked.get("errors"):
        return checked["errors"]
    out = []
    for field, message in checked.get("problems") or []:
        sheet, column = ("settings", "version") if field == "version" else (None, field)
        out.append({"sheet": sheet, "row": None, "column": column, "zh": zh_of(message),
                    "en": en_of(message)})
    return out


def _print(doc):
    click.echo(json.dumps(doc, ensure_ascii=False, indent=1))


@click.group("form")
def form_group():
    """表单 / forms: import an XLSForm (or YAML) file."""


@form_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--publish", is_flag=True, help="Publish it (otherwise only check it).")
@with_appcontext
def form_import(path, publish):
    """Check FILE.xlsx (or .xls, .yaml) as /admin/forms does; --publish serves it."""
    path = Path(path)
    app = current_app._get_current_object()
    with path.open("rb") as f:
        data = f.read(xlsform.MAX_BYTES + 1)
    attachments = _Beside(path.parent)
    if publish:
        from server.records import audit
        from server.store import open_for_command
        with open_for_command(app, page="/admin/forms") as store:
            checked, _registry = form_publish.publish(app, data, filename=path.name, attachments=attachments)
            if checked["ok"]:
                from server.forms import formdefs
                sha = formdefs.registry(app).sha256(checked["form_id"], checked["version"])
                store.write(lambda tx: audit.record(tx, "cli", "form_publish", checked["form_id"],
                                                    {"version": checked["version"],
                                                     "previous": checked["previous"], "sha256": sha}))
    else:
        checked = form_publish.check(app, data, path.name, attachments)
    if not checked["ok"]:
        _print({"errors": _errors(checked)})
        sys.exit(1)
    _print({"id": checked["form_id"], "version": checked["version"], "published": bool(publish),
            "notes": checked.get("notes") or []})
