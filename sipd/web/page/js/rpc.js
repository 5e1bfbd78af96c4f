// The JSON-RPC 2.0 WebSocket client: the same API sipctl uses, at /rpc on this page's server.
// It logs in with the token, keeps one event subscription and, after a lost connection,
// reconnects and resumes it with `since` (the last seq seen) and `boot` (the daemon's run), so
// the page is told what it missed: replayed events, or a gap when they are gone.

const CALL_TIMEOUT_MS = 30000;
const RETRY_MS = [500, 1000, 2000, 4000, 8000];

export class RpcError extends Error {
  constructor(error) {
    const reason = error && error.data && error.data.reason;
    super(reason ? `${error.message}: ${reason}` : (error && error.message) || "RPC error");
    this.code = error && error.code;
    this.data = error && error.data;
  }
}

export class RpcClient extends EventTarget {
  constructor(url, token) {
    super();
    this.url = url;
    this.token = token;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.lastSeq = null;
    this.boot = null;
    this.subscription = null;
    this.stopped = false;
    this.attempt = 0;
    this.connected = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000, "logged out");
  }

  open() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (message) => this.receive(message.data));
    ws.addEventListener("open", () => this.opened(ws));
    ws.addEventListener("close", (closed) => this.closed(ws, closed));
  }

  async opened(ws) {
    try {
      await this.call("auth.login", { token: this.token });
    } catch (error) {
      this.emit("auth-failed", { reason: error.message });
      this.stopped = true;
      ws.close(1000, "wrong token");
      return;
    }
    const resuming = this.lastSeq !== null;
    const params = resuming ? { since: this.lastSeq, boot: this.boot } : {};
    let result;
    try {
      result = await this.call("events.subscribe", params);
    } catch (error) {
      ws.close(1011, "subscribe failed");
      return;
    }
    this.subscription = result.subscription;
    const sameRun = this.boot === null || this.boot === result.boot;
    this.boot = result.boot;
    if (this.lastSeq === null) this.lastSeq = result.seq;
    this.attempt = 0;
    this.connected = true;
    this.emit("open", {
      resumed: resuming, replayed: result.replayed, gap: result.gap, restarted: !sameRun,
    });
  }

  closed(ws, closed) {
    if (ws !== this.ws) return;
    const wasConnected = this.connected;
    this.connected = false;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error("the connection to sipd was lost"));
    }
    this.pending.clear();
    this.emit("close", { code: closed.code, reason: closed.reason, wasConnected });
    if (this.stopped) return;
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.emit("retry", { delay });
    setTimeout(() => { if (!this.stopped) this.open(); }, delay);
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const messages = Array.isArray(message) ? message : [message];
    for (const one of messages) {
      if (one.id !== undefined && one.id !== null && this.pending.has(one.id)) {
        const { resolve, reject, timer } = this.pending.get(one.id);
        this.pending.delete(one.id);
        clearTimeout(timer);
        if (one.error) reject(new RpcError(one.error));
        else resolve(one.result);
      } else if (one.method === "event") {
        if (typeof one.params.seq === "number") this.lastSeq = one.params.seq;
        this.emit("event", one.params);
      } else if (one.method === "events.gap") {
        this.emit("gap", one.params);
      } else if (one.method === "rpc.warning") {
        this.emit("warning", one.params);
      }
    }
  }

  call(method, params) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error("not connected to sipd"));
    }
    const id = this.nextId++;
    const request = { jsonrpc: "2.0", method, id };
    if (params !== undefined) request.params = params;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${CALL_TIMEOUT_MS / 1000} s`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify(request));
    });
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}

// The RPC WebSocket of the server that served this page (ws: or wss: like the page).
export function rpcUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/rpc`;
}
