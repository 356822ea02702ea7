// Live session page: tell the server where we are when the socket (re)opens, so it replays
// every event after that sequence number exactly once; show a quiet reconnecting notice.
(function () {
  "use strict";
  const root = document.getElementById("session-live");
  if (!root) return;
  const status = document.getElementById("live-status");
  // Reconnect quickly after a server restart: jittered, doubling from 250 ms, at most 2 s
  // (htmx's default grows to a minute), so a page is back within seconds of the server.
  if (window.htmx) {
    htmx.config.wsReconnectDelay = function (retryCount) {
      return Math.min(250 * Math.pow(2, retryCount), 2000) * (0.5 + Math.random() / 2);
    };
  }
  function lastSeq() {
    const marker = document.getElementById("live-seq");
    return marker ? parseInt(marker.dataset.seq || "0", 10) || 0 : 0;
  }
  document.body.addEventListener("htmx:wsOpen", function (event) {
    status.textContent = "";
    event.detail.socketWrapper.send(JSON.stringify({ type: "resume", last_seq: lastSeq() }));
  });
  // Streamed text carries its offset in the contribution's text (data-at, in characters); the
  // stream knows how much it shows (data-len). Text it already shows is dropped, so a stream
  // sent again after a reconnect or a replay never doubles.
  function chars(text) { return Array.from(text).length; }
  document.body.addEventListener("htmx:oobBeforeSwap", function (event) {
    const target = event.detail.target;
    const part = event.detail.fragment;
    if (!target || !target.classList || !target.classList.contains("stream") || !part || !part.getAttribute) return;
    const at = parseInt(part.getAttribute("data-at") || "", 10);
    if (isNaN(at)) return;
    const shown = parseInt(target.dataset.len || "0", 10) || 0;
    const text = part.textContent || "";
    const size = chars(text);
    if (at + size <= shown) { event.detail.shouldSwap = false; return; }
    if (at < shown) part.textContent = Array.from(text).slice(shown - at).join("");
    target.dataset.len = String(Math.max(shown, at) + (size - Math.max(0, shown - at)));
  });
  document.body.addEventListener("htmx:wsClose", function () {
    status.textContent = "reconnecting…";
  });
  document.body.addEventListener("htmx:wsError", function () {
    status.textContent = "reconnecting…";
  });
})();
