// shaobing — scan.js: fill an input from the phone camera (tube barcodes in Code 128,
// personal QR codes). Needs vendor/zxing-browser-*.min.js loaded first (global ZXingBrowser).
//
//   <div class="scan-input">
//     <input id="tube" name="tube" autocomplete="off">
//     <button type="button" class="btn" data-scan="#tube"
//             data-scan-unavailable="无法使用摄像头，请手工输入">扫码</button>
//   </div>
//
// Optional attributes on the button:
//   data-scan-formats="code128"   limit the symbologies (code128, qr, ean13, code39, datamatrix);
//                                 default: code128 and qr
//   data-scan-submit              submit the input's form after a successful read
//   data-scan-close="关闭"        label of the close button on the preview
//
// The camera needs a secure context (HTTPS or localhost); where there is none, or the user
// refuses, the input is focused for typing and data-scan-unavailable is shown.
(function () {
  "use strict";

  var active = null; // one camera at a time: {controls, box, button}

  var formatNames = {
    code128: "CODE_128",
    qr: "QR_CODE",
    ean13: "EAN_13",
    code39: "CODE_39",
    datamatrix: "DATA_MATRIX"
  };

  function stop() {
    if (!active) {
      return;
    }
    if (active.controls) {
      active.controls.stop();
    }
    active.box.hidden = true;
    active.button.removeAttribute("aria-pressed");
    active = null;
  }

  function unavailable(button, input, err) {
    stop();
    if (err) {
      console.warn("scan:", err);
    }
    var msg = button.getAttribute("data-scan-unavailable");
    if (msg) {
      window.alert(msg);
    }
    input.focus();
  }

  function previewBox(button) {
    var holder = button.closest(".scan-input") || button.parentNode;
    var box = holder.nextElementSibling;
    if (box && box.classList.contains("scanner")) {
      return box;
    }
    box = document.createElement("div");
    box.className = "scanner";
    box.hidden = true;
    var video = document.createElement("video");
    video.muted = true;
    video.setAttribute("playsinline", "");
    box.appendChild(video);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn small";
    close.textContent = button.getAttribute("data-scan-close") || "×";
    close.addEventListener("click", stop);
    box.appendChild(close);
    holder.parentNode.insertBefore(box, holder.nextSibling);
    return box;
  }

  function start(button) {
    var input = document.querySelector(button.getAttribute("data-scan"));
    if (!input) {
      return;
    }
    if (active && active.button === button) {
      stop();
      return;
    }
    stop();
    var Z = window.ZXingBrowser;
    if (!Z || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      unavailable(button, input, "no camera API");
      return;
    }
    var reader = new Z.BrowserMultiFormatReader();
    reader.possibleFormats = (button.getAttribute("data-scan-formats") || "code128,qr")
      .split(",")
      .map(function (s) { return Z.BarcodeFormat[formatNames[s.trim().toLowerCase()]]; })
      .filter(function (f) { return f !== undefined; });

    var box = previewBox(button);
    box.hidden = false;
    button.setAttribute("aria-pressed", "true");
    var session = {controls: null, box: box, button: button};
    active = session;

    reader.decodeFromConstraints(
      {video: {facingMode: "environment"}, audio: false},
      box.querySelector("video"),
      function (result) {
        if (!result || active !== session) {
          return; // no code in this frame: keep looking
        }
        input.value = result.getText();
        input.dispatchEvent(new Event("input", {bubbles: true}));
        input.dispatchEvent(new Event("change", {bubbles: true}));
        if (navigator.vibrate) {
          navigator.vibrate(80);
        }
        stop();
        if (button.hasAttribute("data-scan-submit") && input.form) {
          input.form.requestSubmit();
        } else {
          input.focus();
        }
      }
    ).then(function (controls) {
      if (active === session) {
        session.controls = controls;
      } else {
        controls.stop(); // closed while the camera was starting
      }
    }, function (err) {
      if (active === session) {
        unavailable(button, input, err);
      }
    });
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-scan]");
    if (button) {
      evt.preventDefault();
      start(button);
    }
  });

  // Release the camera when the page goes away or htmx swaps the scanner out.
  window.addEventListener("pagehide", stop);
  document.addEventListener("htmx:beforeCleanupElement", function (evt) {
    if (active && evt.target.contains && evt.target.contains(active.box)) {
      stop();
    }
  });
})();
