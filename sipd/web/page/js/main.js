// The page: login, then the views, fed by one RPC connection and its event subscription.

import { AccountsView } from "./accounts.js";
import { ActivityView } from "./activity.js";
import { CallsView } from "./calls.js";
import { ChatView } from "./chat.js";
import { ContactsView } from "./contacts.js";
import { $ } from "./dom.js";
import { FilesView } from "./files.js";
import { HistoryView } from "./history.js";
import { exchangeCode, forgetToken, keepToken, storedToken, takeLoginCode } from "./login.js";
import { RpcClient, rpcUrl } from "./rpc.js";
import { Softphone } from "./softphone.js";

const connection = $("#connection");
const notice = $("#notice");
let rpc = null;
let views = null;
let missedLeft = 0;

let noticeTimer = null;

// A line in the notice area: an action's outcome goes after a while, a reconnect's stays.
function announce(text, { sticky = false } = {}) {
  clearTimeout(noticeTimer);
  notice.textContent = text;
  notice.hidden = !text;
  if (text && !sticky) noticeTimer = setTimeout(() => announce(""), 8000);
}

function showLogin(error = "") {
  $("#app-view").hidden = true;
  $("#login-view").hidden = false;
  $("#logout").hidden = true;
  $("#login-error").textContent = error;
  connection.textContent = "Not connected";
  $("#token").focus();
}

function showApp() {
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#logout").hidden = false;
}

const narrow = window.matchMedia("(max-width: 899px)");
let selectTab = null;
let openTab = null;

// The views bar: on a narrow screen Phone is one of the views; on a wide one the phone is
// always shown and the bar switches the panel beside it.
function setupTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const phoneTab = $("#tab-phone");
  function select(tab, focus = true) {
    if (tab === phoneTab && !narrow.matches) tab = $("#tab-accounts");
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      if (other !== phoneTab) $(`#${other.getAttribute("aria-controls")}`).hidden = !selected;
    }
    $("#phone").classList.toggle("narrow-hidden", tab !== phoneTab);
    $("#side").classList.toggle("narrow-hidden", tab === phoneTab);
    if (focus) tab.focus();
    if (tab.id === "tab-history" && views) views.history.load();
    if (tab.id === "tab-contacts" && views) views.contacts.load();
    if (tab.id === "tab-chat" && views) views.chat.shown();
  }
  const visible = () => tabs.filter((tab) => tab !== phoneTab || narrow.matches);
  tabs.forEach((tab) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const shown = visible();
      const index = shown.indexOf(tab);
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) select(shown[(index + step + shown.length) % shown.length]);
      else if (event.key === "Home") select(shown[0]);
      else if (event.key === "End") select(shown[shown.length - 1]);
      else return;
      event.preventDefault();
    });
  });
  narrow.addEventListener("change", () => {
    const current = tabs.find((tab) => tab.getAttribute("aria-selected") === "true");
    select(narrow.matches && current.id === "tab-accounts" ? phoneTab : current, false);
  });
  select(narrow.matches ? phoneTab : $("#tab-accounts"), false);
  // A call placed or ringing brings the phone into view on a narrow screen.
  selectTab = (id) => { if (narrow.matches) select($(`#${id}`), false); };
  // A chat opened or answered brings the chat view forward at any size.
  openTab = (id) => {
    const tab = $(`#${id}`);
    if (tab.getAttribute("aria-selected") !== "true") select(tab, false);
  };
}

// What the history shows changed: a call ended, a message came or went.
function historyChanged(event) {
  const data = event.data || {};
  return (event.name === "session.state" && ["ended", "failed"].includes(data.state))
    || ["message.received", "message.delivery", "chat.message", "chat.delivery", "file.transfer"]
      .includes(event.name);
}

let historyTimer = null;

function scheduleHistory() {  // one reload for a burst of events
  clearTimeout(historyTimer);
  historyTimer = setTimeout(() => views && views.history.load(), 500);
}

async function refresh() {
  await views.accounts.load();
  const { sessions } = await rpc.call("sessions.list");
  views.calls.load(sessions);
  views.chat.load(sessions);
  await views.files.load(sessions);
  if (!$("#view-history").hidden) await views.history.load();
  if (!$("#view-contacts").hidden) await views.contacts.load();
}

function connect(token) {
  rpc = new RpcClient(rpcUrl(window.location), token);
  views = {
    activity: new ActivityView(),
    history: new HistoryView(rpc),
  };
  views.softphone = new Softphone(token, announce);
  views.chat = new ChatView(rpc, announce, () => openTab && openTab("tab-chat"));
  views.files = new FilesView(rpc, token, announce, () => openTab && openTab("tab-files"));
  views.calls = new CallsView(rpc, announce, views.softphone,
    () => selectTab && selectTab("tab-phone"),
    (session, chatting) => views.chat.openCall(session, chatting));
  views.accounts = new AccountsView(rpc, announce, (accounts) => {
    views.calls.accountsById = new Map(accounts.map((a) => [a.id, a]));
    views.calls.setAccounts(accounts);
    views.chat.setAccounts(accounts);
    views.files.setAccounts(accounts);
  });
  views.contacts = new ContactsView(rpc, (account, uri) => {
    $("#dial-account").value = account;
    $("#dial-to").value = uri;
    $("#dial-to").focus();
  }, (account, uri) => views.chat.chatWith(account, uri));

  rpc.addEventListener("auth-failed", (event) => {
    forgetToken();
    showLogin(`The daemon refused the token: ${event.detail.reason}`);
  });
  rpc.addEventListener("open", async (event) => {
    const { resumed, replayed, gap, restarted } = event.detail;
    keepToken(token);
    showApp();
    connection.textContent = "Connected";
    missedLeft = replayed;
    if (resumed && (gap || restarted)) {
      announce("Reconnected. Some events were lost while the page was away"
        + (restarted ? " (sipd restarted)" : "") + "; everything was loaded again.", { sticky: true });
      views.activity.note("Reconnected: events were lost, state reloaded");
    } else if (resumed) {
      announce(replayed ? `Reconnected: ${replayed} event${replayed === 1 ? "" : "s"} happened `
        + "while the page was away (marked “missed” in Activity)." : "Reconnected: nothing was missed.",
      { sticky: true });
    }
    try {
      await refresh();
    } catch (error) {
      announce(`Could not load the daemon's state: ${error.message}`);
    }
  });
  rpc.addEventListener("event", (event) => {
    const missed = missedLeft > 0;
    if (missed) missedLeft -= 1;
    views.activity.add(event.detail, missed);
    views.accounts.onEvent(event.detail);
    views.calls.onEvent(event.detail);
    views.chat.onEvent(event.detail);
    views.files.onEvent(event.detail);
    views.contacts.onEvent(event.detail);
    if (!$("#view-history").hidden && historyChanged(event.detail)) scheduleHistory();
  });
  rpc.addEventListener("gap", (event) => {
    views.activity.note(`Events ${event.detail.first}–${event.detail.last} were lost`);
    refresh().catch(() => {});
  });
  rpc.addEventListener("close", (event) => {
    if (event.detail.wasConnected) {
      connection.textContent = "Connection lost; reconnecting…";
      views.activity.note("Connection lost");
    }
  });
  rpc.addEventListener("retry", (event) => {
    connection.textContent = `Not connected; trying again in ${event.detail.delay / 1000} s`;
  });
  rpc.start();
}

async function main() {
  setupTabs();
  $("#chat-file").addEventListener("click", () => {
    const chat = views && views.chat.conversations.get(views.chat.current);
    if (chat) views.files.prepare(chat.account, chat.remote);
  });
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    $("#token").value = "";
    if (token) connect(token);
  });
  $("#logout").addEventListener("click", () => {
    forgetToken();
    if (views) views.softphone.release();
    if (rpc) rpc.stop();
    rpc = null;
    showLogin();
  });
  const code = takeLoginCode(window.location, window.history);
  if (code !== null) {
    try {
      connect(await exchangeCode(code));
      return;
    } catch (error) {
      showLogin(error.message);
      return;
    }
  }
  const token = storedToken();
  if (token) connect(token);
  else showLogin();
}

main();
