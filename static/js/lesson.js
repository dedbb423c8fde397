// Lesson page behaviour: Copy and Run buttons on code blocks.
// Run hands the command to the terminal (static/js/terminal.js registers window.labdeckTerminal).
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
    terminal.run(command, button.dataset.interrupt === "true");
  }

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
