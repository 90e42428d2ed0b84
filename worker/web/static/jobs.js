// Follows queued URLs: polls /api/jobs until every one is done, duplicate or failed.
(function () {
  "use strict";
  var POLL_MS = 1000;
  var TERMINAL = { done: true, duplicate: true, failed: true };

  function link(href, text, className) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (className) a.className = className;
    return a;
  }

  function show(row, job) {
    row.setAttribute("data-state", job.state);
    row.querySelector('[data-field="state"]').textContent = job.state;
    var cell = row.querySelector('[data-field="result"]');
    while (cell.firstChild) cell.removeChild(cell.firstChild);
    if ((job.state === "done" || job.state === "duplicate") && job.record_id) {
      cell.appendChild(link("/records/" + encodeURIComponent(job.record_id), "open record", "open-record"));
    }
    if (job.state === "duplicate" && job.duplicate_of) {
      cell.appendChild(document.createTextNode(" (duplicate of "));
      cell.appendChild(link("/records/" + encodeURIComponent(job.duplicate_of), job.duplicate_of));
      cell.appendChild(document.createTextNode(")"));
    }
    if (job.state === "failed") cell.textContent = job.reason || "failed";
  }

  function pending() {
    return Array.prototype.filter.call(document.querySelectorAll("#jobs tr[data-job]"), function (row) {
      return !TERMINAL[row.getAttribute("data-state")];
    });
  }

  function poll() {
    var rows = pending();
    var status = document.getElementById("jobs-status");
    if (!rows.length) { status.textContent = "All finished."; return; }
    var query = rows.slice(0, 100).map(function (r) { return "ids=" + encodeURIComponent(r.getAttribute("data-job")); }).join("&");
    fetch("/api/jobs?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (jobs) {
        jobs.forEach(function (job) {
          var row = document.querySelector('#jobs tr[data-job="' + CSS.escape(job.id) + '"]');
          if (row) show(row, job);
        });
        status.textContent = pending().length + " still in the pipeline.";
      })
      .catch(function (e) { status.textContent = "Could not refresh: " + e.message; })
      .finally(function () { if (pending().length) setTimeout(poll, POLL_MS); else status.textContent = "All finished."; });
  }

  poll();
})();
