// Record a reading in the browser (MediaRecorder, WebM/Opus where the browser has it),
// play it back, upload it through the same form endpoint as a file. No inline script (CSP).
"use strict";

(function () {
  function pickType() {
    var types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
    for (var i = 0; i < types.length; i++) {
      if (window.MediaRecorder.isTypeSupported && window.MediaRecorder.isTypeSupported(types[i])) return types[i];
    }
    return "";
  }

  function extensionOf(type) {
    if (type.indexOf("ogg") >= 0) return ".ogg";
    if (type.indexOf("mp4") >= 0) return ".m4a";
    return ".webm";
  }

  function setUp(box) {
    var start = box.querySelector(".rec-start");
    var stop = box.querySelector(".rec-stop");
    var upload = box.querySelector(".rec-upload");
    var playback = box.querySelector(".rec-playback");
    var status = box.querySelector(".rec-status");
    var recorder = null;
    var stream = null;
    var chunks = [];
    var blob = null;

    function say(text) { status.textContent = text; }

    start.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (s) {
        stream = s;
        chunks = [];
        var type = pickType();
        recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
        recorder.addEventListener("dataavailable", function (e) { if (e.data && e.data.size) chunks.push(e.data); });
        recorder.addEventListener("stop", function () {
          blob = new Blob(chunks, { type: recorder.mimeType || type || "audio/webm" });
          playback.src = URL.createObjectURL(blob);
          playback.hidden = false;
          upload.disabled = blob.size === 0;
          stream.getTracks().forEach(function (t) { t.stop(); });
          say("Đã ghi xong (" + Math.round(blob.size / 1024) + " KB). Nghe lại, rồi bấm tải lên.");
        });
        recorder.start(250);
        start.disabled = true;
        stop.disabled = false;
        upload.disabled = true;
        box.dataset.state = "recording";
        say("Đang ghi âm… Bấm “Dừng” khi đọc xong.");
      }).catch(function (err) {
        say("Không mở được micrô: " + err.name + ". Hãy cho phép trình duyệt dùng micrô.");
      });
    });

    stop.addEventListener("click", function () {
      if (recorder && recorder.state !== "inactive") recorder.stop();
      start.disabled = false;
      stop.disabled = true;
      box.dataset.state = "recorded";
    });

    upload.addEventListener("click", function () {
      if (!blob) return;
      var form = new FormData();
      form.append(box.dataset.csrfField, box.dataset.csrf);
      form.append("language", box.dataset.language);
      form.append("file", blob, "ghi-am-" + box.dataset.language + extensionOf(blob.type));
      var transcript = box.dataset.transcript ? document.getElementById(box.dataset.transcript) : null;
      if (transcript && transcript.value) form.append("transcript", transcript.value);
      upload.disabled = true;
      say("Đang tải lên…");
      fetch(box.dataset.action, { method: "POST", body: form, credentials: "same-origin" }).then(function (r) {
        if (r.ok && r.redirected) { window.location.assign(r.url); return null; }
        return r.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var e = doc.querySelector("#upload-error");
          say(e ? e.textContent : "Không tải lên được (mã " + r.status + "). Hãy thử lại.");
          upload.disabled = false;
        });
      }).catch(function () {
        say("Mất kết nối khi tải lên. Hãy thử lại.");
        upload.disabled = false;
      });
    });

    box.hidden = false;
  }

  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder)) return;
  document.querySelectorAll(".recorder").forEach(setUp);
})();
