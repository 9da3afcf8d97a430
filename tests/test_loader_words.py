"""The form checker speaks both languages (issue 26): a refused upload on /admin/forms lists each
problem in the page's language first, and every message the checker can raise has a Chinese text
written beside the English."""

import ast
import html
import io
import os
import re

import pytest
import yaml

from server.forms import formdefs
from tests.helpers import login

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CJK = re.compile(r"[\u4e00-\u9fff]")


def pv_form(**changes):
    with open(os.path.join(ROOT, "forms", "pv_enrollment.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data["version"] = 3
    data.update(changes)
    return data


def with_unknown_reference():
    data = pv_form()
    data["fields"][0]["fields"][1]["relevant"] = {"field": "nothing_here", "op": "eq", "value": "yes"}
    return data


def with_unknown_type():
    data = pv_form()
    data["fields"][0]["fields"][1]["type"] = "colour_wheel"
    return data


BROKEN = [
    ("unknown top-level key", lambda: pv_form(colour="blue"),
     "未知的顶层键：colour", "unknown top-level keys: colour"),
    ("bad id", lambda: pv_form(id="Bad-Id"),
     "id 只能由小写字母、数字和 _ 组成", "id must be lower-case letters, digits and _"),
    ("bad version", lambda: pv_form(version=0),
     "version 必须是大于等于 1 的整数", "version must be a whole number >= 1"),
    ("unknown field in a condition", with_unknown_reference,
     "relevant 引用了 'nothing_here'，它不是本题之前的字段",
     "relevant refers to 'nothing_here', which is not a field before this one"),
    ("unknown field type", with_unknown_type,
     "type 必须是以下之一", "type must be one of"),
]


def problem_lines(page):
    """The texts of the refusal's list items, tags stripped."""
    part = page.split("未发布" if "未发布" in page else "Not published", 1)[1].split("</ul>", 1)[0]
    return [html.unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<li>(.*?)</li>", part, re.S)]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_a_refused_upload_lists_its_problems_in_the_page_language_first(app, case, lang):
    _name, build, zh, en = case
    admin = login(app.test_client(), "admin")
    admin.client.set_cookie("lang", lang)
    data = yaml.safe_dump(build(), allow_unicode=True, sort_keys=False).encode("utf-8")
    r = admin.client.post("/admin/forms/check", data={"file": (io.BytesIO(data), "pv_enrollment.yaml"),
                                                      "csrf_token": admin.token},
                          content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 400, page[-2000:]
    lines = [line for line in problem_lines(page) if zh in line]
    assert lines, (zh, problem_lines(page))
    line = lines[0]
    assert en in line, line
    first, second = (zh, en) if lang == "zh" else (en, zh)
    assert line.index(first) < line.index(second), line


def test_the_checker_gives_every_problem_in_both_languages():
    data = pv_form(colour="blue", id="Bad-Id", version=0, subject="weather",
                   title={"zh": "只有中文"}, settings={"x": "y"})
    data["fields"][0]["fields"][1]["relevant"] = {"field": "nothing_here", "op": "resembles"}
    data["fields"][1]["fields"][2]["type"] = "colour_wheel"
    data["fields"][0]["fields"].append({"name": "n1", "type": "integer", "label": {"zh": "数", "en": "N"},
                                        "compute": {"sum": ["ghost"]}, "min": "a"})
    problems = formdefs.definition_problems(data)
    assert len(problems) >= 8, problems
    for field, message in problems:
        assert CJK.search(message.zh), (field, message)
        assert str(message) == message.en and not CJK.search(message.en.replace("只有中文", "")), message
    with pytest.raises(formdefs.FormDefinitionError) as caught:
        formdefs.check_definition(data, "upload")
    assert caught.value.problems == problems
    effects = formdefs.definition_problems(dict(pv_form(), effects={"weather": 1}, profile={"section": "x"}))
    assert effects and all(CJK.search(m.zh) for _f, m in effects), effects


CHECKER_FILES = ["server/forms/formdefs.py", "server/forms/effects.py", "server/forms/conditions.py"]
BILINGUAL_CALLS = {"said", "Said", "prefixed"}


def _name(func):
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _is_text(node):
    """A message written in place: a literal, an f-string or a sum of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.BinOp) and (_is_text(node.left) or _is_text(node.right))


def _has_chinese(node):
    """Chinese written in place, or taken from a message that carries it (exc.zh)."""
    return any((isinstance(n, ast.Constant) and isinstance(n.value, str) and CJK.search(n.value))
               or (isinstance(n, ast.Attribute) and n.attr == "zh") for n in ast.walk(node))


def _messages(call):
    """The message argument(s) of a problem-raising call, or []."""
    name = _name(call.func)
    if name == "add" and isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "self":
        return [("add", call.args[1:])]
    if name in ("append", "extend") and getattr(call.func.value, "id", "") == "problems" and call.args:
        arg = call.args[0]
        if isinstance(arg, ast.GeneratorExp):
            arg = arg.elt
        return [("problem", [arg.elts[1]] if isinstance(arg, ast.Tuple) else [arg])]
    if name == "FormDefinitionError" and len(call.args) >= 3:
        return [("error", [call.args[2]])]
    return []


def test_every_checker_message_has_a_chinese_text_beside_the_english():
    missing = []
    for path in CHECKER_FILES:
        tree = ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read())
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            for kind, args in _messages(call):
                where = f"{path}:{call.lineno}"
                if kind == "add" and len(args) == 2:
                    if not _has_chinese(args[0]):
                        missing.append(where)
                    continue
                for arg in args:
                    if _is_text(arg):
                        missing.append(where)  # an English-only text written in place
                    elif isinstance(arg, ast.Call) and _name(arg.func) in BILINGUAL_CALLS \
                            and _name(arg.func) != "prefixed" and not _has_chinese(arg.args[0]):
                        missing.append(where)
    assert not missing, missing
