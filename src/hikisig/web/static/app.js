// hikisig: small progressive enhancements (no inline scripts anywhere; CSP script-src 'self').
document.addEventListener("DOMContentLoaded", function () {
  // Ask before leaving a questionnaire with unsaved answers.
  var form = document.querySelector("form.questionnaire");
  if (!form) { return; }
  var dirty = false;
  form.addEventListener("change", function () { dirty = true; });
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (e) { if (dirty) { e.preventDefault(); } });
});
