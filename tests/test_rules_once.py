"""Rules written once, seen from where people meet them: a phone number, an id, a control character
are accepted or refused alike on a household, an account, a roster row and a village."""

import pytest

from server.core import ids, phones, text


def put_household(api, hid, changes):
    base = api.get(f"/api/v1/households/{hid}").get_json()["version"]
    return api.put(f"/api/v1/households/{hid}", json={"base_version": base, "changes": changes})


def save_user_phone(api, user_id, phone):
    return api.client.post(f"/admin/users/{user_id}", data={
        "action": "profile", "display_name": "李干部", "role": "cadre", "villages": ["v1"],
        "phone": phone, "unit": "", "csrf_token": api.token})


@pytest.mark.parametrize("typed, stored", [
    ("13800138000", "13800138000"),
    ("１３８００１３８０００", "13800138000"),  # full-width, as a Chinese input method types it
    ("+86 138 0013 8000", "13800138000"),
    ("138-0013-8000", "13800138000"),
])
def test_a_mobile_typed_any_usual_way_is_kept_as_eleven_digits_on_households_and_accounts(
        api, typed, stored):
    api.login("admin")
    assert put_household(api, "v1-0001", {"phone": typed}).status_code == 200
    assert api.get("/api/v1/households/v1-0001").get_json()["phone"] == stored
    assert save_user_phone(api, "cadre1", typed).status_code in (200, 302, 303)
    assert api.get("/admin/users/cadre1").status_code == 200
    from server.records import users
    with api.client.application.app_context():
        assert users.get("cadre1")["phone"] == stored


@pytest.mark.parametrize("typed", ["١٣٨٠٠١٣٨٠٠٠", "1380013800", "23800138000", "138001380000"])
def test_a_number_that_is_not_a_phone_is_refused_on_households_and_accounts_alike(api, typed):
    api.login("admin")
    before = api.get("/api/v1/households/v1-0001").get_json()
    r = put_household(api, "v1-0001", {"phone": typed})
    assert r.status_code == 400
    assert api.get("/api/v1/households/v1-0001").get_json()["version"] == before["version"]
    r = save_user_phone(api, "cadre1", typed)
    assert r.status_code == 400
    from server.records import users
    with api.client.application.app_context():
        assert users.get("cadre1").get("phone", "") == ""


def test_the_phone_rule_is_the_roster_rule():
    from server.services.roster import parse_phone
    for typed in ("１３８００１３８０００", "(0730)5123456", "١٣٨٠٠١٣٨٠٠٠", "", "0730-51234567"):
        assert parse_phone(typed) == phones.normalise(typed)
    assert phones.normalise("0730-5123456", landline=False) is None  # an account keeps a mobile


def test_village_and_household_ids_take_ascii_digits_only():
    assert ids.is_village_id("v1") and not ids.is_village_id("v-1") and not ids.is_village_id("v" * 33)
    assert ids.HOUSEHOLD_ID_RE.match("v1-0001")
    assert not ids.HOUSEHOLD_ID_RE.match("v1-١٢٣٤")  # Arabic-Indic digits are not a household number


def test_an_unknown_village_id_is_refused_the_same_way_on_the_dashboard(api):
    api.login("super")
    assert api.get("/api/v1/stats?village=v%201").status_code == 400
    assert api.get("/api/v1/stats?village=v1").status_code == 200


def test_control_characters_are_refused_in_names_and_kept_out_of_prints():
    assert text.NOT_ONE_LINE_RE.search("青石\n村") and not text.NOT_TEXT_RE.search("第一行\n第二行\t")
    assert text.NOT_TEXT_RE.search("a\x07b") and text.NOT_TEXT_RE.search("a\ud800b")
    assert text.NOT_PRINTABLE_RE.sub("", "a\x00b\x7fc\ufffe") == "abc"


def test_a_comment_with_a_bell_character_is_refused_like_a_household_field(api):
    api.login("admin")
    r = put_household(api, "v1-0001", {"address": "1号\x07"})
    assert r.status_code == 400


def test_every_error_in_the_catalogue_is_one_the_server_can_answer():
    """No dead codes: each catalogued problem is named by some module of the server (or, for the
    injected test fault, by the test app that injects it)."""
    import pathlib
    import re

    from server.core.problems import CATALOGUE
    root = pathlib.Path(__file__).resolve().parent.parent
    sources = [p.read_text(encoding="utf-8") for p in (root / "server").rglob("*.py")
               if p.name != "problems.py"] + [(root / "tests" / "fault_app.py").read_text(encoding="utf-8")]
    sources += [p.read_text(encoding="utf-8") for p in (root / "server" / "templates").rglob("*.html")]
    text = "\n".join(sources)
    unused = [code for code in CATALOGUE if not re.search(rf"[\"']{code}[\"']", text)]
    assert unused == []


def test_the_buyer_channel_question_is_found_by_one_rule_for_figures_and_prints():
    """A help repeat asking both `buyer_channel` and `channel` is read by `channel` (HELP_CHANNELS'
    order, not the form's): effects.help_channel_child, which the figures (checked here) and the
    printed profile both call."""
    from server.forms import effects
    from server.services import figures
    children = [{"name": "product", "type": "text"}, {"name": "buyer_channel", "type": "text"},
                {"name": "channel", "type": "select_one", "choices": []}]
    assert effects.help_channel_child(children)["name"] == "channel"
    assert effects.help_channel_child(children[:2])["name"] == "buyer_channel"
    assert effects.help_channel_child(children[:1]) is None
    definition = {"fields": [{"name": "help_given", "type": "repeat", "fields": children}]}
    assert figures.channel_field(definition, {"repeat": "help_given"})["name"] == "channel"
