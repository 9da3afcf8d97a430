"""The yardstick for a push over HTTP: a small Flask server whose store is SQLite in WAL mode with
synchronous=FULL, doing the job of POST /api/v1/submissions in one transaction (INSERT OR IGNORE on
the uuid), served by waitress like the real server. Standard library + Flask + waitress only.

Same HTTP shape as Jiedui: GET /api/v1/csrf, POST /login (JSON, session cookie), POST
/api/v1/submissions {"submissions": [ITEM, ...]} -> {"results": [{"uuid", "status", "errors"}]}.
Any username logs in with the password "bench" (the benches only compare the push).

    python bench/sqlite_server.py DB_PATH PORT    (the benches start it as a subprocess; `preload`
                                                  fills DB_PATH with earlier visits beforehand)
"""

import json
import secrets
import sqlite3
import sys
import threading

from flask import Flask, jsonify, request, session

SCHEMA = ("CREATE TABLE IF NOT EXISTS submissions (uuid TEXT PRIMARY KEY, household_id TEXT,"
          " village_id TEXT, cadre_id TEXT, received_at TEXT, doc TEXT)")


def connect(path):
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(SCHEMA)
    return db


def create_app(path):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secrets.token_hex(16)
    local = threading.local()

    def db():
        if not hasattr(local, "db"):
            local.db = connect(path)
        return local.db

    @app.get("/api/v1/csrf")
    def csrf():
        session.setdefault("csrf", secrets.token_urlsafe(16))
        return jsonify({"csrf_token": session["csrf"]})

    @app.post("/login")
    def login():
        body = request.get_json(silent=True) or {}
        if body.get("password") != "bench" or request.headers.get("X-CSRFToken") != session.get("csrf"):
            return jsonify({"error": "bad_login"}), 401
        session["user"] = str(body.get("username"))
        return jsonify({"user": {"id": session["user"]}, "csrf_token": session["csrf"]})

    @app.post("/api/v1/submissions")
    def push():
        if "user" not in session:
            return jsonify({"error": "login_required"}), 401
        if request.headers.get("X-CSRFToken") != session.get("csrf"):
            return jsonify({"error": "csrf"}), 400
        body = request.get_json(silent=True)
        items = body.get("submissions") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return jsonify({"error": "bad_body"}), 400
        user = session["user"]
        results = []
        cur = db().cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("uuid"), str):
                    results.append({"uuid": None, "status": "rejected", "errors": [{"field": "uuid"}]})
                    continue
                hid = str(item.get("household_id"))
                cur.execute("INSERT OR IGNORE INTO submissions VALUES (?,?,?,?,datetime('now'),?)",
                            (item["uuid"], hid, hid.split("-")[0], user,
                             json.dumps(item, ensure_ascii=False)))
                results.append({"uuid": item["uuid"], "errors": [],
                                "status": "created" if cur.rowcount == 1 else "duplicate"})
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return jsonify({"results": results})

    return app


def preload(path, docs):
    """Store documents as if pushed earlier: [(uuid, household_id, village_id, doc_json)]."""
    db = connect(path)
    db.execute("BEGIN")
    db.executemany("INSERT OR IGNORE INTO submissions VALUES (?,?,?,'cadre1','2026-05-01',?)", docs)
    db.execute("COMMIT")
    db.close()


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    import waitress
    connect(path).close()
    print(f"sqlite-wal server on {port}", flush=True)
    waitress.serve(create_app(path), host="127.0.0.1", port=port, threads=8, ident="sqlite-wal",
                   _quiet=True)


if __name__ == "__main__":
    main()
