"""Demo data: a fictional township with three villages, ~200 households, cadres and some visits.

So that a fresh `make run` shows pages, household profiles, PDFs and a dashboard with realistic
content. Everything is drawn from random.Random(2026), with dates counted back from the day it is
generated: the same data every time for the same day. Households are built by the households owner
and visits go through the same pipeline as a phone's push (validated against the real forms, their
declared effects applied), so the demo can never hold what a phone could not send.
"""

import random
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from server.core import clock
from server.records import audit, households as household_records, reviews as review_records
from server.records import submissions as submission_records
from server.records import users as user_records, villages as village_records

SEED = 2026
COUNTY = "青溪县"
TOWNSHIP = "石门镇"
# id, name, households, clan surnames (a village is mostly two or three families), centre (lat, lon)
VILLAGES = (
    ("430699101001", "桃花村", 72, ("李", "陈"), (28.7312, 113.5824)),
    ("430699101002", "杨柳村", 66, ("彭", "黄", "余"), (28.7455, 113.6107)),
    ("430699101003", "长岭村", 62, ("吴", "张"), (28.7028, 113.6352)),
)
V1, V2, V3 = (v[0] for v in VILLAGES)

# username, display name, sending unit, villages
CADRES = (
    ("liwei", "李伟", "县农业农村局", (V1,)),
    ("chenfang", "陈芳", "县委党校", (V1,)),
    ("huangtao", "黄涛", "国网青溪县供电公司", (V2,)),
    ("zhoumin", "周敏", "县乡村振兴局", (V2,)),
    ("wujun", "吴军", "县教育局", (V3,)),
    ("tangli", "唐丽", "县财政局", (V3,)),
    ("hexia", "何霞", "县人民医院", (V1, V3)),
)
SUPERVISOR = ("zhoujian", "周建", "石门镇人民政府")
ADMIN = ("admin", "系统管理员", "县乡村振兴局")

# (username, password, role): printed by `init --demo` and `make run`.
DEMO_LOGINS = [("admin", "admin-demo-2026", "admin"),
               (SUPERVISOR[0], "super-demo-2026", "supervisor")] + \
              [(c[0], "cadre-demo-2026", "cadre") for c in CADRES]

YEAR = 2026

SURNAMES = ("王", "刘", "杨", "赵", "周", "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "罗", "谢",
            "邓", "曾", "唐", "汤", "方", "钟", "傅", "任", "姚", "毛", "龚", "袁", "邹", "易", "喻")
MALE_OLD = ("建国", "建华", "国强", "志明", "德胜", "长根", "春生", "冬生", "桂生", "满堂", "福生",
            "光明", "志刚", "新民", "树林", "正清", "庆丰", "红军", "卫东", "金山", "水生", "永华",
            "海林", "启明", "泽民", "国平", "四清", "跃进", "解放", "和平", "友良", "伏林", "炳坤")
FEMALE_OLD = ("桂英", "秀英", "淑珍", "玉兰", "翠兰", "秋菊", "冬梅", "凤英", "春花", "月娥", "桂香",
              "素芳", "菊香", "美华", "金莲", "银凤", "满秀", "爱莲", "细妹", "腊梅", "雪梅", "建英")
MALE_YOUNG = ("伟", "强", "磊", "浩", "鹏", "俊杰", "志远", "子豪", "宇航", "浩然", "文博", "梓轩",
              "家乐", "思远", "明轩", "俊", "斌", "海涛", "建军", "勇", "超", "亮", "鑫", "诗杰")
FEMALE_YOUNG = ("丽", "婷", "芳", "静", "敏", "雨涵", "欣怡", "梓涵", "思琪", "佳怡", "可馨", "诗雨",
                "晓燕", "丹丹", "娟", "霞", "艳", "玲", "慧", "倩", "紫萱", "若曦", "一诺")
HAMLETS = ("枫树湾", "石板冲", "塘坎上", "大屋场", "新屋里", "竹山里", "黄泥坳", "下屋", "茶园坡",
           "杉木冲", "井边")
PLOT_NAMES = ("屋前田", "门口田", "塘下田", "冲里田", "大丘田", "山脚旱土", "坡上茶园", "后山油茶林",
              "河边菜地", "垄上田", "长丘", "岭上红薯地")
BOUNDARIES = ("水渠", "山林", "村道", "田埂", "水塘", "河堤", "机耕道", "荒坡")
MOBILE_PREFIXES = ("133", "135", "136", "138", "139", "150", "151", "152", "158", "159", "176",
                   "177", "180", "181", "187", "188", "189", "199")

HELP_PRODUCTS = (("红薯", "斤", 1.5, (100, 800)), ("蜂蜜", "斤", 60.0, (5, 30)),
                 ("土鸡蛋", "个", 1.2, (60, 300)), ("茶油", "斤", 70.0, (5, 20)),
                 ("腊肉", "斤", 45.0, (5, 20)), ("土鸡", "只", 120.0, (2, 8)),
                 ("黄桃", "斤", 5.0, (50, 200)), ("大米", "斤", 3.5, (100, 500)))
# who bought (the visit form's buyer channel, version 3), by weight; None: the cadre left it out
HELP_CHANNELS = (("canteen", 35), ("staff", 30), ("online", 12), ("market", 10), ("other", 3), (None, 10))
NEEDS = {
    "employment": ("儿子在外务工不稳定，希望了解县内工业园的就业岗位。",
                   "户主想在附近找一份公益岗或季节性零工。"),
    "medical": ("{ill}患慢性病需长期服药，咨询门诊慢特病报销和家庭医生签约。",),
    "education": ("孩子明年读初中，想了解教育资助和雨露计划。",),
    "housing": ("老屋后墙有裂缝，雨季漏水，希望请人评估住房安全。",),
    "sales": ("家里红薯和土鸡蛋卖不出去，希望帮忙联系销路。",
              "今年蜂蜜收成好，约有 60 斤待售，请帮忙推介给单位食堂。"),
    "skills_training": ("想参加县里组织的电工或养殖技术培训。",),
    "microcredit": ("想扩大养鸡规模，咨询小额信贷政策。",),
    "drinking_water": ("入冬后自来水压力小，高处几户经常停水。",),
    "industry_funds": ("想种 3 亩油茶，询问产业奖补资金怎么申请。",),
    "social_assistance": ("配偶长期卧床，家中无劳动力，询问能否申请低保或临时救助。",),
    "pv": ("屋顶是平顶，约 90 平方米，想了解户用光伏如何安装和收益。",),
}
FOLLOWUPS = {
    "employment": "联系县人社局推荐务工岗位",
    "medical": "协助办理门诊慢特病证，联系家庭医生上门",
    "education": "协助申请教育资助（雨露计划）",
    "housing": "请住建部门鉴定房屋安全等级",
    "sales": "联系派出单位食堂采购农产品",
    "skills_training": "报名下期技能培训班",
    "microcredit": "对接农商行办理小额信贷",
    "drinking_water": "请村委会检修高位水池和管道",
    "industry_funds": "协助准备产业奖补申请材料",
    "social_assistance": "向镇民政办提交低保申请材料",
    "pv": "安排供电公司上门勘察屋顶",
}
RISK_REASONS = ("户主大病住院，医疗支出大，收入减少。", "主要劳动力在外失业返乡，暂无稳定收入。",
                "房屋受暴雨损坏，需要修缮，家庭负担加重。")
NOTES = ("户主精神状态良好，家中整洁，了解各项帮扶政策。", "家中老人身体尚可，已提醒按时服药。",
         "已宣传防返贫监测政策和医保缴费时间。", "院内种菜养鸡，生活自给，无明显困难。",
         "已讲解光伏和消费帮扶政策，户主表示支持。")


def _iso_day(d, hour=0, minute=0, tz_hours=0):
    tz = timezone(timedelta(hours=tz_hours))
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz).isoformat(timespec="seconds")


class _Generator:
    def __init__(self, today):
        self.rng = random.Random(SEED)
        self.channels = random.Random(SEED + 2)  # its own draws: the rest of the data stays as it was
        self.today = today
        self.updated_at = _iso_day(today - timedelta(days=120), 8)

    # ---- people ------------------------------------------------------------------------------

    def surname(self, clans):
        r = self.rng
        return r.choice(clans) if r.random() < 0.6 else r.choice(SURNAMES)

    def given(self, sex, birth_year):
        pool = {("male", True): MALE_OLD, ("female", True): FEMALE_OLD,
                ("male", False): MALE_YOUNG, ("female", False): FEMALE_YOUNG}[(sex, birth_year < 1975)]
        return self.rng.choice(pool)

    def person(self, surname, relation, sex, birth_year):
        r = self.rng
        age = YEAR - birth_year
        if age >= 60:
            health = r.choices(("健康", "慢性病", "残疾", "大病"), (50, 35, 8, 7))[0]
        else:
            health = r.choices(("健康", "慢性病", "残疾", "大病"), (85, 8, 4, 3))[0]
        if age <= 5:
            schooling, work = "学龄前", "无"
        elif age <= 11:
            schooling, work = "小学在读", "在校"
        elif age <= 14:
            schooling, work = "初中在读", "在校"
        elif age <= 17:
            schooling, work = r.choice(("高中在读", "中职在读")), "在校"
        elif age <= 22 and r.random() < 0.6:
            schooling, work = r.choice(("大专在读", "本科在读")), "在校"
        else:
            if birth_year < 1960:
                schooling = r.choices(("文盲", "小学", "初中"), (25, 55, 20))[0]
            elif birth_year < 1975:
                schooling = r.choices(("小学", "初中", "高中"), (35, 50, 15))[0]
            elif birth_year < 1995:
                schooling = r.choices(("初中", "高中", "中专", "大专"), (45, 25, 20, 10))[0]
            else:
                schooling = r.choices(("高中", "中专", "大专", "本科"), (30, 25, 30, 15))[0]
            if health in ("大病", "残疾") and r.random() < 0.7:
                work = "无"
            elif age <= 55:
                work = r.choices(("务工", "务农", "无"), (60, 35, 5))[0]
            elif age <= 70:
                work = r.choices(("务农", "务工", "无"), (65, 10, 25))[0]
            else:
                work = r.choices(("务农", "无"), (25, 75))[0]
        return {"name": surname + self.given(sex, birth_year), "relation": relation, "sex": sex,
                "birth_year": birth_year, "health": health, "schooling": schooling, "work": work}

    def family(self, clans):
        """A household's members, head first: 2–6 people shaped by the head's age."""
        r = self.rng
        head_year = r.randint(1942, 1988)
        head_sex = "male" if r.random() < 0.85 else "female"
        surname = self.surname(clans)
        members = [self.person(surname, "户主", head_sex, head_year)]
        # children carry the father's surname: the head's, or the husband's when a woman heads
        child_surname = surname if head_sex == "male" else self.surname(clans)
        if r.random() < 0.85:
            spouse_sex = "female" if head_sex == "male" else "male"
            spouse_surname = r.choice([s for s in SURNAMES + clans if s != surname])
            members.append(self.person(spouse_surname, "配偶", spouse_sex,
                                       min(head_year + r.randint(-3, 4), 1992)))
            if spouse_sex == "male":
                child_surname = spouse_surname
        if head_year < 1960:
            if r.random() < 0.55:
                son_year = head_year + r.randint(23, 30)
                members.append(self.person(child_surname, "长子", "male", son_year))
                if r.random() < 0.7:
                    members.append(self.person(r.choice(SURNAMES), "儿媳", "female",
                                               son_year + r.randint(-2, 3)))
                for _ in range(r.randint(0, 2)):
                    sex = r.choice(("male", "female"))
                    members.append(self.person(child_surname, "孙子" if sex == "male" else "孙女",
                                               sex, min(son_year + r.randint(22, 32), YEAR - 1)))
        else:
            if head_year >= 1965 and r.random() < 0.35:
                members.append(self.person(surname, "母亲", "female", head_year - r.randint(22, 30)))
            order = {"male": ["长子", "次子"], "female": ["长女", "次女"]}
            for _ in range(r.randint(1, 2)):
                sex = r.choice(("male", "female"))
                if not order[sex]:
                    continue
                members.append(self.person(child_surname, order[sex].pop(0), sex,
                                           min(head_year + r.randint(22, 34), YEAR - 1)))
        if len(members) < 2:
            members.append(self.person(child_surname, "长子", "male", min(head_year + 26, YEAR - 1)))
        return members[:6]

    def phone(self):
        r = self.rng
        roll = r.random()
        if roll < 0.04:
            return ""
        if roll < 0.10:
            return f"0730-{r.randint(5000000, 6999999)}"
        return r.choice(MOBILE_PREFIXES) + f"{r.randint(0, 99999999):08d}"

    def plots(self, neighbours):
        r = self.rng
        out = []
        for name in r.sample(PLOT_NAMES, r.randint(1, 4)):
            def side():
                if neighbours and r.random() < 0.45:
                    return r.choice(neighbours) + "家"
                return r.choice(BOUNDARIES)
            area = round(r.uniform(0.3, 2.6) if "林" not in name else r.uniform(1.0, 6.0), 1)
            out.append({"name": name, "area_mu": area, "east": side(), "west": side(),
                        "south": side(), "north": side(), "contract_signed": r.random() < 0.85})
        return out

    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # ---- the whole set ---------------------------------------------------------------------------

    def generate(self):
        r = self.rng
        villages = [{"id": vid, "name": name, "township": TOWNSHIP, "county": COUNTY}
                    for vid, name, _n, _clans, _centre in VILLAGES]
        users = [{"id": ADMIN[0], "username": ADMIN[0], "display_name": ADMIN[1], "role": "admin",
                  "villages": [], "unit": ADMIN[2], "phone": self.phone() or "13807300000",
                  "active": True},
                 {"id": SUPERVISOR[0], "username": SUPERVISOR[0], "display_name": SUPERVISOR[1],
                  "role": "supervisor", "villages": [v["id"] for v in villages], "unit": SUPERVISOR[2],
                  "phone": r.choice(MOBILE_PREFIXES) + f"{r.randint(0, 99999999):08d}", "active": True}]
        for username, display, unit, vids in CADRES:
            users.append({"id": username, "username": username, "display_name": display,
                          "role": "cadre", "villages": list(vids), "unit": unit,
                          "phone": r.choice(MOBILE_PREFIXES) + f"{r.randint(0, 99999999):08d}",
                          "active": True})
        households, submissions = [], []
        for vid, vname, count, clans, centre in VILLAGES:
            cadres = [c[0] for c in CADRES if vid in c[3]]
            village_households = []
            heads = []
            for number in range(1, count + 1):
                members = self.family(clans)
                group = f"{r.randint(1, 8)}组"
                hamlet = HAMLETS[(int(group[:-1]) * 3 + r.randint(0, 1)) % len(HAMLETS)]
                primary = cadres[(number - 1) % len(cadres)]
                cadre_ids = [primary]
                if len(cadres) > 1 and r.random() < 0.35:
                    cadre_ids.append(r.choice([c for c in cadres if c != primary]))
                category = r.choices(("tuopin", "jiance", "dibao", "ordinary"), (62, 13, 15, 10))[0]
                doc = household_records.new_household(
                    vid, household_records.make_id(vid, number), head_name=members[0]["name"],
                    phone=self.phone(), address=f"{TOWNSHIP}{vname}{group}{hamlet}", group=group,
                    category=category, population=len(members), members=members,
                    plots=self.plots(heads[-12:]), cadre_ids=cadre_ids, updated_at=self.updated_at)
                heads.append(members[0]["name"])
                village_households.append(doc)
            submissions.extend(self.visits(vid, village_households, centre))
            households.extend(village_households)
        return {"villages": villages, "users": users, "households": households,
                "submissions": submissions, "reviews": self.reviews(submissions)}

    # ---- review decisions --------------------------------------------------------------------------

    def reviews(self, submissions):
        """The supervisor's decisions: about half the visits older than a week approved, and the
        two latest visits of the first cadre returned with comments on single answers, so the queue
        has work in it and that cadre's phone a returned visit to fix. A separate generator, so the
        rest of the data does not depend on these choices."""
        r = random.Random(SEED + 1)
        first_cadre = CADRES[0][0]
        visits = sorted((s for s in submissions if s["form"] == "household_visit"),
                        key=lambda s: s["created_at"])
        latest = {}
        for s in visits:
            latest[s["household_id"]] = s["uuid"]
        returned = [s for s in visits if s["cadre_id"] == first_cadre and latest[s["household_id"]] == s["uuid"]][-2:]
        comments = [("请写明在场人员的全名和与户主的关系。", {"present": "只写了名字，请补充关系，如“户主本人、配偶”。"}),
                    ("需求说明与走访内容不一致，请核实后重报。",
                     {"needs_detail": "请写明农户原话和具体困难。", "notes": "备注请说明下一步怎么帮。"})]
        out = []
        for s, (comment, fields) in zip(returned, comments):
            out.append({"uuid": s["uuid"], "state": "has_issues", "comment": comment, "fields": fields,
                        "at": self.decided_at(s, r)})
        cutoff = _iso_day(self.today - timedelta(days=7))
        done = {d["uuid"] for d in out}
        for s in submissions:
            if s["uuid"] not in done and s["received_at"] < cutoff and r.random() < 0.5:
                out.append({"uuid": s["uuid"], "state": "approved", "comment": "", "fields": {},
                            "at": self.decided_at(s, r)})
        return sorted(out, key=lambda d: d["at"])

    def decided_at(self, submission, r):
        received = datetime.fromisoformat(submission["received_at"]).date()
        day = min(received + timedelta(days=r.randint(1, 4)), self.today)
        return _iso_day(day, r.randint(9, 17), r.randint(0, 59), tz_hours=8)

    # ---- submissions -----------------------------------------------------------------------------

    def submission(self, form, version, household, cadre_id, day, answers):
        """An item as a phone pushes it, plus who sent it and when the server got it."""
        r = self.rng
        hour, minute = r.randint(9, 16), r.randint(0, 59)
        received = min(day + timedelta(days=r.choice((0, 0, 1, 2))), self.today)
        return {"uuid": self.uuid(), "form": form, "form_version": version,
                "household_id": household["id"], "cadre_id": cadre_id, "answers": answers,
                "attachments": [], "created_at": _iso_day(day, hour, minute, tz_hours=8),
                "received_at": _iso_day(received, 12, r.randint(0, 59))}

    def visits(self, vid, households, centre):
        """Per village: eight households visited twice (the second visit answers the first one's
        promises), eight once, two PV enrollments. Dates fall in the last four months, some this
        month, so the dashboard has visits, overdue promises and households never visited."""
        r = self.rng
        chosen = r.sample([h for h in households if h["category"] != "ordinary"], 18)
        out = []
        for index, household in enumerate(chosen[:16]):
            first = self.today - timedelta(days=r.randint(35, 120))
            days = [first]
            if index < 8:
                days.append(min(first + timedelta(days=r.randint(25, 60)), self.today))
            promises = []
            for n, day in enumerate(days):
                cadre_id = r.choice(household["cadre_ids"])
                item = self.submission("household_visit", 3, household, cadre_id, day,
                                       self.visit_answers(household, day, centre, promises))
                promises = [f"{item['uuid']}:{i}" for i in range(len(item["answers"].get("followups", [])))]
                out.append(item)
        for household in chosen[16:]:
            day = self.today - timedelta(days=r.randint(3, 60))
            out.append(self.submission("pv_enrollment", 2, household, household["cadre_ids"][0], day,
                                       self.pv_answers(day, centre)))
        return out

    def location(self, centre):
        r = self.rng
        return {"lat": round(centre[0] + r.uniform(-0.01, 0.01), 6),
                "lon": round(centre[1] + r.uniform(-0.01, 0.01), 6), "accuracy": r.randint(5, 30)}

    def visit_answers(self, household, day, centre, promises=()):
        r = self.rng
        members = household["members"]
        workers = sum(1 for m in members if m["work"] == "务工")
        elders = sum(1 for m in members if day.year - m["birth_year"] >= 60)
        wages = sum(r.randint(180, 420) * 100 for _ in range(workers))
        area = sum(p["area_mu"] for p in household["plots"])
        farming = int(area * r.randint(600, 1200)) // 100 * 100
        livestock = r.choice((0, 0, r.randint(10, 60) * 100))
        transfers = elders * 1440 + (r.randint(40, 70) * 100 if household["category"] == "dibao" else 0)
        transfers += r.randint(3, 12) * 100  # 耕地地力保护补贴 and the like
        ill = [m for m in members if m["health"] in ("慢性病", "大病")]
        needs = r.sample(sorted(NEEDS), r.randint(1, 2))
        if ill and "medical" not in needs:
            needs[0] = "medical"
        texts = []
        for need in needs:
            if need == "medical" and ill and ill[0]["health"] == "大病":
                texts.append(f"{ill[0]['name']}去年因病住院花费较大，询问大病保险和医疗救助报销。")
            else:
                texts.append(r.choice(NEEDS[need]).format(ill=ill[0]["name"] if ill else "家中老人"))
        detail = "".join(texts)
        topics = sorted(set(r.sample(("income_jobs", "health_insurance", "schooling",
                                      "housing_safety", "drinking_water", "industry",
                                      "land_ledger", "sales_help", "pv"), r.randint(2, 4)))
                        | ({"sales_help"} if "sales" in needs else set()))
        help_given = []
        if r.random() < 0.6 or "sales" in needs:
            for product, unit, price, (lo, hi) in r.sample(HELP_PRODUCTS, r.randint(1, 2)):
                help_given.append({"product": product, "quantity": r.randint(lo, hi), "unit": unit,
                                   "price": price})
                channel = self.channels.choices(*zip(*HELP_CHANNELS))[0]
                if channel:
                    help_given[-1]["channel"] = channel
        followups = [{"action": FOLLOWUPS[n],
                      "due_date": (day + timedelta(days=r.randint(14, 45))).isoformat()}
                     for n in needs if n != "sales" or not help_given]
        risk = "yes" if (household["category"] == "jiance" or ill) and r.random() < 0.3 else "no"
        present = "、".join(m["name"] for m in members[:r.randint(1, min(3, len(members)))])
        visit_type = r.choices(("home", "phone", "group"), (75, 20, 5))[0]
        family_changes = r.choices((["none"], ["migrant_work"], ["illness"]), (75, 15, 10))[0]
        answers = {
            "visit_date": day.isoformat(),
            "visit_type": visit_type,
            "present": present,
            "topics": topics,
            "family_changes": family_changes,
            "income_wages": wages, "income_farming": farming, "income_livestock": livestock,
            "income_pv": 0, "income_transfers": transfers,
            "income_total": wages + farming + livestock + transfers,
            "needs": needs, "needs_detail": detail,
            "help_given": help_given, "followups": followups,
            "promises": [{"followup_id": fid, "status": r.choice(("done", "done", "in_progress")),
                          "note": r.choice(("已办结。", "已联系相关部门，等待回复。"))}
                         for fid in promises],
            "risk": risk,
            "notes": r.choice(NOTES),
        }
        for key in ("help_given", "followups", "promises"):
            if not answers[key]:
                del answers[key]  # the server stores an empty repeat as no answer
        if family_changes != ["none"]:  # the form asks for the member list only after a change
            answers["members"] = [dict(m) for m in members]
        if visit_type != "phone":
            answers["location"] = self.location(centre)
        if risk == "yes":
            answers["risk_reason"] = r.choice(RISK_REASONS)
        return answers

    def pv_answers(self, day, centre):
        r = self.rng
        capacity = r.choice((8, 8, 10))
        roof_type = r.choice(("flat_concrete", "flat_concrete", "pitched_tile"))
        orientation = "flat" if roof_type == "flat_concrete" else r.choice(("south", "southeast"))
        return {"interested": "yes", "consent": "yes", "roof_type": roof_type,
                "roof_area_m2": r.randint(70, 120), "orientation": orientation,
                "shading": r.choice(("none", "none", "partial")),
                "structure_ok": "yes", "capacity_kw": capacity,
                "expected_kwh_year": capacity * 1100,
                "funding_mode": r.choice(("subsidised", "self_funded", "roof_rental")),
                "lecture_attended": "yes",
                "lecture_date": (day - timedelta(days=r.randint(5, 20))).isoformat(),
                "grid_stage": r.choice(("applied", "approved", "installed")),
                "location": self.location(centre)}


def generate_demo(today=None):
    """The demo data set for `today` (default: today in the deployment's zone): {"villages",
    "users" (no password hashes), "households", "submissions" (items as phones push them, with
    cadre_id and received_at)}."""
    return _Generator(today or clock.today()).generate()


def _cadre(user):
    return SimpleNamespace(id=user["id"], role=user["role"], village_scope=lambda: user["villages"],
                           can_see_village=lambda vid: vid in user["villages"])


def load_demo(store, registry, settings=None):
    """Write the demo set: villages, accounts and households in one write, then every visit through
    the submission pipeline in one more. Returns counts, or None when the demo villages are already
    there (nothing is overwritten)."""
    data = generate_demo()
    passwords = {username: password for username, password, _role in DEMO_LOGINS}

    def write_registry(tx):
        if any(village_records.get(v["id"], tx) for v in data["villages"]):
            return False
        for village in data["villages"]:
            village_records.put(tx, village)
        for household in data["households"]:
            household_records.create(tx, "system", household, write_audit=False)
        return True

    if not store.write(write_registry):
        return None
    # Demo accounts cost what real ones do at login (a cheaper hash told them apart by timing):
    # each of the three published demo passwords is hashed once, at the standard cost.
    hashes = {pw: user_records.hash_password(pw) for pw in set(passwords.values())}
    for user in data["users"]:
        user_records.create(user["id"], user["role"], None, villages=user["villages"],
                            display_name=user["display_name"], unit=user["unit"], phone=user["phone"],
                            actor="system", store=store, password_hash=hashes[passwords[user["id"]]])
    accounts = {u["id"]: u for u in data["users"]}
    prepared = []
    for item in sorted(data["submissions"], key=lambda s: s["created_at"]):
        phone_item = {k: v for k, v in item.items() if k not in ("cadre_id", "received_at")}
        p, errors = submission_records.parse_item(_cadre(accounts[item["cadre_id"]]), phone_item,
                                                  registry, settings or {}, max_attachment_bytes=1,
                                                  db=store)
        if errors:
            raise ValueError(f"demo visit {item['uuid']} is not valid: {errors[:3]}")
        prepared.append((p, item))

    stored = {item["uuid"]: (p, item) for p, item in prepared}
    decisions = []
    for d in data["reviews"]:
        p, item = stored[d["uuid"]]
        definition = registry.get(item["form"], item["form_version"])
        decision, errors = review_records.check_decision(definition, p["record"]["answers"], {
            "state": d["state"], "comment": d["comment"], "fields": d["fields"]})
        if errors:
            raise ValueError(f"demo review of {d['uuid']} is not valid: {errors[:3]}")
        decisions.append((d, p["record"]["village_id"], decision))

    def write_visits(tx):
        for p, item in prepared:
            result, _clash = submission_records.store_prepared(
                tx, item["cadre_id"], p, received_at=item["received_at"], write_audit=False)
            if result["status"] != "created":
                raise ValueError(f"demo visit {item['uuid']}: {result}")
        for d, village_id, decision in decisions:
            review_records.record(tx, SUPERVISOR[0], village_id, d["uuid"], decision, at=d["at"],
                                  write_audit=False)
        counts = {k: len(v) for k, v in data.items()}
        audit.record(tx, "system", "load_demo", "demo", counts)
        return counts

    return store.write(write_visits)
