// Building DOM nodes from data. Every value goes in as text (textContent or a text node),
// never as HTML: workflow ids, types and payloads are user data.

/** el("td", {class: "x", title: t}, child, "text", ...) — strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** A table: headers, then rows of cells (a cell is a node or a value shown as text). */
export function table(headers, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((row) => row instanceof Node ? row
      : el("tr", {}, row.map((cell) => cell instanceof Node && cell.tagName === "TD"
        ? cell : el("td", {}, cell))))));
}

/** JSON shown as text in a <pre>; `undefined` shows as nothing. */
export function jsonBlock(value, attrs = {}) {
  return el("pre", {class: "json", ...attrs},
    value === undefined ? "" : JSON.stringify(value, null, 2));
}

export function statusBadge(status) {
  return el("span", {class: `badge status-${String(status).toLowerCase()}`}, status);
}

export function errorBox(error) {
  return el("p", {class: "error", role: "alert"}, error && error.message ? error.message
    : String(error));
}
