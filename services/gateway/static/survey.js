// Keeps what the owner fills in as they go (the form works the same without this).
(function () {
  var form = document.querySelector("form.survey");
  if (!form || !window.fetch || !window.FormData) { return; }
  var timer = null;
  var sending = Promise.resolve();   // one save at a time, in order: the last one wins
  // not form.action: the form's buttons are named "action", which shadows the property
  var target = form.getAttribute("action");
  function save() {
    var data = new FormData(form);
    data.set("action", "save");
    var body = new URLSearchParams(data);
    sending = sending.then(function () {
      return fetch(target, {method: "POST", body: body,
                            headers: {"X-Requested-With": "fetch"}, credentials: "omit",
                            referrerPolicy: "no-referrer"}).catch(function () {});
    });
  }
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(save, 600); });
})();
