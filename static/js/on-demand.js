// Modules loaded when first needed (screens other than Today, what only sending a form needs, the
// English texts), each with the modules it imports that the home screen has not loaded, asked for
// side by side: on slow 3G a chain of imports would be a chain of round trips. NEEDS is filled in
// as this file is served (server/phone.py reads every module's imports, so no list is kept by
// hand); under node --test it stays empty and modules load as usual.

const NEEDS = {};
const asked = new Set();

/** The module at `path` under static/js/ ("form-screen.js"), what it needs fetched alongside. */
export function onDemand(path) {
  const name = path.replace(/\.js$/, "");
  if (typeof document !== "undefined") {
    for (const dep of NEEDS[name] || []) {
      if (asked.has(dep)) continue;
      asked.add(dep);
      const link = document.createElement("link");
      link.rel = "modulepreload";
      link.href = new URL(`./${dep}.js`, import.meta.url).href;
      document.head.append(link);
    }
  }
  return import(`./${path}`);
}
