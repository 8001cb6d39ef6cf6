// evalhub Annotator: one person labels an annotation queue, keyboard first. Number keys answer
// (a scale from its low end, a choice's n-th option, 1/2/3 = A/B/tie of a pair), j/k next/previous,
// s skip, u undo; free text is sent with Enter. Python answers every move (`item`, `progress`,
// `agreement`); this view sends the keys as messages and asks for a refresh every few seconds.

/** @param {any} v */
function fmtKappa(v) {
  return v === null || v === undefined ? "—" : Number(v).toFixed(2);
}

/** @param {{model: any, el: HTMLElement}} ctx */
function render({ model, el }) {
  // data-lm-suppress-shortcuts: JupyterLab leaves the keys inside the widget to it
  const root = h("div", { class: "evh evh-annotate", tabindex: "0", "data-lm-suppress-shortcuts": "true", "data-p-suppress-shortcuts": "true" });
  el.append(root);
  const send = (/** @type {Record<string, any>} */ m) => model.send(m);

  /** What a number key means for this queue's schema (null: nothing). @param {number} n */
  function answerOf(n) {
    const s = (model.get("queue") || {}).schema || {};
    if (s.kind === "scale") {
      const v = s.min + n - 1;
      return v >= s.min && v <= s.max ? v : null;
    }
    if (s.kind === "choice") return (s.options || [])[n - 1] ?? null;
    if (s.kind === "pairwise") return ["A", "B", "tie"][n - 1] ?? null;
    return null;
  }

  /** @param {KeyboardEvent} e */
  function onKey(e) {
    const target = /** @type {HTMLElement} */ (e.target);
    if (target && target.tagName === "TEXTAREA") {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        const text = /** @type {HTMLTextAreaElement} */ (target).value.trim();
        if (text) send({ type: "label", answer: null, text });
      } else if (e.key === "Escape") {
        root.focus();
      }
      e.stopPropagation();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const n = Number(e.key);
    let handled = true;
    if (Number.isInteger(n) && n >= 1 && n <= 9 && answerOf(n) !== null) send({ type: "label", answer: answerOf(n) });
    else if (e.key === "j") send({ type: "next" });
    else if (e.key === "k") send({ type: "prev" });
    else if (e.key === "s") send({ type: "skip" });
    else if (e.key === "u") send({ type: "undo" });
    else if (e.key === "t" && ((model.get("queue") || {}).schema || {}).kind === "text") {
      const area = root.querySelector("textarea");
      if (area) /** @type {HTMLTextAreaElement} */ (area).focus();
    } else handled = false;
    if (handled) {
      // JupyterLab's command mode must not see these keys (j/k move between cells there)
      e.preventDefault();
      e.stopPropagation();
    }
  }
  root.addEventListener("keydown", onKey);

  function draw() {
    const queue = model.get("queue") || {};
    const schema = queue.schema || {};
    const item = model.get("item") || {};
    const progress = model.get("progress") || {};
    const person = model.get("person") || "";
    const total = queue.total || 0;
    const position = model.get("position") || 0;
    const people = progress.people || [];
    const mine = (people.find((/** @type {any} */ p) => p.person === person) || {}).labelled || 0;
    root.dataset.position = String(position);
    root.dataset.mine = String(mine);
    root.dataset.labelled = String(progress.labelled || 0);
    root.dataset.itemId = String(item.id || "");

    const head = h(
      "div",
      { class: "evh-toolbar" },
      h("b", {}, queue.name || ""),
      h("span", { class: "evh-muted" }, ` ${schema.kind || ""} · item ${total ? position + 1 : 0} of ${total}`),
      h("span", { class: "evh-progress" }, `${person || "you"}: ${mine}/${total} · queue: ${progress.labelled || 0}/${total} labelled`),
    );
    const bar = h("div", { class: "evh-bar" }, h("div", { class: "evh-bar-fill", style: `width: ${total ? (100 * (progress.labelled || 0)) / total : 0}%` }));
    const peopleRow = h(
      "div",
      { class: "evh-people" },
      ...people.map((/** @type {any} */ p) => h("span", { class: "evh-person", "data-person": p.person }, `${p.person} ${p.labelled}/${p.total}`)),
    );
    const kappas = h(
      "div",
      { class: "evh-kappa" },
      ...(model.get("agreement") || []).map((/** @type {any} */ r) =>
        h("span", { class: "evh-kappa-pair", "data-pair": `${r.a}-${r.b}`, "data-kappa": r.kappa === null ? "" : String(r.kappa) }, `κ ${r.a}–${r.b} ${fmtKappa(r.kappa)} (n=${r.n}${r.weights ? ", " + r.weights : ""})`),
      ),
    );

    const body = h("div", { class: "evh-item", "data-key": item.sample_key || "" });
    if (schema.question) body.append(h("div", { class: "evh-question" }, schema.question));
    body.append(h("div", { class: "evh-label-name" }, "prompt"), h("pre", { class: "evh-prompt" }, item.prompt || ""));
    if (item.reference) body.append(h("div", { class: "evh-muted" }, `reference: ${item.reference}`));
    const answers = h("div", { class: "evh-answers" });
    for (const a of item.answers || []) {
      answers.append(h("div", { class: "evh-answer", "data-slot": a.slot }, h("div", { class: "evh-label-name" }, a.slot === "answer" ? "answer" : `answer ${a.slot}`), a.image ? h("img", { class: "evh-annotate-image", src: a.image, alt: a.output, title: a.output }) : h("pre", {}, a.output ?? "—")));
    }
    body.append(answers);

    const label = item.label;
    const keys = h("div", { class: "evh-keys" });
    if (schema.kind === "scale") {
      for (let v = schema.min; v <= schema.max && v - schema.min < 9; v++) keys.append(h("button", { class: "evh-key" + (label && label.value === v ? " evh-chosen" : ""), onclick: () => send({ type: "label", answer: v }) }, `${v - schema.min + 1} · ${v}`));
    } else if (schema.kind === "choice") {
      (schema.options || []).slice(0, 9).forEach((/** @type {string} */ o, /** @type {number} */ i) => keys.append(h("button", { class: "evh-key" + (label && label.choice === o ? " evh-chosen" : ""), onclick: () => send({ type: "label", answer: o }) }, `${i + 1} · ${o}`)));
    } else if (schema.kind === "pairwise") {
      ["A", "B", "tie"].forEach((c, i) => keys.append(h("button", { class: "evh-key" + (label && label.choice === c ? " evh-chosen" : ""), onclick: () => send({ type: "label", answer: c }) }, `${i + 1} · ${c === "tie" ? "tie" : c + " is better"}`)));
    } else {
      keys.append(h("textarea", { class: "evh-text", rows: "3", placeholder: "t to type, Enter to send, Esc to leave" }));
    }
    const mineNow = label ? `your label: ${label.choice ?? label.value ?? label.text}` : "not labelled by you yet";
    const help = h("div", { class: "evh-muted evh-help" }, `${mineNow} · keys: 1–9 answer · j/k next/previous · s skip · u undo`);
    const parts = [head, bar, peopleRow, kappas, body, keys, help];
    if (model.get("status")) parts.push(h("div", { class: "evh-status" }, model.get("status")));
    if (model.get("error")) parts.push(h("div", { class: "evh-error" }, model.get("error")));
    const typing = document.activeElement && document.activeElement.tagName === "TEXTAREA" && root.contains(document.activeElement);
    root.replaceChildren(...parts);
    if (typing) {
      const area = root.querySelector("textarea");
      if (area) /** @type {HTMLTextAreaElement} */ (area).focus();
    }
  }

  draw();
  const events = ["change:item", "change:progress", "change:agreement", "change:status", "change:error", "change:position", "change:person"];
  for (const e of events) model.on(e, draw);
  const timer = setInterval(() => {
    if (root.isConnected) send({ type: "refresh" });
  }, 3000);
  return () => {
    clearInterval(timer);
    root.removeEventListener("keydown", onKey);
    for (const e of events) model.off(e, draw);
  };
}

export default { render };
