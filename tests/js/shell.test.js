// The app shell as files: the service worker precaches every module, the size budget holds,
// every text the code asks for exists in both languages, the manifest's icons are real.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

import { STRINGS } from "../../static/js/i18n.js";
import { EN } from "../../static/js/i18n-en.js";

STRINGS.en = EN; // fetched by the app only when a phone reads English

const STATIC = fileURLToPath(new URL("../../static/", import.meta.url));
const read = (rel) => readFileSync(`${STATIC}${rel}`, "utf8");
const jsFiles = readdirSync(`${STATIC}js`).filter((f) => f.endsWith(".js"));

function precached() {
  const src = read("sw.js");
  const block = /const SHELL = \[([\s\S]*?)\];/.exec(src)[1];
  return [...block.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

test("the service worker precaches every module, the stylesheet, the icons and the shell", () => {
  const shell = precached();
  for (const f of jsFiles) assert.ok(shell.includes(`/app/js/${f}`), `sw.js SHELL lacks /app/js/${f}`);
  for (const f of readdirSync(`${STATIC}icons`)) assert.ok(shell.includes(`/app/icons/${f}`), `sw.js SHELL lacks /app/icons/${f}`);
  for (const url of ["/app/", "/app/css/app.css", "/app/manifest.webmanifest"]) assert.ok(shell.includes(url), url);
  for (const url of shell) {
    const rel = url === "/app/" ? "index.html" : url.replace(/^\/app\//, "");
    assert.ok(existsSync(`${STATIC}${rel}`), `${url} is precached but does not exist`);
  }
});

test("the service worker's VERSION follows the content of the files it precaches", () => {
  const hash = createHash("sha256");
  for (const url of precached()) hash.update(readFileSync(`${STATIC}${url === "/app/" ? "index.html" : url.replace(/^\/app\//, "")}`));
  const expected = hash.digest("hex").slice(0, 12);
  const actual = /const VERSION = "([^"]+)"/.exec(read("sw.js"))[1];
  assert.equal(actual, expected, `static/sw.js: a precached file changed; set const VERSION = "${expected}"`);
});

test("the service worker never caches API data other than form definitions", () => {
  const src = read("sw.js");
  assert.match(src, /startsWith\("\/api\/v1\/forms\/"\)/);
  assert.match(src, /startsWith\("\/api\/"\)\) return;/);
});

test("the whole shell (HTML, CSS, JS) stays within 100 KB gzipped", () => {
  const files = ["index.html", "css/app.css", ...jsFiles.map((f) => `js/${f}`)];
  const total = files.reduce((sum, rel) => sum + gzipSync(readFileSync(`${STATIC}${rel}`), { level: 9 }).length, 0);
  assert.ok(total <= 100 * 1024, `shell is ${total} bytes gzipped`);
});

test("every text the code asks for exists in Chinese and English", () => {
  assert.deepEqual(Object.keys(STRINGS.en).sort(), Object.keys(STRINGS.zh).sort());
  for (const f of jsFiles) {
    const src = readFileSync(`${STATIC}js/${f}`, "utf8");
    for (const m of src.matchAll(/\bt\(\s*"([a-z_]+)"/g)) assert.ok(m[1] in STRINGS.zh, `${f}: t("${m[1]}") has no text`);
    for (const m of src.matchAll(/problem\(list, \w+, "([a-z_]+)"/g)) assert.ok(m[1] in STRINGS.zh, `${f}: ${m[1]} has no text`);
  }
  for (const [lang, table] of Object.entries(STRINGS)) {
    for (const [key, text] of Object.entries(table)) {
      const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      assert.deepEqual(names(text), names(STRINGS.zh[key]), `${lang}.${key} placeholders differ from zh`);
    }
  }
});

test("the shell page sets its language, viewport, manifest and the sync status hook", () => {
  const html = read("index.html");
  assert.match(html, /<html lang="zh-CN">/);
  assert.match(html, /<meta name="viewport" content="width=device-width/);
  assert.match(html, /<link rel="manifest" href="\/app\/manifest.webmanifest">/);
  assert.match(html, /id="sync-status" data-pending="0" data-last-sync=""/);
  assert.match(html, /data-action="sync"/);
});

test("the manifest's icons exist at their declared sizes", () => {
  const manifest = JSON.parse(read("manifest.webmanifest"));
  assert.equal(manifest.start_url, "/app/");
  assert.equal(manifest.scope, "/app/");
  for (const icon of manifest.icons) {
    const png = readFileSync(`${STATIC}${icon.src.replace(/^\/app\//, "")}`);
    assert.equal(png.toString("latin1", 1, 4), "PNG");
    const [w, h] = icon.sizes.split("x").map(Number);
    assert.equal(png.readUInt32BE(16), w);
    assert.equal(png.readUInt32BE(20), h);
  }
});

/** The modules a module imports statically (import ... from "./x.js"; export ... from "./x.js"). */
function staticImports(file) {
  const src = read(`js/${file}`);
  return [...src.matchAll(/^(?:import|export)\s[^;]*?from\s+"\.\/([\w-]+\.js)";/gm)].map((m) => m[1]);
}

function closure(roots) {
  const seen = new Set();
  const todo = [...roots];
  while (todo.length) {
    const f = todo.pop();
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...staticImports(f));
  }
  return seen;
}

test("the shell preloads exactly the home screen's import graph, so no module waits for another", () => {
  const html = read("index.html");
  const list = /const HOME_MODULES = \[([^\]]*)\]/.exec(html)[1];
  const preloaded = new Set([...list.matchAll(/"([\w-]+)"/g)].map((m) => `${m[1]}.js`));
  assert.deepEqual([...preloaded].sort(), [...closure(["app.js"])].sort());
  assert.doesNotMatch(html, /<script[^>]*\ssrc=/, "nothing is fetched by the page before its first paint");
});

test("modules loaded on demand come with everything they import, fetched side by side", () => {
  const eager = closure(["app.js"]);
  // Every line of any module that imports on demand: what it imports together.
  const lazyLines = jsFiles.flatMap((f) => read(`js/${f}`).split("\n")).filter((l) => /import\("\.\/[\w-]+\.js"\)/.test(l));
  assert.ok(lazyLines.length >= 4, "screens other than Today are loaded when first opened");
  for (const line of lazyLines) {
    const together = new Set([...line.matchAll(/import\("\.\/([\w-]+\.js)"\)/g)].map((m) => m[1]));
    for (const mod of together) {
      assert.ok(!eager.has(mod), `${mod} is imported statically too`);
      for (const dep of closure([mod])) {
        assert.ok(eager.has(dep) || together.has(dep), `${mod} needs ${dep}: preload it or import it beside ${mod} (a chain of round trips otherwise)`);
      }
    }
  }
  for (const f of jsFiles) {
    const reachable = eager.has(f) || lazyLines.some((l) => l.includes(`import("./${f}")`));
    assert.ok(reachable, `${f} is neither imported by the app nor loaded on demand`);
  }
});
