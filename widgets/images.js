// evalhub ImageGrid: a text-to-image experiment's prompts x runs, thumbnails paged from the server,
// scores under each image, a click for the full image and its settings. Python answers every move
// (`page`); this view sends the moves as messages.

/** @param {any} v */
function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(3)).toString();
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "evh evh-images" });
  el.append(root);
  const send = (/** @type {Record<string, any>} */ m) => model.send(m);

  function draw() {
    const page = model.get("page") || {};
    const runs = model.get("runs") || [];
    const q = model.get("query") || {};
    const items = page.items || [];
    const total = page.total || 0;
    root.dataset.total = String(total);
    root.dataset.offset = String(page.offset || 0);
    root.dataset.loading = String(model.get("loading"));

    const filter = h(
      "select",
      { class: "evh-filter", onchange: (/** @type {Event} */ e) => send({ type: "filter", value: /** @type {HTMLSelectElement} */ (e.target).value }) },
      ...(model.get("filters") || []).map((/** @type {string[]} */ [value, label]) => h("option", { value, selected: value === q.filter && !q.order }, label)),
    );
    const order = h(
      "select",
      { class: "evh-order", onchange: (/** @type {Event} */ e) => send({ type: "order", value: /** @type {HTMLSelectElement} */ (e.target).value }) },
      h("option", { value: "" }, "prompt order"),
      ...(model.get("orders") || []).map((/** @type {string} */ s) => h("option", { value: s, selected: s === q.order }, `lowest ${s} first`)),
    );
    const from = total ? (page.offset || 0) + 1 : 0;
    const to = Math.min(total, (page.offset || 0) + items.length);
    const bar = h(
      "div",
      { class: "evh-toolbar" },
      h("button", { class: "evh-prev", onclick: () => send({ type: "prev" }), disabled: !page.offset }, "‹ prev"),
      h("span", { class: "evh-muted" }, `${from}–${to} of ${total}`),
      h("button", { class: "evh-next", onclick: () => send({ type: "next" }), disabled: to >= total }, "next ›"),
      filter,
      order,
    );
    const head = h("tr", {}, h("th", {}, "prompt"), ...runs.map((/** @type {any} */ r) => h("th", { class: r.baseline ? "evh-baseline" : "" }, r.label + (r.baseline ? " (baseline)" : ""))));
    const body = h("tbody");
    for (const item of items) {
      const cells = item.cells.map((/** @type {any} */ c) => {
        const scores = Object.entries(c.scores || {}).map(([k, v]) => h("div", { class: "evh-score" }, `${k} ${fmt(v)}`));
        const img = c.thumb
          ? h("img", { class: "evh-thumb", src: c.thumb, alt: item.prompt, title: "open", onclick: () => send({ type: "open", run_id: c.run_id, sample_key: item.sample_key }) })
          : h("span", { class: "evh-muted" }, "no image");
        return h("td", { class: "evh-cell", "data-run-id": c.run_id }, img, ...scores);
      });
      body.append(h("tr", { "data-key": item.sample_key }, h("td", { class: "evh-prompt" }, item.prompt), ...cells));
    }
    const parts = [bar, h("table", {}, h("thead", {}, head), body)];
    const opened = model.get("opened") || {};
    if (opened.src) {
      parts.push(
        h(
          "div",
          { class: "evh-opened", "data-key": opened.sample_key },
          h("img", { class: "evh-full", src: opened.src, alt: opened.prompt }),
          h("div", {}, h("b", {}, opened.prompt)),
          h("div", { class: "evh-muted" }, `run ${opened.run_id} · seed ${fmt(opened.seed)} · ${Object.entries(opened.settings || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(" · ")}`),
          h("div", { class: "evh-muted" }, Object.entries(opened.scores || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(" · ")),
        ),
      );
    }
    if (model.get("error")) parts.push(h("div", { class: "evh-error" }, model.get("error")));
    root.replaceChildren(...parts);
  }

  draw();
  const events = ["change:page", "change:runs", "change:query", "change:opened", "change:error", "change:loading", "change:orders"];
  for (const e of events) model.on(e, draw);
  return () => {
    for (const e of events) model.off(e, draw);
  };
}

export default { render };
