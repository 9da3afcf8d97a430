# Two commands from a fresh clone: `make run` (serve the demo) and `make test` (the whole suite).
VENV    := .venv
PY      := $(VENV)/bin/python
FLASK   := $(VENV)/bin/flask --app server
APT_RUN := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk
APT_TEST := $(APT_RUN) chromium poppler-utils nodejs postgresql nginx openssl
# Noto Sans CJK SC cut to GB2312 for printing (server/printing/print_font.py): profiles 40% smaller
PRINT_FONT := $(VENV)/share/jiedui/JieduiPrintSans-Regular.otf

.PHONY: run test deps system-deps test-system-deps bench clean-data

# requirements.txt: the locks' pins and the project itself (editable, so .venv/bin/jiedui exists)
$(VENV)/.installed: requirements.txt requirements.lock requirements-test.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

deps: $(VENV)/.installed system-deps $(PRINT_FONT)

# after the Debian packages (it is cut from fonts-noto-cjk); about 20 s, once
$(PRINT_FONT): $(VENV)/.installed server/printing/print_font.py
	$(PY) -m server.printing.print_font $@

# Debian packages, installed only when missing and apt is usable (root, or sudo without a password).
system-deps:
	@sh scripts/apt-ensure.sh $(APT_RUN)

test-system-deps:
	@sh scripts/apt-ensure.sh $(APT_TEST)

run: deps
	$(FLASK) init --demo
	$(FLASK) serve --host 127.0.0.1 --port 5000

# ODK's XForms engine, the judge of the XForms served to Collect (tests/test_xform_engine.py):
# the versions in tests/js/odk/package-lock.json, from the npm registry, once
ODK_ENGINE := tests/js/odk/node_modules/@getodk/xforms-engine/package.json
$(ODK_ENGINE): tests/js/odk/package.json tests/js/odk/package-lock.json
	@command -v npm >/dev/null 2>&1 || sh scripts/apt-ensure.sh npm   # Debian's nodejs comes without it
	npm ci --prefix tests/js/odk --no-audit --no-fund
	touch $@

# pytest-xdist: a worker per core and one more, since tests often wait on a live server, Chromium
# or a killed process (2 cores: 3 workers took 199-215 s where 2 took 221-228 s); TEST_WORKERS=1
# runs it in one process, e.g. to read a failure in order. Every test has its own temp folder,
# server port and PostgreSQL schema, so workers share nothing.
# --dist worksteal: a worker that runs out takes half of another's queue (the default, load, hands
# out a quarter of the suite up front, and one worker sat idle for the last minute).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

# The phone's own tests (node --test tests/js/: 6 s, half of it db.js's real retry schedule) run
# beside pytest; their report follows pytest's, and either failing fails the target.
# Bytecode caches (__pycache__, ignored by git) are written even where the environment asks not to
# (PYTHONDONTWRITEBYTECODE): the suite starts many Python processes (live servers, CLI commands)
# and each compiled server/ afresh; on the live-server tests that was 15% of their CPU.
test: $(VENV)/.installed test-system-deps $(PRINT_FONT) $(ODK_ENGINE)
	js_log=$$(mktemp); node --test --test-reporter=dot tests/js/ >$$js_log 2>&1 & js=$$!; \
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal tests; \
	py_status=$$?; wait $$js; js_status=$$?; \
	echo "node --test tests/js/ (exit $$js_status):"; cat $$js_log; rm -f $$js_log; \
	[ $$py_status -eq 0 ] && [ $$js_status -eq 0 ]

bench: $(VENV)/.installed system-deps $(PRINT_FONT)
	$(PY) bench/store_bench.py
	$(PY) bench/sync_bench.py
	$(PY) bench/print_bench.py
	$(PY) bench/abuse_bench.py
	$(PY) bench/login_timing.py
	$(PY) bench/export_bench.py
	$(PY) bench/stats_bench.py
