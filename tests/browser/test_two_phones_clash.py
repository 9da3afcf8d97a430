"""Two phones, both offline, both change the same household's member list from the same version.
When they sync, the server keeps both visits; the later member list is applied and the clash is
recorded as a hard one for a supervisor (shown on the household page), never silently lost."""

from tests.browser.phone_steps import (fill_visit, log_in, open_new_form, open_page, press_sync, server_household, server_submissions, submit, wait_pending, wait_service_worker)

HOUSEHOLD = "v1-0002"
MEMBERS_A = [
    {"name": "张v12", "relation": "户主", "sex": "male", "birth_year": 1970},
    {"name": "张小满", "relation": "孙子", "sex": "male", "birth_year": 2025},
]
MEMBERS_B = [
    {"name": "张v12", "relation": "户主", "sex": "male", "birth_year": 1970},
    {"name": "李桂英", "relation": "配偶", "sex": "female", "birth_year": 1972},
    {"name": "张小雨", "relation": "孙女", "sex": "female", "birth_year": 2025},
]


def household_page(client):
    status, body = client.call("GET", f"/households/{HOUSEHOLD}")
    assert status == 200
    return body.decode("utf-8")


def test_two_phones_editing_the_same_members_record_a_hard_clash(server, launch_phone, server_client):
    phones = {}
    for name, members in (("a", MEMBERS_A), ("b", MEMBERS_B)):
        ctx = launch_phone(f"phone-{name}")
        page = open_page(ctx)
        log_in(page, server.url, "cadre1")  # both pull the households: v1-0002 at version 1
        assert page.evaluate("""async (id) => { const { getDatabase } = await import('/app/js/db.js');
            return (await getDatabase().get('households', id)).version; }""", HOUSEHOLD) == 1
        wait_service_worker(page)
        ctx.set_offline(True)
        phones[name] = (ctx, page, members)

    for ctx, page, members in phones.values():
        open_new_form(page, server.url, HOUSEHOLD, "household_visit")
        fill_visit(page, topics=("income_jobs",), changes=("birth",), members=members)
        submit(page)
        wait_pending(page, 1)
    assert server_submissions(server_client, HOUSEHOLD) == []

    ctx, page, _ = phones["a"]
    ctx.set_offline(False)  # back online the app syncs by itself; the cadre presses "sync" too
    press_sync(page)
    wait_pending(page, 0)
    household = server_household(server_client, HOUSEHOLD)
    assert household["version"] == 2
    assert [m["name"] for m in household["members"]] == [m["name"] for m in MEMBERS_A]
    assert "严重冲突" not in household_page(server_client)

    ctx, page, _ = phones["b"]
    ctx.set_offline(False)
    press_sync(page)
    wait_pending(page, 0)
    assert page.get_attribute("#sync-status", "data-refused") == "0"

    subs = server_submissions(server_client, HOUSEHOLD)
    assert len(subs) == 2
    assert sorted(len(s["answers"]["members"]) for s in subs) == [2, 3]
    assert [s["base_version"] for s in subs] == [1, 1]  # both made from version 1
    household = server_household(server_client, HOUSEHOLD)
    assert household["version"] == 3
    assert [m["name"] for m in household["members"]] == [m["name"] for m in MEMBERS_B]  # the later one
    html = household_page(server_client)
    assert "严重冲突" in html  # the hard clash is listed for review
    clash_line = html[html.index("严重冲突"):]
    assert "家庭成员" in clash_line[:clash_line.index("</li>")]  # the field by its label
    for ctx, page, _ in phones.values():
        assert page.script_errors == []
