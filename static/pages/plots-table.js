// The household edit page's plots table (served with the server-rendered pages, not part of the
// phone app): rows added and removed in the page, all saved with the form in one request. Without
// this script the table still works: the last row adds a plot, a cleared row removes one. Rows are
// numbered again after each change, so the server's errors ("地块 3 面积") name the row shown.

const body = document.querySelector("[data-plots]");
const template = document.getElementById("plot-row-template");
const addButton = document.querySelector("[data-add-plot]");

function renumber() {
  body.querySelectorAll("tr[data-plot-row]").forEach((row, i) => {
    row.querySelectorAll("[name^='plots.']").forEach((el) => {
      el.name = el.name.replace(/^plots\.[^.]+\./, `plots.${i}.`);
    });
    const number = row.querySelector("[data-row-number]");
    if (number) number.textContent = String(i + 1);
  });
}

function wire(row) {
  const remove = row.querySelector("[data-remove-plot]");
  if (!remove) return;
  remove.hidden = false;
  remove.addEventListener("click", () => {
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    renumber();
    const focus = next && next.querySelector("input");
    (focus || addButton).focus();
  });
}

if (body && template && addButton) {
  body.querySelectorAll("tr[data-plot-row]").forEach(wire);
  addButton.hidden = false;
  addButton.addEventListener("click", () => {
    const row = template.content.firstElementChild.cloneNode(true);
    body.append(row);
    wire(row);
    renumber();
    const first = row.querySelector("input:not([type=hidden])");
    if (first) first.focus();
  });
}
