// Render Mermaid sources from our own static copy with securityLevel "strict". A render error
// is shown next to the diagram, never swallowed; without Mermaid the source and ASCII stay.
(function () {
  "use strict";
  // Mermaid writes a <style> element into each SVG. Under the Content-Security-Policy a style
  // element needs the page's nonce, which this script carries (a script can read its own).
  const nonce = (document.currentScript && document.currentScript.nonce) || "";
  function withNonce(el, name) {
    if (nonce && String(name).toLowerCase() === "style") el.setAttribute("nonce", nonce);
    return el;
  }
  async function renderWithNonce(id, source) {
    // While Mermaid lays the diagram out in the page, the style elements it creates get the nonce.
    // Its sanitiser re-parses the SVG (DOMParser), where a style without the nonce is reported too.
    const create = document.createElement, createNS = document.createElementNS;
    const parse = DOMParser.prototype.parseFromString;
    document.createElement = function (name, options) { return withNonce(create.call(document, name, options), name); };
    document.createElementNS = function (ns, name, options) { return withNonce(createNS.call(document, ns, name, options), name); };
    DOMParser.prototype.parseFromString = function (text, type) { return parse.call(this, svgWithNonce(String(text)), type); };
    try {
      return await window.mermaid.render(id, source);
    } finally {
      document.createElement = create;
      document.createElementNS = createNS;
      DOMParser.prototype.parseFromString = parse;
    }
  }
  function svgWithNonce(svg) {
    return nonce ? svg.replace(/<style(?=[\s>])/g, '<style nonce="' + nonce + '"') : svg;
  }
  function notice(wrap, text) {
    const p = wrap.querySelector(".diagram-error");
    if (p) { p.hidden = false; p.textContent = text; }
  }
  async function renderAll() {
    const sources = document.querySelectorAll("pre[data-mermaid]");
    if (!sources.length) return;
    if (typeof window.mermaid === "undefined") {
      sources.forEach(function (pre) {
        notice(pre.parentElement, "Diagram rendering is not installed (run `npm ci`); showing the Mermaid source and the ASCII view.");
        const ascii = pre.closest(".diagram").querySelector("details.ascii-view");
        if (ascii) ascii.open = true;
      });
      return;
    }
    // suppressErrorRendering: without it Mermaid draws its own "Syntax error" graphic into a
    // temporary element at the end of <body> and leaves it there; our notice says it in place.
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral", suppressErrorRendering: true });
    let n = 0;
    for (const pre of sources) {
      const wrap = pre.parentElement;
      const id = "mermaid-" + (++n);
      try {
        const { svg } = await renderWithNonce(id, pre.textContent);
        const holder = document.createElement("div");
        holder.className = "mermaid-rendered";
        holder.innerHTML = svgWithNonce(svg);
        pre.hidden = true;
        wrap.insertBefore(holder, pre);
      } catch (err) {
        const leftover = document.getElementById("d" + id);  // Mermaid's temporary container
        if (leftover) leftover.remove();
        notice(wrap, "Mermaid could not render this diagram: " + (err && err.message ? err.message : String(err)));
      }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderAll);
  else renderAll();
})();
