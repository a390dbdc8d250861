// Progressive enhancement of the order page: poll the order's status until it is final,
// then reload once to show the outcome. Without JavaScript the page refreshes itself.
(function () {
  "use strict";
  var section = document.querySelector("[data-order-status-url]");
  if (!section) { return; }
  var url = section.getAttribute("data-order-status-url");
  var shown = section.getAttribute("data-status");
  var label = section.querySelector("[data-testid=order-status]");
  var delay = 700;

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (order) {
        if (order.status !== shown) {
          shown = order.status;
          label.textContent = order.status.charAt(0) + order.status.slice(1).toLowerCase();
          label.className = "status status-" + order.status.toLowerCase();
        }
        if (order.settled) {
          window.location.reload();
          return;
        }
        delay = Math.min(delay * 1.5, 5000);
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 10000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
