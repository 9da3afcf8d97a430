"""The Content-Security-Policy every page sends (issue 9 finding 7) forbids nothing the phone app or
the server pages use: the shell, the service worker, a visit with a photo preview (a blob: image) and a
signature (a canvas), and the batch print page (its script is a file) run without one violation."""

from tests.browser.phone_steps import (add_photo, log_in, open_new_form, open_page, sign, small_jpeg, wait_service_worker)


def violations_of(page):
    found = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    page.evaluate("""() => document.addEventListener('securitypolicyviolation',
        (e) => console.error('Content Security Policy violation: ' + e.violatedDirective))""")
    return found


def test_the_phone_app_and_the_print_page_run_under_the_policy(server, launch_phone, tmp_path):
    page = open_page(launch_phone("cadre1"))
    found = violations_of(page)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    open_new_form(page, server.url, "v1-0001", "household_visit")
    page.check("input[name=visit_type][value=home]")
    add_photo(page, "photo_1", small_jpeg(tmp_path / "p.jpg"))
    sign(page)
    assert page.locator("#f-photo_1 .photo-preview img").evaluate("img => img.naturalWidth") > 0

    page.goto(server.url + "/households/v1-0001")
    page.goto(server.url + "/villages/v1/print")
    page.wait_for_selector("#print-form")
    page.click("[data-action=start-print]")
    page.wait_for_selector("#print-progress:not([hidden])")
    assert page.locator("#print-status").inner_text().strip()
    assert found == [] and page.script_errors == [], (found, page.script_errors)
