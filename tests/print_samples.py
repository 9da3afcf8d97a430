"""Hand-built profile inputs (household, visits, photos) shared by the printing tests and benchmark.

Plain dicts in the stored shapes (answers valid for the current visit form), so the pure core can be
exercised without a store; forms come from the project's own files.
"""

import datetime
import io
import os
import random

FORMS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "forms")


def project_forms():
    """The project's form registry as the server loads it (current files and history/), read only."""
    from server.forms.formdefs import FormRegistry
    return FormRegistry.load(FORMS_DIR, os.path.join(FORMS_DIR, ".no-archive"), write_archive=False)


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "秀英桂兰建国志强红梅德福玉珍春生海燕金花永红国庆"


def name(rng):
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def household(hid="430000001-0007", head="张桂兰", *, rng=None, version=3):
    rng = rng or random.Random(hid)
    return {
        "id": hid, "village_id": hid.split("-")[0], "head_name": head, "phone": "13812345678",
        "address": "石门乡红星村3组18号", "group": "3组", "category": "tuopin", "population": 4,
        "members": [
            {"name": head, "relation": "户主", "sex": "female", "birth_year": 1962, "health": "慢性病",
             "schooling": "小学", "work": "务农"},
            {"name": name(rng), "relation": "儿子", "sex": "male", "birth_year": 1988,
             "health": "健康", "schooling": "初中", "work": "广东务工"},
            {"name": name(rng), "relation": "儿媳", "sex": "female", "birth_year": 1990,
             "health": "健康", "schooling": "高中", "work": "县城务工"},
            {"name": name(rng), "relation": "孙子", "sex": "male", "birth_year": 2014,
             "health": "健康", "schooling": "小学在读", "work": ""},
        ],
        "plots": [
            {"name": "屋后田", "area_mu": 1.2, "east": "李家田", "west": "机耕道", "south": "水渠",
             "north": "山脚", "contract_signed": True},
            {"name": "河边地", "area_mu": 0.8, "east": "河", "west": "王家地", "south": "村道",
             "north": "赵家地", "contract_signed": False},
        ],
        "cadre_ids": ["liwei"], "pv_status": {"stage": "installed", "capacity_kw": 8.5,
                                               "expected_kwh_year": 9350, "funding_mode": "subsidised",
                                               "updated_at": "2024-06-01T08:00:00+08:00"},
        "version": version, "updated_at": "2024-06-01T08:00:00+08:00", "seq": 10,
    }


VILLAGE = {"id": "430000001", "name": "红星村", "township": "石门乡", "county": "安化县"}
CADRES = [{"id": "liwei", "display_name": "李伟", "unit": "县农业农村局", "phone": "13987654321",
           "role": "cadre"}]


def visit(hid, i, *, date=None, photos=(), signature=None, rng=None, seq=None, closes=None):
    """A stored household visit (form version 2); `closes` is the uuid of an earlier visit whose
    follow-up this one reports done, as the phone's carried-forward promises do."""
    rng = rng or random.Random(f"{hid}-{i}")
    date = date or datetime.date(2021 + i // 6 % 5, 1 + i * 2 % 12, 15)
    due = (date + datetime.timedelta(days=14)).isoformat()
    return {
        "uuid": f"{hid}-visit-{i:03d}", "form": "household_visit", "form_version": 2,
        "household_id": hid, "village_id": hid.split("-")[0], "cadre_id": "liwei",
        "created_at": f"{date.isoformat()}T10:00:00+08:00",
        "answers": {
            "visit_date": date.isoformat(), "visit_type": rng.choice(["home", "phone", "group"]),
            "present": "户主、儿媳", "topics": ["income_jobs", "health_insurance", "pv"],
            "family_changes": ["none"], "needs": ["sales", "skills_training"],
            "needs_detail": f"第{i + 1}次走访：红薯滞销约五百斤，希望帮助联系销路。",
            "income_wages": 18000 + 500 * i, "income_farming": 3200, "income_livestock": 1500,
            "income_pv": 1200, "income_transfers": 2400,
            "help_given": [{"product": "红薯", "quantity": 500, "unit": "斤", "price": 1.5}],
            "followups": [{"action": "联系县电商中心收购红薯", "due_date": due}],
            **({"promises": [{"followup_id": f"{closes}:0", "status": "done",
                              "note": "电商中心已上门收购"}]} if closes else {}),
            "risk": "no", "notes": "家中整洁，饮水正常。",
            **{f"photo_{k + 1}": p for k, p in enumerate(photos)},
            **({"signature": signature} if signature else {}),
        },
        "attachments": [{"name": p, "sha256": "", "size": 0, "type": "image/jpeg", "received": True}
                        for p in list(photos) + ([signature] if signature else [])],
        "review": {"state": "approved", "comments": []},
        "seq": seq if seq is not None else 100 + i,
    }


def write_photo(path, size=(1600, 1200), colour=(90, 140, 200)):
    from PIL import Image, ImageDraw
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.new("RGB", size, colour)
    d = ImageDraw.Draw(im)
    for k in range(0, size[0], 80):
        d.line([(k, 0), (size[0] - k, size[1])], fill=(240, 240, 240), width=6)
    im.save(path, "JPEG", quality=90)


def write_signature(path):
    from PIL import Image, ImageDraw
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.line([(40, 150), (160, 40), (260, 160), (380, 50), (540, 140)], fill=(0, 0, 0, 255), width=6)
    im.save(path, "PNG")


def profile_inputs(attachments_dir, *, visits=12, photos=3, hid="430000001-0007", head="张桂兰",
                   signature=True):
    """(household, village, cadres, submissions, forms) for build_profile_context; photos written
    into attachments_dir on the latest visit, like the phone uploads them."""
    rng = random.Random(hid)
    subs = []
    for i in range(visits):
        last = i == visits - 1
        names = [f"photo_{k + 1}.jpg" for k in range(photos)] if last else []
        sig = "signature.png" if last and signature else None
        date = datetime.date(2025, 6, 1) - datetime.timedelta(days=40 * (visits - 1 - i))
        sub = visit(hid, i, date=date, photos=names, signature=sig, rng=rng,
                    closes=subs[-1]["uuid"] if subs else None)
        for n in names:
            write_photo(os.path.join(attachments_dir, sub["uuid"], n),
                        colour=(60 + 40 * len(n) % 150, 120, 180))
        if sig:
            write_signature(os.path.join(attachments_dir, sub["uuid"], sig))
        subs.append(sub)
    h = household(hid, head, rng=rng)
    h["open_followups"] = open_followups(subs[-1]) if subs else []
    return h, VILLAGE, CADRES, subs, project_forms()


def open_followups(latest):
    """What the household carries after `latest`: its promises, still open."""
    a = latest["answers"]
    return [{"id": f"{latest['uuid']}:{k}", "action": f["action"], "due_date": f["due_date"],
             "submission": latest["uuid"], "visit_date": a["visit_date"], "cadre_id": latest["cadre_id"],
             "status": "open", "note": ""} for k, f in enumerate(a.get("followups") or [])]


def jpeg_bytes(size=(64, 48)):
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(out, "JPEG")
    return out.getvalue()
