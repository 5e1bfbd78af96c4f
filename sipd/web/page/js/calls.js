// The phone: the dial form and pad, the calls with their actions, and the incoming-call
// notice. Sessions come from sessions.list and then from session.* events; chat-only sessions
// are the chat view's (chat.js).

import { $, clear, h, party } from "./dom.js";
import { softphonePossible } from "./softphone.js";

const ENDED = new Set(["ended", "failed"]);
const KEEP_ENDED_MS = 4000;
const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

function chatOnly(session) {
  return Array.isArray(session.streams) && !session.streams.includes("audio");
}

export class CallsView {
  constructor(rpc, announce, softphone, showPhone, openChat) {
    this.rpc = rpc;
    this.openChat = openChat;  // a call's chat: opened, or added to the call
    this.chats = new Set();    // chat-only sessions: not calls
    this.showPhone = showPhone;
    this.announce = announce;
    this.softphone = softphone;
    this.webSessions = new Set(); // placed or answered with this browser's audio
    this.sessions = new Map();
    this.list = $("#calls");
    this.form = $("#dial-form");
    this.to = $("#dial-to");
    this.account = $("#dial-account");
    this.error = $("#dial-error");
    this.incoming = $("#incoming");
    this.ringingId = null;
    const pad = $("#dialpad");
    for (const key of KEYS) {
      pad.append(h("button", {
        type: "button", "aria-label": key === "*" ? "star" : key === "#" ? "hash" : key,
        onclick: () => this.press(key),
      }, key));
    }
    $("#dial-erase").addEventListener("click", () => {
      this.to.value = this.to.value.slice(0, -1);
      this.to.focus();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.dial();
    });
    this.browserAudio = $("#browser-audio");
    if (!softphonePossible()) {
      this.browserAudio.checked = false;
      this.browserAudio.disabled = true;
      $("#browser-audio-note").textContent = "This page has no microphone access: open it "
        + "on this machine (localhost) or over HTTPS to talk through the browser.";
    }
    const notify = $("#notify");
    notify.hidden = !("Notification" in window) || Notification.permission !== "default";
    notify.addEventListener("click", async () => {
      await Notification.requestPermission();
      notify.hidden = Notification.permission !== "default";
    });
    $("#incoming-answer").addEventListener("click", () => this.answer(this.ringingId));
    $("#incoming-reject").addEventListener("click", () => this.act(this.ringingId, "reject"));
  }

  setAccounts(accounts) {
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

  // A key of the pad: a digit of the address, or a tone into the one established call when
  // the address is empty.
  press(key) {
    const live = [...this.sessions.values()].filter((s) => s.state === "established");
    if (this.to.value === "" && live.length === 1) {
      this.act(live[0].id, "send_dtmf", { digits: key });
      this.announce(`Sent tone ${key}`);
      return;
    }
    this.to.value += key;
  }

  async dial() {
    this.error.textContent = "";
    let to = this.to.value.trim();
    const account = this.account.value;
    if (!to) return;
    if (!/^sips?:/i.test(to)) {
      const chosen = this.accountsById && this.accountsById.get(account);
      const domain = chosen && /@([^;>]+)/.exec(chosen.aor);
      to = `sip:${to}${to.includes("@") || !domain ? "" : `@${domain[1]}`}`;
    }
    const web = await this.useBrowserAudio();
    try {
      const session = await this.rpc.call("sessions.start",
        { account, to, audio_device: web ? "web" : "null" });
      if (web) this.webSessions.add(session.id);
      this.showPhone();
      this.upsert({ ...session, account, remote: session.remote || to, direction: "outgoing" });
      this.to.value = "";
    } catch (error) {
      this.error.textContent = `Could not call ${to}: ${error.message}`;
    }
  }

  async useBrowserAudio() {
    return this.browserAudio.checked && await this.softphone.prepare();
  }

  async answer(id) {
    if (!id) return;
    const web = await this.useBrowserAudio();
    if (web) this.webSessions.add(id);
    this.showPhone();
    await this.act(id, "answer", { audio_device: web ? "web" : "null" });
  }

  async act(id, verb, params = {}) {
    if (!id) return;
    try {
      await this.rpc.call(`sessions.${verb}`, { id, ...params });
    } catch (error) {
      this.announce(`${verb.replace("_", " ")} failed: ${error.message}`);
    }
  }

  load(sessions) {
    this.sessions.clear();
    for (const session of sessions) {
      if (chatOnly(session)) this.chats.add(session.id);
      else if (!ENDED.has(session.state)) this.sessions.set(session.id, session);
    }
    this.render();
  }

  onEvent(event) {
    const data = event.data || {};
    if (event.name === "session.new" && chatOnly(data)) this.chats.add(data.id);
    if (this.chats.has(data.id)) return;
    switch (event.name) {
      case "session.streams":
        if (this.sessions.has(data.id)) this.upsert({ id: data.id, streams: data.streams });
        break;
      case "session.new":
        this.upsert({ ...data, state: data.state || "calling" });
        break;
      case "session.state":
        this.upsert({ id: data.id, state: data.state, code: data.code, reason: data.reason });
        if (data.state === "established" && this.webSessions.has(data.id)) {
          this.softphone.attach(data.id);
        }
        if (ENDED.has(data.state)) {
          this.webSessions.delete(data.id);
          if (this.softphone.session === data.id) this.softphone.detach();
          setTimeout(() => {
            const session = this.sessions.get(data.id);
            if (session && ENDED.has(session.state)) {
              this.sessions.delete(data.id);
              this.render();
            }
          }, KEEP_ENDED_MS);
        }
        break;
      case "session.hold":
        this.upsert(data.originator === "remote"
          ? { id: data.id, remote_hold: data.on_hold } : { id: data.id, on_hold: data.on_hold });
        break;
      case "session.transfer":
        this.upsert({ id: data.id, transfer: data });
        break;
      default:
        break;
    }
  }

  upsert(change) {
    const known = this.sessions.get(change.id) || {};
    const defined = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
    this.sessions.set(change.id, { ...known, ...defined });
    this.render();
  }

  render() {
    clear(this.list);
    $("#no-calls").hidden = this.sessions.size > 0;
    let ringing = null;
    for (const session of this.sessions.values()) {
      this.list.append(this.card(session));
      if (session.direction === "incoming" && ["calling", "ringing", "early"].includes(session.state)) {
        ringing = session;
      }
    }
    this.showIncoming(ringing);
  }

  showIncoming(session) {
    const was = this.ringingId;
    this.ringingId = session ? session.id : null;
    this.incoming.hidden = !session;
    if (session && was !== session.id) {
      $("#incoming-from").textContent = `From ${party(session.remote)} to ${session.account}`;
      $("#incoming-answer").focus();
      if (document.hidden && "Notification" in window && Notification.permission === "granted") {
        new Notification("Incoming call", { body: party(session.remote) });
      }
    }
  }

  card(session) {
    const state = session.on_hold ? "on hold" : session.remote_hold ? "held by the other party"
      : session.state;
    const who = party(session.remote);
    const detail = [session.code, session.reason].filter((x) => x !== undefined && x !== null)
      .join(" ");
    const item = h("li", { dataset: { state: session.state, id: session.id },
      "aria-label": `${session.direction || ""} call with ${who}: ${state}` },
    h("div", { class: "call-head" },
      h("span", { class: "call-who" }, session.direction === "incoming" ? "From " : "To ", who),
      h("span", { class: "call-state" }, state, detail ? ` (${detail})` : "")));
    if (session.transfer && session.transfer.state) {
      item.append(h("p", { class: "quiet" }, `Transfer to ${party(session.transfer.to)}: ${session.transfer.state}`));
    }
    if (ENDED.has(session.state)) return item;
    const actions = h("div", { class: "actions" });
    const unanswered = ["calling", "ringing", "early"].includes(session.state);
    if (session.direction === "incoming" && unanswered) {
      actions.append(
        h("button", { type: "button", class: "good", onclick: () => this.answer(session.id) }, "Answer"),
        h("button", { type: "button", class: "bad", onclick: () => this.act(session.id, "reject") }, "Reject"));
    } else if (session.state === "established") {
      actions.append(session.on_hold
        ? h("button", { type: "button", onclick: () => this.act(session.id, "unhold") }, "Resume")
        : h("button", { type: "button", onclick: () => this.act(session.id, "hold") }, "Hold"));
      if (this.webSessions.has(session.id)) {
        const muted = this.softphone.muted;
        actions.append(h("button", { type: "button", "aria-pressed": String(muted), onclick: () => {
          this.softphone.setMuted(!this.softphone.muted);
          this.render();
        } }, "Mute"));
        item.append(h("p", { class: "audio-mark" }, muted ? "Browser audio, muted" : "Browser audio"));
      }
      const chatting = Array.isArray(session.streams) && session.streams.includes("chat");
      actions.append(h("button", { type: "button", onclick: () => this.openChat(session, chatting) },
        chatting ? "Chat" : "Add chat"));
      actions.append(h("button", { type: "button", class: "bad", onclick: () => this.act(session.id, "end") }, "Hang up"));
      item.append(actions, this.extra(session, "tones", "Send tones", "Send", (value) =>
        this.act(session.id, "send_dtmf", { digits: value })),
      this.extra(session, "transfer", "Transfer to", "Transfer", (value) =>
        this.act(session.id, "transfer", { to: value })));
      return item;
    }
    if (!(session.direction === "incoming" && unanswered)) {
      actions.append(h("button", { type: "button", class: "bad", onclick: () => this.act(session.id, "end") },
        session.state === "ending" ? "Ending…" : "Hang up"));
    }
    item.append(actions);
    return item;
  }

  extra(session, name, label, button, run) {
    const id = `${name}-${session.id}`;
    const input = h("input", { id, type: "text", spellcheck: "false", autocapitalize: "off" });
    const form = h("form", { class: "call-extra", onsubmit: (event) => {
      event.preventDefault();
      if (input.value.trim()) run(input.value.trim());
      input.value = "";
    } }, h("div", {}, h("label", { for: id }, label), input), h("button", { type: "submit" }, button));
    return form;
  }
}
