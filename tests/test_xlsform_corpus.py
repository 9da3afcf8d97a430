"""Real-world XLSForms (../shared/odk-corpus, see its PROVENANCE.md; none of it is copied into the
project): each either imports, or is refused with a precise message: the sheet, the row and the
column, and the construct named. Skips when the corpus is not beside the checkout."""

import glob
import os

import pytest

from server.forms import formdefs, xlsform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANDIDATES = [os.environ.get("JIEDUI_ODK_CORPUS", ""), os.path.join(ROOT, "..", "shared", "odk-corpus"),
              os.path.join(ROOT, "..", "..", "shared", "odk-corpus")]
CORPUS = next((c for c in CANDIDATES if c and os.path.isdir(c)), None)
FILES = sorted(glob.glob(os.path.join(CORPUS, "*.xls*"))) if CORPUS else []

# What each form does today, and why a refused one is refused (its first reason). A change in the
# reader that takes or refuses a form differently must change this table, on purpose.
EXPECTED = {
    "kobodocs_calculations_constraints_matrix.xlsx": "imported",
    "onadata_childrens_survey_sw.xlsx": "names with dots",
    "onadata_grains.xlsx": "choice names with spaces",
    "onadata_subdistrict_profiling_tool.xlsx": "choice_filter on a text question",
    "onadata_tutorial.xlsx": "imported",
    "pyxform_UCL_Biomass_Plot_Form.xlsx": "curly quotes in expressions",
    "pyxform_widgets.xls": "imported",
    "pyxform_xlsform_spec_test.xlsx": "imported",
    "reach_msna_2024_v11.xlsx": "required T",
    "webforms_all_question_types.xlsx": "geojson file, version with a dash",
    "webforms_socio_economic_survey.xlsx": "bare false, instance()",
    "webforms_whova_form.xlsx": "bare null",
    "xlsformorg_cascading_select.xlsx": "imported",
}
NEEDLES = {
    "names with dots": "'ice.creams'",
    "choice names with spaces": "'foot paths'",
    "choice_filter on a text question": "only select questions take a choice_filter",
    "curly quotes in expressions": "‘other’",
    "required T": "required takes yes or no",
    "geojson file, version with a dash": "cities.geojson",
    "bare false, instance()": "'false' is not a reference",
    "bare null": "'null' is not a reference",
}


def _beside(path):
    folder = os.path.dirname(path)
    out = {}
    for csv_path in glob.glob(os.path.join(folder, "*.csv")):
        with open(csv_path, "rb") as f:
            out[os.path.basename(csv_path)] = f.read()
    return out


@pytest.mark.skipif(not FILES, reason="../shared/odk-corpus is not beside this checkout")
@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_each_real_form_imports_or_is_refused_precisely(path):
    name = os.path.basename(path)
    with open(path, "rb") as f:
        data = f.read()
    expected = EXPECTED.get(name)
    try:
        definition, notes = xlsform.read_xlsform(data, name, _beside(path))
    except xlsform.XLSFormError as exc:
        assert expected not in (None, "imported"), f"{name} refused: {exc.errors[:3]}"
        for e in exc.errors:
            assert set(e) == {"sheet", "row", "column", "zh", "en"} and e["zh"] and e["en"]
            if e["sheet"] in ("survey", "choices"):
                assert e["row"] and e["column"], e    # where exactly
        assert NEEDLES[expected] in exc.errors[0]["en"] + " ".join(x["en"] for x in exc.errors)
        return
    assert expected == "imported", f"{name} imported; the table says {expected}"
    assert formdefs.check_definition(definition, name) == definition
    for note in notes:
        assert note["zh"] and note["en"]


@pytest.mark.skipif(not FILES, reason="../shared/odk-corpus is not beside this checkout")
@pytest.mark.parametrize("path", [p for p in FILES if EXPECTED.get(os.path.basename(p)) == "imported"],
                         ids=[os.path.basename(p) for p in FILES if EXPECTED.get(os.path.basename(p)) == "imported"])
def test_each_imported_real_form_goes_out_again_and_pyxform_converts_it(path):
    from server.forms import xlsform_write
    pyxform = pytest.importorskip("pyxform.xls2xform")
    with open(path, "rb") as f:
        definition, _notes = xlsform.read_xlsform(f.read(), os.path.basename(path), _beside(path))
    data = xlsform_write.write_xlsform(definition)
    assert xlsform.read_xlsform(data, "again.xlsx")[0] == definition
    assert "<h:html" in pyxform.convert(xlsform=data, file_type=".xlsx", warnings=[]).xform
