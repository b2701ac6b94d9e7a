/* A console page, live: while what it shows is still moving (a survey round being
   prepared or open, a job queued or running), read it again as JSON every few seconds and
   write the new values where the page shows them; when its status moves on, load the page
   again, for the parts that change with it. Without JavaScript the page's refresh link
   does this. The page says what to do on its #live element:
     data-live-url       the JSON to read;
     data-live-seconds   how often (0 or none: the page is not live);
     data-reload-on      the statuses that reload the page ("done failed"); without it,
                         any status other than data-status does.
   and on each element that shows a value, wherever it is on the page:
     data-live="a.b"     where the value is in the answer (a missing one is left alone);
     data-unit="rate"    shown as a percentage (else as it is; none: "—");
     data-words="k=w|…"  a status shown by its word;
     data-live-max="b"   on a <progress>: its value is data-live, its maximum this;
     data-value          kept equal to the value (what the charts and tables sort by). */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var seconds = Number(live.getAttribute("data-live-seconds"));
  if (!seconds) { return; }
  var shownStatus = live.getAttribute("data-status");
  var reloadOn = live.getAttribute("data-reload-on");

  function at(answer, path) {
    return path.split(".").reduce(function (value, key) {
      return value === undefined || value === null ? undefined : value[key];
    }, answer);
  }

  function movedOn(status) {
    if (reloadOn !== null) { return reloadOn.split(" ").indexOf(status) !== -1; }
    return Boolean(shownStatus) && status !== shownStatus;
  }

  function shown(value, element) {
    if (value === null) { return "—"; }
    var words = element.getAttribute("data-words");
    if (words) {
      var word = words.split("|").map(function (pair) { return pair.split("="); })
        .filter(function (pair) { return pair[0] === String(value); })[0];
      if (word) { return word[1]; }
    }
    if (element.getAttribute("data-unit") === "rate") { return (value * 100).toFixed(2) + "%"; }
    return String(value);
  }

  function write(element, answer) {
    var value = at(answer, element.getAttribute("data-live"));
    if (value === undefined) { return; }
    if (element.hasAttribute("data-live-max")) {     // a <progress>: its bar, not its text
      element.max = at(answer, element.getAttribute("data-live-max")) || 1;
      element.value = value;
      return;
    }
    element.textContent = shown(value, element);
    if (element.hasAttribute("data-value")) {
      element.setAttribute("data-value", value === null ? "" : String(value));
    }
  }

  function update(answer) {
    if (movedOn(answer.status)) {
      window.location.replace(window.location.pathname);   // as it is now, no "done" notice
      return false;
    }
    Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), function (element) {
      write(element, answer);
    });
    return true;
  }

  function poll() {
    fetch(live.getAttribute("data-live-url"), {credentials: "same-origin",
                                                headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) { return answer ? update(answer) : true; })
      .catch(function () { return true; /* a missed reading: the next one comes */ })
      .then(function (goOn) { if (goOn) { window.setTimeout(poll, seconds * 1000); } });
  }
  window.setTimeout(poll, seconds * 1000);
}());
