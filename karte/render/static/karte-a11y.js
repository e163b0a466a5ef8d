// Tables never widen the page: each sits in a box that scrolls sideways when the screen is too
// narrow (WCAG 1.4.10 reflow), and a box that does scroll becomes a focusable, named region so
// it can be scrolled from the keyboard (WCAG 2.1.1). Checked again when the window is resized.
// A skip link whose target the page does not have is removed.
(function () {
  function box(table) {
    var parent = table.parentElement;
    if (parent.classList.contains("scroll-x") || parent.classList.contains("tablewrap")) {
      return parent;
    }
    var wrap = document.createElement("div");
    wrap.className = "scroll-x";
    wrap.dataset.karteWrap = "1";
    parent.insertBefore(wrap, table);
    wrap.appendChild(table);
    return wrap;
  }
  function mark() {
    document.querySelectorAll("main table").forEach(function (table) {
      var wrap = box(table);
      if (!wrap.dataset.karteWrap) { return; }  // a template's own region keeps its name
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        var caption = table.querySelector("caption");
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", (caption ? caption.textContent.trim() + "（" : "表（")
                          + "横にスクロールできます）");
      } else if (!scrolls && wrap.hasAttribute("tabindex")) {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }
  function start() {
    mark();
    // a page without tables beside its map has no target for the second skip link
    document.querySelectorAll('a.skip[href^="#"]').forEach(function (link) {
      if (!document.getElementById(link.getAttribute("href").slice(1))) { link.remove(); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  window.addEventListener("resize", mark);
})();
