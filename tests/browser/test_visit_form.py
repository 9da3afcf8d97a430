"""A cadre fills a whole household visit on the phone (members repeat, photo, signature), submits
and syncs; the server holds exactly that visit, its files, and the household's new member list.
Also: the phone's own checks show next to the field, and the PV form computes its output live."""

from tests.browser.phone_steps import (VISIT_DATE, add_member, add_photo, check, fill, log_in, open_new_form, open_page, open_section, press_sync, server_household, server_submission, server_submissions, show, sign, small_jpeg, submit, wait_pending)

MEMBERS = [
    {"name": "张青山", "relation": "户主", "sex": "male", "birth_year": 1968},
    {"name": "张小禾", "relation": "孙女", "sex": "female", "birth_year": 2024},
]


def test_visit_with_members_photo_and_signature_reaches_the_server(server, launch_phone, server_client, tmp_path):
    page = open_page(launch_phone("cadre1"))
    log_in(page, server.url, "cadre1")
    open_new_form(page, server.url, "v1-0001", "household_visit")

    # Nothing filled: submit is refused on the phone, the reason beside the field, nothing queued.
    page.click("[data-action=submit]")
    date_error = page.locator("#f-visit_date .field-error")
    date_error.wait_for(state="visible")
    assert date_error.inner_text().strip()
    assert page.locator("#f-visit_date").get_attribute("class").count("has-error") == 1
    assert "#/outbox" not in page.url

    page.fill("input[name=visit_date]", VISIT_DATE)
    page.locator("#f-visit_date .field-error").wait_for(state="hidden")
    check(page, "visit_type", "home")
    fill(page, "present", "户主本人、孙女")
    check(page, "topics", "income_jobs")
    check(page, "topics", "pv")
    show(page, "family_changes")
    assert page.locator("#f-members").is_hidden()  # only relevant when the family changed
    check(page, "family_changes", "birth")
    page.locator("#f-members").wait_for(state="visible")
    add_member(page, 0, MEMBERS[0])
    add_member(page, 1, {**MEMBERS[1], "birth_year": None})  # the year is left out for now
    check(page, "risk", "no")
    # consumption help (form version 3): the buyer channel is an optional choice in each entry
    open_section(page, "section_help")  # an empty repeat has no input to find its section by
    page.click("[data-action=add-repeat][data-repeat=help_given]")
    page.fill("input[name='help_given.0.product']", "蜂蜜")
    page.fill("input[name='help_given.0.quantity']", "5")
    page.fill("input[name='help_given.0.unit']", "斤")
    page.fill("input[name='help_given.0.price']", "60")
    channel = page.locator("#f-help_given-0-channel")
    assert "购买渠道" in channel.inner_text() and "单位食堂采购" in channel.inner_text()
    page.check("input[name='help_given.0.channel'][value=canteen]")
    page.click("[data-action=add-repeat][data-repeat=help_given]")  # a second entry, no channel
    page.fill("input[name='help_given.1.product']", "红薯")
    page.fill("input[name='help_given.1.quantity']", "20")
    page.fill("input[name='help_given.1.unit']", "斤")
    page.fill("input[name='help_given.1.price']", "1.5")
    add_photo(page, "photo_1", small_jpeg(tmp_path / "visit.jpg"))
    sign(page)

    # The missing year inside the repeat is named beside that very input (its section opens).
    page.click("[data-action=submit]")
    year_error = page.locator("#f-members-1-birth_year .field-error")
    year_error.wait_for(state="visible")
    assert year_error.inner_text().strip()
    assert page.locator("#f-members-0-birth_year .field-error").is_hidden()
    assert "#/outbox" not in page.url
    page.fill("input[name='members.1.birth_year']", str(MEMBERS[1]["birth_year"]))
    year_error.wait_for(state="hidden")

    submit(page)  # queued; submitting starts a sync, and the cadre may press the button too
    press_sync(page)
    wait_pending(page, 0)
    assert page.get_attribute("#sync-status", "data-refused") == "0"

    subs = server_submissions(server_client, "v1-0001")
    assert len(subs) == 1
    sub = server_submission(server_client, subs[0]["uuid"])
    answers = sub["answers"]
    assert sub["form"] == "household_visit" and sub["cadre_id"] == "cadre1" and sub["form_version"] == 3
    assert answers["help_given"] == [
        {"product": "蜂蜜", "quantity": 5, "unit": "斤", "price": 60, "channel": "canteen"},
        {"product": "红薯", "quantity": 20, "unit": "斤", "price": 1.5}]
    assert answers["visit_date"] == VISIT_DATE
    assert answers["visit_type"] == "home"
    assert sorted(answers["topics"]) == ["income_jobs", "pv"]
    assert answers["family_changes"] == ["birth"]
    assert [(m["name"], m["relation"], m["sex"], m["birth_year"]) for m in answers["members"]] == [
        (m["name"], m["relation"], m["sex"], m["birth_year"]) for m in MEMBERS]
    attachments = {a["name"]: a for a in sub["attachments"]}
    assert set(attachments) == {answers["photo_1"], answers["signature"]}
    assert all(a["received"] for a in attachments.values())
    assert attachments[answers["photo_1"]]["type"] == "image/jpeg"
    assert attachments[answers["signature"]]["type"] == "image/png"
    assert sub["complete"] is True

    household = server_household(server_client, "v1-0001")
    assert [m["name"] for m in household["members"]] == [m["name"] for m in MEMBERS]
    assert household["version"] == 2
    assert page.script_errors == []


def test_pv_form_computes_the_yearly_output_live(server, launch_phone):
    page = open_page(launch_phone("cadre1"))
    log_in(page, server.url, "cadre1")
    open_new_form(page, server.url, "v1-0002", "pv_enrollment")
    output = page.locator("input[name=expected_kwh_year]")
    assert output.is_hidden()  # relevant only once the household consents
    check(page, "interested", "yes")
    check(page, "consent", "yes")
    show(page, "expected_kwh_year")
    output.wait_for(state="visible")
    page.fill("input[name=capacity_kw]", "8.5")
    assert output.input_value() == "9350"  # 8.5 kW x 1100 kWh per kW (the server's setting)
    page.fill("input[name=capacity_kw]", "10")
    assert output.input_value() == "11000"
    page.fill("input[name=capacity_kw]", "")
    assert output.input_value() == ""
    assert page.script_errors == []
