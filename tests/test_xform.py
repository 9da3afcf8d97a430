"""The XForm of a form version (server/forms/xform.py), checked without any ODK tool: its structure
holds together (every bind and control names a node of the instance, every itext reference has a
text in both languages) and conditions become the XPath they mean. ODK's own engine judges the
same XForms in tests/test_xform_engine.py."""

import os

import pytest
from lxml import etree

from server.forms import formdefs, xform

FORMS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "forms")
XF = "http://www.w3.org/2002/xforms"
NS = {"h": "http://www.w3.org/1999/xhtml", "x": XF, "jr": "http://openrosa.org/javarosa"}


def definitions():
    out = []
    for name in sorted(os.listdir(FORMS)):
        if name.endswith(".yaml"):
            out.append(formdefs.load_definition_file(os.path.join(FORMS, name)))
    history = os.path.join(FORMS, "history")
    import yaml
    for name in sorted(os.listdir(history)):
        with open(os.path.join(history, name), encoding="utf-8") as f:
            out.append(formdefs.check_definition(yaml.safe_load(f), name, expected_id=name.split(".")[0]))
    return out


@pytest.mark.parametrize("definition", definitions(), ids=lambda d: f"{d['id']}.{d['version']}")
def test_structure_holds_together(definition):
    data = xform.xform_bytes(definition)
    assert data == xform.to_xml(xform.xform_tree(definition))  # the same bytes every time (the hash)
    root = etree.fromstring(data)
    model = root.find("h:head/x:model", NS)
    instance = model.find("x:instance/x:data", NS)
    assert instance.get("id") == definition["id"] and instance.get("version") == str(definition["version"])

    def exists(path):
        steps = path.strip("/").split("/")
        assert steps[0] == "data", path
        return bool(instance.xpath("/".join(["."] + [f"x:{s}" for s in steps[1:]]), namespaces=NS))

    binds = model.findall("x:bind", NS)
    assert binds and all(exists(b.get("nodeset")) for b in binds)
    refs = [el.get("ref") for el in root.find("h:body", NS).iter() if el.get("ref", "").startswith("/data")]
    assert refs and all(exists(r) for r in refs)
    # every answer field has a control and a bind
    bound = {b.get("nodeset") for b in binds}
    paths = {name: path for name, (path, _k) in xform._Builder(definition).top.items()}
    for field in formdefs.answer_fields(definition):
        if field["type"] != "repeat":
            assert paths[field["name"]] in bound and paths[field["name"]] in refs, field["name"]
    # itext: both languages, zh the default, every reference resolved in each
    translations = model.findall("x:itext/x:translation", NS)
    assert [t.get("lang") for t in translations] == ["中文 (zh)", "English (en)"]
    assert translations[0].get("default") == "true()"
    ids = [{t.get("id") for t in tr.findall("x:text", NS)} for tr in translations]
    assert ids[0] == ids[1]
    used = {v.split("'")[1] for v in root.xpath("//@ref | //@jr:constraintMsg", namespaces=NS)
            if v.startswith("jr:itext(")}
    assert used and used <= ids[0]
    # the household list comes from the CSV media file
    assert model.find("x:instance[@id='households']", NS).get("src") == "jr://file-csv/households.csv"
    assert root.xpath("//x:itemset/@nodeset", namespaces=NS) == ["instance('households')/root/item"]
    # meta
    assert model.find("x:bind[@nodeset='/data/meta/instanceID']", NS).get("calculate") == "concat('uuid:', uuid())"
    # repeats have a template entry
    for field in formdefs.answer_fields(definition):
        if field["type"] == "repeat":
            entry = instance.xpath(f".//x:{field['name']}", namespaces=NS)[0]
            assert entry.get(f"{{{NS['jr']}}}template") == ""


def scope():
    return xform.Scope({"visit_date": ("/data/s/visit_date", "date"), "topics": ("/data/s/topics", "select_multiple"),
                        "risk": ("/data/s/risk", "select_one"), "n": ("/data/s/n", "integer"),
                        "members": ("/data/s/members", "repeat")}, {"due": "date", "name": "text"}, "date")


@pytest.mark.parametrize("cond, expected", [
    ({"field": "risk", "op": "eq", "value": "yes"}, "/data/s/risk = 'yes'"),
    ({"field": "risk", "op": "ne", "value": "phone"}, "not(/data/s/risk = 'phone')"),
    ({"field": "topics", "op": "contains", "value": "pv"}, "selected(/data/s/topics, 'pv')"),
    ({"field": "topics", "op": "eq", "value": ["none"]}, "/data/s/topics = 'none'"),
    ({"field": "topics", "op": "answered"}, "/data/s/topics != ''"),
    ({"field": "topics", "op": "answered", "value": False}, "/data/s/topics = ''"),
    ({"field": "members", "op": "answered"}, "count(/data/s/members) > 0"),
    ({"field": "n", "op": "gt", "value": 0}, "(/data/s/n != '' and /data/s/n > 0)"),
    ({"field": "risk", "op": "in", "value": ["a", "b"]}, "(/data/s/risk = 'a' or /data/s/risk = 'b')"),
    ({"field": ".", "op": "le", "value": {"today": 0}},
     "(. != '' and decimal-date-time(.) <= decimal-date-time(today()))"),
    ({"field": "due", "op": "ge", "value": {"field": "visit_date"}},
     "(../due != '' and /data/s/visit_date != '' and decimal-date-time(../due) >= decimal-date-time(/data/s/visit_date))"),
    ({"all": []}, "true()"), ({"any": []}, "false()"),
    ({"not": {"field": "risk", "op": "eq", "value": "it's"}}, "not(/data/s/risk = \"it's\")"),
    ("${risk} = 'yes' and ${name} != ''", "/data/s/risk = 'yes' and ../name != ''"),  # XPath passes through
])
def test_conditions_become_xpath(cond, expected):
    assert xform.condition_xpath(cond, scope()) == expected


def test_a_reference_to_an_unknown_field_is_refused():
    with pytest.raises(xform.XFormError):
        xform.condition_xpath("${nope} = 1", scope())


def test_literals():
    assert xform.literal(1e-07) == "0.0000001" and xform.literal(1100.0) == "1100"
    assert xform.literal("a'b\"c") == "concat('a', \"'\", 'b\"c')"
    assert xform.literal(None) == "''" and xform.literal(True) == "true()"
