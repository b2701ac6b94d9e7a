/* A survey round's page, live: while the round is being prepared or is open, read its
   response again every few seconds (/console/surveys/<id>/live, JSON) and write the new
   numbers where the page shows them (elements marked data-live="<path in the answer>").
   When the round moves on (prepared → open, open → closed) the page is loaded again, for
   the parts that change with it. Without JavaScript the page's refresh link does this. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var seconds = Number(live.getAttribute("data-live-seconds"));
  if (!seconds) { return; }
  var shownStatus = live.getAttribute("data-status");

  function at(answer, path) {
    return path.split(".").reduce(function (value, key) {
      return value === undefined || value === null ? undefined : value[key];
    }, answer);
  }

  function shown(value, unit) {
    if (value === null || value === undefined) { return "—"; }
    return unit === "rate" ? (value * 100).toFixed(2) + "%" : String(value);
  }

  function update(answer) {
    if (shownStatus && answer.status !== shownStatus) {
      window.location.replace(window.location.pathname);   // the round as it is now, no "done" notice
      return;
    }
    Array.prototype.forEach.call(live.querySelectorAll("[data-live]"), function (element) {
      var value = at(answer, element.getAttribute("data-live"));
      if (value === undefined) { return; }
      element.textContent = shown(value, element.getAttribute("data-unit"));
      if (element.hasAttribute("data-value")) {
        element.setAttribute("data-value", value === null ? "" : String(value));
      }
    });
  }

  function poll() {
    fetch(live.getAttribute("data-live-url"), {credentials: "same-origin",
                                                headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) { if (answer) { update(answer); } })
      .catch(function () { /* a missed reading: the next one comes */ })
      .then(function () { window.setTimeout(poll, seconds * 1000); });
  }
  window.setTimeout(poll, seconds * 1000);
}());
