"""Ledger workbooks for the tests: three sheets, the one-sheet merged layout, CSVs."""

import io

from openpyxl import Workbook

from server.core import idcard


def card(prefix17):
    return prefix17 + idcard.check_digit(prefix17)


IDS = {
    "王大山": card("43062619650312001"),
    "刘桂花": card("43062619680520002"),
    "王小明": card("43062619920101003"),
    "陈老四": card("43062619550707004"),
    "陈春燕": card("43062619900909006"),
}
HOUSEHOLDS = [("户编号", "户主姓名", "组别", "户主电话"),
              (11, "王大山", "2组", "13800001111"),
              (12, "陈老四", "3组", "13900002222")]
MEMBERS = [("户编号", "姓名", "与户主关系", "身份证号码", "性别", "出生年月", "联系电话", "外出务工地"),
           (11, "王大山", "户主", IDS["王大山"], "男", "1965-03", "13800001111", None),
           (11, "刘桂花", "配偶", IDS["刘桂花"], "女", "1968-05", None, None),
           (11, "王小明", "儿子", IDS["王小明"], "男", "1992-01", "13700003333", "广东东莞"),
           (12, "陈老四", "户主", IDS["陈老四"], "男", "1955-07", None, None),
           (12, "陈春燕", "女儿", IDS["陈春燕"], "女", "1990-09", None, "浙江宁波")]
PLOTS = [("户编号", "地块名称", "地块编码", "面积（亩）", "东至", "西至", "南至", "北至", "合同编号", "备注"),
         (11, "大塘坵", "4306260102001", 1.2, "水渠", "村道", "陈家田", "山脚", "HT-011", None),
         (11, "屋背土", "4306260102002", 0.6, "王小明屋", "竹林", "小路", "坟山", "HT-011", None),
         (12, "长坵", "4306260103001", 2.35, "河堤", "李家田", "机耕道", "水塘", "HT-012", "含田埂"),
         (12, "茶山", "4306260103002", 3, "山脊", "山沟", "林地", "林地", "HT-012", None)]


def workbook(sheets):
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(list(r))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def three_sheets(households=HOUSEHOLDS, members=MEMBERS, plots=PLOTS):
    return workbook([("农户", households), ("家庭成员", members), ("承包地块", plots)])


def one_sheet_merged():
    """All on one sheet, a household's cells merged down its rows (Excel keeps the value in the
    first cell only), members and plots side by side."""
    wb = Workbook()
    ws = wb.active
    ws.title = "台账"
    ws.append(["青石村土地承包台账"])
    ws.append(["户编号", "户主姓名", "组别", "户主电话", "姓名", "与户主关系", "身份证号码", "性别",
               "出生年月", "联系电话", "外出务工地", "地块名称", "地块编码", "面积（亩）", "东至", "西至",
               "南至", "北至", "合同编号", "备注", "签字"])
    members = {11: MEMBERS[1:4], 12: MEMBERS[4:6]}
    plots = {11: PLOTS[1:3], 12: PLOTS[3:5]}
    row = 3
    for h in HOUSEHOLDS[1:]:
        n = max(len(members[h[0]]), len(plots[h[0]]))
        for i in range(n):
            m = members[h[0]][i][1:] if i < len(members[h[0]]) else (None,) * 7
            p = plots[h[0]][i][1:] if i < len(plots[h[0]]) else (None,) * 9
            ws.append(list(h if i == 0 else (None,) * 4) + list(m) + list(p) + [None])
        for col in range(1, 5):
            ws.merge_cells(start_row=row, start_column=col, end_row=row + n - 1, end_column=col)
        row += n
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_bytes(rows, encoding="utf-8-sig"):
    text = "\n".join(",".join("" if c is None else str(c) for c in r) for r in rows) + "\n"
    return text.encode(encoding)


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "建国秀英明华春燕桂花大山长生海平志强玉兰金凤德胜小红永福文杰"
SIDES = ("水渠", "村道", "山脚", "林地", "河堤", "机耕道", "水塘", "竹林", "坟山", "茶园")


def big_village(households=664, plots_per=3, members_per=3, seed=1):
    """A village ledger at the seed's scale (one workbook, three sheets): `households` households,
    each with `members_per` members (ID numbers valid) and `plots_per` plots (coded)."""
    import random
    rnd = random.Random(seed)
    hh = [HOUSEHOLDS[0]]
    members = [MEMBERS[0]]
    plots = [PLOTS[0]]
    for n in range(1, households + 1):
        head = SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)] + GIVEN[(n * 3 + 1) % len(GIVEN)]
        group = f"{n % 9 + 1}组"
        hh.append((n, head, group, f"13{rnd.randint(100000000, 999999999)}"))
        for m in range(members_per):
            name = head if m == 0 else head[0] + GIVEN[(n + m * 5) % len(GIVEN)] + str(m)
            year = 1950 + (n + m * 17) % 60
            body = f"430626{year}{(m % 12) + 1:02d}{(n % 28) + 1:02d}{(n * 10 + m) % 1000:03d}"
            members.append((n, name, "户主" if m == 0 else "子女", card(body), "男" if m % 2 == 0 else "女",
                            f"{year}-{(m % 12) + 1:02d}", None, "广东东莞" if n % 13 == 0 and m else None))
        for p in range(plots_per):
            plots.append((n, f"{GIVEN[(n + p) % len(GIVEN)]}坵{p + 1}", f"43062601{n:04d}{p + 1:02d}",
                          round(0.3 + rnd.random() * 2.5, 2), rnd.choice(SIDES), rnd.choice(SIDES),
                          rnd.choice(SIDES), rnd.choice(SIDES), f"HT-{n:04d}", None))
    return three_sheets(hh, members, plots)
