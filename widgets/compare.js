// evalhub ComparisonTable: runs x metrics grouped by task, baseline deltas, best per column, sortable.

/** @param {any} v */
function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  return Number(v.toPrecision(4)).toString();
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "evh evh-compare" });
  el.append(root);

  /** @param {string} name @param {any} value */
  function set(name, value) {
    model.set(name, value);
    model.save_changes();
  }

  function sortBy(/** @type {string} */ col) {
    if (model.get("sort_by") === col) set("sort_desc", !model.get("sort_desc"));
    else {
      model.set("sort_desc", true);
      set("sort_by", col);
    }
  }

  function draw() {
    const rows = model.get("rows") || [];
    const lower = new Set(model.get("lower_better") || []);
    const baseline = model.get("baseline");
    const sortCol = model.get("sort_by");
    const arrow = (/** @type {string} */ c) => (c === sortCol ? (model.get("sort_desc") ? " ▼" : " ▲") : "");
    root.dataset.rows = String(rows.length);
    root.dataset.baseline = baseline;

    const select = h(
      "select",
      { class: "evh-baseline", onchange: (/** @type {Event} */ e) => set("baseline", /** @type {HTMLSelectElement} */ (e.target).value) },
      h("option", { value: "" }, "no baseline"),
      ...(model.get("labels") || []).map((l) => h("option", { value: l, selected: l === baseline }, l)),
    );
    const head = h(
      "div",
      { class: "evh-head" },
      h("span", { class: "evh-title" }, model.get("title") || `experiment ${model.get("experiment_id")}`),
      h("span", { class: "evh-muted" }, `${rows.length} runs · ★ best per column${baseline ? " · * significant (Holm p < 0.05)" : ""}`),
      h("label", { class: "evh-muted" }, "baseline ", select),
    );
    const parts = [head];

    for (const t of model.get("tasks") || []) {
      const taskRows = rows.filter((/** @type {any} */ r) => r.task === t.task);
      const cols = t.metrics;
      parts.push(h("h4", { class: "evh-task" }, t.task || "(no task)"));
      const table = h(
        "table",
        { "data-task": t.task },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { class: "evh-sortable", onclick: () => sortBy("label") }, "config" + arrow("label")),
            h("th", { class: "evh-sortable", onclick: () => sortBy("status") }, "status" + arrow("status")),
            ...cols.map((/** @type {string} */ m) =>
              h(
                "th",
                { class: "evh-sortable evh-num", "data-metric": m, title: lower.has(m) ? "lower is better" : "higher is better", onclick: () => sortBy(m) },
                m + (lower.has(m) ? " ↓" : "") + arrow(m),
              ),
            ),
          ),
        ),
      );
      const body = h("tbody");
      for (const r of taskRows) {
        const cells = cols.map((/** @type {string} */ m) => {
          const v = r.metrics[m];
          const d = r.deltas[m];
          let delta = null;
          if (d !== undefined) {
            const good = lower.has(m) ? d < 0 : d > 0;
            const ci = r.ci ? r.ci[m] : undefined;
            const sig = (r.significant || []).includes(m);
            // without a significant paired test, a difference is shown but not coloured as a win or loss
            const cls = d === 0 || (ci && !sig) ? "evh-muted" : good ? "evh-better" : "evh-worse";
            const title = ci
              ? `paired: ${d >= 0 ? "+" : ""}${fmt(d)}, 95% CI [${fmt(ci[0])}, ${fmt(ci[1])}], Holm p = ${fmt(r.p_holm[m])}${sig ? " (significant)" : ""}`
              : "difference to the baseline (no per-sample scores: untested)";
            delta = h(
              "span",
              { class: `evh-delta ${cls}${sig ? " evh-significant" : ""}`, title, "data-significant": String(sig) },
              `${d >= 0 ? "+" : ""}${fmt(d)}${sig ? " *" : ""}`,
              ci ? h("span", { class: "evh-ci" }, ` [${fmt(ci[0])}, ${fmt(ci[1])}]`) : null,
            );
          }
          const se = r.stderr[m];
          return h(
            "td",
            { class: `evh-num${r.best.includes(m) ? " evh-best" : ""}`, "data-metric": m, title: se !== undefined ? `± ${fmt(se)}` : null },
            fmt(v),
            delta,
          );
        });
        body.append(
          h(
            "tr",
            { class: r.is_baseline ? "evh-baseline" : "", "data-run-id": r.run_id, "data-label": r.label },
            h("td", { title: `run ${r.run_id} · ${r.name}` }, r.label, r.is_baseline ? h("span", { class: "evh-muted" }, " (baseline)") : null),
            h("td", {}, h("span", { class: `evh-status evh-status-${r.status}` }, r.status)),
            ...cells,
          ),
        );
      }
      table.append(body);
      parts.push(table);
      const folded = t.folded || [];
      if (folded.length) {
        // a group's subtasks and subgroups: folded under the group's own scores
        const sub = h(
          "table",
          { class: "evh-folded-table" },
          h("thead", {}, h("tr", {}, h("th", {}, "config"), ...folded.map((/** @type {string} */ m) => h("th", { class: "evh-num" }, m)))),
          h(
            "tbody",
            {},
            ...taskRows.map((/** @type {any} */ r) =>
              h("tr", { "data-run-id": r.run_id }, h("td", {}, r.label), ...folded.map((/** @type {string} */ m) => h("td", { class: "evh-num" }, fmt(r.metrics[m])))),
            ),
          ),
        );
        parts.push(h("details", { class: "evh-folded", "data-task": t.task }, h("summary", {}, `${folded.length} subtask scores` + (t.aggregation ? ` · the group's score: ${t.aggregation}` : "")), sub));
      }
    }
    if (!rows.length) parts.push(h("div", { class: "evh-muted" }, "no runs yet"));
    if (model.get("stats_error")) parts.push(h("div", { class: "evh-muted" }, model.get("stats_error")));
    root.replaceChildren(...parts);
  }

  draw();
  const events = ["change:rows", "change:tasks", "change:labels", "change:baseline", "change:title", "change:stats_error"];
  for (const e of events) model.on(e, draw);
  return () => {
    for (const e of events) model.off(e, draw);
  };
}

export default { render };
