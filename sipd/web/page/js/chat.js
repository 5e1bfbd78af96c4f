// Chat windows: sessions carrying a chat stream (chat alone, or beside a call's audio).
// Messages both ways (chat.send; chat.message, chat.sending), is-composing shown and sent
// (chat.composing: active while typing, idle after a pause), delivery ticks (chat.delivery:
// delivered, displayed, failed with its reason), display notifications (chat.displayed) for
// the messages the user has seen, and the earlier chat with the same party from the history.

import { $, clear, h, party } from "./dom.js";

const IDLE_AFTER_MS = 5000;       // typing paused this long: the peer is told "idle"
const ACTIVE_REFRESH_MS = 60000;  // still typing: "active" again (RFC 3994's refresh)
const EARLIER = 30;               // messages of earlier chats with the party, from the history
const ENDED = new Set(["ended", "failed"]);
const PICTURES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

const STATUS_TEXT = {
  sending: ["…", "Sending"],
  delivered: ["✓", "Delivered"],
  displayed: ["✓✓", "Seen"],
  failed: ["✗", "Not delivered"],
  unknown: ["?", "Fate unknown"],
};

function hasChat(session) {
  return Array.isArray(session.streams) && session.streams.includes("chat");
}

function chatOnly(session) {
  return hasChat(session) && !session.streams.includes("audio");
}

function clock(time) {
  const date = typeof time === "number" ? new Date(time * 1000)
    : time ? new Date(time) : new Date();
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// One conversation: a session with a chat, its messages in order and what the peer is doing.
class Conversation {
  constructor(session) {
    this.id = session.id;
    this.account = session.account;
    this.remote = session.remote || "";
    this.direction = session.direction;
    this.state = session.state || "calling";
    this.reason = null;
    this.chatOnly = chatOnly(session);
    this.messages = new Map();   // message_id -> message
    this.earlier = [];           // from earlier sessions, oldest first
    this.composing = false;
    this.unread = 0;
    this.unseen = new Set();     // received message ids not yet shown to the user
  }

  get ended() { return ENDED.has(this.state); }

  get open() { return this.state === "established"; }

  put(message) {
    const known = this.messages.get(message.id) || {};
    const defined = Object.fromEntries(Object.entries(message).filter(([, v]) => v !== undefined));
    this.messages.set(message.id, { ...known, ...defined });
  }
}

export class ChatView {
  constructor(rpc, announce, showChat) {
    this.rpc = rpc;
    this.announce = announce;
    this.showChat = showChat;  // brings the chat view forward
    this.conversations = new Map();
    this.current = null;
    this.typing = { active: false, lastActive: 0, idleTimer: null };
    this.incomingId = null;
    this.proposal = null;      // {id (session), proposal}
    this.accounts = [];

    this.view = $("#view-chat");
    this.list = $("#chats");
    this.window = $("#conversation");
    this.title = $("#conversation-title");
    this.stateLine = $("#conversation-state");
    this.log = $("#chat-log");
    this.scroller = $("#chat-scroll");
    this.composing = $("#chat-composing");
    this.compose = $("#chat-compose");
    this.text = $("#chat-text");
    this.send = $("#chat-send");
    this.endButton = $("#chat-end");
    this.tabCount = $("#chat-unread");

    $("#chat-start").addEventListener("submit", (event) => {
      event.preventDefault();
      this.start($("#chat-account").value, $("#chat-to").value.trim());
    });
    this.compose.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.text.addEventListener("input", () => this.typed());
    this.endButton.addEventListener("click", () => this.end());
    $("#chat-incoming-accept").addEventListener("click", () => this.acceptIncoming());
    $("#chat-incoming-decline").addEventListener("click", () => this.declineIncoming());
    document.addEventListener("visibilitychange", () => this.markSeen());
  }

  // -- accounts and the start form ---------------------------------------------------------

  setAccounts(accounts) {
    this.accounts = accounts;
    const select = $("#chat-account");
    const chosen = select.value;
    clear(select);
    for (const account of accounts) {
      select.append(h("option", { value: account.id }, `${account.id} — ${party(account.aor)}`));
    }
    const preferred = accounts.find((a) => a.id === chosen)
      || accounts.find((a) => a.id !== "local" && a.registration && a.registration.state === "registered")
      || accounts[0];
    if (preferred) select.value = preferred.id;
  }

  address(account, to) {
    if (/^sips?:/i.test(to)) return to;
    const chosen = this.accounts.find((a) => a.id === account);
    const domain = chosen && /@([^;>]+)/.exec(chosen.aor);
    return `sip:${to}${to.includes("@") || !domain ? "" : `@${domain[1]}`}`;
  }

  // A chat with a party: the open one if there is one, else a new chat-only session.
  async start(account, to) {
    const error = $("#chat-error");
    error.textContent = "";
    if (!to) return;
    const uri = this.address(account, to);
    const open = [...this.conversations.values()].find(
      (c) => !c.ended && c.account === account && party(c.remote) === party(uri));
    if (open) {
      this.select(open.id);
      return;
    }
    try {
      const session = await this.rpc.call("sessions.start", { account, to: uri, streams: ["chat"] });
      this.add({ ...session, account, remote: session.remote || uri, direction: "outgoing" });
      $("#chat-to").value = "";
      this.select(session.id);
    } catch (failure) {
      error.textContent = `Could not start a chat with ${uri}: ${failure.message}`;
    }
  }

  // From a contact's Chat button.
  chatWith(account, uri) {
    this.showChat();
    $("#chat-account").value = account;
    this.start(account, uri);
  }

  // -- sessions and events -------------------------------------------------------------------

  load(sessions) {
    for (const session of sessions) {
      if (hasChat(session) && !ENDED.has(session.state)) this.add(session);
      else if (this.conversations.has(session.id)) this.update(session.id, { state: session.state });
    }
    this.render();
  }

  add(session) {
    let conversation = this.conversations.get(session.id);
    if (conversation) {
      for (const key of ["account", "remote", "direction", "state"]) {
        if (session[key] !== undefined && session[key] !== null) conversation[key] = session[key];
      }
    } else {
      conversation = new Conversation(session);
      this.conversations.set(session.id, conversation);
      this.loadHistory(conversation);
    }
    this.render();
    return conversation;
  }

  // A call that has a chat now (added by either side): its details from sessions.get.
  async adopt(id) {
    try {
      const session = await this.rpc.call("sessions.get", { id });
      if (hasChat(session) && !ENDED.has(session.state)) this.add(session);
    } catch (error) {
      this.announce(`The call's chat: ${error.message}`);
    }
  }

  // The chat of a call: its window, or a chat stream added to the call.
  async openCall(session, chatting) {
    if (chatting) {
      if (!this.conversations.has(session.id)) await this.adopt(session.id);
      this.select(session.id);
      return;
    }
    try {
      await this.rpc.call("sessions.add_stream", { id: session.id, stream: "chat" });
      this.announce(`Asked ${party(session.remote)} to chat as well`);
    } catch (error) {
      this.announce(`Could not add a chat to the call: ${error.message}`);
    }
  }

  update(id, change) {
    const conversation = this.conversations.get(id);
    if (!conversation) return;
    Object.assign(conversation, change);
    this.render();
  }

  onEvent(event) {
    const data = event.data || {};
    switch (event.name) {
      case "session.new":
        if (hasChat(data)) this.add({ ...data, state: data.state || "calling" });
        break;
      case "session.state":
        if (this.conversations.has(data.id)) {
          this.update(data.id, { state: data.state, reason: data.reason || null });
          if (ENDED.has(data.state) && this.current === data.id) this.stopTyping(false);
        }
        break;
      case "session.streams":
        if (hasChat(data)) {
          const known = this.conversations.get(data.id);
          if (!known || known.ended) this.adopt(data.id);  // new, or added again to the call
        } else if (this.conversations.has(data.id)) {
          this.update(data.id, { state: "ended", reason: "chat removed" });
        }
        break;
      case "session.proposal":
        this.proposed(data);
        break;
      case "chat.sending":
        this.message(data.session, { id: data.message_id, direction: "outgoing",
          content: data.content, content_type: data.content_type, encoding: data.encoding,
          time: event.time, status: "sending" });
        break;
      case "chat.message":
        this.received(data, event.time);
        break;
      case "chat.delivery":
        this.delivered(data);
        break;
      case "chat.composing":
        if (this.conversations.has(data.session)) {
          this.update(data.session, { composing: data.state === "active" });
        }
        break;
      default:
        break;
    }
    this.showIncoming();
  }

  message(sessionId, message) {
    const conversation = this.conversations.get(sessionId);
    if (!conversation) return;
    const known = conversation.messages.get(message.id);
    // a notification can overtake our own record of the message: keep the better status
    if (known && known.status && message.status === "sending") delete message.status;
    conversation.put(message);
    this.render();
  }

  received(data, time) {
    const conversation = this.conversations.get(data.session);
    if (!conversation) return;
    conversation.composing = false;  // a message ends the "typing" it announced (RFC 3994)
    conversation.put({ id: data.message_id, direction: "incoming", content: data.content,
      content_type: data.content_type, encoding: data.encoding, from: data.from,
      time: data.time || time, status: "received" });
    conversation.unseen.add(data.message_id);
    if (!this.visible(conversation)) conversation.unread += 1;
    if (data.encoding !== "base64") this.notify(`Message from ${party(conversation.remote)}`, data.content);
    this.render();
    this.markSeen();
  }

  delivered(data) {
    const conversation = this.conversations.get(data.session);
    if (!conversation) return;
    const known = conversation.messages.get(data.message_id);
    // displayed outranks a late "delivered"
    if (known && known.status === "displayed" && data.status === "delivered") return;
    conversation.put({ id: data.message_id, direction: "outgoing", status: data.status,
      code: data.code, reason: data.reason });
    if (data.status === "failed") {
      this.announce(`A message to ${party(conversation.remote)} was not delivered`
        + `${data.reason ? `: ${data.reason}` : ""}`);
    }
    this.render();
  }

  proposed(data) {
    if (data.state === "pending" && (data.streams || []).includes("chat")) {
      this.proposal = { id: data.id, proposal: data.proposal };
    } else if (this.proposal && this.proposal.proposal === data.proposal) {
      this.proposal = null;
    }
  }

  // -- the history: this session's messages and the earlier chat with the party ------------

  async loadHistory(conversation) {
    try {
      const [own, earlier] = await Promise.all([
        this.rpc.call("history.messages", { session: conversation.id, limit: 200 }),
        conversation.remote
          ? this.rpc.call("history.messages", { remote: conversation.remote, limit: EARLIER + 50 })
          : Promise.resolve({ messages: [] }),
      ]);
      for (const row of own.messages.slice().reverse()) {
        if (!conversation.messages.has(row.id)) conversation.put(this.fromHistory(row));
      }
      conversation.earlier = earlier.messages
        .filter((row) => row.kind === "chat" && row.session !== conversation.id)
        .slice(0, EARLIER).reverse().map((row) => this.fromHistory(row));
    } catch (error) {
      conversation.historyError = error.message;
    }
    this.render();
  }

  fromHistory(row) {
    return { id: row.id, direction: row.direction, content: row.content,
      content_type: row.content_type, time: row.time, status: row.status, code: row.code,
      reason: row.reason, old: true };
  }

  // -- what the user does --------------------------------------------------------------------

  select(id) {
    if (this.current !== id) this.stopTyping(true);
    this.current = id;
    const conversation = this.conversations.get(id);
    if (conversation) conversation.unread = 0;
    this.showChat();
    this.render();
    this.markSeen();
    if (conversation && conversation.open) this.text.focus();
  }

  // The chat view came forward (its tab, or the page back from the background).
  shown() {
    const conversation = this.conversations.get(this.current);
    if (conversation) conversation.unread = 0;
    this.render();
    this.markSeen();
  }

  visible(conversation) {
    return !document.hidden && !this.view.hidden && !$("#side").classList.contains("narrow-hidden")
      && this.current === conversation.id;
  }

  // Display notifications for the messages now on screen (a peer that asked for none, or a
  // plain-text peer, refuses them: nothing to tell the user).
  markSeen() {
    const conversation = this.conversations.get(this.current);
    if (!conversation || !conversation.unseen.size || !this.visible(conversation)) return;
    const ids = [...conversation.unseen];
    conversation.unseen.clear();
    conversation.unread = 0;
    this.render();
    if (!conversation.open) return;
    for (const id of ids) {
      this.rpc.call("chat.displayed", { session: conversation.id, message_ids: [id] }).catch(() => {});
    }
  }

  async submit() {
    const conversation = this.conversations.get(this.current);
    const content = this.text.value;
    if (!conversation || !conversation.open || !content.trim()) return;
    this.stopTyping(false);  // the message itself tells the peer typing stopped
    this.text.value = "";
    try {
      const result = await this.rpc.call("chat.send", { session: conversation.id, content });
      this.message(conversation.id, { id: result.message_id, direction: "outgoing", content,
        content_type: "text/plain", time: Date.now() / 1000, status: "sending" });
    } catch (error) {
      if (!this.text.value) this.text.value = content;  // nothing lost
      this.announce(`The message was not sent: ${error.message}`);
    }
  }

  typed() {
    const conversation = this.conversations.get(this.current);
    if (!conversation || !conversation.open) return;
    clearTimeout(this.typing.idleTimer);
    if (!this.text.value) {
      this.stopTyping(true);
      return;
    }
    const now = Date.now();
    if (!this.typing.active || now - this.typing.lastActive > ACTIVE_REFRESH_MS) {
      this.typing.active = true;
      this.typing.lastActive = now;
      this.composingState(conversation.id, "active");
    }
    this.typing.idleTimer = setTimeout(() => this.stopTyping(true), IDLE_AFTER_MS);
  }

  stopTyping(tell) {
    clearTimeout(this.typing.idleTimer);
    const was = this.typing.active;
    this.typing.active = false;
    const conversation = this.conversations.get(this.current);
    if (tell && was && conversation && conversation.open) {
      this.composingState(conversation.id, "idle");
    }
  }

  composingState(session, state) {
    this.rpc.call("chat.composing", { session, state }).catch(() => {});
  }

  async end() {
    const conversation = this.conversations.get(this.current);
    if (!conversation) return;
    if (conversation.ended) {  // closing an ended chat's window
      this.conversations.delete(conversation.id);
      this.current = null;
      this.render();
      return;
    }
    try {
      await this.rpc.call(conversation.chatOnly ? "sessions.end" : "sessions.remove_stream",
        conversation.chatOnly ? { id: conversation.id } : { id: conversation.id, stream: "chat" });
    } catch (error) {
      this.announce(`Could not end the chat: ${error.message}`);
    }
  }

  // -- an incoming chat, or chat proposed in a call ------------------------------------------

  ringing() {
    // a call that also offers chat rings as a call (calls.js); its chat opens when answered
    return [...this.conversations.values()].find((c) => c.chatOnly && c.direction === "incoming"
      && ["calling", "ringing", "early"].includes(c.state));
  }

  showIncoming() {
    const dialog = $("#chat-incoming");
    const ringing = this.ringing();
    const proposed = !ringing && this.proposal;
    const was = this.incomingId;
    this.incomingId = ringing ? ringing.id : proposed ? `proposal ${this.proposal.proposal}` : null;
    dialog.hidden = !this.incomingId;
    if (!this.incomingId || was === this.incomingId) return;
    if (ringing) {
      this.notify("Incoming chat", party(ringing.remote));
      $("#chat-incoming-title").textContent = "Incoming chat";
      $("#chat-incoming-from").textContent = `From ${party(ringing.remote)} to ${ringing.account}`;
    } else {
      $("#chat-incoming-title").textContent = "Chat proposed";
      $("#chat-incoming-from").textContent = "The other party of your call would like to chat.";
    }
    $("#chat-incoming-accept").focus();
  }

  async acceptIncoming() {
    const ringing = this.ringing();
    try {
      if (ringing) {
        await this.rpc.call("sessions.answer", { id: ringing.id });
        this.select(ringing.id);
      } else if (this.proposal) {
        const { id, proposal } = this.proposal;
        this.proposal = null;
        await this.rpc.call("sessions.accept_proposal", { id, proposal });
        await this.adopt(id);
        this.select(id);
      }
    } catch (error) {
      this.announce(`Could not accept the chat: ${error.message}`);
    }
    this.showIncoming();
  }

  async declineIncoming() {
    const ringing = this.ringing();
    try {
      if (ringing) {
        await this.rpc.call("sessions.reject", { id: ringing.id, code: 603 });
      } else if (this.proposal) {
        const { id, proposal } = this.proposal;
        this.proposal = null;
        await this.rpc.call("sessions.reject_proposal", { id, proposal });
      }
    } catch (error) {
      this.announce(`Could not decline the chat: ${error.message}`);
    }
    this.showIncoming();
  }

  // A system notification while the tab is in the background (the user allowed them with
  // the phone's "Tell me about incoming calls" button).
  notify(title, body) {
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      new Notification(title, { body: String(body || "").slice(0, 200) });
    }
  }

  // -- drawing -------------------------------------------------------------------------------

  render() {
    this.renderList();
    this.renderWindow();
    const unread = [...this.conversations.values()].reduce((sum, c) => sum + c.unread, 0);
    this.tabCount.textContent = unread ? String(unread) : "";
    this.tabCount.hidden = !unread;
  }

  renderList() {
    clear(this.list);
    $("#no-chats").hidden = this.conversations.size > 0;
    for (const conversation of this.conversations.values()) {
      const who = party(conversation.remote);
      const status = conversation.composing ? "typing…" : this.stateText(conversation);
      const current = conversation.id === this.current;
      this.list.append(h("li", { dataset: { session: conversation.id, state: conversation.state } },
        h("button", { type: "button", class: "chat-pick", "aria-current": current ? "true" : null,
          onclick: () => this.select(conversation.id) },
        h("span", { class: "chat-who" }, who),
        h("span", { class: "sub" }, status),
        conversation.unread ? h("span", { class: "count" }, String(conversation.unread),
          h("span", { class: "visually-hidden" }, " unread")) : null)));
    }
  }

  stateText(conversation) {
    if (conversation.state === "established") return conversation.chatOnly ? "open" : "in a call";
    if (conversation.ended) return conversation.reason ? `ended (${conversation.reason})` : "ended";
    return conversation.direction === "incoming" ? "wants to chat" : "connecting…";
  }

  renderWindow() {
    const conversation = this.conversations.get(this.current);
    this.window.hidden = !conversation;
    if (!conversation) return;
    this.window.dataset.session = conversation.id;
    this.window.dataset.state = conversation.state;
    this.title.textContent = `Chat with ${party(conversation.remote)}`;
    this.stateLine.textContent = this.stateText(conversation);
    this.endButton.textContent = conversation.ended ? "Close" : "End chat";
    this.text.disabled = !conversation.open;
    this.send.disabled = !conversation.open;
    const scroller = this.scroller;
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    this.fillLog(conversation);
    this.composing.textContent = conversation.composing
      ? `${party(conversation.remote)} is typing…` : "";
    if (nearBottom) scroller.scrollTop = scroller.scrollHeight;
  }

  // The log changes in place (a new message appended, a tick replaced), so that a screen
  // reader announces what is new, not the whole conversation again.
  fillLog(conversation) {
    const key = `${conversation.id} ${conversation.earlier.length}`;
    if (this.logKey !== key) {
      this.logKey = key;
      this.bubbles = new Map();
      clear(this.log);
      if (conversation.earlier.length) {
        this.log.append(h("li", { class: "chat-divider" }, "Earlier"));
        for (const message of conversation.earlier) this.log.append(this.bubble(message, conversation));
        this.log.append(h("li", { class: "chat-divider" }, "This chat"));
      }
    }
    const empty = this.log.querySelector(".chat-empty");
    if (empty) empty.remove();
    for (const message of conversation.messages.values()) {
      const shown = this.bubbles.get(message.id);
      if (!shown) {
        const item = this.bubble(message, conversation);
        this.bubbles.set(message.id, { item, status: message.status });
        this.log.append(item);
      } else if (shown.status !== message.status) {
        shown.status = message.status;
        shown.item.dataset.status = message.status || "";
        shown.item.querySelector(".meta").replaceWith(this.meta(message));
      }
    }
    if (!conversation.messages.size && !conversation.earlier.length) {
      this.log.append(h("li", { class: "quiet chat-divider chat-empty" },
        conversation.open ? "No messages yet." : "Waiting for the other party…"));
    }
  }

  bubble(message, conversation) {
    const mine = message.direction === "outgoing";
    const item = h("li", { class: `msg ${mine ? "out" : "in"}${message.old ? " old" : ""}`,
      dataset: { id: message.id, status: message.status || "" } },
    h("span", { class: "visually-hidden" },
      mine ? "You: " : `${party(message.from || conversation.remote)}: `),
    this.body(message));
    item.append(this.meta(message));
    return item;
  }

  meta(message) {
    const meta = h("span", { class: "meta" }, h("time", {}, clock(message.time)));
    if (message.direction === "outgoing" && STATUS_TEXT[message.status]) {
      const [mark, words] = STATUS_TEXT[message.status];
      const why = message.status === "failed"
        ? [message.code, message.reason].filter((x) => x !== undefined && x !== null).join(" ") : "";
      meta.append(" ", h("span", { class: `tick ${message.status}` },
        h("span", { "aria-hidden": "true" }, mark), ` ${words}${why ? `: ${why}` : ""}`));
    }
    return meta;
  }

  body(message) {
    const type = (message.content_type || "text/plain").split(";")[0].trim().toLowerCase();
    if (message.encoding === "base64") {
      if (PICTURES.has(type)) {
        return h("img", { class: "picture", alt: `A picture (${type})`,
          src: `data:${type};base64,${message.content}` });
      }
      return h("span", { class: "text quiet" }, `A file (${type}) that the page cannot show`);
    }
    if (!message.content && message.old && type !== "text/plain") {
      return h("span", { class: "text quiet" }, `(${type})`);
    }
    return h("span", { class: "text" }, message.content || "");
  }
}
