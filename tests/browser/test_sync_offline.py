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
