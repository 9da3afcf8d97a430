// The confirmation page's only script: a finger signature on a canvas, written into the form's
// hidden "signature" field as a PNG data URL when the form is sent. No framework, no inline code.
(function () {
  var canvas = document.getElementById("pad");
  var field = document.getElementById("signature");
  var form = document.getElementById("confirm-form");
  if (!canvas || !field || !form || !canvas.getContext) return;
  var ctx = canvas.getContext("2d");
  var drawing = false, marked = false, last = null;
  function size() {
    var w = canvas.clientWidth || 320;
    canvas.width = w; canvas.height = Math.round(w * 0.4);
    ctx.lineWidth = 2.5; ctx.lineCap = "round"; ctx.strokeStyle = "#111";
  }
  function point(e) {
    var r = canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }
  canvas.addEventListener("pointerdown", function (e) {
    drawing = true; last = point(e); canvas.setPointerCapture(e.pointerId); e.preventDefault();
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!drawing) return;
    var p = point(e);
    ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
    last = p; marked = true; e.preventDefault();
  });
  canvas.addEventListener("pointerup", function () { drawing = false; });
  var clear = document.getElementById("clear-pad");
  if (clear) clear.addEventListener("click", function () {
    ctx.clearRect(0, 0, canvas.width, canvas.height); marked = false; field.value = "";
  });
  form.addEventListener("submit", function () {
    if (marked) field.value = canvas.toDataURL("image/png");
  });
  size();
})();
