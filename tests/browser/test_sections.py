"""A form in sections on a 360 px phone: one section at a time with its progress, next and
previous, a list to jump to any section, every input kept in the page (found by name), saving a
draft from any section, submitting from the last, and an error summary whose links open the
section of the answer to fix and put the cursor in it."""

from tests.browser.phone_steps import (current_section, fill_visit, log_in, open_new_form, open_page, submit, wait_pending)

SECTIONS = ["section_visit", "section_family", "section_income", "section_needs", "section_help",
            "section_promises", "section_record"]


def test_sections_navigate_and_errors_open_their_section(server, launch_phone):
    page = open_page(launch_phone("sections"))
    log_in(page, server.url, "cadre1")
    open_new_form(page, server.url, "v1-0001", "household_visit")

    assert current_section(page) == SECTIONS[0]
    assert page.locator("[data-action=prev-section]").is_disabled()
    assert page.locator(".section-progress").inner_text().startswith("第 1/7")
    # Every section's inputs are in the page; only the shown section's are visible.
    assert page.locator("input[name=visit_date]").is_visible()
    assert page.locator("input[name=income_wages]").count() == 1
    assert page.locator("input[name=income_wages]").is_hidden()

    for i, name in enumerate(SECTIONS[1:], start=2):
        page.click("[data-action=next-section]")
        page.wait_for_selector(f"form.form[data-section={name}]")
        assert page.locator(f"section.form-section[data-section={name}]").is_visible()
        assert page.locator(".section-progress").inner_text().startswith(f"第 {i}/7")
        assert page.locator("[data-action=save-draft]").is_visible()
    assert page.locator("[data-action=next-section]").is_hidden()  # the last section
    assert page.locator("[data-action=submit]").is_visible()
    page.click("[data-action=prev-section]")
    page.wait_for_selector("form.form[data-section=section_promises]")

    # Jump straight to a section from the list of all of them.
    page.click("details.section-menu > summary")
    page.click("[data-action=goto-section][data-section=section_income]")
    page.wait_for_selector("form.form[data-section=section_income]")
    page.fill("input[name=income_wages]", "12000")
    assert page.input_value("input[name=income_total]") == "12000"

    # Submitting with answers missing in other sections: the summary links open them.
    page.click("[data-action=submit]")
    page.wait_for_selector("form.form[data-section=section_visit]")  # the first error's section
    summary = page.locator(".error-summary")
    summary.wait_for(state="visible")
    page.locator(".error-summary button", has_text="是否存在返贫致贫风险").click()
    page.wait_for_selector("form.form[data-section=section_needs]")
    assert page.evaluate("document.activeElement.name") == "risk"
    assert page.locator("[data-action=goto-section][data-section=section_visit]").text_content().endswith("处需修改")

    fill_visit(page)
    submit(page)
    wait_pending(page, 0)
    assert page.script_errors == []
