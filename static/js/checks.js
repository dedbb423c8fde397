// Live task checks on the lesson page. The server renders every fragment (one check's <li>, the
// whole task card); this file only puts them in place as "check", "task" and "watch" events
// arrive on /ws/events (through static/js/events.js, the page's one connection). It also asks
// the server to run the lesson's setup script once the page is open.
(function () {
  "use strict";

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function showCheck(event) {
    const list = document.getElementById("checks-" + event.task_id);
    const item = event.html && fragment(event.html);
    if (!list || !item) return;
    if (event.check_index === 0 && event.status === "running") {
      list.replaceChildren();  // a new run starts: the previous results are history
      const notice = document.getElementById("notice-" + event.task_id);
      if (notice) notice.hidden = true;
    }
    const existing = document.getElementById(item.id);
    if (existing) existing.replaceWith(item); else list.appendChild(item);
  }

  function showCard(event) {
    const card = document.getElementById("task-" + event.task_id);
    if (!card || !event.html) return;
    // This page clicked Check: the response to that request brings the same card. One swap
    // only, or the second one (into the replaced card) would take the open hints with it.
    if (card.querySelector(".check-button.htmx-request")) return;
    if (window.htmx) {
      // htmx keeps open hints (hx-preserve) and wires up the new card's buttons.
      window.htmx.swap(card, event.html, { swapStyle: "outerHTML" });
    } else {
      card.replaceWith(fragment(event.html));
    }
  }

  function showWatch(event) {
    const box = document.querySelector("#task-" + event.task_id + " .watch-toggle input");
    if (box) box.checked = Boolean(event.watching);
  }

  function prepareLesson() {
    const lesson = document.getElementById("lesson");
    if (!lesson || !lesson.dataset.lesson) return;
    const token = document.querySelector('meta[name="csrf-token"]');
    fetch("/lessons/" + encodeURIComponent(lesson.dataset.lesson) + "/setup", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": token ? token.content : "" },
    }).then((response) => (response.ok ? response.json() : null))
      .then(showSetupFailure)
      .catch(() => { /* the first Check runs the setup too */ });
  }

  // A setup that failed is said, never passed off as ready (the checks say it too).
  function showSetupFailure(answer) {
    const notice = document.getElementById("setup-notice");
    if (!notice || !answer) return;
    notice.textContent = answer.failed ? answer.message : "";
    notice.hidden = !answer.failed;
  }

  // Check pressed while a command still runs in the terminal (a docker build, say): the
  // results are of that moment, and may contradict each other. The card says so.
  const busySince = {};

  function noteBusyTerminal(event) {
    const button = event.target.closest && event.target.closest(".check-button");
    const terminal = window.labdeckTerminal;
    if (!button || !terminal || !terminal.commandRunningFor) return;
    const card = button.closest(".task-card");
    busySince[card.dataset.task] = terminal.commandRunningFor();
  }

  function sayWorkInProgress(event) {
    const card = event.target.closest && event.target.closest(".task-card");
    if (!card || !(card.dataset.task in busySince)) return;
    const seconds = busySince[card.dataset.task];
    delete busySince[card.dataset.task];
    const notice = document.getElementById("notice-" + card.dataset.task);
    if (seconds === null || !notice || !notice.hidden) return;
    notice.textContent = "A command was still running in your terminal (for " + seconds + " s) when you " +
      "pressed Check: these results are from that moment and may change when it finishes. " +
      "Check again once your prompt is back.";
    notice.classList.add("work-in-progress");
    notice.hidden = false;
  }

  document.addEventListener("htmx:beforeRequest", noteBusyTerminal);
  document.addEventListener("htmx:afterSettle", sayWorkInProgress);
  document.addEventListener("labdeck:check", (event) => showCheck(event.detail));
  document.addEventListener("labdeck:task", (event) => showCard(event.detail));
  document.addEventListener("labdeck:watch", (event) => showWatch(event.detail));
  prepareLesson();
})();
