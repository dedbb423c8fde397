// The one reconnecting websocket every page script uses (events.js, dashboard.js, terminal.js):
// exponential backoff with jitter, close codes after which retrying cannot help, and a way to
// reconnect at once (the browser is back online, the tab is visible again).
//
//   const line = window.labdeckSocket("/ws/events", {
//     onConnecting(isRetry) {}, onOpen(socket, isReconnect) {}, onMessage(event) {},
//     onRetry(delayMs, closeEvent) {}, onFinal(closeEvent) {},
//     finalCodes: [4401], binaryType: "arraybuffer", firstDelayMs: 1000, maxDelayMs: 15000,
//   });
//   line.send(data); line.healthy(); line.reconnectNow(); line.drop();
(function () {
  "use strict";

  function socketUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + path;
  }

  class ReconnectingSocket {
    constructor(path, options) {
      this.path = path;
      this.options = Object.assign({ finalCodes: [], firstDelayMs: 1000, maxDelayMs: 15000 }, options);
      this.socket = null;
      this.attempt = 0;
      this.opened = false;
      this.final = false;
      this.retryTimer = null;
      window.addEventListener("online", () => this.reconnectNow());
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.reconnectNow();
      });
      this.connect();
    }

    get isOpen() {
      return Boolean(this.socket) && this.socket.readyState === WebSocket.OPEN;
    }

    connect() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.options.onConnecting) this.options.onConnecting(this.attempt > 0);
      const socket = new WebSocket(socketUrl(this.path));
      if (this.options.binaryType) socket.binaryType = this.options.binaryType;
      this.socket = socket;
      const isReconnect = this.opened;
      socket.addEventListener("open", () => {
        if (socket !== this.socket) return;
        this.opened = true;
        if (this.options.resetOnOpen !== false) this.healthy();
        if (this.options.onOpen) this.options.onOpen(socket, isReconnect);
      });
      socket.addEventListener("message", (event) => {
        if (socket === this.socket && this.options.onMessage) this.options.onMessage(event);
      });
      socket.addEventListener("close", (event) => this.lost(socket, event));
    }

    // The connection works (for the terminal: the shell attached): the next loss retries fast.
    healthy() {
      this.attempt = 0;
    }

    send(data) {
      if (!this.isOpen) return false;
      this.socket.send(data);
      return true;
    }

    // A connection that went silent: browsers may not notice a dead network for minutes.
    drop() {
      const socket = this.socket;
      if (!socket) return;
      socket.close();
      this.lost(socket, { code: 1006, reason: "no answer" });
    }

    reconnectNow(evenIfFinal) {
      if (this.socket || (this.final && !evenIfFinal)) return;
      this.final = false;
      this.connect();
    }

    lost(socket, event) {
      if (socket !== this.socket) return;
      this.socket = null;
      if (this.options.finalCodes.includes(event.code)) {
        this.final = true;
        if (this.options.onFinal) this.options.onFinal(event);
        return;
      }
      const delay = this.backoff();
      if (this.options.onRetry) this.options.onRetry(delay, event);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }

    backoff() {
      const { firstDelayMs, maxDelayMs } = this.options;
      const base = Math.min(maxDelayMs, firstDelayMs * 2 ** this.attempt);
      this.attempt += 1;
      return base * (0.75 + Math.random() * 0.5); // jitter: a class does not reconnect in step
    }
  }

  window.labdeckSocket = (path, options) => new ReconnectingSocket(path, options || {});
})();
