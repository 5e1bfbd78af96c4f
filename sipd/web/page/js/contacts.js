// Contacts (contacts.list) with their presence (presence.state events), and buttons to call
// or chat.

import { $, clear, h, party } from "./dom.js";

export class ContactsView {
  constructor(rpc, callTo, chatWith) {
    this.rpc = rpc;
    this.callTo = callTo;
    this.chatWith = chatWith;
    this.contacts = [];
    this.presence = new Map();  // "account uri" -> presence.state data
    this.list = $("#contacts");
    this.error = $("#contacts-error");
  }

  async load() {
    this.error.textContent = "";
    try {
      const result = await this.rpc.call("contacts.list", {});
      this.contacts = result.contacts || [];
    } catch (error) {
      this.error.textContent = `Contacts: ${error.message}`;
      this.contacts = [];
    }
    this.render();
    // Presence is watched by subscribing (once per contact; a subscription that exists is
    // returned as it is): contacts.list only says which contacts want it.
    for (const contact of this.contacts.filter((c) => c.presence)) {
      this.rpc.call("presence.subscribe", { account: contact.account, to: contact.uri })
        .catch((error) => { this.error.textContent = `Presence of ${contact.uri}: ${error.message}`; });
    }
  }

  onEvent(event) {
    if (event.name === "presence.state") {
      const data = event.data;
      this.presence.set(`${data.account} ${data.contact}`, data);
      this.render();
    } else if (event.topic === "contacts") {
      this.load();
    }
  }

  render() {
    clear(this.list);
    if (!this.contacts.length) {
      this.list.append(h("li", { class: "quiet" }, "No contacts."));
      return;
    }
    for (const contact of this.contacts) {
      const known = this.presence.get(`${contact.account} ${contact.uri}`);
      const status = known ? (known.basic || known.status || "unknown") : contact.presence ? "unknown" : "";
      const note = known && known.note ? ` — ${known.note}` : "";
      const name = contact.name || party(contact.uri);
      this.list.append(h("li", { dataset: { contact: contact.uri } },
        h("span", { class: "what" }, name, h("span", { class: "sub" }, party(contact.uri), note)),
        status ? h("span", { class: `badge ${status}` }, status) : null,
        h("button", { type: "button", "aria-label": `Call ${name}`,
          onclick: () => this.callTo(contact.account, contact.uri) }, "Call"),
        h("button", { type: "button", "aria-label": `Chat with ${name}`,
          onclick: () => this.chatWith(contact.account, contact.uri) }, "Chat")));
    }
  }
}
