// Small behaviours on top of htmx; every page works without this file.
(function () {
  "use strict";
  // The CSRF token travels on every htmx request through hx-headers on <body>.
  // 409 and 422 carry their own explanation and are swapped in; any other failure gets a
  // visible notice instead of a button that silently does nothing.
  function showProblem(text) {
    var box = document.getElementById("request-problem");
    if (!box) {
      box = document.createElement("p");
      box.id = "request-problem";
      box.className = "flash flash-error";
      box.setAttribute("role", "alert");
      document.querySelector("main").prepend(box);
    }
    box.textContent = text;
  }
  // Forms that undo much ask first (data-confirm): the strict CSP allows no inline handlers.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status === 401 && xhr.getResponseHeader("HX-Redirect")) {
      window.location = xhr.getResponseHeader("HX-Redirect");
      return;
    }
    showProblem(xhr.status === 400
      ? "The page is out of date. Reload it and try again."
      : "That did not work (the server answered " + xhr.status + "). Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showProblem("The server could not be reached. Check the connection and try again.");
  });

  // Dialogs: a server-rendered `open` dialog (the no-JS form) becomes a real modal here.
  function promoteOpenDialogs(root) {
    root.querySelectorAll("dialog[data-modal][open]").forEach(function (dialog) {
      if (!dialog.matches(":modal")) { dialog.close(); dialog.showModal(); }
    });
  }
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-opens-dialog]");
    var dialog = opener && document.getElementById(opener.dataset.opensDialog);
    if (dialog) { event.preventDefault(); dialog.showModal(); return; }
    var closer = event.target.closest("[data-closes-dialog]");
    if (closer && closer.closest("dialog")) { event.preventDefault(); closer.closest("dialog").close(); }
  });

  // Queue keyboard: j/k move, Enter opens, a runs the next action, / searches, ? shows help.
  var selectedIndex = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-rows] tbody tr")); }
  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    selectedIndex = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selectedIndex); });
    var link = all[selectedIndex].querySelector("a");
    if (link) { link.focus({ preventScroll: true }); }
    all[selectedIndex].scrollIntoView({ block: "nearest" });
  }
  function selectedRow() {
    var all = rows();
    return all[selectedIndex] || document.activeElement && document.activeElement.closest("[data-keyboard-rows] tbody tr");
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey || target.closest("input, select, textarea, dialog[open]")) {
      if (event.key === "?" && target.closest("#keyboard-help")) { target.closest("dialog").close(); }
      return;
    }
    var help = document.getElementById("keyboard-help");
    if (event.key === "?" && help) { event.preventDefault(); help.open ? help.close() : help.showModal(); return; }
    if (!document.querySelector("[data-keyboard-rows]")) {
      return;
    }
    if (event.key === "j") { event.preventDefault(); select(selectedIndex + 1); }
    else if (event.key === "k") { event.preventDefault(); select(selectedIndex - 1); }
    else if (event.key === "/") { event.preventDefault(); document.querySelector("input[name=q]").focus(); }
    else if (event.key === "Enter" && selectedRow() && target.tagName !== "BUTTON") {
      event.preventDefault(); window.location = selectedRow().dataset.rowHref;
    } else if (event.key === "a" && selectedRow()) {
      var action = selectedRow().querySelector("[data-action-key]");
      if (action) { event.preventDefault(); action.click(); }
    }
  });
  // A swapped-in row replaces the selected one: keep it selected.
  document.addEventListener("htmx:afterSwap", function () {
    if (selectedIndex >= 0) { select(selectedIndex); }
  });

  document.addEventListener("DOMContentLoaded", function () { promoteOpenDialogs(document); });
  document.addEventListener("htmx:load", function (event) { promoteOpenDialogs(event.detail.elt); });
})();
