// The hand-out ledger's scan page (/copies/scan): read a copy's QR code with the phone's camera
// where the browser offers BarcodeDetector (Chrome on Android, Safari 17+ on iOS…), and open that
// copy (/copies/go?id=…). Typing the number in the form above always works; without the detector
// or a camera the button stays hidden. Nothing leaves the device but the number read.
(function () {
  "use strict";
  var start = document.getElementById("scan-start");
  var video = document.getElementById("scan-video");
  var status = document.getElementById("scan-status");
  if (!start || !video || !status) {
    return;
  }
  var COPY = /K\d{6,12}/i;

  function say(text) {
    status.textContent = text;
  }

  function open(value) {
    var found = COPY.exec(String(value || "").replace(/\s+/g, ""));
    if (!found) {
      say("複製番号のQRコードではありません（" + String(value).slice(0, 20) + "）");
      return false;
    }
    window.location.href = "/copies/go?id=" + encodeURIComponent(found[0].toUpperCase());
    return true;
  }

  if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("このブラウザはカメラでの読み取りに対応していません。複製番号を入力してください。");
    return;
  }
  start.hidden = false;

  start.addEventListener("click", function () {
    var detector;
    try {
      detector = new window.BarcodeDetector({formats: ["qr_code"]});
    } catch (e) {
      say("QRコードを読み取れません。複製番号を入力してください。");
      return;
    }
    navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}, audio: false})
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        start.hidden = true;
        say("紙の右下のQRコードを枠に入れてください。");
        return video.play().then(function () {
          var done = false;
          function stop() {
            done = true;
            stream.getTracks().forEach(function (t) { t.stop(); });
          }
          function tick() {
            if (done) {
              return;
            }
            detector.detect(video).then(function (codes) {
              for (var i = 0; i < codes.length; i++) {
                if (COPY.test(codes[i].rawValue)) {
                  stop();
                  open(codes[i].rawValue);
                  return;
                }
              }
              window.setTimeout(tick, 250);
            }).catch(function () {
              window.setTimeout(tick, 500);
            });
          }
          tick();
        });
      })
      .catch(function () {
        say("カメラを使えません（許可されていないか、カメラがありません）。複製番号を入力してください。");
      });
  });
}());
