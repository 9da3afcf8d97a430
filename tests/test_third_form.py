"""Forms are data: a third form dropped into the forms folder is served, validated and applied to
the household by what its file declares, with no Python or JS change (issue 10)."""

import pathlib
import shutil

import pytest

from server import create_app
from server.store import close_app_store, get_store
from tests.conftest import Api, seed_world
from tests.helpers import app_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
LECTURE = ROOT / "tests" / "fixtures" / "pv_lecture.yaml"


@pytest.fixture
def api(tmp_path):
    forms = tmp_path / "forms"
    shutil.copytree(ROOT / "forms", forms)
    shutil.copy(LECTURE, forms / "pv_lecture.yaml")
    app = create_app(app_config(str(tmp_path / "data"), FORMS_DIR=str(forms)))
    with app.app_context():
        seed_world(get_store())
    yield Api(app.test_client())
    close_app_store(app)


def item(answers, uuid="5a0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"):
    return {"uuid": uuid, "form": "pv_lecture", "form_version": 1, "household_id": "v1-0002",
            "created_at": "2026-05-04T10:00:00+08:00", "answers": answers, "base_version": 1}


def test_the_third_form_is_served_to_phones(api):
    api.login("cadre1")
    forms = {f["id"]: f["version"] for f in api.get("/api/v1/bootstrap").get_json()["forms"]}
    assert forms == {"household_visit": 3, "land_ledger": 1, "pv_enrollment": 2, "pv_lecture": 1}
    definition = api.get("/api/v1/forms/pv_lecture").get_json()
    assert definition["title"]["zh"] == "光伏政策宣讲签到"
    assert [f["name"] for f in definition["fields"]] == ["lecture_date", "attended", "who_attended",
                                                          "questions"]


def test_the_third_form_is_validated_like_any_other(api):
    api.login("cadre1")
    r = api.post("/api/v1/submissions", {"submissions": [item({"attended": "yes"})]})
    result = r.get_json()["results"][0]
    assert result["status"] == "rejected"
    assert {e["field"] for e in result["errors"]} == {"lecture_date", "who_attended"}
    assert api.get("/api/v1/households/v1-0002").get_json()["version"] == 1


def test_the_third_form_updates_the_household_as_its_file_declares(api):
    api.login("cadre1")
    answers = {"lecture_date": "2026-05-03", "attended": "yes", "who_attended": "张v12",
               "questions": "补贴什么时候到账？"}
    result = api.post("/api/v1/submissions", {"submissions": [item(answers)]}).get_json()["results"][0]
    assert result["status"] == "created"
    household = api.get("/api/v1/households/v1-0002").get_json()
    assert household["pv_status"] == {"lecture_attended": "yes", "lecture_date": "2026-05-03",
                                      "capacity_kw": None, "expected_kwh_year": None,
                                      "funding_mode": None, "updated_at": "2026-05-04T10:00:00+08:00"}
    assert household["version"] == 2
    assert household["last_visit_date"] is None  # it declares no visit date: not a visit
    stored = api.get(f"/api/v1/submissions/{item({})['uuid']}").get_json()
    assert stored["answers"]["questions"] == "补贴什么时候到账？"
