"""What a phone asks for at start: without a PIN, none of the lock's code (lock.js, its screens,
the encryption); a Chinese phone no English texts. The lock's own start is in test_phone_lock.py."""

from tests.browser.phone_steps import log_in, open_page

LOCK_MODULES = ("/app/js/lock.js", "/app/js/lock-screen.js", "/app/js/sealed.js", "/app/js/vault.js")


def test_a_phone_without_a_pin_starts_without_the_locks_code(server, launch_phone):
    ctx = launch_phone("plain")
    page = open_page(ctx)
    asked = []

    def record(request):
        if getattr(request, "service_worker", None) is None:  # the offline shell's download is not the start
            asked.append(request.url.split("?")[0])

    page.on("request", record)
    log_in(page, server.url, "cadre1")
    page.reload()
    page.wait_for_selector(".splash", state="detached")
    modules = [url for url in asked if "/app/js/" in url]
    assert any(url.endswith("/app/js/app.js") for url in modules)
    assert not [url for url in modules if url.endswith(LOCK_MODULES)], modules
    assert not [url for url in modules if url.endswith("/app/js/i18n-en.js")], modules
    assert page.script_errors == []
