// File transfer: a file picked in the page is uploaded to the daemon (POST /uploads, with the
// token) and sent with files.send {upload}; incoming offers are accepted (sessions.answer) or
// declined (sessions.reject); a bar per transfer follows file.progress, and the outcome comes
// from file.transfer and the session's end. A received file is downloaded through a one-time
// link to GET /received/<session> (asked for with the token). Past transfers come from
// history.files.

import { $, clear, h, party } from "./dom.js";

const OFFERED = new Set(["calling", "ringing", "early"]);
const ENDED = new Set(["ended", "failed"]);
const DONE = new Set(["completed", "failed", "cancelled", "declined", "interrupted"]);
const HISTORY_ROWS = 20;

const STATE_TEXT = {
  uploading: "Uploading to sipd…",
  waiting: "Waiting for the other side to accept",
  offered: "Offered to you",
  requested: "Asked for by the other side",
  accepting: "Accepting…",
  transferring: "Transferring",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
  declined: "Declined",
  interrupted: "Interrupted (sipd stopped)",
};

export function isFileTransfer(session) {
  return Array.isArray(session.streams) && session.streams.includes("file-transfer");
}

export function bytes(n) {
  if (typeof n !== "number") return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

async function problem(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch {
    // not JSON: the status says it
  }
  return `HTTP ${response.status}`;
}

export class FilesView {
  constructor(rpc, token, announce, showFiles) {
    this.rpc = rpc;
    this.token = token;
    this.announce = announce;
    this.showFiles = showFiles;  // brings the files view forward
    this.accounts = [];
    this.transfers = new Map();  // session id -> transfer
    this.offerId = null;
    this.list = $("#transfers");
    this.form = $("#file-send");
    this.account = $("#file-account");
    this.to = $("#file-to");
    this.pick = $("#file-pick");
    this.error = $("#file-error");
    this.status = $("#file-status");
    this.incoming = $("#file-incoming");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    $("#file-incoming-accept").addEventListener("click", () => this.accept(this.offerId));
    $("#file-incoming-decline").addEventListener("click", () => this.decline(this.offerId));
  }

  setAccounts(accounts) {
    this.accounts = accounts;
    const chosen = this.account.value;
    clear(this.account);
    for (const account of accounts) {
      this.account.append(h("option", { value: account.id }, `${account.id} — ${party(account.aor)}`));
    }
    const preferred = accounts.find((a) => a.id === chosen)
      || accounts.find((a) => a.id !== "local" && a.registration && a.registration.state === "registered")
      || accounts[0];
    if (preferred) this.account.value = preferred.id;
  }

  // The form filled for a party (from a chat): pick the file next.
  prepare(account, uri) {
    if (account) this.account.value = account;
    this.to.value = uri || "";
    this.showFiles();
    this.pick.focus();
  }

  address(account, to) {
    if (/^sips?:/i.test(to)) return to;
    const chosen = this.accounts.find((a) => a.id === account);
    const domain = chosen && /@([^;>]+)/.exec(chosen.aor);
    return `sip:${to}${to.includes("@") || !domain ? "" : `@${domain[1]}`}`;
  }

  async send() {
    this.error.textContent = "";
    const file = this.pick.files && this.pick.files[0];
    const account = this.account.value;
    const raw = this.to.value.trim();
    if (!file || !raw) return;
    const to = this.address(account, raw);
    const button = $("#file-send-button");
    button.disabled = true;
    this.status.textContent = `Uploading ${file.name} to sipd…`;
    this.statusFor = null;
    try {
      const upload = await this.upload(file);
      this.status.textContent = `Offering ${upload.name} to ${party(to)}…`;
      const session = await this.rpc.call("files.send", { account, to, upload: upload.upload });
      // its session.new (and more) may have come before this answer: keep what they said
      const seen = this.transfers.has(session.id);
      this.upsert({ session: session.id, direction: "outgoing", account, remote: to,
        name: upload.name, size: upload.size, transferred: seen ? undefined : 0,
        state: seen ? undefined : "waiting" });
      this.pick.value = "";
      this.status.textContent = `${upload.name} offered to ${party(to)}`;
      this.statusFor = session.id;
    } catch (error) {
      this.status.textContent = "";
      this.error.textContent = `Could not send ${file.name}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // POST /uploads with XMLHttpRequest, whose upload progress fetch does not report: a bar
  // while a large file goes to the daemon.
  upload(file) {
    const bar = $("#file-upload");
    bar.max = file.size || 1;
    bar.value = 0;
    bar.hidden = false;
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/uploads?name=${encodeURIComponent(file.name)}`);
      xhr.setRequestHeader("Authorization", `Bearer ${this.token}`);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) {
          bar.max = event.total || 1;
          bar.value = event.loaded;
        }
      });
      xhr.addEventListener("loadend", () => {
        bar.hidden = true;
        const body = xhr.response || {};
        if (xhr.status === 201 && body.upload) resolve(body);
        else if (xhr.status) reject(new Error(body.error || `HTTP ${xhr.status}`));
        else reject(new Error("the upload to sipd was cut off"));
      });
      xhr.send(file);
    });
  }

  async accept(id) {
    if (!id) return;
    this.upsert({ session: id, state: "accepting" });
    this.showFiles();
    try {
      await this.rpc.call("sessions.answer", { id });
    } catch (error) {
      this.upsert({ session: id, state: "failed", reason: error.message });
      this.announce(`Accepting the file failed: ${error.message}`);
    }
  }

  async decline(id) {
    if (!id) return;
    try {
      await this.rpc.call("sessions.reject", { id });
      this.upsert({ session: id, state: "declined" });
    } catch (error) {
      this.announce(`Declining the file failed: ${error.message}`);
    }
  }

  async cancel(id) {
    this.upsert({ session: id, cancelling: true });
    try {
      await this.rpc.call("sessions.end", { id });
    } catch (error) {
      this.announce(`Cancelling the transfer failed: ${error.message}`);
    }
  }

  // The token cannot ride on a plain link, and a fetch with it would hold the whole file in
  // memory: ask (with the token) for a one-time link to this file, and follow that as a
  // download, which the browser streams to disk.
  async download(transfer) {
    try {
      const response = await fetch(`/received/${encodeURIComponent(transfer.session)}`, {
        method: "POST", headers: { Authorization: `Bearer ${this.token}` },
      });
      if (!response.ok) throw new Error(await problem(response));
      const { url } = await response.json();
      const save = h("a", { href: url, download: transfer.name || "file", hidden: true });
      document.body.append(save);
      save.click();
      save.remove();
    } catch (error) {
      this.announce(`Could not download ${transfer.name}: ${error.message}`);
    }
  }

  // -- what the daemon says ---------------------------------------------------------------

  async load(sessions) {
    for (const session of sessions) {
      if (isFileTransfer(session)) this.fromSession(session);
    }
    try {
      const { files } = await this.rpc.call("history.files", { limit: HISTORY_ROWS });
      for (const row of files.slice().reverse()) {
        if (this.transfers.has(row.session) && !row.result) continue;
        const known = this.transfers.get(row.session);
        if (known && DONE.has(known.state)) continue;
        this.upsert({ session: row.session, direction: row.direction, account: row.account,
          remote: row.remote, name: row.name, size: row.size,
          transferred: row.result === "completed" ? row.size : (known && known.transferred),
          state: row.result || (known && known.state) || "transferring",
          reason: row.reason, time: row.start });
      }
    } catch (error) {
      this.error.textContent = `The file history could not be read: ${error.message}`;
    }
    this.render();
  }

  // A session from sessions.list (after a reload): its file-transfer line says which file,
  // which way, how far and, once over, how it ended.
  fromSession(session) {
    const line = (session.lines || []).map((l) => l && l.file).find(Boolean) || {};
    const file = { ...line, ...(session.file || {}) };
    const incoming = session.direction === "incoming";
    const pull = Boolean(file.pull);
    const known = this.transfers.get(session.id);
    let state = line.result || (known && known.state)
      || (session.state === "established" ? "transferring"
        : incoming ? (pull ? "requested" : "offered") : "waiting");
    if (incoming && !pull && OFFERED.has(session.state)) state = "offered";
    this.upsert({ session: session.id,
      direction: line.direction || (incoming === pull ? "outgoing" : "incoming"),
      account: session.account, remote: session.remote, name: file.name, size: file.size,
      transferred: line.transferred, state, reason: line.reason });
  }

  onEvent(event) {
    const data = event.data || {};
    switch (event.name) {
      case "session.new":
        if (isFileTransfer(data)) {
          const pull = Boolean(data.file && data.file.pull);
          const incoming = data.direction === "incoming";
          // an incoming pull asks for a file of ours: we send it (from files.share_dir)
          this.upsert({ session: data.id, direction: incoming === pull ? "outgoing" : "incoming",
            account: data.account, remote: data.remote, name: data.file && data.file.name,
            size: data.file && data.file.size, transferred: 0,
            state: incoming ? (pull ? "requested" : "offered") : "waiting" });
        }
        break;
      case "session.state": {
        const transfer = this.transfers.get(data.id);
        if (!transfer) break;
        if (ENDED.has(data.state) && !DONE.has(transfer.state)) {
          const completed = data.reason === "completed";
          const declined = transfer.state === "waiting" && [486, 600, 603].includes(data.code);
          const cancelled = transfer.cancelling || data.code === 487 || data.state === "ended";
          this.upsert({ session: data.id,
            state: completed ? "completed" : declined ? "declined" : cancelled ? "cancelled" : "failed",
            reason: completed ? null : [data.code, data.reason].filter((x) => x).join(" ") });
        } else if (data.state === "established" && !DONE.has(transfer.state)) {
          this.upsert({ session: data.id, state: "transferring" });
        }
        break;
      }
      case "file.progress":
        if (this.transfers.has(data.session)) {
          this.upsert({ session: data.session, transferred: data.transferred, size: data.size,
            rate: data.final ? null : data.rate });
        }
        break;
      case "file.transfer":
        if (data.state === "started") {
          this.upsert({ session: data.session, direction: data.direction, account: data.account,
            remote: data.remote, name: data.name, size: data.size, state: "transferring" });
        } else if (DONE.has(data.state)) {
          const known = this.transfers.get(data.session) || {};
          this.upsert({ session: data.session, state: data.state, reason: data.reason,
            transferred: data.state === "completed" ? data.size || known.size : known.transferred });
          const what = `${data.name || "A file"} ${data.direction === "incoming" ? "from" : "to"} `
            + `${party(data.remote)}`;
          this.announce(data.state === "completed" ? `${what}: completed`
            : `${what}: ${STATE_TEXT[data.state].toLowerCase()}${data.reason ? ` (${data.reason})` : ""}`);
        }
        break;
      default:
        break;
    }
  }

  upsert(change) {
    const known = this.transfers.get(change.session) || { time: Date.now() / 1000 };
    const defined = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
    this.transfers.set(change.session, { ...known, ...defined });
    if (change.session === this.statusFor && DONE.has(change.state)) {
      this.status.textContent = "";  // the row says how it ended
      this.statusFor = null;
    }
    this.render();
  }

  // -- drawing ----------------------------------------------------------------------------

  // Rows are kept and updated in place: a progress event four times a second must not take
  // the focus off a row's Cancel button.
  render() {
    const transfers = [...this.transfers.values()].sort((x, y) => (y.time || 0) - (x.time || 0));
    $("#no-transfers").hidden = transfers.length > 0;
    const wanted = transfers.map((transfer) => this.row(transfer));
    const shown = [...this.list.children];
    if (wanted.length !== shown.length || wanted.some((item, i) => item !== shown[i])) {
      this.list.replaceChildren(...wanted);
    }
    this.showOffer(transfers.find((t) => t.state === "offered"));
  }

  showOffer(transfer) {
    const was = this.offerId;
    this.offerId = transfer ? transfer.session : null;
    this.incoming.hidden = !transfer;
    if (transfer && was !== transfer.session) {
      $("#file-incoming-from").textContent = `${party(transfer.remote)} offers ${transfer.name || "a file"}`
        + `${typeof transfer.size === "number" ? ` (${bytes(transfer.size)})` : ""} to ${transfer.account}`;
      $("#file-incoming-accept").focus();
      if (document.hidden && "Notification" in window && Notification.permission === "granted") {
        new Notification("Incoming file", { body: `${transfer.name} from ${party(transfer.remote)}` });
      }
    }
  }

  row(transfer) {
    if (!this.rows) this.rows = new Map();
    let row = this.rows.get(transfer.session);
    if (!row) {
      row = { item: h("li", { class: "transfer" }), name: h("span", { class: "transfer-name" }),
        sub: h("span", { class: "sub" }), bar: h("progress", { max: 1, value: 0 }),
        state: h("span", { class: "transfer-state badge" }), numbers: h("span", { class: "transfer-numbers" }),
        actions: h("div", { class: "actions" }), shown: null };
      row.item.dataset.session = transfer.session;
      row.item.append(h("div", { class: "what" }, row.name, row.sub,
        h("div", { class: "transfer-progress" }, row.bar, row.state, row.numbers)), row.actions);
      this.rows.set(transfer.session, row);
    }
    const name = transfer.name || "a file";
    const size = typeof transfer.size === "number" ? transfer.size : null;
    const done = typeof transfer.transferred === "number" ? transfer.transferred : 0;
    const percent = size ? Math.min(100, Math.floor((done * 100) / size))
      : (transfer.state === "completed" ? 100 : 0);
    let state = STATE_TEXT[transfer.state] || transfer.state;
    if (transfer.reason && transfer.state !== "completed") state += `: ${transfer.reason}`;
    row.item.dataset.state = transfer.state;
    row.name.textContent = name;
    row.sub.textContent = `${transfer.direction === "incoming" ? "From " : "To "}${party(transfer.remote)}`
      + `${size !== null ? ` · ${bytes(size)}` : ""}`;
    // A file offered without its size (some peers send none) has no share to show while it
    // arrives: an indeterminate bar and the bytes so far instead of "0 %".
    const unknown = size === null && transfer.state === "transferring";
    const amount = unknown ? bytes(done) : `${percent} %`;
    row.bar.max = size || 1;
    if (unknown) row.bar.removeAttribute("value");
    else row.bar.value = size ? Math.min(done, size) : (percent ? 1 : 0);
    row.bar.setAttribute("aria-label", `${transfer.direction === "incoming" ? "Receiving" : "Sending"} ${name}`);
    row.bar.setAttribute("aria-valuetext", amount);
    row.state.textContent = state;
    row.state.className = `transfer-state badge ${transfer.state}`;
    row.numbers.textContent = `${amount}${transfer.rate && transfer.state === "transferring"
      ? ` · ${bytes(Math.round(transfer.rate))}/s` : ""}`;
    const actionsFor = `${transfer.state}/${transfer.direction}`;
    if (row.shown !== actionsFor) {  // the buttons change with the state only
      row.shown = actionsFor;
      clear(row.actions);
      if (transfer.state === "offered") {
        row.actions.append(
          h("button", { type: "button", class: "good", onclick: () => this.accept(transfer.session) }, "Accept"),
          h("button", { type: "button", class: "bad", onclick: () => this.decline(transfer.session) }, "Decline"));
      } else if (["waiting", "requested", "transferring", "accepting"].includes(transfer.state)) {
        row.actions.append(h("button", { type: "button", onclick: () => this.cancel(transfer.session) }, "Cancel"));
      } else if (transfer.state === "completed" && transfer.direction === "incoming") {
        row.actions.append(h("a", { href: `/received/${encodeURIComponent(transfer.session)}`,
          class: "button", download: name, onclick: (event) => {
            event.preventDefault();
            this.download(this.transfers.get(transfer.session));
          } }, "Download", h("span", { class: "visually-hidden" }, ` ${name}`)));
      }
      row.actions.hidden = row.actions.children.length === 0;
    }
    return row.item;
  }
}
