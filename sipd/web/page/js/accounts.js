// Accounts and their registration: accounts.list, then account.registration events.

import { $, clear, h, party } from "./dom.js";

export class AccountsView {
  constructor(rpc, announce, changed) {
    this.rpc = rpc;
    this.announce = announce;
    this.changed = changed;
    this.accounts = [];
    this.list = $("#accounts");
    this.form = $("#account-form");
    this.error = $("#account-error");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
  }

  async load() {
    this.accounts = (await this.rpc.call("accounts.list")).accounts;
    this.render();
  }

  async add() {
    this.error.textContent = "";
    const fields = new FormData(this.form);
    const params = { aor: String(fields.get("aor")).trim() };
    for (const name of ["password", "registrar"]) {
      const value = String(fields.get(name) || "").trim();
      if (value) params[name] = value;
    }
    try {
      const account = await this.rpc.call("accounts.add", params);
      this.form.reset();
      this.announce(`Account ${account.id} added; registering`);
      await this.load();
    } catch (error) {
      this.error.textContent = `Could not add the account: ${error.message}`;
    }
  }

  async remove(id) {
    try {
      await this.rpc.call("accounts.remove", { id });
      this.announce(`Account ${id} removed`);
      await this.load();
    } catch (error) {
      this.announce(`Could not remove ${id}: ${error.message}`);
    }
  }

  onEvent(event) {
    if (event.name !== "account.registration") {
      if (event.topic === "accounts") this.load().catch(() => {});
      return;
    }
    const account = this.accounts.find((a) => a.id === event.data.account);
    if (!account) {
      this.load().catch(() => {});
      return;
    }
    account.registration = event.data;
    this.render();
  }

  render() {
    clear(this.list);
    for (const account of this.accounts) {
      const registration = account.registration || { state: "unregistered" };
      const state = account.id === "local" ? "direct" : registration.state;
      const why = registration.reason ? ` — ${registration.code || ""} ${registration.reason}` : "";
      this.list.append(h("li", { dataset: { account: account.id } },
        h("span", { class: "what" }, account.display_name || account.id,
          h("span", { class: "sub" }, party(account.aor), why)),
        h("span", { class: `badge ${state}` }, state),
        account.id === "local" ? null : h("button", {
          type: "button", "aria-label": `Remove account ${account.id}`,
          onclick: () => this.remove(account.id),
        }, "Remove")));
    }
    this.changed(this.accounts);
  }
}
