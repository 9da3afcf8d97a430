"""Tapping 同步 with no signal says so on screen at once: nothing can leave, and nothing is lost."""

from tests.browser.phone_steps import STATUS, log_in, open_page, press_sync, wait_service_worker


def test_sync_tapped_offline_says_so(server, launch_phone):
    ctx = launch_phone("sync-offline")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    ctx.set_offline(True)
    press_sync(page)
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    assert "没有网络" in toast.inner_text()
    page.wait_for_selector(f"{STATUS}[data-state=offline]")
    assert "离线" in page.locator(STATUS).inner_text()
    # The status line is read at arm's length: 16 px at least.
    sizes = page.evaluate("""() => [...document.querySelectorAll('#sync-status span')]
        .map((s) => parseFloat(getComputedStyle(s).fontSize))""")
    assert sizes and min(sizes) >= 16
    assert page.script_errors == []


def test_sync_is_disabled_until_the_app_can_act_on_it(server, launch_phone):
    """On slow 3G the shell paints seconds before its modules run: a tap on 同步 then did nothing.
    The button comes disabled and the app enables it once it has started."""
    ctx = launch_phone("sync-not-ready", service_workers="block")
    page = open_page(ctx)
    page.route("**/app/js/app.js", lambda route: route.abort())   # the app never arrives
    page.goto(server.url + "/app/")
    page.wait_for_selector(".splash")
    sync = page.locator("header [data-action=sync]")
    assert sync.is_visible() and sync.is_disabled()
    page.unroute("**/app/js/app.js")
    log_in(page, server.url, "cadre1")                             # the app starts: it is enabled
    assert sync.is_enabled()
    ctx.set_offline(True)
    press_sync(page)
    page.wait_for_selector(f"{STATUS}[data-state=offline]")
