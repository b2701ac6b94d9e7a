/* A job's page, live: while the job is queued or running, read its progress again every
   second or so (/console/jobs/<id>/progress, JSON) and write the numbers where the page
   shows them (elements marked data-live="<name in the answer>", the progress bar). When
   the job finishes the page is loaded again, for its result and file. Without JavaScript
   the page's refresh link does this. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var seconds = Number(live.getAttribute("data-live-seconds"));
  if (!seconds) { return; }
  var bar = document.getElementById("progress-bar");

  function update(answer) {
    if (answer.status === "done" || answer.status === "failed") {
      window.location.replace(window.location.pathname);
      return false;
    }
    Array.prototype.forEach.call(live.querySelectorAll("[data-live]"), function (element) {
      var value = answer[element.getAttribute("data-live")];
      if (value !== undefined && value !== null) { element.textContent = String(value); }
    });
    var status = document.getElementById("job-status");
    if (status) {
      status.getAttribute("data-words").split("|").forEach(function (pair) {
        var parts = pair.split("=");
        if (parts[0] === answer.status) { status.textContent = parts[1]; }
      });
    }
    if (bar) { bar.value = answer.done; bar.max = answer.total || 1; }
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
