// Review pages (served with the server-rendered pages from static/pages/, not part of the phone app): j / k move to
// the next / previous submission of the queue, as the links with data-key say. Keys typed into a
// field, or with a modifier, are left alone.
const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const target = event.target;
  if (target && (TYPING.has(target.tagName) || target.isContentEditable)) return;
  const link = document.querySelector(`a[data-key="${event.key}"]`);
  if (!link) return;
  event.preventDefault();
  window.location.assign(link.href);
});
