// The phone app's words in Chinese (the default for Chinese browsers) and English. The Chinese are
// here; the English are fetched when a cadre first reads English (i18n-en.js), so a Chinese
// phone never downloads them. The choice is remembered on the phone (localStorage). Form texts
// come from the form definitions themselves.

import { onDemand } from "./on-demand.js";

const ZH = {
  tab_today: "今日",
  tab_settings: "设置",
  today_title: "今日工作",
  today_overdue: "已逾期的承诺（{n}）",
  today_due_soon: "7 天内到期的承诺（{n}）",
  today_returned: "退回待修改的走访（{n}）",
  today_not_visited: "超过 30 天未走访（{n} 户）",
  today_nothing_due: "没有逾期或 7 天内到期的承诺。",
  today_all_visited: "结对户 30 天内都已走访。",
  today_none_paired: "您还没有结对户。督导或管理员为您结对后，这里会列出 30 天未走访的结对户。",
  today_as_of: "按上次同步的数据（{time}）",
  today_never_synced: "还没有同步过：联网后点“同步”下载农户和表单。",
  first_sync: "正在从服务器下载农户和表单，请稍候。下载完成后没有信号也能照常填写。",
  screen_not_kept: "这一页还没有保存到手机上：请联网时打开一次，之后没有信号也能用。",
  overdue_days: "逾期 {n} 天",
  due_today: "今天到期",
  due_in: "{n} 天后到期",
  due_on: "{date} 到期",
  promise_in_progress: "办理中",
  promise_not_sent: "尚未发送",
  promised_on: "{date} 答应",
  go_visit: "去走访 ›",
  show_all_n: "显示全部 {n} 户",
  returned_title: "退回修改",
  returned_help: "审核人退回的走访。点“修改”会用退回的内容新建一份草稿，改好提交后替换原记录。",
  returned_none: "没有退回的走访。",
  review_comment: "审核意见",
  review_by: "{who} 审核",
  field_comment: "审核意见：{text}",
  fix: "修改",
  fix_continue: "继续修改",
  fix_waiting: "更正已在发送箱，等待发送",
  review_superseded: "已更正",
  photo_on_server: "照片只在服务器上",
  photos_missing: "{n} 张照片不在手机上：联网后会重新下载，也可以重拍。",
  old_version: "这份草稿按旧版表单（第 {from} 版）填写，现行为第 {to} 版。旧版仍可提交；转到新版会保留新版仍有的内容。",
  move_version: "转到新版表单",
  moved_note: "已转到第 {to} 版。新版没有以下内容，已去掉：{list}",
  moved_all_kept: "已转到第 {to} 版，内容全部保留。",
  move_unavailable: "手机上没有新版表单，请联网同步后再试。",
  draft_old_badge: "旧版表单",
  draft_correction_badge: "更正",
  correction_notice: "更正退回的走访",
  hh_visits_cached: "其他人的走访按 {time} 联网时的记录",
  visit_by_other: "{who} 走访",
  section_progress: "第 {n}/{total} 部分",
  next_section: "下一部分",
  prev_section: "上一部分",
  sections_menu: "目录",
  section_skipped: "不适用",
  section_errors: "{n} 处需修改",
  promises_none: "这户没有待跟进的承诺。",
  promise_due: "{due} 到期",
  promise_last: "上次：{status}",
  promise_unknown: "承诺事项 {id}",
  promise_remove_closed: "此事项已不在未办结列表中，移除这一项",
  sync_offline_toast: "当前没有网络，无法同步。记录都保存在手机上，联网后自动发送。",
  sync_failed_toast: "同步没有完成：{why}",
  sync_done_toast: "同步完成。",
  storage_volatile: "此浏览器不能在手机上保存数据：关闭页面后草稿和未发送的记录会丢失。请用手机自带浏览器打开，不要用无痕模式。",
  storage_not_persistent: "浏览器在手机空间不足时可能清除本应用的数据。请把本应用“添加到主屏幕”并及时同步。",
  storage_settings_link: "查看存储",
  settings_title: "设置",
  settings_storage: "手机存储",
  storage_used: "已用 {used}（上限约 {quota}）",
  storage_estimate_unknown: "此浏览器不提供已用空间。",
  storage_persistent_yes: "已设为持久保存：浏览器不会自动清除本应用的数据。",
  storage_persistent_no: "未设为持久保存：空间不足时浏览器可能清除数据。",
  storage_persistent_unknown: "此浏览器不支持持久保存设置。",
  storage_request: "申请持久保存",
  storage_counts: "草稿 {d} 份 · 待发送 {o} 条 · 已发送 {s} 条 · 照片 {p} 张",
  settings_language: "语言 / Language",
  settings_account: "账号",
  signed_in_as: "当前登录：{name}",
  logout: "退出登录",
  logout_confirm: "确定退出登录吗？",
  logout_confirm_pending: "还有 {n} 条记录没有发送。退出后它们仍保存在手机上，下次登录后发送。确定退出吗？",
  logout_failed: "没有退出：{why}",
  hh_recent_visits: "最近走访",
  hh_open_promises: "未办结的承诺（{n}）",
  hh_no_visits: "手机上还没有这户的走访记录。",
  hh_last_visit: "上次走访",
  help_total: "帮扶 {n} 元",
  answers_in_form: "填写内容",
  app_title: "结对帮扶 · 入户走访",
  brand: "结对帮扶",
  sync_now: "同步",
  syncing_short: "同步中…",
  tab_households: "农户",
  tab_drafts: "草稿",
  tab_outbox: "发送箱",
  main_menu: "主菜单",
  status_pending: "待发送 {n} 条",
  status_none_pending: "无待发送记录",
  status_refused: "退回 {n}",
  status_refused_only: "{n} 条被退回待修改",
  status_syncing: "正在同步…",
  status_login: "需要重新登录",
  status_offline: "离线",
  status_last: "上次同步 {time}",
  status_never: "尚未同步",
  update_ready: "有新版本可用。",
  update_reload: "立即更新",
  login_needed: "登录已过期。记录都保存在手机上，登录后自动继续同步。",
  login: "登录",
  offline_note: "当前离线：可以照常填写，记录保存在手机上，联网后自动发送。",
  retry_at: "将于 {time} 自动重试",
  cat_tuopin: "脱贫户",
  cat_jiance: "监测户",
  cat_dibao: "低保户",
  cat_ordinary: "一般户",
  visit_never: "尚无走访记录",
  visit_overdue: "已 {n} 天未走访",
  visit_last: "上次走访 {date}（{n} 天前）",
  visit_today: "今天已走访",
  notice_refused: "{n} 条记录被退回，需要修改后重新提交 ›",
  notice_drafts: "{n} 份草稿尚未提交 ›",
  no_households: "还没有农户数据。请联网后点“同步”。",
  first_run: "首次使用请先联网登录，然后同步农户和表单。之后没有信号也能照常填写。",
  search_label: "搜索农户",
  search_placeholder: "搜索户主、成员、户号、地址、电话",
  filter_label: "显示范围",
  filter_mine: "我的结对户",
  filter_all: "全部",
  people: "{n} 人",
  showing: "显示 {shown} / {total} 户",
  no_match: "没有符合条件的农户。",
  show_more: "显示更多",
  not_found: "找不到",
  household_missing: "手机上没有农户 {id}，请联网同步后再试。",
  back_home: "返回农户列表",
  drafts_here: "未提交的草稿",
  print_profile: "打印帮扶档案 (PDF)",
  print_offline: "联网后可打印帮扶档案。",
  print_mine: "打印我的 {n} 户结对户档案",
  edited_at: "编辑于 {time}",
  basic_facts: "基本信息",
  f_id: "户号",
  f_group: "组别",
  f_address: "地址",
  f_phone: "电话",
  f_population: "人口",
  members_title: "家庭成员（{n} 人）",
  sex_male: "男",
  sex_female: "女",
  born: "{y} 年生",
  none: "无",
  plots_title: "承包地块",
  mu: "{n} 亩",
  bounds: "东至{e}，西至{w}，南至{s}，北至{n}",
  contract_yes: "已签合同",
  contract_no: "未签合同",
  pv_title: "光伏情况",
  pv_stage: "进度",
  pv_capacity: "装机容量",
  pv_kwh: "预计年发电量",
  pv_funding: "出资方式",
  review_received: "待审核",
  review_issues: "需修改",
  review_approved: "已通过",
  photo_not_uploaded: "照片未能上传：{why}",
  state_sent: "已发送 {time}",
  state_waiting: "等待发送",
  state_last_error: "上次未发出：{why}",
  state_sending: "正在发送…",
  state_uploading: "已送达，正在上传照片 {done}/{total}",
  state_refused: "被退回，需要修改",
  refused_no_reason: "服务器没有说明原因。",
  fix_and_resend: "修改后重新提交",
  discard: "放弃这条记录",
  discard_confirm: "确定放弃这条被退回的记录吗？放弃后无法恢复。",
  discarded: "已放弃该记录。",
  outbox_help: "提交的记录先保存在手机上，联网后自动发送；只有服务器确认收到后才会从这里移到“已发送”。",
  section_refused: "被退回（{n}）",
  section_pending: "等待发送（{n}）",
  nothing_pending: "没有等待发送的记录。",
  section_sent: "已发送",
  nothing_sent: "还没有发送过记录。",
  answers_title: "填写内容",
  drafts_help: "填写时每一处改动都自动保存在手机上。",
  draft_was_refused: "被退回，待修改",
  resume: "继续填写",
  delete: "删除",
  delete_draft_confirm: "确定删除这份草稿吗？删除后无法恢复。",
  draft_deleted: "草稿已删除。",
  no_drafts: "没有草稿。",
  loading: "正在加载…",
  cannot_open: "无法打开表单",
  form_missing: "手机上还没有这个表单。请联网后点“同步”下载。",
  draft_missing: "找不到这份草稿，可能已经提交或删除。",
  autosaved: "已自动保存 {time}",
  save_failed: "暂时无法保存到手机，请勿关闭页面，正在重试…",
  draft_saved: "草稿已保存在手机上。",
  fix_first: "有 {n} 处需要修改，请按提示改正后再提交。",
  queued: "已保存到发送箱，联网后自动发送。",
  submit_failed: "提交失败：{why}",
  was_refused: "服务器退回了这条记录。请按红色提示修改后重新提交。",
  save_draft: "保存草稿",
  submit: "提交",
  error_title: "出错了",
  required: "必填",
  today: "今天",
  clear_choice: "清除选择",
  geo_none: "尚未定位。",
  geo_value: "纬度 {lat}，经度 {lon}，精度约 {acc} 米",
  geo_poor: "精度较差，可到屋外开阔处重新定位。",
  geo_get: "获取当前位置",
  geo_retry: "重新定位",
  geo_locating: "正在定位，请稍候（最长 30 秒）…",
  geo_denied: "没有定位权限。请在浏览器设置中允许定位后重试。",
  geo_timeout: "定位超时，请到开阔处重试。",
  geo_unavailable: "无法获取位置，请检查是否打开了定位（GPS）后重试。",
  photo_take: "拍照或选择照片",
  photo_retake: "重拍",
  photo_remove: "删除照片",
  photo_missing: "手机上找不到这张照片，请重拍。",
  photo_saved: "照片已保存（{kb} KB）",
  photo_working: "正在处理照片…",
  photo_failed: "无法读取这张照片，请重拍或换一张。",
  sig_clear: "清除签名",
  sig_help: "请在框内用手指签名",
  repeat_entry: "第 {n} 项",
  repeat_remove: "删除此项",
  repeat_remove_label: "删除{what}第 {n} 项",
  repeat_remove_confirm: "确定删除第 {n} 项吗？",
  repeat_add: "添加一项",
  repeat_add_label: "添加一项：{what}",
  repeat_copy: "从户档案填入现有成员（{n} 人）",
  fix_count: "有 {n} 处需要修改：",
  err_required: "此项必填",
  err_integer: "请填写整数",
  err_number: "请填写数字",
  err_min: "不能小于 {min}",
  err_max: "不能大于 {max}",
  err_text: "请填写文字",
  err_max_length: "最多 {max} 个字",
  err_min_length: "至少 {min} 个字",
  err_date: "请填写有效日期",
  err_date_min: "日期不能早于 {min}",
  err_date_max: "日期不能晚于 {max}",
  err_choice: "请从选项中选择",
  err_geopoint: "位置无效，请重新定位",
  err_file: "文件无效，请重新拍摄",
  err_constraint: "填写的内容不符合要求",
  err_min_count: "至少填写 {min} 项",
  err_max_count: "最多 {max} 项",
};

/** The texts by language; English is null until loaded (loadLanguage). */
export const STRINGS = { zh: ZH, en: null };

const KEY = "jiedui.lang";
const listeners = new Set();

function storage() {
  try {
    return globalThis.localStorage || null;
  } catch (_) {
    return null; // blocked storage (privacy settings)
  }
}

/** The remembered choice, else Chinese for a Chinese browser, else English. */
export function detectLang() {
  const stored = storage() && storage().getItem(KEY);
  if (stored === "zh" || stored === "en") return stored;
  const nav = globalThis.navigator;
  const wanted = nav ? [...(nav.languages || []), nav.language || ""] : [];
  if (!wanted.filter(Boolean).length) return "zh";
  return /^zh/i.test(wanted.filter(Boolean)[0]) ? "zh" : "en";
}

let current = detectLang();

function applyToDocument() {
  if (globalThis.document) globalThis.document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
}
applyToDocument();

export const lang = () => current;

/** Makes a language's texts available (English is fetched the first time). */
export async function loadLanguage(value) {
  if (value === "en" && !STRINGS.en) STRINGS.en = (await onDemand("i18n-en.js")).EN;
}

export async function setLang(value) {
  if (value !== "zh" && value !== "en") return;
  await loadLanguage(value);
  current = value;
  try { if (storage()) storage().setItem(KEY, value); } catch (_) { /* not remembered, still switched */ }
  applyToDocument();
  for (const fn of listeners) fn(value);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Text for the current language from a {zh, en} object (or a plain string), falling back to the other. */
export function pick(text, language = current) {
  if (text === null || text === undefined) return "";
  if (typeof text === "string") return text;
  return text[language] || text.zh || text.en || "";
}

/** The text for key in the current language, with {name} placeholders filled from params. */
export function t(key, params = {}) {
  const text = (STRINGS[current] && STRINGS[current][key]) ?? STRINGS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (params[name] === undefined || params[name] === null ? m : String(params[name])));
}
