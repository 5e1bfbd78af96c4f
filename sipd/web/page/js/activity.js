// The activity log: every event, newest first, with the ones replayed after a reconnect
// (what the page missed while it was away) marked.

import { $, h } from "./dom.js";

const KEEP = 200;

function summary(event) {
  const data = event.data || {};
  const parts = [event.name];
  for (const key of ["account", "id", "state", "remote", "contact", "code", "reason"]) {
    if (data[key] !== undefined && data[key] !== null) parts.push(`${key} ${data[key]}`);
  }
  return parts.join(" · ");
}

export class ActivityView {
  constructor() {
    this.list = $("#activity");
  }

  add(event, missed) {
    const time = new Date((event.time || Date.now() / 1000) * 1000);
    this.list.prepend(h("li", { dataset: { seq: event.seq, missed: missed ? "yes" : null } },
      h("time", { datetime: time.toISOString() }, time.toLocaleTimeString()),
      missed ? h("span", { class: "missed-mark" }, "missed") : null,
      missed ? " " : null,
      summary(event)));
    while (this.list.children.length > KEEP) this.list.lastElementChild.remove();
  }

  note(text) {
    this.list.prepend(h("li", { class: "quiet" }, text));
  }
}
