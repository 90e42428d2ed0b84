// Live overview: polls /api/stats and updates numbers, the stage table and the throughput chart.
// Values go in through textContent only, never as HTML.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var SVG = "http://www.w3.org/2000/svg";

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }

  function updateStages(stats) {
    var rows = document.querySelectorAll("#stages tbody tr[data-stage]");
    rows.forEach(function (row) {
      var stage = row.getAttribute("data-stage");
      var counts = stats.stages[stage] || {};
      row.querySelector('[data-field="depth"]').textContent = String(stats.queues[stage] || 0);
      ["success", "failure", "retry"].forEach(function (outcome) {
        row.querySelector('[data-field="' + outcome + '"]').textContent = String(counts[outcome] || 0);
      });
    });
  }

  function updateWorkers(stats) {
    var list = document.getElementById("workers");
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!stats.workers.length) {
      var empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = "No worker answered.";
      list.appendChild(empty);
    }
    stats.workers.forEach(function (w) {
      var li = document.createElement("li");
      var name = document.createElement("strong");
      name.textContent = w.name;
      li.appendChild(name);
      li.appendChild(document.createTextNode(" — " + w.queues.join(", ")));
      list.appendChild(li);
    });
    var err = document.getElementById("workers-error");
    err.textContent = stats.workers_error || "";
    err.hidden = !stats.workers_error;
  }

  function drawChart(rows) {
    var svg = document.getElementById("throughput");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var width = 600, height = 120, slot = width / Math.max(rows.length, 1);
    var peak = 1;
    rows.forEach(function (r) { peak = Math.max(peak, r.stored + r.failed); });
    rows.forEach(function (r, i) {
      var x = i * slot + 1, w = Math.max(slot - 2, 1);
      var okH = (r.stored / peak) * (height - 4), badH = (r.failed / peak) * (height - 4);
      [[okH, height - okH, "ok"], [badH, height - okH - badH, "bad"]].forEach(function (bar) {
        if (bar[0] <= 0) return;
        var rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("x", x); rect.setAttribute("width", w);
        rect.setAttribute("y", bar[1]); rect.setAttribute("height", bar[0]);
        rect.setAttribute("class", bar[2]);
        var title = document.createElementNS(SVG, "title");
        title.textContent = new Date(r.minute * 1000).toLocaleTimeString() + ": " + r.stored + " stored, " + r.failed + " failed";
        rect.appendChild(title);
        svg.appendChild(rect);
      });
    });
    var shown = 0;
    rows.forEach(function (r) { shown = Math.max(shown, r.stored + r.failed); });
    setText("peak", shown);
  }

  function apply(stats) {
    setText("stat-records", stats.records);
    ["done", "duplicate", "failed", "queued"].forEach(function (s) { setText("stat-" + s, stats.jobs[s] || 0); });
    setText("stat-in-flight", stats.in_flight);
    setText("stat-retry-waiting", stats.retry_waiting);
    setText("stat-workers", stats.workers.length);
    updateStages(stats);
    updateWorkers(stats);
    drawChart(stats.throughput);
    setText("updated", "Updated " + new Date().toLocaleTimeString() + ".");
  }

  function poll() {
    fetch("/api/stats", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(apply)
      .catch(function (e) { setText("updated", "Could not refresh: " + e.message); })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }

  poll();
})();
