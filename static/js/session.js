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
  document.body.addEventListener("htmx:wsClose", function () {
    status.textContent = "reconnecting…";
  });
  document.body.addEventListener("htmx:wsError", function () {
    status.textContent = "reconnecting…";
  });
})();
