// Form definitions in the shape of the version-2 contract (sections, carried-forward promises,
// declared effects), for node tests that must not wait for the server's form files.

const L = (zh, en) => ({ zh, en });
const YES_NO = [{ name: "yes", label: L("是", "Yes") }, { name: "no", label: L("否", "No") }];

export const VISIT_V1 = {
  id: "household_visit", version: 1, title: L("入户走访记录", "Household visit"), effects: { members: "members" },
  fields: [
    { name: "visit_date", type: "date", label: L("走访日期", "Visit date"), required: true },
    { name: "present", type: "text", label: L("在场人员", "Present"), required: true },
    { name: "visit_type", type: "select_one", label: L("走访方式", "Visit type"), required: true,
      choices: [{ name: "home", label: L("入户", "Home") }, { name: "phone", label: L("电话", "Phone") }, { name: "group", label: L("集中", "Group") }] },
    { name: "income_total", type: "decimal", label: L("收入合计", "Total"), readonly: true, compute: { sum: ["income_wages"] } },
    { name: "income_wages", type: "decimal", label: L("工资", "Wages") },
    { name: "followups", type: "repeat", label: L("后续跟进事项", "Follow-ups"), fields: [
      { name: "action", type: "text", label: L("事项", "Action"), required: true },
      { name: "due_date", type: "date", label: L("期限", "Due"), required: true },
      { name: "done", type: "select_one", label: L("是否办结", "Done"), choices: YES_NO },
    ] },
    { name: "risk", type: "select_one", label: L("风险", "Risk"), required: true, choices: YES_NO },
    { name: "photo_1", type: "photo", label: L("照片 1", "Photo 1") },
  ],
};

export const VISIT_V2 = {
  id: "household_visit", version: 2, title: L("入户走访记录", "Household visit"), effects: { members: "members" },
  effects: {
    visit_date: "visit_date", members: "members",
    followups: { repeat: "followups", action: "action", due: "due_date" },
    followup_answers: { repeat: "promises", id: "followup_id", status: "status", note: "note" },
    help_value: { repeat: "help_given", quantity: "quantity", price: "price" },
  },
  fields: [
    { name: "who", type: "group", label: L("在场人员", "Who is present"), fields: [
      { name: "visit_date", type: "date", label: L("走访日期", "Visit date"), required: true },
      { name: "visit_type", type: "select_one", label: L("走访方式", "Visit type"), required: true,
        choices: [{ name: "home", label: L("入户", "Home") }, { name: "phone", label: L("电话", "Phone") }] },
      { name: "present", type: "text", label: L("在场人员", "Present"), required: true },
    ] },
    { name: "family", type: "group", label: L("家庭情况", "Family"), fields: [
      { name: "family_changes", type: "select_one", label: L("成员变化", "Changes"), required: true, choices: YES_NO },
      { name: "members", type: "repeat", label: L("成员", "Members"), relevant: { field: "family_changes", op: "eq", value: "yes" },
        min_count: 1, fields: [{ name: "name", type: "text", label: L("姓名", "Name"), required: true }] },
    ] },
    { name: "income", type: "group", label: L("收入", "Income"), relevant: { field: "visit_type", op: "eq", value: "home" }, fields: [
      { name: "income_wages", type: "decimal", label: L("工资", "Wages"), required: true },
      { name: "income_total", type: "decimal", label: L("收入合计", "Total"), readonly: true, compute: { sum: ["income_wages"] } },
    ] },
    { name: "promises_section", type: "group", label: L("上次答应的事", "Promises"), fields: [
      { name: "promises", type: "repeat", label: L("承诺事项", "Promises"), prefill: "open_followups", fields: [
        { name: "followup_id", type: "text", label: L("编号", "Id"), readonly: true },
        { name: "status", type: "select_one", label: L("进展", "Status"), required: true,
          choices: [{ name: "done", label: L("已办结", "Done") }, { name: "in_progress", label: L("办理中", "In progress") }, { name: "dropped", label: L("不再办理", "Dropped") }] },
        { name: "note", type: "text", label: L("说明", "Note") },
      ] },
      { name: "followups", type: "repeat", label: L("新的跟进事项", "New follow-ups"), fields: [
        { name: "action", type: "text", label: L("事项", "Action"), required: true },
        { name: "due_date", type: "date", label: L("期限", "Due"), required: true },
      ] },
    ] },
    { name: "end", type: "group", label: L("照片与签字", "Photos and signature"), fields: [
      { name: "risk", type: "select_one", label: L("风险", "Risk"), required: true, choices: YES_NO },
      { name: "photo_1", type: "photo", label: L("照片 1", "Photo 1") },
    ] },
  ],
};
