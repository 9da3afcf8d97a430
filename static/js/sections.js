// Forms in sections: the section an answer's path lives in, and moving between the sections that
// apply (SectionNav). The shape itself (flat fields, the sections) is form-shape.js. DOM-free
// (node --test).

import { formShape } from "./form-shape.js";

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
