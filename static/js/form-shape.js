// The shape of a form in sections. A form file may group its top-level questions into sections
// (`type: group`, top level only). Answers stay flat, keyed by field name: a group has no answer of
// its own, and a field inside a group is relevant only when the group is. flatFields() hands every
// other module the form as one flat list of questions, each carrying its section's relevance, so
// relevance, checks, cleaning and computing need not know about groups. Imports nothing: the
// condition language (conditions.js, shared with the server) walks forms with it alone. Which
// section shows, and moving between them, is sections.js. DOM-free (node --test).

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
