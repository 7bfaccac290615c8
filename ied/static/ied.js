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
  // A form whose buttons do different things puts the question on each button instead. One
  // that needs a field filled in (data-confirm-needs: its name) asks nothing while it is empty:
  // the server refuses it inline at once, instead of after "this is final, go ahead?".
  function asks(element) { return element && element.getAttribute("data-confirm") ? element : null; }
  document.addEventListener("submit", function (event) {
    var asker = asks(event.submitter) || asks(event.target);
    if (!asker) { return; }
    var needed = asker.getAttribute("data-confirm-needs");
    var field = needed && event.target.elements.namedItem(needed);
    if (field && !field.value.trim()) { return; }
    if (!window.confirm(asker.getAttribute("data-confirm"))) {
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

  // Dialogs: a server-rendered `open` dialog (the no-JS form) becomes a real modal here. It
  // remembers what last had focus outside dialogs (the queue row's link, the lead page's
  // button: by the time it is promoted its own button may have taken focus) to give it back.
  var dialogOpeners = new WeakMap();
  var focusedOutsideDialogs = null;
  document.addEventListener("focusin", function (event) {
    if (!event.target.closest("dialog")) { focusedOutsideDialogs = event.target; }
  });
  function promoteOpenDialogs(root) {
    root.querySelectorAll("dialog[data-modal][open]").forEach(function (dialog) {
      if (!dialog.matches(":modal")) {
        if (focusedOutsideDialogs) { dialogOpeners.set(dialog, focusedOutsideDialogs); }
        dialog.close(); dialog.showModal();
      }
    });
  }
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-closes-dialog]");
    if (closer && closer.closest("dialog")) { event.preventDefault(); closer.closest("dialog").close(); }
  });

  // Queue keyboard. One notion of the current row, kept by the lead's row id so it survives
  // every swap: j/k move it, Tab into a row moves it there, a swapped-in row keeps it.
  // Enter opens the lead, a runs its next action, n goes on after assigning, / searches,
  // ? shows the help.
  var selectedId = null;
  var selectedIndex = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-rows] tbody tr")); }
  function currentRow() {
    var row = selectedId && document.getElementById(selectedId);
    if (row && row.closest("[data-keyboard-rows]")) { return row; }
    var all = rows();
    return selectedIndex >= 0 && all.length ? all[Math.min(selectedIndex, all.length - 1)] : null;
  }
  function mark(row) {
    var all = rows();
    selectedId = row.id;
    selectedIndex = all.indexOf(row);
    all.forEach(function (other) {
      other.classList.toggle("selected", other === row);
      if (other === row) { other.setAttribute("aria-selected", "true"); } else { other.removeAttribute("aria-selected"); }
    });
  }
  function select(row) {
    if (!row) { return; }
    mark(row);
    var link = row.querySelector("a");
    if (link) { link.focus({ preventScroll: true }); }
    row.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.indexOf(currentRow());
    index = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(index + step, all.length - 1));
    select(all[index]);
  }
  document.addEventListener("focusin", function (event) {
    var row = event.target.closest && event.target.closest("[data-keyboard-rows] tbody tr");
    if (row && row.id !== selectedId) { mark(row); }
  });
  // After a swap the new row (same id) is marked again; if focus was lost with the old row,
  // it goes back to the row so Tab and the keys carry on from there.
  document.addEventListener("htmx:afterSettle", function () {
    var row = currentRow();
    if (!row) { return; }
    var lost = !document.activeElement || document.activeElement === document.body;
    var dialogOpen = document.querySelector("dialog[open]");
    if (lost && !dialogOpen) { select(row); } else { mark(row); }
  });
  // A row's action swaps the row: the next step's button appears under the pointer, so a
  // hasty second click would take a second step nobody meant (start review, then approve
  // unread). Pointer clicks on the buttons of a row just swapped in are ignored for a moment
  // (its links only open a dialog or a page); keys (and Enter or Space on a button: a click
  // with no pointer, detail 0) act at once.
  var SWAPPED_ROW_PAUSE_MS = 700;
  document.addEventListener("htmx:load", function (event) {
    var row = event.detail.elt;
    if (!row.matches || !row.matches("tr")) { return; }
    row.dataset.justSwapped = "";
    setTimeout(function () { delete row.dataset.justSwapped; }, SWAPPED_ROW_PAUSE_MS);
  });
  document.addEventListener("click", function (event) {
    if (event.detail && event.target.closest && event.target.closest("tr[data-just-swapped] button")) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
  function clickKey(root, key) {
    var target = root.querySelector('[data-key="' + key + '"]');
    if (target) { target.click(); return true; }
    return false;
  }
  // "Next lead" over the queue: close the dialog and select the row after the one just done.
  document.addEventListener("click", function (event) {
    var next = event.target.closest("[data-select-next]");
    if (!next || !document.querySelector("[data-keyboard-rows]")) { return; }
    event.preventDefault();
    var dialog = next.closest("dialog");
    if (dialog) { dialog.close(); }
    var done = document.getElementById(next.dataset.selectNext);
    var all = rows();
    var index = all.indexOf(done);
    select(all[index + 1] || all[index] || all[0]);
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var openDialog = target.closest("dialog[open]");
    if (openDialog) {
      if (event.key === "?" && openDialog.id === "keyboard-help") { openDialog.close(); }
      else if (event.key === "n" && !target.closest("input[type=text], textarea") && clickKey(openDialog, "n")) { event.preventDefault(); }
      return;
    }
    if (target.closest("input, select, textarea")) { return; }
    var help = document.getElementById("keyboard-help");
    if (event.key === "?" && help) { event.preventDefault(); help.open ? help.close() : help.showModal(); return; }
    if (event.key === "n" && clickKey(document, "n")) { event.preventDefault(); return; }
    if (!document.querySelector("[data-keyboard-rows]")) {
      return;
    }
    var row = currentRow();
    if (event.key === "j") { event.preventDefault(); move(1); }
    else if (event.key === "k") { event.preventDefault(); move(-1); }
    else if (event.key === "/") { event.preventDefault(); document.querySelector("input[name=q]").focus(); }
    else if (event.key === "Enter" && row && target.tagName !== "BUTTON" && target.tagName !== "A") {
      event.preventDefault(); window.location = row.dataset.rowHref;
    } else if (event.key === "a" && row) {
      var action = row.querySelector("[data-action-key]");
      if (action) { event.preventDefault(); action.click(); }
    }
  });

  // Closed (Escape, Cancel, after assigning) with focus nowhere: back to where it was opened
  // from, or, when that was swapped away, the queue's current row; the next Tab goes on there
  // rather than from the top of the page. (`close` does not bubble: listen in the capture phase.)
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (!dialog.matches || !dialog.matches("dialog") || dialog.open) { return; }  // open: promoted
    var active = document.activeElement;
    if (active && active !== document.body && !dialog.contains(active)) { return; }
    var opener = dialogOpeners.get(dialog);
    if (opener && opener.isConnected) { opener.focus(); return; }
    select(currentRow());
  }, true);

  // A form sent back with errors (422) puts focus on its first refused field, so the keyboard
  // and a screen reader start where the fix is, not at the top of the page; a page that
  // chose its own focus (autofocus) keeps it.
  function focusFirstRefused() {
    var refused = document.querySelector("main [aria-invalid=true]");
    if (refused && !document.querySelector("[autofocus]")) { refused.focus(); }
  }

  // A search typed in swaps the queue's results only: the tab it left is no longer the
  // current one (the results span every status), and clearing it makes that tab current again.
  document.addEventListener("htmx:afterSettle", function () {
    var results = document.querySelector("#queue-results[data-current-tab]");
    if (!results) { return; }
    var current = results.dataset.currentTab;
    document.querySelectorAll("#queue-tabs a[data-tab]").forEach(function (link) {
      if (link.dataset.tab === current) { link.setAttribute("aria-current", "page"); }
      else { link.removeAttribute("aria-current"); }
    });
  });

  document.addEventListener("DOMContentLoaded", function () { promoteOpenDialogs(document); focusFirstRefused(); });
  document.addEventListener("htmx:load", function (event) { promoteOpenDialogs(event.detail.elt); });
})();
