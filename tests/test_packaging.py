"""Packaging (pyproject.toml): `jiedui` is `flask --app server`; the declared dependencies cover what
server/ imports and the locks pin them; an installed copy (no checkout around it) finds its forms and
phone app inside the package and keeps its data in ./data."""

import ast
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions

import click
from click.testing import CliRunner
from flask.cli import ScriptInfo
from flask.cli import cli as flask_cli
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from server.__main__ import _create_app
from server.__main__ import cli as jiedui_cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def _commands(help_text):
    """The command names of a click group's --help."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return [m.group(1) for m in re.finditer(r"^  (\S+)", section, re.M)]


def _tree(group, ctx):
    """{command: ([its options], {subcommand: ...})}, read from the click objects themselves."""
    out = {}
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        params = sorted((p.name, tuple(p.opts), tuple(p.secondary_opts)) for p in cmd.params)
        sub = {}
        if isinstance(cmd, click.Group):
            with click.Context(cmd, parent=ctx) as sub_ctx:
                sub = _tree(cmd, sub_ctx)
        out[name] = (params, sub)
    return out


def test_jiedui_help_lists_the_commands_of_flask_app_server(tmp_path, monkeypatch):
    monkeypatch.setenv("JIEDUI_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    ours = runner.invoke(jiedui_cli, ["--help"], prog_name="jiedui")
    flasks = runner.invoke(flask_cli, ["--app", "server", "--help"], prog_name="flask")
    assert ours.exit_code == 0, ours.output
    assert flasks.exit_code == 0, flasks.output
    assert "init" in _commands(ours.output) and "serve" in _commands(ours.output)
    assert _commands(ours.output) == _commands(flasks.output)
    assert "-A, --app" not in ours.output  # the app is fixed: an --app there would be ignored


def test_every_command_and_subcommand_takes_the_same_options_as_under_flask(tmp_path, monkeypatch):
    monkeypatch.setenv("JIEDUI_DATA_DIR", str(tmp_path / "data"))
    # Each context is closed: FlaskGroup pushes an app context tied to it, which would otherwise stay
    # current for every later test (a command run by a test's CliRunner would then use this app).
    with click.Context(jiedui_cli, obj=ScriptInfo(create_app=_create_app)) as ctx:
        ours = _tree(jiedui_cli, ctx)
    with click.Context(flask_cli, obj=ScriptInfo(app_import_path="server")) as ctx:
        flasks = _tree(flask_cli, ctx)
    assert "user" in ours and ours["user"][1], "the user group and its subcommands"
    assert ours == flasks


def test_the_console_script_is_the_cli_and_python_m_server_runs_it(tmp_path):
    module, _, attr = PROJECT["scripts"]["jiedui"].partition(":")
    assert (module, attr) == ("server.__main__", "main")
    env = dict(os.environ, JIEDUI_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "server", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _commands(done.stdout) == _commands(CliRunner().invoke(
        jiedui_cli, ["--help"], env={"JIEDUI_DATA_DIR": str(tmp_path / "data")}).output)


# --- dependencies -------------------------------------------------------------------------------

def _imports():
    """Top-level names of every absolute import in server/ (lazy ones inside functions too)."""
    names = {}
    for path in sorted((ROOT / "server").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found = [node.module]
            else:
                continue
            for name in found:
                names.setdefault(name.split(".")[0], path.relative_to(ROOT).as_posix())
    return {n: where for n, where in names.items() if n not in sys.stdlib_module_names and n != "server"}


def _names(requirements):
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_runtime_dependencies_cover_every_third_party_import_in_server():
    dists = packages_distributions()
    runtime = _names(PROJECT["dependencies"])
    postgres = _names(PROJECT["optional-dependencies"]["postgres"])
    missing = []
    for name, where in sorted(_imports().items()):
        provided = {canonicalize_name(d) for d in dists.get(name, [])}
        if not provided:
            missing.append(f"{name} (imported in {where}) is not installed: no distribution to map it to")
        elif not provided & (runtime | postgres):
            missing.append(f"{name} (imported in {where}) comes from {sorted(provided)}, which "
                           f"pyproject.toml's dependencies do not name")
        elif not provided & runtime and name not in ("psycopg", "psycopg_pool"):
            missing.append(f"{name} (imported in {where}) is only in an extra")
    assert not missing, "\n".join(missing)


def test_the_tinydb_server_starts_without_the_postgres_extra(tmp_path):
    """psycopg is imported only when JIEDUI_DATABASE_URL asks for PostgreSQL."""
    script = ("import sys; from server import create_app; "
              f"app = create_app({{'DATA_DIR': {str(tmp_path / 'data')!r}}}); "
              "app.test_client().get('/api/v1/csrf'); "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _pins(lock):
    pins = {}
    for line in (ROOT / lock).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{lock}: {line!r} is not pinned exactly"
            assert canonicalize_name(name) not in pins, f"{lock}: {name} twice"
            pins[canonicalize_name(name)] = version
    return pins


def test_the_locks_pin_every_declared_dependency_within_its_bounds():
    runtime_lock, test_lock = _pins("requirements.lock"), _pins("requirements-test.lock")
    assert not runtime_lock.keys() & test_lock.keys(), "a package pinned in both locks"
    assert "-r requirements.lock" in (ROOT / "requirements-test.lock").read_text(encoding="utf-8")
    extras = PROJECT["optional-dependencies"]
    checks = [(r, runtime_lock) for r in PROJECT["dependencies"] + extras["postgres"]]
    checks += [(r, {**runtime_lock, **test_lock}) for r in extras["test"]]
    wrong = []
    for text, pins in checks:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name == "jiedui":
            continue
        if name not in pins:
            wrong.append(f"{req.name} is not pinned")
        elif not req.specifier.contains(pins[name], prereleases=True):
            wrong.append(f"{req.name}=={pins[name]} is outside {req.specifier}")
        wrong += [f"{req.name}[{x}]: {d} is not pinned" for x in req.extras
                  for d in {"binary": ["psycopg-binary"]}.get(x, []) if d not in pins]
    assert not wrong, "\n".join(wrong)
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert "-r requirements-test.lock" in requirements and "-e .[test]" in requirements


# --- an installed copy --------------------------------------------------------------------------

def test_an_installed_copy_serves_its_bundled_forms_and_app_and_keeps_data_in_the_cwd(tmp_path):
    """The wheel's layout, as pyproject.toml's force-include builds it: server/ with forms/ and
    static/ under server/_assets/, and no checkout around it."""
    force = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "server", site / "server", ignore=shutil.ignore_patterns("__pycache__"))
    for source, target in force.items():
        shutil.copytree(ROOT / source, site / target)
    work = tmp_path / "work"
    work.mkdir()
    script = (
        "import json; from server import create_app; app = create_app(); c = app.test_client(); "
        "print(json.dumps([app.config['DATA_DIR'], app.config['FORMS_DIR'], app.config['STATIC_APP_DIR'], "
        "c.get('/app/').status_code, c.get('/app/js/app.js').status_code, "
        "c.get('/app/manifest.webmanifest').status_code]))")
    env = {k: v for k, v in os.environ.items() if k not in ("JIEDUI_DATA_DIR", "JIEDUI_FILES_DIR")}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data_dir, forms_dir, static_dir, *codes = json.loads(done.stdout.strip().splitlines()[-1])
    assert data_dir == str(work / "data")
    assert forms_dir == str(site / "server" / "_assets" / "forms")
    assert static_dir == str(site / "server" / "_assets" / "static")
    assert codes == [200, 200, 200]
    assert not (site / "data").exists()
