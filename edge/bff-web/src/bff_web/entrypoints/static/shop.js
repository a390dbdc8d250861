// Progressive enhancement of the cart forms: "Add to cart", +/-, Remove and Update send
// their form in the background and the shopper stays where they are; the header's badge
// and the cart view update in place. Without JavaScript the same forms post and redirect.
(function () {
  "use strict";
  var badge = document.querySelector("[data-testid=cart-count]");
  var cartLink = document.querySelector("[data-cart-link]");
  var notices = document.querySelector("[data-notices]");

  function announce(text, bad) {
    if (!notices || !text) { return; }
    var note = document.createElement("p");
    note.className = bad ? "flash bad" : "flash";
    note.setAttribute("role", "status");
    note.textContent = text;
    notices.textContent = "";
    notices.appendChild(note);
  }

  function showCount(count) {
    if (badge) { badge.textContent = String(count); }
    if (cartLink) { cartLink.setAttribute("aria-label", "Cart, " + count + " items"); }
  }

  function refreshCart(focusLabel) {
    var view = document.querySelector("[data-cart-view]");
    if (!view) { return Promise.resolve(); }
    return fetch("/cart", { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var replacement = fresh.querySelector("[data-cart-view]");
        if (replacement) { view.innerHTML = replacement.innerHTML; }
        var target = focusLabel && view.querySelector("[aria-label=\"" + focusLabel + "\"]:not([disabled])");
        (target || document.getElementById("main")).focus();
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-cart-form")) { return; }
    event.preventDefault();
    var submitter = event.submitter;
    var focusLabel = submitter ? submitter.getAttribute("aria-label") : null;
    var buttons = form.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (button) { button.disabled = true; });
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    })
      .then(function (response) {
        if (response.status !== 200 && response.status !== 409) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (answer) {
        // The badge changes once the cart view has: whoever reads the badge sees the lines too.
        return refreshCart(focusLabel).then(function () {
          showCount(answer.cart_count);
          announce(answer.notice, !answer.ok);
        });
      })
      .catch(function () { form.submit(); })
      .then(function () {
        Array.prototype.forEach.call(buttons, function (button) { button.disabled = false; });
      });
  });
})();
