// Forms in sections. A form file may group its top-level questions into sections (`type: group`,
// top level only). Answers stay flat, keyed by field name: a group has no answer of its own, and a
// field inside a group is relevant only when the group is. flatFields() hands every other module
// the form as one flat list of questions, each carrying its section's relevance, so relevance,
// checks, cleaning and computing need not know about groups. Which section shows, and moving
// between the sections that apply, is here too. DOM-free (node --test).

const shapes = new WeakMap();

/** Both conditions must hold (either may be absent). */
function both(a, b) {
  if (!a) return b;
  if (!b) return a;
  return { all: [a, b] };
}

/**
 * The form's structure: `fields` (flat, in order, each field inside a group with `section` set and
 * the group's relevance joined to its own), `sections` ([] for a form without groups; else
 * [{name, label, hint, relevant, fields: [names]}]) and `sectionOf` (top-level name -> section).
 * Top-level questions outside any group (not allowed by the form format, tolerated here) form a
 * section of their own, so a phone never hides a question it cannot reach.
 */
export function formShape(definition) {
  if (definition && shapes.has(definition)) return shapes.get(definition);
  const top = (definition && definition.fields) || [];
  const grouped = top.some((f) => f.type === "group");
  const fields = [];
  const sections = [];
  const sectionOf = new Map();
  let loose = null;
  for (const field of top) {
    if (field.type !== "group") {
      if (!grouped) {
        fields.push(field);
        continue;
      }
      if (!loose) {
        loose = { name: `_section${sections.length + 1}`, label: definition.title || null, hint: null, relevant: null, fields: [] };
        sections.push(loose);
      }
      loose.fields.push(field.name);
      sectionOf.set(field.name, loose.name);
      fields.push({ ...field, section: loose.name });
      continue;
    }
    loose = null;
    const section = { name: field.name, label: field.label || null, hint: field.hint || null, relevant: field.relevant || null, fields: [] };
    sections.push(section);
    for (const child of field.fields || []) {
      const flat = { ...child, section: field.name };
      const relevant = both(field.relevant, child.relevant);
      if (relevant) flat.relevant = relevant;
      fields.push(flat);
      section.fields.push(child.name);
      sectionOf.set(child.name, field.name);
    }
  }
  const shape = { fields, sections, sectionOf };
  if (definition) shapes.set(definition, shape);
  return shape;
}

/** The form's questions as one flat list (groups dissolved, their relevance kept). */
export const flatFields = (definition) => formShape(definition).fields;

/** The section a field path ("members.0.name") lives in, or null for a form without sections. */
export function sectionOfPath(definition, path) {
  const top = String(path || "").split(".")[0];
  return formShape(definition).sectionOf.get(top) || null;
}

/**
 * Moving between sections. `applies(name)` says whether a section is relevant now (a section that
 * does not apply is skipped by next/previous and counted out of the progress).
 */
export class SectionNav {
  constructor(definition, current = null) {
    this.sections = formShape(definition).sections;
    this.current = this.sections.some((s) => s.name === current) ? current : (this.sections[0] ? this.sections[0].name : null);
  }

  get enabled() { return this.sections.length > 0; }

  indexOf(name) { return this.sections.findIndex((s) => s.name === name); }

  /** The next (step 1) or previous (step -1) section that applies, or null at either end. */
  neighbour(step, applies = () => true) {
    for (let i = this.indexOf(this.current) + step; i >= 0 && i < this.sections.length; i += step) {
      if (applies(this.sections[i].name)) return this.sections[i].name;
    }
    return null;
  }

  next(applies) { return this.go(this.neighbour(1, applies)); }

  prev(applies) { return this.go(this.neighbour(-1, applies)); }

  /** Shows the named section; returns it (null, and nothing changes, for an unknown name). */
  go(name) {
    if (name === null || this.indexOf(name) < 0) return null;
    this.current = name;
    return name;
  }

  isFirst(applies) { return this.neighbour(-1, applies) === null; }

  isLast(applies) { return this.neighbour(1, applies) === null; }

  /** {position, total}: the current section's place among those that apply (1-based). */
  progress(applies = () => true) {
    const live = this.sections.filter((s) => s.name === this.current || applies(s.name));
    return { position: live.findIndex((s) => s.name === this.current) + 1, total: live.length };
  }
}
