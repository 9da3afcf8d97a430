// Scripts of server-rendered pages live in static/pages/ (not the phone app's shell in static/js/).
// The batch print page (server/templates/print/village.html): starts the job with fetch (CSRF
// header) and polls its progress; without JavaScript the form posts and the page reloads with ?job=ID.
// A file, not an inline script, so pages can forbid inline scripts (Content-Security-Policy).
const texts = JSON.parse(document.getElementById("print-progress").dataset.texts);
const form = document.getElementById("print-form");
const box = document.getElementById("print-progress");
const bar = document.getElementById("print-bar");
const statusEl = document.getElementById("print-status");
const links = document.getElementById("print-links");
const errors = document.getElementById("print-errors");
const fill = (s, job) => s.replace("{done}", job.done).replace("{total}", job.total).replace("{hits}", job.cache_hits);

function show(job) {
  box.hidden = false;
  bar.max = Math.max(job.total, 1);
  bar.value = job.done;
  if (job.state === "done") {
    statusEl.textContent = fill(texts.done, job);
    if (job.download_url) {
      document.getElementById("print-download").href = job.download_url;
      document.getElementById("print-zip").href = job.zip_url;
      links.hidden = false;
    }
  } else if (job.state === "failed") {
    statusEl.textContent = texts.failed + (job.error || "");
  } else {
    statusEl.textContent = fill(texts.running, job);
  }
  if (job.errors && job.errors.length) {
    errors.textContent = texts.some + job.errors.map(e => e.household_id).join(", ");
    errors.hidden = false;
  }
}

async function poll(url, delay = 700) {
  try {
    const r = await fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
    if (r.ok) {
      const job = await r.json();
      show(job);
      if (job.state === "done" || job.state === "failed") return;
      delay = 700;
    }
  } catch (e) {
    statusEl.textContent = texts.network;
    delay = Math.min(delay * 2, 10000);
  }
  setTimeout(() => poll(url, delay), delay);
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  links.hidden = true; errors.hidden = true;
  const token = form.querySelector("input[name=csrf_token]").value;
  const r = await fetch(form.action, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token},
    body: JSON.stringify({
      lang: document.getElementById("print-lang").value,
      scope: (form.querySelector("input[name=scope]:checked") || {}).value || "village",
      group: (document.getElementById("print-group") || {}).value || "",
    }),
  });
  const job = await r.json().catch(() => ({}));
  if (!r.ok) { errors.textContent = job.message || String(r.status); errors.hidden = false; return; }
  show(job);
  history.replaceState(null, "", "?job=" + encodeURIComponent(job.id));
  poll(job.status_url);
});

if (box.dataset.statusUrl) poll(box.dataset.statusUrl);
