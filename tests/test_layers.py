"""The layering rule of DESIGN, read from the code: views -> record owners (and services) -> store.

The tree says where a rule lives (docs/architecture.md draws it):
- server/web/       blueprints: check access, parse, call owners or services, render; never the store
- server/services/  work across owners (roster, stats, exports, backup, demo, publishing); no Flask
- server/records/   one owner per record kind; the only modules that name a table or a partition
- server/forms/     form definitions; server/printing/ the printing service; server/core/ the bottom
- server/store/     the store seam (get_store) and the two stores; the only importer of TinyDB. It
                    names no record: the layout it is opened with (records/layout.py) does
- server/cli/       click commands: a thin layer, like the views
"""

import ast
import io
import pathlib
import re
import tokenize

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
TABLES = {"households", "submissions", "users", "villages", "audit", "clashes", "history", "reviews",
          "summaries"}
STORE_CALLS = {"get", "put", "search", "count", "delete"}
# Who may import the store seam: the factory, the owners, services, the printing service, commands.
STORE_IMPORTERS = ("__init__.py", "records/", "services/", "printing/", "cli/", "store/")
# What a view may take from the store: the errors it turns into 503 answers, nothing that reaches data.
STORE_ERRORS = {"StoreUnavailable", "PartitionUnavailable", "RETRY_AFTER_SECONDS", "StoreLocked",
                "SchemaTooNew"}
HTTP_OR_CLI = ("flask", "flask_login", "click")


def _modules(under=SERVER):
    return [p for p in sorted(under.rglob("*.py")) if "__pycache__" not in p.parts]


def _rel(path):
    return path.relative_to(SERVER).as_posix()


def _imports(path, root=SERVER):
    """(line, module, names) for every import of a module, absolute or relative, resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ["server"] + list(path.relative_to(root).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, set()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module, {a.name for a in node.names}


def _store_import_offences(root=SERVER):
    offences = []
    for path in _modules(root):
        rel = path.relative_to(root).as_posix()
        if rel == "__init__.py" or rel.startswith(STORE_IMPORTERS[1:]):
            continue
        for line, module, names in _imports(path, root):
            reaches = module == "server.store" or module.startswith("server.store.")
            if module == "server" and "store" in names:
                reaches, names = True, {"get_store"}
            if reaches and not (names and names <= STORE_ERRORS):
                offences.append(f"{rel}:{line} imports {module} {sorted(names)}")
    return offences


def _http_in_domain_offences(root=SERVER):
    offences = []
    for layer in ("records", "services"):
        for path in _modules(root / layer):
            for line, module, _names in _imports(path, root):
                top = module.split(".")[0]
                http = top in HTTP_OR_CLI or (top == "werkzeug" and module != "werkzeug.security")
                if http or module.startswith("server.web") or module.startswith("server.cli"):
                    offences.append(f"{path.relative_to(root).as_posix()}:{line} imports {module}")
    return offences


def test_no_view_printing_page_or_form_module_reaches_the_store():
    """Views, forms and core ask owners and services; only they (and commands) hold the store."""
    assert _store_import_offences() == []


def test_records_and_services_know_nothing_of_http_or_click():
    assert _http_in_domain_offences() == []


def test_core_is_the_bottom_layer():
    """core/ is imported by everything, so it imports none of the layers above it."""
    offences = []
    for path in _modules(SERVER / "core"):
        for line, module, _names in _imports(path):
            if module.startswith("server.") and not module.startswith("server.core"):
                offences.append(f"core/{path.name}:{line} imports {module}")
    assert offences == []


def test_only_owners_and_the_store_name_tables_or_partitions():
    offences = []
    for path in _modules():
        rel = _rel(path)
        if rel.startswith("records/") or rel.startswith("store/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and "store" in node.module:
                if "CORE" in {a.name for a in node.names}:
                    offences.append(f"{rel}:{node.lineno} imports CORE")
            if isinstance(node, ast.Name) and node.id == "CORE":
                offences.append(f"{rel}:{node.lineno} names CORE")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in STORE_CALLS and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in TABLES):
                offences.append(f"{rel}:{node.lineno} calls .{node.func.attr}(..., "
                                f"{node.args[1].value!r}) on the store")
    assert offences == []


def test_nothing_but_the_store_imports_tinydb():
    for path in _modules():
        if _rel(path).startswith("store/"):
            continue
        for _line, module, _names in _imports(path):
            assert module.split(".")[0] != "tinydb", path


def test_the_rules_catch_each_leak_they_name(tmp_path):
    """The checks above are not vacuous: a copy of the tree with each leak the layout move closed
    (a view, an admin page and the printing routes reaching the store; a service with a click
    command) is refused by them."""
    tree = tmp_path / "server"
    for sub in ("web/admin", "services", "records", "core"):
        (tree / sub).mkdir(parents=True)
    (tree / "web" / "dashboard.py").write_text("from server.store import get_store\n")
    (tree / "web" / "admin" / "backup.py").write_text("from ...store import get_store\n")
    (tree / "web" / "printing.py").write_text("def f():\n    from server.store import open_readonly\n")
    (tree / "web" / "errors.py").write_text("from server.store import StoreUnavailable\n")
    (tree / "services" / "roster.py").write_text("import click\nfrom flask import current_app\n")
    (tree / "records" / "users.py").write_text("from werkzeug.security import check_password_hash\n")
    stores = _store_import_offences(tree)
    assert [o.split(":")[0] for o in stores] == ["web/admin/backup.py", "web/dashboard.py",
                                                 "web/printing.py"]
    assert [o.split(" imports ")[1] for o in _http_in_domain_offences(tree)] == ["click", "flask"]


def test_form_definitions_and_the_store_import_no_layer_above_them():
    """forms/ and store/ sit under the owners: what they need from a service (a workbook's caps,
    say) belongs in core/."""
    offences = []
    for layer in ("forms", "store"):
        for path in _modules(SERVER / layer):
            for line, module, _names in _imports(path):
                if module.startswith(("server.services", "server.web", "server.cli", "server.printing",
                                      "server.records")):
                    offences.append(f"{layer}/{path.name}:{line} imports {module}")
    assert offences == []


def _domain_names():
    """The names the records layer's layout gives the store: its global tables and their key
    fields, its record families ("submissions", "uuid", "audit")."""
    from server.records.layout import LAYOUT
    return set(LAYOUT.global_keys) | set(LAYOUT.global_keys.values()) | set(LAYOUT.families)


def _domain_name_offences(root=SERVER, names=None):
    """Where server/store/ names one of the domain's records in its code: a string (an f-string's
    text too), a name, an attribute, an argument or a comment. Docstrings may, as examples."""
    words = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names or _domain_names()))) + r")\b")
    offences = []
    for path in _modules(root / "store"):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(text, str(path))
        docstrings = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    docstrings.add(id(body[0].value))
        for node in ast.walk(tree):
            found = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found.append(node.value)
            elif isinstance(node, ast.Name):
                found.append(node.id)
            elif isinstance(node, ast.Attribute):
                found.append(node.attr)
            elif isinstance(node, ast.arg):
                found.append(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append(node.name)
            for value in found:
                if words.search(value):
                    offences.append(f"{rel}:{node.lineno} names {words.search(value).group(1)!r}")
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and words.search(token.string):
                offences.append(f"{rel}:{token.start[0]} names {words.search(token.string).group(1)!r} "
                                f"in a comment")
    return sorted(offences)


def test_the_store_names_no_record_of_the_domain():
    """The store is told where records live (a StoreLayout from records/layout.py, passed in by
    whoever opens it): it never names the domain's tables, key fields or families itself."""
    assert _domain_names() >= {"submissions", "uuid", "audit"}
    assert _domain_name_offences() == []


def test_the_domain_name_rule_catches_a_leak_and_spares_docstrings(tmp_path):
    store = tmp_path / "server" / "store"
    store.mkdir(parents=True)
    (store / "ok.py").write_text('"""Keys such as a submission\'s uuid; families like "audit.20260501"."""\n'
                                 'def f(layout):\n    """e.g. audit/20260501.json"""\n'
                                 '    return layout.families\n')
    (store / "leaks.py").write_text('GLOBAL = ("submissions",)\n'
                                    'def f(doc, uuid):\n    return f"audit.{doc}"  # by uuid\n')
    assert _domain_name_offences(tmp_path / "server") == [
        "store/leaks.py:1 names 'submissions'", "store/leaks.py:2 names 'uuid'",
        "store/leaks.py:3 names 'audit'", "store/leaks.py:3 names 'uuid' in a comment"]
