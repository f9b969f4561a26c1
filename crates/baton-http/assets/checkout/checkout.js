// Baton hosted checkout: progressive enhancement only (every form works without it).
// Formats the card number and expiry as they are typed, checks the number (Luhn) before
// sending, announces errors, tells an embedding page our height and the outcome
// (postMessage to the origin the page was opened for), and follows the merchant's
// callback after a result.
(function () {
  "use strict";
  var body = document.body;
  var SOURCE = "baton-checkout";

  function digits(s) { return s.replace(/\D/g, ""); }

  function luhn(number) {
    var sum = 0, double = false;
    for (var i = number.length - 1; i >= 0; i--) {
      var d = number.charCodeAt(i) - 48;
      if (double) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
      double = !double;
    }
    return number.length >= 12 && number.length <= 19 && sum % 10 === 0;
  }

  function brand(n) {
    if (/^4/.test(n)) return "visa";
    if (/^(5[1-5]|2[2-7])/.test(n)) return "mastercard";
    if (/^3[47]/.test(n)) return "american-express";
    if (/^(6011|65|64[4-9])/.test(n)) return "discover";
    if (/^(50|5[6-9]|6[0-9])/.test(n)) return "maestro";
    return "";
  }

  function setError(input, message) {
    var field = input.closest(".field, .check");
    var out = document.getElementById(input.id + "-error");
    if (out) out.textContent = message || "";
    if (field) field.classList.toggle("invalid", !!message);
    if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }

  // Card number: groups of four (4-6-5 for American Express), caret kept in place.
  var number = document.getElementById("card-number");
  if (number) {
    number.addEventListener("input", function () {
      var raw = digits(number.value).slice(0, 19);
      var b = brand(raw);
      var groups = b === "american-express" ? [4, 6, 5] : [4, 4, 4, 4, 3];
      var out = [], at = 0;
      for (var g = 0; g < groups.length && at < raw.length; g++) { out.push(raw.slice(at, at + groups[g])); at += groups[g]; }
      var before = digits(number.value.slice(0, number.selectionStart || 0)).length;
      number.value = out.join(" ");
      var pos = 0, seen = 0;
      while (pos < number.value.length && seen < before) { if (/\d/.test(number.value[pos])) seen++; pos++; }
      try { number.setSelectionRange(pos, pos); } catch (e) { /* not focused */ }
      number.classList.toggle("brand-detected", !!b);
      var marks = document.querySelectorAll(".brand");
      for (var i = 0; i < marks.length; i++) marks[i].classList.toggle("active", !!b && marks[i].classList.contains("brand-" + b));
      if (number.getAttribute("aria-invalid") && luhn(raw)) setError(number, "");
    });
    number.addEventListener("blur", function () {
      var raw = digits(number.value);
      if (raw && !luhn(raw)) setError(number, number.form.dataset.msgNumber || "");
    });
  }

  var expiry = document.getElementById("card-expiry");
  if (expiry) {
    expiry.addEventListener("input", function (e) {
      var raw = digits(expiry.value).slice(0, 4);
      if (raw.length === 1 && raw > "1") raw = "0" + raw;
      var deleting = e.inputType && e.inputType.indexOf("delete") === 0;
      expiry.value = raw.length > 2 || (raw.length === 2 && !deleting) ? raw.slice(0, 2) + " / " + raw.slice(2) : raw;
    });
  }

  var cardForm = document.getElementById("card-form");
  if (cardForm) {
    cardForm.addEventListener("submit", function (e) {
      var raw = digits(number.value);
      if (!luhn(raw)) {
        e.preventDefault();
        setError(number, cardForm.dataset.msgNumber || "");
        number.focus();
        return;
      }
    });
  }

  // One submission at a time.
  var forms = document.querySelectorAll("form");
  for (var f = 0; f < forms.length; f++) {
    forms[f].addEventListener("submit", function (e) {
      if (e.defaultPrevented) return;
      var form = e.target;
      if (form.dataset.sent) { e.preventDefault(); return; }
      form.dataset.sent = "1";
      var buttons = form.querySelectorAll("button");
      setTimeout(function () { for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true; }, 0);
    });
  }

  var errors = document.getElementById("form-errors");
  if (errors && !errors.hidden) errors.focus();

  // Messages to an embedding page: only to the origin the checkout was opened for.
  var parentOrigin = body.getAttribute("data-parent-origin");
  var framed = window.parent && window.parent !== window;
  function post(message) {
    if (!framed || !parentOrigin) return;
    message.source = SOURCE;
    try { window.parent.postMessage(message, parentOrigin); } catch (e) { /* origin changed */ }
  }
  var lastHeight = 0;
  function resize() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== lastHeight) { lastHeight = height; post({ type: "resize", height: height }); }
  }
  resize();
  if (window.ResizeObserver) new ResizeObserver(resize).observe(document.documentElement);
  else window.addEventListener("resize", resize);

  var outcome = body.getAttribute("data-message");
  if (outcome) {
    try {
      var message = JSON.parse(outcome);
      message.type = "outcome";
      post(message);
    } catch (e) { /* not a message */ }
  }

  var redirect = body.getAttribute("data-redirect");
  if (redirect) {
    var delay = parseInt(body.getAttribute("data-redirect-delay") || "0", 10) * 1000;
    var timer = setTimeout(function () { window.location.replace(redirect); }, Math.max(0, delay - 500));
    var retry = document.getElementById("try-again");
    if (retry) retry.addEventListener("click", function () { clearTimeout(timer); });
  }
})();
