// Building elements without innerHTML: every text from the daemon (remote names, messages)
// goes in as text, never as markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

export function when(seconds) {
  if (typeof seconds !== "number") return "";
  return new Date(seconds * 1000).toLocaleString();
}

export function duration(seconds) {
  if (typeof seconds !== "number") return "";
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

// "sip:bob@example.com;transport=tcp" -> "bob@example.com": what a person reads.
export function party(uri) {
  if (typeof uri !== "string") return "";
  const match = /^(?:"?([^"<]*)"?\s*<)?(?:sips?:)?([^;>]*)/.exec(uri.trim());
  const name = match && match[1] ? match[1].trim() : "";
  const address = match ? match[2] : uri;
  return name ? `${name} (${address})` : address;
}
