// The app PIN's screens (issue 24): set a PIN (when the county requires one), unlock, "erased
// after ten wrong PINs: log in again", "this phone is to be erased: the PIN sends what is unsent
// first", "this phone was erased"; and the idle timer that locks the app. Loaded only where a PIN
// is required (lock.js keeps the state; this module shows it). While a lock screen shows, the tabs
// and the sync button are hidden (body.locked) and the screen behind is gone from the page.
//
// Test hooks: #lock-screen carries data-lock="setup" | "unlock" | "login" | "erase" | "erased";
// inputs name="pin" (and "pin2" to confirm a new one); buttons data-action="set-pin" | "unlock".

import { clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { WrongPin } from "./sealed.js"; // brings the encryption alongside this module

const ACTIVITY = ["pointerdown", "keydown", "input", "touchstart", "wheel"];
const main = () => document.getElementById("main");

function screen(mode, ...children) {
  document.body.classList.add("locked");
  const el = h("section", { id: "lock-screen", class: "lock-screen", "data-lock": mode }, ...children);
  clear(main()).append(el);
  return el;
}

function done() {
  document.body.classList.remove("locked");
}

const pinInput = (name, label) => [
  h("label", { for: `lock-${name}` }, label),
  h("input", { id: `lock-${name}`, name, type: "password", inputmode: "numeric", pattern: "[0-9]*",
    maxlength: "6", autocomplete: "off", required: true }),
];

/** The set-up screen; resolves once a PIN is set and what the phone holds is encrypted under it. */
export function setupPin(lock) {
  return new Promise((resolve) => {
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", { novalidate: true }, ...pinInput("pin", t("pin_new")), ...pinInput("pin2", t("pin_again")), error,
      h("button", { type: "submit", class: "primary", "data-action": "set-pin" }, t("pin_set")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const pin = form.elements.pin.value;
      if (!/^[0-9]{6}$/.test(pin)) { error.textContent = t("pin_six_digits"); return; }
      if (pin !== form.elements.pin2.value) { error.textContent = t("pin_differ"); return; }
      form.querySelector("button").disabled = true;
      error.textContent = t("pin_working");
      try {
        await lock.setup(pin);
      } catch (err) {
        error.textContent = String(err && err.message);
        form.querySelector("button").disabled = false;
        return;
      }
      done();
      resolve();
    });
    screen("setup", h("h1", {}, t("pin_setup_title")), h("p", {}, t("pin_setup_why")), form);
    form.elements.pin.focus();
  });
}

/**
 * The unlock screen; resolves {unlocked: true} with the right PIN, or {erased: true} after the
 * last wrong one (the caller shows what comes next). `mode` "erase" says the phone is to be erased
 * once what is unsent has gone.
 */
export function unlockPin(lock, { mode = "unlock" } = {}) {
  return new Promise((resolve) => {
    const left = () => t("pin_left", { n: lock.wrongPinsLeft });
    const error = h("p", { class: "error", role: "alert", "data-left": String(lock.wrongPinsLeft) },
      lock.failures ? left() : "");
    const form = h("form", { novalidate: true }, ...pinInput("pin", t("pin_enter")), error,
      h("button", { type: "submit", class: "primary", "data-action": "unlock" }, t("pin_unlock")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button");
      const input = form.elements.pin;
      button.disabled = true;
      try {
        const outcome = await lock.unlock(input.value);
        if (outcome.erased) { resolve({ erased: true }); return; }
        done();
        resolve({ unlocked: true });
      } catch (err) {
        input.value = "";
        error.dataset.left = String(lock.wrongPinsLeft);
        error.textContent = err instanceof WrongPin ? `${t("pin_wrong")} ${left()}` : String(err && err.message);
        button.disabled = false;
        input.focus();
      }
    });
    screen(mode, h("h1", {}, t(mode === "erase" ? "erase_pending_title" : "pin_locked_title")),
      mode === "erase" ? h("p", { class: "warn" }, t("erase_pending_why")) : null, form);
    form.elements.pin.focus();
  });
}

/**
 * After ten wrong PINs: the old login is ended (so only the password brings the PIN back), then
 * the cadre logs in again; resolves once a fresh login is confirmed (the PIN may be tried again).
 * `ask` is the engine: send() for the logout, request() for the bootstrap.
 */
export async function loginAgain(lock, ask) {
  const note = h("p", { class: "muted", "data-state": "checking" });
  screen("login", h("h1", {}, t("pin_erased_title")), h("p", {}, t("pin_erased_why")), note,
    h("a", { class: "button primary", href: "/login?next=%2Fapp%2F", "data-action": "login" }, t("login")));
  for (;;) {
    const record = lock.record || {};
    try {
      if (!record.logged_out) {
        await ask.send("POST", "/logout", { json: {} }).catch((err) => {
          if (!(err && err.name === "LoginRequired")) throw err; // already ended: as good
        });
        lock.markLoggedOut();
      } else {
        await ask.request("GET", "/api/v1/bootstrap");
        if (lock.loginConfirmed()) return;
      }
      note.dataset.state = "login";
      note.textContent = t("pin_login_first");
    } catch (err) {
      note.dataset.state = "offline";
      note.textContent = t("pin_login_offline");
    }
    await new Promise((resolve) => {
      window.addEventListener("online", resolve, { once: true });
      window.addEventListener("focus", resolve, { once: true });
    });
  }
}

/** The last screen of an erased phone. */
export function showErased() {
  screen("erased", h("h1", {}, t("erased_title")), h("p", {}, t("erased_why")));
}

/**
 * Locks the app after `minutes()` without a touch or a key; `onIdle` shows the lock screen. The
 * timer restarts at every activity (one timer, not one per event).
 */
export function watchIdle(minutes, onIdle) {
  let timer = null;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(onIdle, Math.max(1000, minutes() * 60 * 1000));
  };
  for (const type of ACTIVITY) document.addEventListener(type, arm, { passive: true, capture: true });
  arm();
  return arm;
}
