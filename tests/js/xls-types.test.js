// XLSForm's types on the phone (static/js/widgets/xls.js, drafts.js, answers.js): the values the
// widgets answer are the server's formats (server/forms/formdefs.py), metadata and defaults are
// filled in, choice_filter and nested repeats are checked as the server checks them.
process.env.TZ = "Asia/Shanghai"; // before any Date is made: the offsets below are +08:00

const { test } = await import("node:test");
const assert = (await import("node:assert/strict")).default;
const { datetimeAnswer, moved, nowAnswer, timeAnswer } = await import("../../static/js/widgets/xls.js");
const { applyDefaults, defaultAnswer, fillMeta, newDraft } = await import("../../static/js/drafts.js");
const { cleanAnswers, entryAt, offered, relevance, validateAnswers } = await import("../../static/js/answers.js");
const { computeAll } = await import("../../static/js/conditions.js");

// The server's patterns (formdefs._TIME_RE, _DATETIME_RE).
const TIME_RE = /^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,3})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$/;
const DATETIME_RE = /^([0-9]{4}-[0-9]{2}-[0-9]{2})T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$/;
const L = (zh, en = zh) => ({ zh, en });

test("time and datetime inputs answer the server's formats", () => {
  assert.equal(timeAnswer("08:30"), "08:30:00");
  assert.equal(timeAnswer("23:59:59"), "23:59:59");
  assert.equal(timeAnswer("07:05:09.250"), "07:05:09");
  assert.equal(timeAnswer(""), undefined);
  assert.equal(datetimeAnswer("2024-06-15T08:30"), "2024-06-15T08:30:00+08:00");
  assert.equal(datetimeAnswer("2024-06-15T08:30:15"), "2024-06-15T08:30:15+08:00");
  assert.equal(datetimeAnswer(""), undefined);
  assert.equal(datetimeAnswer("not a date"), undefined);
  for (const v of ["08:30", "23:59:59"]) assert.match(timeAnswer(v), TIME_RE);
  assert.match(datetimeAnswer("2024-06-15T08:30"), DATETIME_RE);
  const now = new Date(Date.UTC(2024, 5, 15, 16, 30, 5, 7)); // 00:30:05.007 the next day in Shanghai
  assert.equal(nowAnswer(now), "2024-06-16T00:30:05.007+08:00");
  assert.match(nowAnswer(now), DATETIME_RE);
});

test("rank moves one choice up or down, never past either end", () => {
  assert.deepEqual(moved(["a", "b", "c"], 0, 1), ["b", "a", "c"]);
  assert.deepEqual(moved(["a", "b", "c"], 2, -1), ["a", "c", "b"]);
  assert.deepEqual(moved(["a", "b", "c"], 0, -1), ["a", "b", "c"]);
  assert.deepEqual(moved(["a", "b", "c"], 2, 1), ["a", "b", "c"]);
});

const META_FORM = {
  id: "meta", version: 1, title: L("元"),
  fields: [
    { name: "started", type: "start", label: L("开始") },
    { name: "ended", type: "end", label: L("结束") },
    { name: "day", type: "today", label: L("日期") },
    { name: "device", type: "deviceid", label: L("设备") },
    { name: "n", type: "integer", label: L("数"), default: "3" },
    { name: "crops", type: "select_multiple", label: L("作物"), default: "rice maize", choices: [{ name: "rice", label: L("稻") }, { name: "maize", label: L("玉米") }] },
    { name: "note_text", type: "text", label: L("文字"), default: "无" },
    { name: "twice", type: "integer", label: L("两倍"), default: "${n} * 2" },
    { name: "when", type: "date", label: L("哪天"), default: "today()" },
    { name: "bad", type: "integer", label: L("坏"), default: "abc" },
    { name: "kids", type: "repeat", label: L("孩子"), fields: [{ name: "age", type: "integer", label: L("年龄"), default: "7" }] },
  ],
};

test("start, today and deviceid are filled in when the form opens, end when it is sent", () => {
  const open = new Date(Date.UTC(2024, 5, 15, 1, 0, 0, 0));
  const answers = fillMeta(META_FORM, {}, "open", { now: open, device: () => "jiedui:abc" });
  assert.equal(answers.started, "2024-06-15T09:00:00.000+08:00");
  assert.equal(answers.day, "2024-06-15");
  assert.equal(answers.device, "jiedui:abc");
  // Reopening a draft keeps what it had.
  const again = fillMeta(META_FORM, { ...answers }, "open", { now: new Date(Date.UTC(2024, 5, 16)), device: () => "other" });
  assert.equal(again.started, answers.started);
  assert.equal(again.device, "jiedui:abc");
  const sent = fillMeta(META_FORM, { ...again }, "end", { now: new Date(Date.UTC(2024, 5, 15, 2, 0, 0, 0)) });
  assert.equal(sent.ended, "2024-06-15T10:00:00.000+08:00");
  assert.equal(sent.started, answers.started);
  for (const v of [sent.started, sent.ended]) assert.match(v, DATETIME_RE);
});

test("defaults pre-fill a new draft and a new repeat entry, typed as their questions", () => {
  const draft = newDraft(META_FORM, { id: "v1-0001", version: 1 });
  assert.equal(draft.answers.n, 3);
  assert.deepEqual(draft.answers.crops, ["rice", "maize"]);
  assert.equal(draft.answers.note_text, "无");
  assert.equal(draft.answers.twice, 6); // a dynamic default, evaluated on the answers before it
  assert.match(draft.answers.when, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal("bad" in draft.answers, false); // not a number: no default rather than a wrong one
  assert.deepEqual(applyDefaults(META_FORM.fields[10].fields, {}, draft.answers), { age: 7 });
  assert.equal(defaultAnswer({ type: "text", default: "" }), undefined);
  assert.equal(defaultAnswer({ type: "text", default: "x", compute: { xpath: "1" } }), undefined);
});

const FILTER_FORM = {
  id: "filter", version: 1, title: L("筛选"),
  fields: [
    { name: "province", type: "select_one", label: L("省"), choices: [{ name: "yn", label: L("云南") }, { name: "gz", label: L("贵州") }] },
    { name: "county", type: "select_one", label: L("县"), choice_filter: { xpath: "prov = ${province}" },
      choices: [{ name: "km", label: L("昆明"), data: { prov: "yn" } }, { name: "gy", label: L("贵阳"), data: { prov: "gz" } }] },
    { name: "plots", type: "repeat", label: L("地块"), fields: [
      { name: "crop", type: "select_one", label: L("作物"), choices: [{ name: "rice", label: L("稻") }, { name: "tea", label: L("茶") }] },
      { name: "grade", type: "select_multiple", label: L("等级"), choice_filter: { xpath: "kind = ${crop} or kind = 'any'" },
        choices: [{ name: "r1", label: L("稻一"), data: { kind: "rice" } }, { name: "t1", label: L("茶一"), data: { kind: "tea" } }, { name: "x", label: L("通"), data: { kind: "any" } }] },
      { name: "visits", type: "repeat", label: L("查看"), fields: [
        { name: "when", type: "time", label: L("时间"), required: true },
        { name: "why", type: "text", label: L("原因"), relevant: { xpath: "${crop} = 'tea'" } },
      ] },
    ] },
  ],
};

test("choice_filter offers the choices whose columns pass, with the answers so far (top and in a repeat)", () => {
  const county = FILTER_FORM.fields[1];
  assert.deepEqual([...offered(county, { province: "yn" })], ["km"]);
  assert.deepEqual([...offered(county, {})], []);
  assert.equal(offered(FILTER_FORM.fields[0], {}), null);
  const grade = FILTER_FORM.fields[2].fields[1];
  const answers = { plots: [{ crop: "tea" }] };
  assert.deepEqual(entryAt(answers, "plots.0.grade"), { crop: "tea" });
  assert.equal(entryAt(answers, "province"), null);
  assert.deepEqual([...offered(grade, answers, entryAt(answers, "plots.0.grade"))], ["t1", "x"]);
  const keys = (answers) => validateAnswers(FILTER_FORM, answers).map((e) => `${e.field}:${e.key}`);
  assert.deepEqual(keys({ province: "yn", county: "gy" }), ["county:err_choice"]);
  assert.deepEqual(keys({ province: "yn", county: "km" }), []);
  assert.deepEqual(keys({ plots: [{ crop: "tea", grade: ["r1"] }] }), ["plots.0.grade:err_choice"]);
  assert.deepEqual(keys({ plots: [{ crop: "tea", grade: ["t1", "x"] }] }), []);
});

test("a repeat inside a repeat is checked, shown and cleaned entry by entry, seeing the outer entry", () => {
  const answers = { plots: [
    { crop: "rice", visits: [{ when: "08:00:00", why: "stale" }, {}] },
    { crop: "tea", visits: [{ when: "09:30:00", why: "虫害" }] },
  ] };
  assert.deepEqual(validateAnswers(FILTER_FORM, answers).map((e) => `${e.field}:${e.key}`), ["plots.0.visits.1.when:err_required"]);
  const { shown } = relevance(FILTER_FORM, answers);
  assert.equal(shown.get("plots.0.visits.0.why"), false);
  assert.equal(shown.get("plots.1.visits.0.why"), true);
  assert.equal(shown.get("plots.1.visits.0.when"), true);
  assert.deepEqual(cleanAnswers(FILTER_FORM, answers), { plots: [
    { crop: "rice", visits: [{ when: "08:00:00" }, {}] },
    { crop: "tea", visits: [{ when: "09:30:00", why: "虫害" }] },
  ] });
});

test("calculations inside a nested repeat are computed with the outer entry's answers", () => {
  const form = { id: "c", version: 1, title: L("算"), fields: [
    { name: "hh", type: "repeat", label: L("户"), fields: [
      { name: "size", type: "integer", label: L("人") },
      { name: "rooms", type: "repeat", label: L("间"), fields: [
        { name: "beds", type: "integer", label: L("床") },
        { name: "per", type: "decimal", label: L("人均"), compute: { xpath: "${size} div ${beds}" } },
      ] },
    ] },
  ] };
  const out = computeAll(form, { hh: [{ size: 6, rooms: [{ beds: 2 }, { beds: 3 }] }] });
  assert.deepEqual(out.hh[0].rooms.map((r) => r.per), [3, 2]);
});

test("range answers are numbers within min and max", () => {
  const form = { id: "r", version: 1, title: L("范"), fields: [{ name: "score", type: "range", label: L("分"), min: 1, max: 5, step: 1 }] };
  const keys = (answers) => validateAnswers(form, answers).map((e) => `${e.field}:${e.key}`);
  assert.deepEqual(keys({ score: 3 }), []);
  assert.deepEqual(keys({ score: 9 }), ["score:err_max"]);
  assert.deepEqual(keys({ score: "3" }), ["score:err_number"]);
});
