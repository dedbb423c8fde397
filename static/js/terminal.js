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
      // The instructor's view: the attendee's size rules their shell; this page draws the same
      // grid and scales it to its own space (letterboxed) instead of resizing the shell.
      this.followsSize = Boolean(options.followsSize);
      this.followed = null;
      this.encoder = new TextEncoder();
      this.line = null;
      this.countdownTimer = null;
      this.pingTimer = null;
      this.freshConnection = true;
      this.unparsed = 0;
      this.paused = false;
      this.queued = [];
      this.lastHeard = Date.now();
      this.lastWord = "";
      this.buildParts();
      this.openTerminal();
      this.watchSize();
      this.connect();
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
        // At a line height of 1.0 the row clips what hangs below the baseline: "_" vanished
        // (BEFORE_RESTART read "BEFORE RESTART"). A little room keeps every glyph whole.
        lineHeight: 1.2,
        fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
        theme: { background: "#0f172a" },
      });
      this.fitAddon = new window.FitAddon.FitAddon();
      this.term.loadAddon(this.fitAddon);
      this.term.open(this.element);
      this.term.attachCustomKeyEventHandler((event) => this.onKey(event));
      // The sandbox's prompt marks (OSC 133, set in its bashrc): A = a prompt, C = a command
      // starts. Between C and the next A a command runs: checks.js says so next to results.
      this.commandSince = null;
      this.term.parser.registerOscHandler(133, (data) => {
        if (data.startsWith("C")) this.commandSince = Date.now();
        else if (data.startsWith("A")) this.commandSince = null;
        return true;
      });
      this.term.onResize((size) => {
        if (!this.followed) this.sendControl({ type: "resize", cols: size.cols, rows: size.rows });
      });
      if (!this.readOnly) {
        this.term.onData((data) => this.sendKeys(this.encoder.encode(data)));
        this.term.onBinary((data) => this.sendKeys(Uint8Array.from(data, (c) => c.charCodeAt(0) & 255)));
      }
      this.fit();
    }

    onKey(event) {
      // F6 leaves the terminal (it keeps Tab for the shell): back to the lesson, or the page.
      if (event.type === "keydown" && event.key === "F6") {
        event.preventDefault();
        this.leave();
        return false;
      }
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

    leave() {
      this.term.blur();
      document.dispatchEvent(new CustomEvent("labdeck:leave-terminal"));
      const target = document.getElementById("lesson") || document.getElementById("main");
      if (target) target.focus();
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
      if (this.followed) { this.scaleToFit(); return; }
      try { this.fitAddon.fit(); } catch (error) { /* not laid out yet */ }
    }

    follow(cols, rows) {
      if (!this.followsSize) return;
      this.followed = { cols, rows };
      if (this.term.cols !== cols || this.term.rows !== rows) this.term.resize(cols, rows);
      this.element.dataset.followed = cols + "x" + rows;
      this.scaleToFit();
    }

    scaleToFit() {
      const grid = this.element.querySelector(".xterm");
      const screen = this.element.querySelector(".xterm-screen");
      if (!grid || !screen) return;
      grid.style.transform = "";
      const scale = Math.min(1, this.element.clientWidth / screen.offsetWidth,
        this.element.clientHeight / screen.offsetHeight);
      grid.style.transformOrigin = "top left";
      grid.style.transform = scale < 1 ? "scale(" + scale + ")" : "";
    }

    // -- the connection (static/js/socket.js reconnects) ----------------------------------

    get socket() {
      return this.line ? this.line.socket : null;
    }

    connect() {
      this.line = window.labdeckSocket(this.path, {
        binaryType: "arraybuffer",
        finalCodes: Object.keys(FINAL).map(Number),
        firstDelayMs: BACKOFF_FIRST_MS,
        maxDelayMs: BACKOFF_MAX_MS,
        resetOnOpen: false, // only an attached shell counts: the server may accept, then refuse
        onConnecting: (isRetry) => this.onConnecting(isRetry),
        onOpen: (socket) => this.onOpen(socket),
        onMessage: (message) => this.onMessage(message),
        onRetry: (delay) => this.onRetry(delay),
        onFinal: (event) => this.onFinal(event),
      });
    }

    onConnecting(isRetry) {
      clearTimeout(this.countdownTimer);
      this.freshConnection = true;
      this.paused = false;
      this.unparsed = 0;
      this.setStatus(isRetry ? "Reconnecting…" : "Connecting to your sandbox…", { state: "connecting" });
    }

    onOpen(socket) {
      this.lastHeard = Date.now();
      this.sendControl({ type: "resize", cols: this.term.cols, rows: this.term.rows });
      this.queued.splice(0).forEach((bytes) => socket.send(bytes));
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.keepAlive(socket), PING_EVERY_MS);
    }

    keepAlive(socket) {
      if (socket !== this.socket) return;
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        this.line.drop(); // a silent network drop: browsers may not notice for minutes
        return;
      }
      this.sendControl({ type: "ping" });
    }

    onMessage(message) {
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
      if (message.type === "size") { this.follow(message.cols, message.rows); return; }
      if (message.type !== "status") return; // "pong" only proves the line is alive
      if (message.state === "connected") {
        this.line.healthy();
        this.setStatus("");
        this.showSandboxState("ready", "ready");
        return;
      }
      const shown = message.message || "Your sandbox is " + message.state + "…";
      this.lastWord = shown; // kept for the reconnect countdown when the server closes next
      this.setStatus(shown, { state: message.state });
      this.showSandboxState(message.state, message.state);
    }

    onFinal(event) {
      clearInterval(this.pingTimer);
      this.setStatus(FINAL[event.code], { state: "closed" });
    }

    onRetry(delay) {
      clearInterval(this.pingTimer);
      const why = this.lastWord || "Connection lost.";
      this.lastWord = "";
      const due = Date.now() + delay;
      const tick = () => { // the countdown only: socket.js reconnects
        const seconds = Math.ceil((due - Date.now()) / 1000);
        if (seconds <= 0) return;
        this.setStatus(why + " Reconnecting in " + seconds + " s…", { retry: true, state: "waiting" });
        this.countdownTimer = setTimeout(tick, Math.min(1000, due - Date.now()));
      };
      clearTimeout(this.countdownTimer);
      tick();
    }

    reconnectNow(evenIfFinal) {
      this.line.reconnectNow(evenIfFinal);
    }

    // -- sending --------------------------------------------------------------------------

    sendKeys(bytes) {
      if (this.readOnly) return;
      if (!this.line.send(bytes)) this.queued.push(bytes); // sent as soon as a connection opens
    }

    sendControl(message) {
      if (this.line) this.line.send(JSON.stringify(message));
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
      if (area.getBoundingClientRect().height) area.scrollIntoView({ block: "nearest", behavior: "smooth" });
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
      followsSize: element.dataset.followSize === "true",
    });
  }

  // Seconds the command typed in the terminal has been running, or null at a prompt.
  function commandRunningFor(terminal) {
    return terminal.commandSince === null ? null : Math.round((Date.now() - terminal.commandSince) / 1000);
  }

  function start() {
    const element = document.getElementById("terminal");
    if (!element) return;
    const terminal = mount(element);
    if (!terminal) return;
    window.labdeckTerminalSession = terminal; // for tests and the console
    if (!terminal.readOnly) {
      window.labdeckTerminal = {
        run: (command, interrupt) => terminal.run(command, interrupt),
        commandRunningFor: () => commandRunningFor(terminal),
      };
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
