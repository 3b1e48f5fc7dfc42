// deskd admin pages: the few things HTML forms cannot do alone. Every page works without it
// except the live parts (a job's bar, an import). Text from the server is set with textContent,
// never as HTML.
"use strict";

function setField(root, name, value) {
  root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = String(value); });
}

function setBar(bar, label, done, total, finished) {
  var p = finished ? 100 : (total > 0 ? Math.min(100, Math.floor(done * 100 / total)) : 0);
  bar.value = p;
  if (label) label.textContent = p + " %";
  return p;
}

// Forms that ask first.
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});

// A job's page: follow the job through its event stream, then reload to show the results.
function followJob(box) {
  var bar = box.querySelector("progress");
  var label = box.querySelector('[data-field="percent"]');
  var source = new EventSource(box.getAttribute("data-events"));
  function update(e, finished) {
    var job = JSON.parse(e.data).job_status;
    setBar(bar, label, job.progress || 0, job.total || 0, finished && job.status === "completed");
    setField(box, "status", job.status);
    setField(box, "progress", job.progress || 0);
    setField(box, "total", job.total || 0);
    setField(box, "message", job.message || "");
    if (finished) {
      source.close();
      window.setTimeout(function () { window.location.reload(); }, 400);
    }
  }
  source.addEventListener("progress", function (e) { update(e, false); });
  source.addEventListener("completed", function (e) { update(e, true); });
  source.addEventListener("failed", function (e) { update(e, true); });
  source.addEventListener("gone", function () { source.close(); });
}

// The import page: upload the file, then read the answer's JSON lines as they come.
function setupImport(form) {
  var $ = function (id) { return document.getElementById(id); };
  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    var file = $("import-file").files[0];
    if (!file) return;
    var button = form.querySelector("button");
    button.disabled = true;
    ["import-problems", "import-failures"].forEach(function (id) { $(id).hidden = true; });
    $("import-problem-list").textContent = "";
    $("import-failure-rows").textContent = "";
    $("import-jobs").textContent = "";
    $("import-progress").hidden = false;
    var bar = $("import-bar"), label = $("import-percent"), status = $("import-status");
    setBar(bar, label, 0, 1, false);
    status.textContent = "Checking " + file.name + "…";
    var q = "?name=" + encodeURIComponent(file.name) + "&format=" + encodeURIComponent(form.elements.format.value);
    try {
      var resp = await fetch("/admin/import" + q, {
        method: "POST", body: file, credentials: "same-origin",
        headers: { "X-CSRF-Token": form.getAttribute("data-csrf"), "Content-Type": "application/octet-stream" }
      });
      if (!resp.ok) {
        var body = await resp.json().catch(function () { return { error: "The import was refused (" + resp.status + ")." }; });
        $("import-progress").hidden = true;
        if (body.problems) {
          $("import-problems").hidden = false;
          body.problems.forEach(function (p) { var li = document.createElement("li"); li.textContent = p; $("import-problem-list").appendChild(li); });
          status.textContent = "";
        } else {
          $("import-progress").hidden = false;
          status.textContent = body.error || "The import was refused.";
        }
        return;
      }
      status.textContent = "Importing…";
      var reader = resp.body.getReader(), decoder = new TextDecoder(), buffered = "";
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffered += decoder.decode(chunk.value, { stream: true });
        var lines = buffered.split("\n");
        buffered = lines.pop();
        lines.filter(Boolean).forEach(function (line) { handle(JSON.parse(line)); });
      }
    } catch (err) {
      status.textContent = "The import stopped: " + err;
    } finally {
      button.disabled = false;
    }
    function handle(msg) {
      if (msg.submitted) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = "/admin/jobs/" + encodeURIComponent(msg.submitted.id);
        a.textContent = "lines " + msg.submitted.first_line + "–" + msg.submitted.last_line;
        li.appendChild(a);
        $("import-jobs").appendChild(li);
      } else if (msg.progress) {
        setBar(bar, label, msg.progress.done, msg.progress.total, false);
        status.textContent = msg.progress.done + " of " + msg.progress.total + " users";
      } else if (msg.done) {
        var d = msg.done;
        setBar(bar, label, d.total, d.total, true);
        status.textContent = "Imported " + d.total + " rows: " + d.created + " created, " + d.updated + " updated, " + d.failed + " failed.";
        if (d.failed > 0) {
          $("import-failures").hidden = false;
          d.failures.forEach(function (f) {
            var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
            a.textContent = f.line; b.textContent = f.error; tr.appendChild(a); tr.appendChild(b);
            $("import-failure-rows").appendChild(tr);
          });
          var link = $("import-failures-file");
          link.href = URL.createObjectURL(new Blob([d.failures_file || ""], { type: "text/plain" }));
          link.download = d.failures_name;
        }
      } else if (msg.error) {
        status.textContent = "The import stopped: " + msg.error;
      }
    }
  });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-events]").forEach(followJob);
  var form = document.getElementById("import");
  if (form) setupImport(form);
});
