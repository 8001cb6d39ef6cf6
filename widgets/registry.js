// evalhub RegistryBrowser: families → models → checkpoints with metadata; tasks and benchmarks.

/** @param {any} v */
function json(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object" && Object.keys(v).length === 0) return "";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** @param {string} text */
function meta(text) {
  return text ? h("div", { class: "evh-meta", title: text }, text) : "";
}

/** @param {string[]} header @param {any[][]} rows */
function table(header, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...header.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c instanceof Node ? c : String(c ?? "")))))),
  );
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  const root = h("div", { class: "evh evh-registry" });
  el.append(root);
  let tab = "models";
  const filter = /** @type {HTMLInputElement} */ (h("input", { type: "search", placeholder: "filter by name…", size: 24 }));
  filter.addEventListener("input", () => draw());
  const body = h("div", { class: "evh-registry-body" });
  const head = h("div", { class: "evh-head" });
  root.append(head, body);

  /** @param {any} o */
  const match = (o) => !filter.value || JSON.stringify(o).toLowerCase().includes(filter.value.toLowerCase());

  function models() {
    const families = model.get("families") || [];
    const all = (model.get("models") || []);
    const cks = model.get("checkpoints") || [];
    const names = new Set(families.map((/** @type {any} */ f) => f.name));
    const orphans = [...new Set(all.map((/** @type {any} */ m) => m.family).filter((/** @type {string} */ f) => !names.has(f)))];
    const fams = [...families, ...orphans.map((name) => ({ name, modality: "" }))];
    const out = [];
    for (const fam of fams) {
      const ms = all.filter((/** @type {any} */ m) => m.family === fam.name && (match(m) || match(fam) || cks.some((/** @type {any} */ c) => c.model === m.name && match(c))));
      if (!ms.length && !match(fam)) continue;
      const famNode = h(
        "details",
        { open: true, "data-family": fam.name },
        h("summary", {}, h("b", {}, fam.name), h("span", { class: "evh-muted" }, ` ${fam.modality || ""} · ${ms.length} model${ms.length === 1 ? "" : "s"}`)),
        fam.description ? h("div", { class: "evh-muted" }, fam.description) : null,
      );
      for (const m of ms) {
        const mine = cks.filter((/** @type {any} */ c) => c.model === m.name);
        const modelNode = h(
          "details",
          { open: mine.length <= 12, "data-model": m.name },
          h(
            "summary",
            {},
            h("b", {}, m.name),
            h("span", { class: "evh-muted" }, ` ${m.runtime}${m.adapter ? " · " + m.adapter : ""} · ${mine.length} checkpoint${mine.length === 1 ? "" : "s"}`),
          ),
          m.code_uri ? h("div", { class: "evh-muted" }, `code: ${m.code_uri}`) : null,
          meta(json(m.default_params)),
          meta(json(m.metadata)),
        );
        if (mine.length) {
          modelNode.append(
            table(
              ["checkpoint", "step", "epoch", "uri", "dataset", "training config", "metadata"],
              mine.map((/** @type {any} */ c) => [c.name, c.step ?? "", c.epoch ?? "", meta(c.uri), c.dataset_version ?? "", meta(json(c.training_config)), meta(json(c.metadata))]),
            ),
          );
        }
        famNode.append(modelNode);
      }
      out.push(famNode);
    }
    return out.length ? out : [h("div", { class: "evh-muted" }, "no models registered")];
  }

  function tasks() {
    const ts = (model.get("tasks") || []).filter(match);
    const bs = (model.get("benchmarks") || []).filter(match);
    return [
      h("h4", { class: "evh-task" }, "Tasks"),
      ts.length
        ? table(
            ["task", "type", "engine", "lm-eval task", "output", "metrics", "dataset"],
            ts.map((/** @type {any} */ t) => [t.name, t.type ?? "", t.engine ?? "", (t.engine_config || {}).task ?? "", (t.engine_config || {}).output_type ?? "", (t.metrics || []).join(", "), t.dataset ?? ""]),
          )
        : h("div", { class: "evh-muted" }, "no tasks registered"),
      h("h4", { class: "evh-task" }, "Benchmarks"),
      bs.length
        ? table(["benchmark", "tasks", "config"], bs.map((/** @type {any} */ b) => [b.name, (b.tasks || []).join(", "), meta(json(b.config))]))
        : h("div", { class: "evh-muted" }, "no benchmarks registered"),
    ];
  }

  function draw() {
    const totals = model.get("totals") || {};
    const tabButton = (/** @type {string} */ name, /** @type {string} */ label) =>
      h("button", { class: tab === name ? "evh-on" : "", "data-tab": name, onclick: () => { tab = name; draw(); } }, label);
    head.replaceChildren(
      h("span", { class: "evh-title" }, "Registry"),
      model.get("project") ? h("span", { class: "evh-chip" }, model.get("project")) : null,
      tabButton("models", `Models (${totals.families ?? 0} families, ${totals.models ?? 0} models, ${totals.checkpoints ?? 0} checkpoints)`),
      tabButton("tasks", `Tasks (${totals.tasks ?? 0}) & benchmarks (${totals.benchmarks ?? 0})`),
      filter,
    );
    body.replaceChildren(...(tab === "models" ? models() : tasks()));
  }

  draw();
  const events = ["change:families", "change:models", "change:checkpoints", "change:tasks", "change:benchmarks", "change:totals"];
  for (const e of events) model.on(e, draw);
  return () => {
    for (const e of events) model.off(e, draw);
  };
}

export default { render };
