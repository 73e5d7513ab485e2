// Progressive enhancement for the pushgate pages: everything works without this file.
// - A waiting step moves on by itself: for a push, a fetch the server holds until the
//   phone answers, then the step is sent; for the QR code, the step is sent every poll.
// - Copy buttons for the registration link and the recovery codes.
// - A countdown of how long the push or the QR code stays valid.
"use strict";
(function () {
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function copy(text, button) {
    var status = button.parentNode.querySelector(".copied");
    var done = function () { if (status) { status.textContent = "Copied"; } };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    }
  }

  function formatSeconds(seconds) {
    if (seconds <= 0) { return "a moment"; }
    var m = Math.floor(seconds / 60), s = seconds % 60;
    if (m === 0) { return s + " s"; }
    return m + " min " + (s < 10 ? "0" : "") + s + " s";
  }

  ready(function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), function (button) {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (!target) { return; }
      button.hidden = false;
      button.addEventListener("click", function () { copy(target.getAttribute("href"), button); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy-codes]"), function (button) {
      var codes = Array.prototype.map.call(document.querySelectorAll(".codes code"), function (c) {
        return c.textContent;
      });
      button.hidden = false;
      button.addEventListener("click", function () { copy(codes.join("\n"), button); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-countdown]"), function (el) {
      // Seconds left as the server counted them, from when the page arrived: the
      // browser's clock may be off.
      var until = Date.now() + 1000 * parseInt(el.getAttribute("data-countdown"), 10);
      var tick = function () {
        el.textContent = formatSeconds(Math.round((until - Date.now()) / 1000));
      };
      tick();
      window.setInterval(tick, 1000);
    });

    var form = document.getElementById("step-form");
    var poll = document.getElementById("poll-form");
    if (form && poll && form.hasAttribute("data-poll")) {
      var pressed = false;
      // A button pressed meanwhile (lost phone, cancel) wins: that navigation replaces ours.
      form.addEventListener("submit", function () { pressed = true; });
      var again = function () { if (!pressed) { pressed = true; poll.submit(); } };
      if (form.hasAttribute("data-wait")) {
        // Ask the server, without leaving the page, whether the push has ended; it holds
        // the request until it has (or a while). Then the page moves on.
        var body = new URLSearchParams(new FormData(poll));
        body.set("wait", "1");
        var ask = function () {
          if (pressed) { return; }
          fetch(poll.action, { method: "POST", body: body, credentials: "same-origin" })
            .then(function (reply) {
              if (!reply.ok) { again(); return null; }
              return reply.json();
            })
            .then(function (data) {
              if (data === null) { return; }
              if (data.ended) { again(); } else { ask(); }
            }, function () { window.setTimeout(again, 3000); });
        };
        ask();
      } else {
        var delay = parseInt(form.getAttribute("data-poll"), 10) || 2000;
        window.setTimeout(again, Math.min(Math.max(delay, 500), 10000));
      }
    }
  });
})();
