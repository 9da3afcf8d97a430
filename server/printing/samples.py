"""Hand-built profile inputs (household, visits, photos) shared by the printing tests and benchmark.

Plain dicts in the stored shapes of the brief, so the pure core can be exercised without a store.
"""

import datetime
import io
import os
import random

VISIT_FORM = {
    "id": "household_visit", "version": 1, "title": {"zh": "入户走访", "en": "Household visit"},
    "fields": [
        {"name": "visit_date", "type": "date", "label": {"zh": "走访日期", "en": "Visit date"}},
        {"name": "visit_type", "type": "select_one", "label": {"zh": "走访方式", "en": "Visit type"},
         "choices": [{"name": "home", "label": {"zh": "入户", "en": "Home visit"}},
                     {"name": "phone", "label": {"zh": "电话", "en": "Phone"}},
                     {"name": "group", "label": {"zh": "集中", "en": "Group meeting"}}]},
        {"name": "topics", "type": "select_multiple", "label": {"zh": "走访内容", "en": "Topics"},
         "choices": [{"name": "income_jobs", "label": {"zh": "收入与就业", "en": "Income and jobs"}},
                     {"name": "health_insurance", "label": {"zh": "医疗保障", "en": "Health insurance"}},
                     {"name": "schooling", "label": {"zh": "教育", "en": "Schooling"}},
                     {"name": "housing_safety", "label": {"zh": "住房安全", "en": "Housing safety"}},
                     {"name": "drinking_water", "label": {"zh": "饮水安全", "en": "Drinking water"}},
                     {"name": "industry", "label": {"zh": "产业发展", "en": "Industry"}},
                     {"name": "pv", "label": {"zh": "光伏", "en": "PV"}}]},
        {"name": "needs", "type": "select_multiple", "label": {"zh": "需求", "en": "Needs"},
         "choices": [{"name": "jobs", "label": {"zh": "就业", "en": "Jobs"}},
                     {"name": "sales", "label": {"zh": "农产品销售", "en": "Selling produce"}}]},
        {"name": "income_wages", "type": "decimal", "label": {"zh": "工资性收入", "en": "Wages"}},
        {"name": "income_farming", "type": "decimal", "label": {"zh": "种植业收入", "en": "Farming"}},
        {"name": "income_livestock", "type": "decimal", "label": {"zh": "养殖业收入", "en": "Livestock"}},
        {"name": "income_pv", "type": "decimal", "label": {"zh": "光伏收益", "en": "PV income"}},
        {"name": "income_transfers", "type": "decimal", "label": {"zh": "转移性收入", "en": "Transfers"}},
        {"name": "income_total", "type": "decimal", "label": {"zh": "家庭总收入", "en": "Total income"}},
        {"name": "risk", "type": "select_one", "label": {"zh": "返贫风险", "en": "Risk"},
         "choices": [{"name": "yes", "label": {"zh": "有", "en": "Yes"}},
                     {"name": "no", "label": {"zh": "无", "en": "No"}}]},
        {"name": "photo_1", "type": "photo", "label": {"zh": "现场照片1", "en": "Photo 1"}},
        {"name": "photo_2", "type": "photo", "label": {"zh": "现场照片2", "en": "Photo 2"}},
        {"name": "photo_3", "type": "photo", "label": {"zh": "现场照片3", "en": "Photo 3"}},
        {"name": "signature", "type": "signature", "label": {"zh": "户主签名", "en": "Signature"}},
    ],
}
PV_FORM = {
    "id": "pv_enrollment", "version": 1, "title": {"zh": "光伏登记", "en": "PV enrollment"},
    "fields": [
        {"name": "interested", "type": "select_one", "label": {"zh": "是否有意愿", "en": "Interested"},
         "choices": [{"name": "yes", "label": {"zh": "是", "en": "Yes"}},
                     {"name": "no", "label": {"zh": "否", "en": "No"}}]},
        {"name": "grid_stage", "type": "select_one", "label": {"zh": "并网进度", "en": "Grid stage"},
         "choices": [{"name": "none", "label": {"zh": "未申请", "en": "None"}},
                     {"name": "applied", "label": {"zh": "已申请", "en": "Applied"}},
                     {"name": "installed", "label": {"zh": "已安装", "en": "Installed"}},
                     {"name": "connected", "label": {"zh": "已并网", "en": "Connected"}}]},
        {"name": "funding_mode", "type": "select_one", "label": {"zh": "出资方式", "en": "Funding"},
         "choices": [{"name": "subsidised", "label": {"zh": "政府补贴", "en": "Subsidised"}}]},
    ],
}
INLINE_FORMS = {"household_visit": VISIT_FORM, "pv_enrollment": PV_FORM}
FORMS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "forms")


def project_forms():
    """The project's real form definitions when present (labels as printed), else the inline ones."""
    from .profile import load_forms
    forms = load_forms(FORMS_DIR)
    return forms if "household_visit" in forms else INLINE_FORMS


FORMS = INLINE_FORMS

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


def visit(hid, i, *, date=None, photos=(), signature=None, rng=None, seq=None):
    rng = rng or random.Random(f"{hid}-{i}")
    date = date or datetime.date(2021 + i // 6 % 5, 1 + i * 2 % 12, 15)
    due = (date + datetime.timedelta(days=14)).isoformat()
    return {
        "uuid": f"{hid}-visit-{i:03d}", "form": "household_visit", "form_version": 1,
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
        sub = visit(hid, i, date=date, photos=names, signature=sig, rng=rng)
        for n in names:
            write_photo(os.path.join(attachments_dir, sub["uuid"], n),
                        colour=(60 + 40 * len(n) % 150, 120, 180))
        if sig:
            write_signature(os.path.join(attachments_dir, sub["uuid"], sig))
        subs.append(sub)
    return household(hid, head, rng=rng), VILLAGE, CADRES, subs, project_forms()


def jpeg_bytes(size=(64, 48)):
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(out, "JPEG")
    return out.getvalue()
