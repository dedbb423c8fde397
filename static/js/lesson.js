// Lesson page behaviour: Copy and Run buttons on code blocks, and on phones the switch between
// the lesson and the terminal (Run shows the terminal). Run hands the command to the terminal
// (static/js/terminal.js registers window.labdeckTerminal).
(function () {
  "use strict";

  function copyText(text, button) {
    const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1200); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    } else {
      fallbackCopy(text, done);
    }
  }

  function fallbackCopy(text, done) {
    // Plain-http class servers have no async clipboard API; a hidden textarea still works.
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }

  function runCommand(button) {
    const terminal = window.labdeckTerminal;
    const command = button.dataset.command || "";
    if (!terminal) { copyText(command, button); return; }
    showView("terminal");
    terminal.run(command, button.dataset.interrupt === "true");
  }

  // -- phones: the lesson and the terminal take turns (the bar only shows on narrow screens) --

  const VIEW_KEY = "labdeck-view";

  function showView(view) {
    const layout = document.querySelector(".lesson-layout");
    if (!layout) return;
    layout.dataset.view = view;
    document.querySelectorAll(".view-switch [data-view]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.view === view));
    });
    try { sessionStorage.setItem(VIEW_KEY, view); } catch (_) { /* storage off: fine */ }
  }

  function restoreView() {
    let view = "lesson";
    try { view = sessionStorage.getItem(VIEW_KEY) || "lesson"; } catch (_) { /* fine */ }
    showView(view);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".view-switch [data-view]");
    if (!button) return;
    showView(button.dataset.view);
    if (button.dataset.view === "terminal" && window.labdeckTerminalSession) window.labdeckTerminalSession.term.focus();
  });
  document.addEventListener("labdeck:leave-terminal", () => showView("lesson"));
  restoreView();

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".code-block button");
    if (!button) return;
    const block = button.closest(".code-block");
    if (button.classList.contains("copy")) {
      copyText(block.querySelector("pre").innerText.replace(/\n$/, ""), button);
    } else if (button.classList.contains("run")) {
      runCommand(button);
    }
  });
})();
