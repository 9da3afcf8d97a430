"""The layering rule of DESIGN, read from the code: views -> record owners -> store. Only the record
owners (server/records/) and the store name a table or a partition; nothing else reaches TinyDB."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
TABLES = {"households", "submissions", "users", "villages", "audit", "clashes", "history", "reviews",
          "summaries"}
STORE_CALLS = {"get", "put", "search", "count", "delete"}


def _owner_or_store(path):
    rel = path.relative_to(SERVER).as_posix()
    return rel.startswith("records/") or rel.startswith("store")


def _modules():
    return [p for p in sorted(SERVER.rglob("*.py")) if "__pycache__" not in p.parts]


def test_only_owners_and_the_store_name_tables_or_partitions():
    offences = []
    for path in _modules():
        if _owner_or_store(path):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith("store"):
                names = {a.name for a in node.names}
                if "CORE" in names:
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} imports CORE")
            if isinstance(node, ast.Name) and node.id == "CORE":
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} names CORE")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in STORE_CALLS and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in TABLES):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} calls "
                                f".{node.func.attr}(..., {node.args[1].value!r}) on the store")
    assert offences == []


def test_nothing_but_the_store_imports_tinydb():
    for path in _modules():
        if path.relative_to(SERVER).as_posix().startswith("store"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "tinydb" for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "tinydb", path


def test_record_owners_know_nothing_of_http():
    for path in sorted((SERVER / "records").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for m in modules:
                    http = m.split(".")[0] in ("flask", "flask_login") or \
                        (m.startswith("werkzeug") and m != "werkzeug.security")
                    assert not http, f"{path.relative_to(ROOT)} imports {m}"
