"""A throwaway PostgreSQL cluster for the tests and benches, from Debian's `postgresql` package.

initdb into a temp folder owned by the `postgres` user (run through `runuser` when we are root, as CI
is), a free port, the unix socket in the temp folder and no TCP listener, stopped at the end. Each
test gets its own schema (CREATE SCHEMA is a few ms; the URL's search_path selects it)."""

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg


class PostgresUnavailable(RuntimeError):
    pass


def find_bin():
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise PostgresUnavailable("no PostgreSQL server found (install Debian's `postgresql` package: "
                              "sh scripts/apt-ensure.sh postgresql)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """durable=False turns fsync off (tests: the cluster is never crashed, only app servers are);
    the benches keep the defaults, so a commit costs what it costs in production."""

    def __init__(self, durable=False, max_connections=200):
        self.bin = find_bin()
        self.durable = durable
        self.max_connections = max_connections
        self.root = tempfile.mkdtemp(prefix="jiedui-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.port = free_port()
        self.as_postgres = []
        if os.geteuid() == 0:
            import pwd
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root, but there is no `postgres` user to run "
                                          "the server as") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self._schemas = itertools.count(1)
        self.started = False

    def _run(self, *args, **kw):
        return subprocess.run(self.as_postgres + list(args), check=True, capture_output=True, text=True, **kw)

    def start(self):
        try:
            self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        except subprocess.CalledProcessError as e:
            raise PostgresUnavailable(f"initdb failed: {e.stderr or e.stdout}") from None
        opts = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=''",
                f"-c max_connections={self.max_connections}", "-c shared_buffers=128MB"]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                      "-o", " ".join(opts), "start")
        except subprocess.CalledProcessError as e:
            log = open(self.log).read()[-2000:] if os.path.exists(self.log) else ""
            raise PostgresUnavailable(f"PostgreSQL did not start: {e.stderr or e.stdout}\n{log}") from None
        self.started = True
        return self

    def url(self, dbname="postgres", schema=None):
        url = f"postgresql://postgres@/{dbname}?host={self.root}&port={self.port}"
        if schema:
            url += f"&options=-csearch_path%3D{schema}"
        return url

    def connect(self, dbname="postgres"):
        return psycopg.connect(self.url(dbname), autocommit=True)

    def new_schema(self):
        """A fresh, empty schema and the URL whose search_path is it."""
        name = f"t{os.getpid()}_{next(self._schemas)}"
        with self.connect() as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url(schema=name)

    def new_database(self, name):
        with self.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self):
        if self.started:
            try:
                self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(condition, timeout=10.0, what="condition"):
    """Poll a condition (tests wait on states, never on sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")
