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
  // Streamed text comes in frames of its own: parts that each append to one card's stream and
  // carry their offset in the contribution's text (data-at, in characters); a stream knows how
  // much it shows (data-len). This page applies them itself: text it already shows is dropped
  // (a stream sent again after a reconnect never doubles), and text for a card that is not on
  // the page yet is skipped (the card brings the text it has when it arrives).
  const TEXT_FRAME = '<div hx-swap-oob="beforeend:#text-';
  // A card of a queued call reads "Waiting" until a worker takes the call, which the call's
  // first part (empty when no text has come yet) says: from then on it reads as running.
  function taken(card) {
    if (!card) return;
    card.classList.remove("queued");
    const label = card.querySelector(".cstatus[data-taken]");
    if (label) {
      label.textContent = label.dataset.taken;
      label.removeAttribute("title");
    }
  }
  function chars(text) { return Array.from(text); }
  function applyText(frame) {
    const holder = document.createElement("template");
    holder.innerHTML = frame;  // inert: parsed, never run
    holder.content.querySelectorAll("div[data-at]").forEach(function (part) {
      const oob = part.getAttribute("hx-swap-oob") || "";
      const target = document.getElementById(oob.slice("beforeend:#".length));
      if (!target || !target.classList.contains("stream")) return;
      taken(target.closest("article.contrib.queued"));
      const at = parseInt(part.getAttribute("data-at"), 10);
      const shown = parseInt(target.dataset.len || "0", 10) || 0;
      const text = chars(part.textContent || "");
      if (isNaN(at) || at + text.length <= shown) return;
      const fresh = at < shown ? text.slice(shown - at).join("") : text.join("");
      target.appendChild(document.createTextNode(fresh));
      target.dataset.len = String(at + text.length);
    });
  }
  document.body.addEventListener("htmx:wsBeforeMessage", function (event) {
    const message = event.detail.message;
    if (typeof message === "string" && message.startsWith(TEXT_FRAME)) {
      event.preventDefault();
      applyText(message);
    }
  });
  document.body.addEventListener("htmx:wsClose", function () {
    status.textContent = "reconnecting…";
  });
  document.body.addEventListener("htmx:wsError", function () {
    status.textContent = "reconnecting…";
  });
})();
