// evalhub RunMonitor: one row per run with status, progress, throughput, elapsed, ETA and error.

/** @param {number|null|undefined} s */
function duration(s) {
  if (s === null || s === undefined) return "";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "evh evh-monitor" });
  el.append(root);

  function draw() {
    const runs = model.get("runs") || [];
    const counts = model.get("counts") || {};
    const terminal = new Set(model.get("terminal") || []); // the statuses after which a run is done
    const allDone = runs.length > 0 && runs.every((r) => terminal.has(r.status));
    root.dataset.status = model.get("status");
    root.dataset.done = String(allDone);
    root.dataset.runs = String(runs.length);

    const head = h(
      "div",
      { class: "evh-head" },
      h("span", { class: "evh-title" }, model.get("title") || `experiment ${model.get("experiment_id")}`),
      h("span", { class: `evh-status evh-status-${model.get("status")}` }, model.get("status")),
      ...Object.entries(counts)
        .filter(([, n]) => n)
        .map(([k, n]) => h("span", { class: "evh-chip" }, `${n} ${k}`)),
      model.get("live") && !allDone ? h("span", { class: "evh-live", title: "live" }) : null,
      model.get("dashboard_url")
        ? h("a", { href: model.get("dashboard_url"), target: "_blank", rel: "noopener" }, "Ray dashboard ↗")
        : null,
    );

    const table = h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["run", "config", "task", "status", "progress", "samples/s", "elapsed", "ETA", "error"].map((t) =>
            h("th", {}, t),
          ),
        ),
      ),
    );
    const body = h("tbody");
    for (const r of runs) {
      const pct = r.total ? Math.min(100, (100 * r.done) / r.total) : r.status === "completed" ? 100 : 0;
      const bar = h("div", { class: `evh-bar evh-bar-${r.status}`, title: `${pct.toFixed(0)}%` }, h("div", { style: `width:${pct}%` }));
      const err = r.error
        ? h(
            "div",
            { class: "evh-run-error", title: r.error, onclick: (/** @type {Event} */ e) => e.currentTarget.classList.toggle("evh-open") },
            r.error,
          )
        : "";
      body.append(
        h(
          "tr",
          { "data-run-id": r.run_id, "data-status": r.status },
          h("td", { class: "evh-num" }, String(r.run_id)),
          h("td", {}, r.label, r.attempt > 1 ? h("span", { class: "evh-muted" }, ` (attempt ${r.attempt})`) : null),
          h("td", {}, r.task),
          h("td", {}, h("span", { class: `evh-status evh-status-${r.status}` }, r.status)),
          h("td", {}, bar, h("span", { class: "evh-muted" }, ` ${r.done}${r.total ? "/" + r.total : ""}`)),
          h("td", { class: "evh-num" }, r.throughput ? r.throughput.toFixed(1) : ""),
          h("td", { class: "evh-num" }, duration(r.elapsed_s)),
          h("td", { class: "evh-num" }, duration(r.eta_s)),
          h("td", {}, err),
        ),
      );
    }
    table.append(body);
    const error = model.get("error") ? h("div", { class: "evh-error" }, model.get("error")) : null;
    root.replaceChildren(head, table, ...(error ? [error] : []));
  }

  draw();
  const events = ["change:runs", "change:status", "change:counts", "change:live", "change:error", "change:dashboard_url", "change:title"];
  for (const e of events) model.on(e, draw);
  return () => {
    for (const e of events) model.off(e, draw);
  };
}

export default { render };
