// evalhub OutputDiff: per sample, every run's answer side by side with word-level differences.
// Pages come from the server: this view sets `query` (task, filter, q, offset, limit, seq) and
// Python answers with `page`.

/** @param {any} v */
function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(3)).toString();
}

const FILTERS = [
  ["all", "all"],
  ["disagree", "runs disagree"],
  ["any_wrong", "any wrong"],
  ["all_wrong", "all wrong"],
];

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "evh evh-diff" });
  el.append(root);
  let seq = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let searchTimer;

  /** @param {Record<string, any>} change */
  function ask(change) {
    seq += 1;
    const q = { ...model.get("query"), ...change, seq };
    root.dataset.loading = "true";
    root.dataset.requested = String(seq);
    model.set("query", q);
    model.save_changes();
  }

  const search = /** @type {HTMLInputElement} */ (
    h("input", { type: "search", class: "evh-search", placeholder: "search prompt, reference, outputs…", size: 30 })
  );
  search.value = (model.get("query") || {}).q || "";
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => ask({ q: search.value, offset: 0 }), 300);
  });

  const toolbar = h("div", { class: "evh-toolbar" });
  const samples = h("div", { class: "evh-samples" });
  const footer = h("div", { class: "evh-toolbar" });
  const status = h("div", { class: "evh-error" });
  root.append(toolbar, status, samples, footer);

  function pager() {
    const page = model.get("page") || {};
    const total = page.total || 0;
    const offset = page.offset || 0;
    const limit = page.limit || (model.get("query") || {}).limit || 20;
    const shown = (page.items || []).length;
    return h(
      "span",
      { class: "evh-pager" },
      h("button", { class: "evh-first", disabled: offset <= 0, onclick: () => ask({ offset: 0 }) }, "«"),
      h("button", { class: "evh-prev", disabled: offset <= 0, onclick: () => ask({ offset: Math.max(0, offset - limit) }) }, "‹ prev"),
      h("span", { class: "evh-range evh-muted" }, total ? ` ${offset + 1}–${offset + shown} of ${total} ` : " no samples "),
      h("button", { class: "evh-next", disabled: offset + limit >= total, onclick: () => ask({ offset: offset + limit }) }, "next ›"),
      h(
        "button",
        { class: "evh-last", disabled: offset + limit >= total, onclick: () => ask({ offset: Math.max(0, Math.floor((total - 1) / limit) * limit) }) },
        "»",
      ),
    );
  }

  function drawToolbar() {
    const query = model.get("query") || {};
    const tasks = model.get("tasks") || [];
    const parts = [];
    if (tasks.length > 1) {
      parts.push(
        h(
          "select",
          { class: "evh-task-select", onchange: (/** @type {Event} */ e) => ask({ task: /** @type {HTMLSelectElement} */ (e.target).value, offset: 0 }) },
          ...tasks.map((/** @type {string} */ t) => h("option", { value: t, selected: t === query.task }, t)),
        ),
      );
    } else if (tasks.length === 1) {
      parts.push(h("span", { class: "evh-title" }, tasks[0]));
    }
    for (const [name, label] of FILTERS) {
      parts.push(
        h("button", { class: `evh-filter${query.filter === name ? " evh-on" : ""}`, "data-filter": name, onclick: () => ask({ filter: name, offset: 0 }) }, label),
      );
    }
    parts.push(search, pager());
    toolbar.replaceChildren(...parts);
  }

  /** @param {any[]} segments */
  function answer(segments) {
    const node = h("div", { class: "evh-answer" });
    for (const [op, text] of segments) {
      if (op === "=") node.append(text);
      else if (op === "+") node.append(h("ins", { class: "evh-add" }, text));
      else node.append(h("del", { class: "evh-del" }, text));
    }
    if (!segments.length) node.append(h("span", { class: "evh-muted" }, "(empty)"));
    return node;
  }

  function drawPage() {
    const page = model.get("page") || {};
    const runs = page.runs || [];
    const base = model.get("baseline_run");
    const labels = Object.fromEntries(runs.map((/** @type {any} */ r) => [r.run_id, r.label]));
    root.dataset.offset = String(page.offset || 0);
    root.dataset.total = String(page.total || 0);
    root.dataset.filter = page.filter || "all";
    root.dataset.seq = String(page.seq || 0);
    const cards = [];
    for (const item of page.items || []) {
      const cells = item.cells.map((/** @type {any} */ c) => {
        const name = h(
          "span",
          {
            class: `evh-run-name${c.run_id === base ? " evh-is-base" : ""}`,
            title: c.run_id === base ? "differences are shown against this run" : "click: compare the others against this run",
            onclick: () => {
              model.set("baseline_run", c.run_id);
              model.save_changes();
            },
          },
          labels[c.run_id] ?? String(c.run_id),
        );
        if (c.missing) return h("div", { class: "evh-cell", "data-run-id": c.run_id }, h("div", { class: "evh-cell-head" }, name), h("div", { class: "evh-muted" }, "no output"));
        const mark = c.correct === null ? null : h("span", { class: c.correct ? "evh-mark-ok" : "evh-mark-bad" }, c.correct ? "✓" : "✗");
        const scores = Object.entries(c.scores || {}).map(([k, v]) => h("span", { class: "evh-chip" }, `${k} ${fmt(v)}`));
        const raw = c.filtered_output !== null && c.filtered_output !== undefined && c.filtered_output !== "" && c.filtered_output !== c.output ? c.output : null;
        return h(
          "div",
          { class: `evh-cell${c.correct === true ? " evh-correct" : c.correct === false ? " evh-wrong" : ""}`, "data-run-id": c.run_id, title: raw ? `raw output: ${raw}` : null },
          h("div", { class: "evh-cell-head" }, mark, name, ...scores),
          answer(c.segments),
        );
      });
      cards.push(
        h(
          "div",
          { class: "evh-sample", "data-key": item.sample_key, "data-agree": String(item.agree) },
          h(
            "div",
            { class: "evh-sample-head" },
            h("span", {}, `#${item.index}`),
            item.agree ? h("span", {}, "all runs agree") : h("span", { class: "evh-mark-bad" }, "runs disagree"),
          ),
          h("div", { class: "evh-prompt" }, item.prompt),
          h("div", { class: "evh-ref" }, h("span", { class: "evh-muted" }, "reference: "), String(item.reference)),
          h("div", { class: "evh-answers", style: `grid-template-columns: repeat(${Math.max(1, item.cells.length)}, minmax(0, 1fr))` }, ...cells),
        ),
      );
    }
    if (!cards.length) cards.push(h("div", { class: "evh-muted" }, "no sample matches"));
    samples.replaceChildren(...cards);
    footer.replaceChildren(pager());
    drawToolbar();
    root.dataset.loading = "false";
  }

  function drawState() {
    status.textContent = model.get("error") || "";
    if (model.get("loading")) root.dataset.loading = "true";
    else if (model.get("error")) root.dataset.loading = "false";
  }

  drawToolbar();
  drawPage();
  drawState();
  const on = [
    ["change:page", drawPage],
    ["change:baseline_run", drawPage],
    ["change:tasks", drawToolbar],
    ["change:error", drawState],
    ["change:loading", drawState],
  ];
  for (const [e, f] of on) model.on(e, f);
  return () => {
    clearTimeout(searchTimer);
    for (const [e, f] of on) model.off(e, f);
  };
}

export default { render };
