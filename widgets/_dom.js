// Shared by every evalhub widget: evalhub/widgets/_static.py puts this in front of each widget's module.

/**
 * Build a DOM element: h("td", {class: "num", onclick: fn}, "text", child).
 * @param {string} tag @param {Record<string, any>} [attrs] @param {...(Node|string|null|undefined)} kids
 */
function h(tag, attrs = {}, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, String(v));
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) node.append(kid);
  return node;
}

