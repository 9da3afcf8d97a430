// Settings: the phone's storage (space used, whether the browser keeps it), the language, and
// logging out (what is waiting stays on the phone for the next login).

import { h } from "./dom.js";
import { lang, t } from "./i18n.js";
import { askToPersist, estimate, formatBytes, isPersisted } from "./storage.js";
import { page, phoneState, setMain, toast } from "./ui.js";

export async function showSettings(ctx, token) {
  ctx.screen.refresh = null;
  const [state, used, persisted, photos] = await Promise.all([
    phoneState(ctx.db, ctx.engine), estimate(), isPersisted(), ctx.db.keys("photos"),
  ]);
  if (!ctx.live(token)) return;
  const persistLine = h("p", { "data-persistent": String(persisted) },
    persisted === null ? t("storage_persistent_unknown") : t(persisted ? "storage_persistent_yes" : "storage_persistent_no"));
  const ask = persisted === false ? h("button", {
    type: "button", class: "secondary", "data-action": "persist", onclick: async () => {
      const granted = await askToPersist();
      persistLine.textContent = t(granted ? "storage_persistent_yes" : "storage_persistent_no");
      persistLine.dataset.persistent = String(granted);
    },
  }, t("storage_request")) : null;
  const logout = async () => {
    const waiting = state.pending.length + [...state.outbox, ...state.edits].filter((i) => i.state === "refused").length;
    if (!window.confirm(waiting ? t("logout_confirm_pending", { n: waiting }) : t("logout_confirm"))) return;
    try {
      await ctx.engine.send("POST", "/logout", { json: {} });
      location.assign("/login");
    } catch (err) {
      toast(t("logout_failed", { why: navigator.onLine === false ? t("status_offline") : String(err && err.message) }));
    }
  };
  const user = state.user;
  setMain(page(t("settings_title"),
    h("section", { class: "card", "data-section": "storage" }, h("h2", {}, t("settings_storage")),
      ctx.db.volatile ? h("p", { class: "warn-text" }, t("storage_volatile")) : null,
      persisted === false ? h("p", { class: "warn-text", "data-storage": "not-persistent" }, t("storage_not_persistent")) : null,
      h("p", { "data-storage-used": used ? String(used.usage) : "" },
        used ? t("storage_used", { used: formatBytes(used.usage), quota: used.quota ? formatBytes(used.quota) : "?" }) : t("storage_estimate_unknown")),
      h("p", { class: "muted" }, t("storage_counts", {
        d: state.drafts.length, o: state.pending.length, s: state.sent.length, p: photos.filter((k) => !k.includes("#")).length,
      })),
      persistLine, ask),
    h("section", { class: "card" }, h("h2", {}, t("settings_language")),
      h("button", { type: "button", class: "secondary", "data-action": "switch-language", lang: lang() === "zh" ? "en" : "zh-CN" },
        lang() === "zh" ? "English" : "中文")),
    ctx.lock && ctx.lock.enabled ? pinSection(ctx.lock) : null,
    h("section", { class: "card" }, h("h2", {}, t("settings_account")),
      user ? h("p", {}, t("signed_in_as", { name: user.display_name || user.username || user.id })) : null,
      h("button", { type: "button", class: "secondary danger", "data-action": "logout", onclick: logout }, t("logout")))));
}

/** Changing the app PIN (only where the county requires one): the data key is wrapped again. */
function pinSection(lock) {
  const note = h("p", { role: "status" });
  const input = (name, label) => [h("label", { for: `pin-${name}` }, label),
    h("input", { id: `pin-${name}`, name, type: "password", inputmode: "numeric", maxlength: "6", autocomplete: "off" })];
  const form = h("form", { novalidate: true, hidden: true }, ...input("old_pin", t("pin_current")), ...input("new_pin", t("pin_new")),
    ...input("new_pin2", t("pin_again")), note,
    h("button", { type: "submit", class: "primary", "data-action": "save-pin" }, t("pin_set")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [old, pin, again] = ["old_pin", "new_pin", "new_pin2"].map((n) => form.elements[n].value);
    if (!/^[0-9]{6}$/.test(pin)) { note.textContent = t("pin_six_digits"); return; }
    if (pin !== again) { note.textContent = t("pin_differ"); return; }
    try {
      await lock.changePin(old, pin);
    } catch (err) {
      note.textContent = err && err.name === "WrongPin" ? t("pin_wrong") : String(err && err.message);
      return;
    }
    form.reset();
    form.hidden = true;
    toast(t("pin_changed"));
  });
  return h("section", { class: "card", "data-section": "pin" }, h("h2", {}, t("settings_pin")),
    h("p", { class: "muted" }, t("settings_pin_note", { n: lock.idleMinutes })),
    h("button", { type: "button", class: "secondary", "data-action": "change-pin", onclick: () => { form.hidden = false; } }, t("pin_change")),
    form);
}
