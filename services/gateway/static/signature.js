/* The owner's signature on the screen (「回访后应由业户签字确认」): a canvas drawn with
   pointer events (finger, pen or mouse), kept as a PNG data URL in the form's hidden
   signature_png field. Without JavaScript the pad stays hidden and the typed name
   (signed_by) is the signature. No inline script: the pages' CSP allows only this file. */
(function () {
  "use strict";
  var pad = document.getElementById("signature-pad");
  var canvas = document.getElementById("signature-canvas");
  var field = document.getElementById("record-signature_png");
  var clear = document.getElementById("signature-clear");
  if (!pad || !canvas || !field || !canvas.getContext) { return; }
  var context = canvas.getContext("2d");
  var drawing = false, last = null;

  function reset() {
    context.fillStyle = "#ffffff";            // an opaque white sheet, as on paper
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.strokeStyle = "#111111";
    context.lineWidth = 3;
    context.lineCap = "round";
    context.lineJoin = "round";
  }

  function point(event) {
    // the canvas keeps its own resolution whatever size the screen draws it at
    var box = canvas.getBoundingClientRect();
    return {x: (event.clientX - box.left) * canvas.width / box.width,
            y: (event.clientY - box.top) * canvas.height / box.height};
  }

  function keep() { field.value = canvas.toDataURL("image/png"); }

  canvas.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    drawing = true;
    last = point(event);
    if (canvas.setPointerCapture) { canvas.setPointerCapture(event.pointerId); }
    context.beginPath();
    context.arc(last.x, last.y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fillStyle = "#111111";
    context.fill();
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!drawing) { return; }
    event.preventDefault();
    var next = point(event);
    context.beginPath();
    context.moveTo(last.x, last.y);
    context.lineTo(next.x, next.y);
    context.stroke();
    last = next;
  });
  function stop() {
    if (!drawing) { return; }
    drawing = false;
    keep();
  }
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  canvas.addEventListener("pointerleave", stop);
  clear.addEventListener("click", function () { reset(); field.value = ""; });

  reset();
  if (field.value) {          // the page came back with an error: the signature drawn again
    var image = new Image();
    image.onload = function () { context.drawImage(image, 0, 0); };
    image.src = field.value;
  }
  pad.hidden = false;
}());
