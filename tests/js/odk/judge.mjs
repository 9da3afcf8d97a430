// ODK's XForms engine (@getodk/xforms-engine, the engine of ODK Web Forms) as the judge of the XForms
// Jiedui serves: load each one headless (jsdom gives it a DOM), fill it with the answers given, and
// report what the engine decides for every question: relevant, required, constraint and required
// valid, and its value (calculations). tests/test_xform_engine.py writes the job and compares.
//
//   node judge.mjs JOB.json  ->  JSON on standard output
//
// JOB: {"forms": [{"name", "xform": path, "csv": path, "cases": [{"id", "repeats": {ref: count},
//        "values": {ref: text}, "selects": {ref: [names]}}]}]}
// A ref is the node's reference with 1-based repeat positions: /data/s/members[2]/name.

import fs from 'node:fs';
import { JSDOM } from 'jsdom';

// web-tree-sitter (the engine's XPath parser) looks up __dirname when it sees node; its WebAssembly
// comes inlined, so any folder will do.
globalThis.__dirname = process.cwd();
const dom = new JSDOM('<!doctype html><html><body></body></html>');
for (const key of ['window', 'document', 'DOMParser', 'XMLSerializer', 'Node', 'Element', 'Document',
  'XPathResult', 'NodeFilter', 'Attr', 'Text', 'CDATASection', 'Comment', 'ProcessingInstruction',
  'DocumentFragment', 'XMLDocument']) {
  if (globalThis[key] === undefined && dom.window[key] !== undefined) globalThis[key] = dom.window[key];
}
const { createInstance } = await import('@getodk/xforms-engine');

function* walk(node) {
  yield node;
  for (const child of node.currentState.children ?? []) yield* walk(child);
}

function byRef(root) {
  const out = new Map();
  for (const n of walk(root)) out.set(n.currentState.reference, n);
  return out;
}

function show(value) {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.join(' ');
  if (typeof value === 'object') return String(value.toString?.() ?? JSON.stringify(value));
  return String(value);
}

async function runCase(xform, csv, job) {
  const { root } = await createInstance(xform, {
    form: {
      fetchFormAttachment: async () => new Response(csv, { headers: { 'Content-Type': 'text/csv' } }),
      missingResourceBehavior: 'ERROR',
    },
  });
  // repeats first (outer refs before inner ones), then the values, in form order
  for (const [ref, count] of Object.entries(job.repeats ?? {})) {
    const range = byRef(root).get(ref);
    if (!range) throw new Error(`no repeat ${ref}`);
    if (count > 0) range.addInstances(undefined, count);
  }
  const nodes = byRef(root);
  for (const [ref, text] of Object.entries(job.values ?? {})) {
    const node = nodes.get(ref);
    if (!node) throw new Error(`no node ${ref}`);
    node.setValue(text);
  }
  for (const [ref, names] of Object.entries(job.selects ?? {})) {
    const node = nodes.get(ref);
    if (!node) throw new Error(`no node ${ref}`);
    node.selectValues(names);
  }
  const report = [];
  for (const n of walk(root)) {
    const s = n.currentState;
    const v = n.validationState;
    report.push({
      ref: s.reference, type: n.nodeType, relevant: s.relevant, required: s.required,
      requiredValid: v?.required ? v.required.valid : true,
      constraintValid: v?.constraint ? v.constraint.valid : true,
      value: n.nodeType.startsWith('repeat') || n.nodeType === 'group' || n.nodeType === 'root'
        ? null : show(s.value),
    });
  }
  return report;
}

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const form of job.forms) {
  const xform = fs.readFileSync(form.xform, 'utf8');
  const csv = fs.readFileSync(form.csv, 'utf8');
  out[form.name] = {};
  for (const c of form.cases) {
    try {
      out[form.name][c.id] = { nodes: await runCase(xform, csv, c) };
    } catch (e) {
      out[form.name][c.id] = { error: String(e?.stack ?? e) };
    }
  }
}
process.stdout.write(JSON.stringify(out));
