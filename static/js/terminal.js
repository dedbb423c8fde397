// The terminal in the page: xterm.js over a websocket (protocol: docs/terminal-protocol.md).
// Mounts on #terminal: the attendee's own shell (/ws/terminal) on lesson pages, or whatever
// data-socket names (the instructor's shadow view, read-only when data-readonly="true").
// The lesson's Run buttons call window.labdeckTerminal.run(command, interrupt).
(function () {
  "use strict";

  const HINT_SEEN = "labdeck-terminal-hint-seen";
  // Close codes after which reconnecting cannot help (see app/websockets.py).
  const FINAL = {
    4401: "Your session has ended. Join the workshop again from the start page.",
    4403: "This page may not open the terminal (wrong address or sign-in). Reload the page.",
    4404: "There is no terminal to show here yet.",
  };
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const PING_EVERY_MS = 15000;
  const SILENCE_LIMIT_MS = 25000; // no pong or output for this long: the connection is dead
  // Flow control: bytes handed to xterm.js but not drawn yet. Above HIGH the server is asked
  // to pause; below LOW to resume. Keeps a flood from freezing the tab.
  const HIGH_WATER = 512 * 1024;
  const LOW_WATER = 64 * 1024;
  const INTERRUPT_PAUSE_MS = 150; // lets a program die of Ctrl-C before the command's keys

  function socketUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + path;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function copyToClipboard(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-http class servers have no async clipboard API; a hidden textarea still works.
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { area.remove(); }
    return Promise.resolve();
  }

  class LabdeckTerminal {
    constructor(element, options) {
      this.element = element;
      this.path = options.socket || "/ws/terminal";
      this.readOnly = Boolean(options.readOnly);
      this.encoder = new TextEncoder();
      this.socket = null;
      this.attempt = 0;
      this.retryTimer = null;
      this.pingTimer = null;
      this.freshConnection = true;
      this.unparsed = 0;
      this.paused = false;
      this.queued = [];
      this.final = false;
      this.lastHeard = Date.now();
      this.lastWord = "";
      this.buildParts();
      this.openTerminal();
      this.watchSize();
      this.connect();
      window.addEventListener("online", () => this.reconnectNow());
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.reconnectNow();
      });
    }

    // -- the page parts -------------------------------------------------------------------

    buildParts() {
      this.status = el("div", "terminal-status");
      this.status.setAttribute("role", "status");
      this.status.setAttribute("aria-live", "polite");
      Object.assign(this.status.style, {
        display: "none", gap: ".5rem", alignItems: "center", padding: ".3rem .75rem",
        background: "#1e293b", color: "#e2e8f0", fontSize: ".85rem",
      });
      this.statusText = el("span", "terminal-status-text");
      this.retryButton = el("button", "terminal-retry", "Reconnect now");
      this.retryButton.type = "button";
      this.retryButton.addEventListener("click", () => this.reconnectNow(true));
      this.status.append(this.statusText, this.retryButton);
      this.element.parentNode.insertBefore(this.status, this.element);
      if (!this.readOnly) this.showHintOnce();
    }

    showHintOnce() {
      try {
        if (localStorage.getItem(HINT_SEEN)) return;
        localStorage.setItem(HINT_SEEN, "1");
      } catch (error) {
        return; // storage disabled: better no hint than one on every page
      }
      const hint = el("div", "terminal-hint",
        "Copy: select text, then Ctrl+Shift+C. Paste: Ctrl+Shift+V. Or right-click for the menu. ");
      Object.assign(hint.style, {
        padding: ".3rem .75rem", background: "#334155", color: "#f8fafc", fontSize: ".8rem",
      });
      const ok = el("button", "terminal-hint-close", "Got it");
      ok.type = "button";
      ok.addEventListener("click", () => { hint.remove(); this.fit(); });
      hint.append(ok);
      this.element.parentNode.insertBefore(hint, this.element);
    }

    setStatus(text, options) {
      const settings = options || {};
      this.statusText.textContent = text;
      this.status.style.display = text ? "flex" : "none";
      this.retryButton.style.display = settings.retry ? "" : "none";
      this.status.dataset.state = settings.state || "";
      this.fit();
    }

    showSandboxState(state, message) {
      const badge = document.getElementById("sandbox-state");
      if (!badge || !state) return;
      badge.dataset.state = state;
      badge.textContent = message || state;
    }

    // -- xterm.js -------------------------------------------------------------------------

    openTerminal() {
      this.term = new window.Terminal({
        cursorBlink: !this.readOnly,
        disableStdin: this.readOnly,
        scrollback: 10000,
        fontSize: 14,
        fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
        theme: { background: "#0f172a" },
      });
      this.fitAddon = new window.FitAddon.FitAddon();
      this.term.loadAddon(this.fitAddon);
      this.term.open(this.element);
      this.term.attachCustomKeyEventHandler((event) => this.onKey(event));
      this.term.onResize((size) => this.sendControl({ type: "resize", cols: size.cols, rows: size.rows }));
      if (!this.readOnly) {
        this.term.onData((data) => this.sendKeys(this.encoder.encode(data)));
        this.term.onBinary((data) => this.sendKeys(Uint8Array.from(data, (c) => c.charCodeAt(0) & 255)));
      }
      this.fit();
    }

    onKey(event) {
      // Ctrl+Shift+C/V copy and paste; plain Ctrl+C stays the shell's interrupt.
      if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
      if (event.code === "KeyC") {
        event.preventDefault();
        const selected = this.term.getSelection();
        if (selected) copyToClipboard(selected).finally(() => this.term.focus());
        return false;
      }
      if (event.code === "KeyV") {
        if (navigator.clipboard && navigator.clipboard.readText && window.isSecureContext) {
          event.preventDefault();
          navigator.clipboard.readText().then((text) => this.term.paste(text), () => {});
        }
        // Otherwise the browser's own paste event reaches xterm.js's textarea.
        return false;
      }
      return true;
    }

    watchSize() {
      let pending = false;
      const refit = () => {
        if (pending) return;
        pending = true;
        requestAnimationFrame(() => { pending = false; this.fit(); });
      };
      window.addEventListener("resize", refit);
      if (window.ResizeObserver) {
        const observer = new ResizeObserver(refit);
        observer.observe(this.element);
        const bench = this.element.closest(".workbench");
        if (bench) observer.observe(bench);
      }
    }

    fit() {
      if (!this.fitAddon || !this.element.offsetParent) return; // hidden: nothing to measure
      try { this.fitAddon.fit(); } catch (error) { /* not laid out yet */ }
    }

    // -- the connection -------------------------------------------------------------------

    connect() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.freshConnection = true;
      this.paused = false;
      this.unparsed = 0;
      this.setStatus(this.attempt ? "Reconnecting…" : "Connecting to your sandbox…", { state: "connecting" });
      const socket = new WebSocket(socketUrl(this.path));
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      socket.addEventListener("open", () => this.onOpen(socket));
      socket.addEventListener("message", (message) => this.onMessage(socket, message));
      socket.addEventListener("close", (event) => this.onClose(socket, event));
    }

    onOpen(socket) {
      if (socket !== this.socket) return;
      this.lastHeard = Date.now();
      this.sendControl({ type: "resize", cols: this.term.cols, rows: this.term.rows });
      this.queued.splice(0).forEach((bytes) => socket.send(bytes));
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.keepAlive(socket), PING_EVERY_MS);
    }

    keepAlive(socket) {
      if (socket !== this.socket) return;
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        socket.close(); // a silent network drop: browsers may not notice for minutes
        this.onClose(socket, { code: 1006, reason: "no answer" });
        return;
      }
      this.sendControl({ type: "ping" });
    }

    onMessage(socket, message) {
      if (socket !== this.socket) return;
      this.lastHeard = Date.now();
      if (typeof message.data === "string") {
        this.onControl(message.data);
        return;
      }
      if (this.freshConnection) {
        // The server replays the session's history and redraws the screen on every attach.
        this.term.reset();
        this.freshConnection = false;
      }
      this.write(new Uint8Array(message.data));
    }

    write(bytes) {
      this.unparsed += bytes.length;
      if (!this.paused && this.unparsed > HIGH_WATER) {
        this.paused = true;
        this.sendControl({ type: "pause" });
      }
      this.term.write(bytes, () => {
        this.unparsed -= bytes.length;
        if (this.paused && this.unparsed < LOW_WATER) {
          this.paused = false;
          this.sendControl({ type: "resume" });
        }
      });
    }

    onControl(text) {
      let message;
      try { message = JSON.parse(text); } catch (error) { return; }
      if (message.type !== "status") return; // "pong" only proves the line is alive
      if (message.state === "connected") {
        this.attempt = 0;
        this.setStatus("");
        this.showSandboxState("ready", "ready");
        return;
      }
      const shown = message.message || "Your sandbox is " + message.state + "…";
      this.lastWord = shown; // kept for the reconnect countdown when the server closes next
      this.setStatus(shown, { state: message.state });
      this.showSandboxState(message.state, message.state);
    }

    onClose(socket, event) {
      if (socket !== this.socket) return;
      this.socket = null;
      clearInterval(this.pingTimer);
      if (FINAL[event.code]) {
        this.final = true;
        this.setStatus(FINAL[event.code], { state: "closed" });
        return;
      }
      const why = this.lastWord || "Connection lost.";
      this.lastWord = "";
      this.scheduleReconnect(this.backoff(), why);
    }

    backoff() {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      this.attempt += 1;
      return base * (0.75 + Math.random() * 0.5); // jitter: a class does not reconnect in step
    }

    scheduleReconnect(delay, why) {
      const due = Date.now() + delay;
      const tick = () => {
        const seconds = Math.ceil((due - Date.now()) / 1000);
        if (seconds <= 0) { this.connect(); return; }
        this.setStatus(why + " Reconnecting in " + seconds + " s…", { retry: true, state: "waiting" });
        this.retryTimer = setTimeout(tick, Math.min(1000, due - Date.now()));
      };
      clearTimeout(this.retryTimer);
      tick();
    }

    reconnectNow(evenIfFinal) {
      if (this.socket || (this.final && !evenIfFinal)) return;
      this.final = false;
      this.connect();
    }

    // -- sending --------------------------------------------------------------------------

    sendKeys(bytes) {
      if (this.readOnly) return;
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(bytes);
      } else {
        this.queued.push(bytes); // sent as soon as a connection opens
      }
    }

    sendControl(message) {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify(message));
      }
    }

    type(text) {
      this.sendKeys(this.encoder.encode(text));
    }

    run(command, interrupt) {
      const keys = String(command).replace(/\r?\n/g, "\r") + "\r";
      if (interrupt) {
        this.type("\x03");
        setTimeout(() => this.type(keys), INTERRUPT_PAUSE_MS);
      } else {
        this.type(keys);
      }
      const area = this.element.closest(".workbench") || this.element;
      area.scrollIntoView({ block: "nearest", behavior: "smooth" });
      this.term.focus();
    }
  }

  function mount(element) {
    if (!window.Terminal || !window.FitAddon) {
      element.textContent = "The terminal could not load (static/vendor is missing: run ./labdeck up).";
      return null;
    }
    return new LabdeckTerminal(element, {
      socket: element.dataset.socket,
      readOnly: element.dataset.readonly === "true",
    });
  }

  function start() {
    const element = document.getElementById("terminal");
    if (!element) return;
    const terminal = mount(element);
    if (!terminal) return;
    window.labdeckTerminalSession = terminal; // for tests and the console
    if (!terminal.readOnly) {
      window.labdeckTerminal = { run: (command, interrupt) => terminal.run(command, interrupt) };
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
