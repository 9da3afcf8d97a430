"""How long the phone app takes to show its first screen and accept a tap, on a throttled link:
from navigation to the splash replaced and the sync button enabled, a fresh browser profile each
run (the modules come over the network, as at a first visit or after an update), 300 ms of latency
per request, 400 kbps and a 4x slower CPU (Chrome's own throttling, through Playwright and Debian's
Chromium). Steadier than Lighthouse's time to interactive on a shared machine: that one follows
the longest task after the first sync, which CPU contention moves across the 50 ms line; this one
follows what the start-up asks for (how many modules, how many bytes, what waits for what).
Needs a running demo server (`flask --app server init --demo`, then `serve`).

    .venv/bin/python bench/phone_first_screen.py [BASE_URL] [--runs 3] [--lang zh-CN --lang en-US]
"""

import argparse
import statistics

from playwright.sync_api import sync_playwright

READY = """
window.__ready = null;
new MutationObserver(() => {
  if (window.__ready) return;
  const button = document.querySelector("header [data-action=sync]");
  if (button && !button.disabled && !document.querySelector(".splash")) window.__ready = performance.now();
}).observe(document, { subtree: true, childList: true, attributes: true });
"""
LOGIN = """([token, user, password]) => fetch("/login", { method: "POST",
  headers: { "X-CSRFToken": token, "Content-Type": "application/json" },
  body: JSON.stringify({ username: user, password }) })"""


def first_screen(browser, base, lang, user, password):
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, locale=lang)
    try:
        page = ctx.new_page()
        page.goto(base + "/login")
        token = page.evaluate('fetch("/api/v1/csrf").then((r) => r.json()).then((d) => d.csrf_token)')
        page.evaluate(LOGIN, [token, user, password])
        cdp = ctx.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions",
                 {"offline": False, "latency": 300, "downloadThroughput": 50000, "uploadThroughput": 50000})
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
        page.add_init_script(READY)
        page.goto(base + "/app/")
        page.wait_for_selector(".splash", state="detached", timeout=60000)
        page.wait_for_function("() => window.__ready !== null", timeout=60000)
        return page.evaluate("window.__ready")
    finally:
        ctx.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:5000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lang", action="append", help="the browser's language (default: zh-CN and en-US)")
    parser.add_argument("--user", default="liwei")
    parser.add_argument("--password", default="cadre-demo-2026")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"])
        try:
            for lang in args.lang or ["zh-CN", "en-US"]:
                times = [first_screen(browser, args.base, lang, args.user, args.password) for _ in range(args.runs)]
                print(f"{lang}: first screen interactive {' '.join(f'{t / 1000:.2f}' for t in times)} s;"
                      f" median {statistics.median(times) / 1000:.2f} s")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
