// History: calls (history.sessions) and messages (history.messages, full-text `query`),
// newest first, a page at a time (`next` is the `before` of the next page).

import { $, clear, duration, h, party, when } from "./dom.js";

const PAGE = 25;

function looksLikeAddress(text) {
  return /^sips?:|@/.test(text);
}

export class HistoryView {
  constructor(rpc) {
    this.rpc = rpc;
    this.form = $("#history-form");
    this.query = $("#history-query");
    this.error = $("#history-error");
    this.calls = $("#history-calls");
    this.messages = $("#history-messages");
    this.next = { calls: null, messages: null };
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.load();
    });
    $("#history-calls-more").addEventListener("click", () => this.more("calls"));
    $("#history-messages-more").addEventListener("click", () => this.more("messages"));
  }

  params(kind) {
    const text = this.query.value.trim();
    const params = { limit: PAGE };
    if (text && looksLikeAddress(text)) params.remote = /^sips?:/.test(text) ? text : `sip:${text}`;
    else if (text && kind === "messages") params.query = text;
    return params;
  }

  async load() {
    this.error.textContent = "";
    clear(this.calls);
    clear(this.messages);
    this.next = { calls: null, messages: null };
    const text = this.query.value.trim();
    // A word search is about messages; calls are listed unfiltered only with no search.
    const searchCalls = !text || looksLikeAddress(text);
    await Promise.all([searchCalls ? this.page("calls") : this.noCalls(), this.page("messages")]);
  }

  noCalls() {
    this.calls.append(h("li", { class: "quiet" }, "Search calls by a party's address."));
    $("#history-calls-more").hidden = true;
  }

  async more(kind) {
    await this.page(kind, this.next[kind]);
  }

  async page(kind, before = null) {
    const params = this.params(kind);
    if (before !== null) params.before = before;
    try {
      if (kind === "calls") {
        const result = await this.rpc.call("history.sessions", params);
        for (const row of result.sessions) this.calls.append(this.callRow(row));
        if (!result.sessions.length && before === null) this.calls.append(h("li", { class: "quiet" }, "No calls."));
        this.next.calls = result.next;
      } else {
        const result = await this.rpc.call("history.messages", params);
        for (const row of result.messages) this.messages.append(this.messageRow(row));
        if (!result.messages.length && before === null) this.messages.append(h("li", { class: "quiet" }, "No messages."));
        this.next.messages = result.next;
      }
      $(`#history-${kind}-more`).hidden = this.next[kind] === null;
    } catch (error) {
      this.error.textContent = `History: ${error.message}`;
    }
  }

  callRow(row) {
    const result = row.result || "ongoing";
    return h("li", {},
      h("span", { class: "what" }, row.direction === "incoming" ? "From " : "To ", party(row.remote),
        h("span", { class: "sub" }, when(row.start),
          row.duration !== null && row.duration !== undefined ? ` · ${duration(row.duration)}` : "",
          row.reason ? ` · ${row.reason}` : "")),
      h("span", { class: `badge ${result}` }, result));
  }

  messageRow(row) {
    return h("li", {},
      h("span", { class: "what" }, row.content,
        h("span", { class: "sub" }, row.direction === "incoming" ? "From " : "To ",
          party(row.remote), " · ", when(row.time))),
      h("span", { class: `badge ${row.status}` }, row.status));
  }
}
