// Attendee pages: one connection to /ws/events for the page. It shows the instructor's
// broadcasts, keeps the raise-hand button in step when the instructor clears it, and reloads a
// locked-lesson page when the lesson opens. Other scripts can listen too:
//   window.labdeckEvents.on("sandbox", (event) => ...)   or   document "labdeck:sandbox" events.
(function () {
  "use strict";

  const UNAUTHORIZED = 4401;
  const DISMISSED = "labdeck-dismissed-broadcast";
  const listeners = {};

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Page scripts that POST with fetch() (not htmx) carry the CSRF token too (app/csrf.py).
  const plainFetch = window.fetch.bind(window);
  window.fetch = function (resource, init) {
    const options = Object.assign({}, init || {});
    const method = (options.method || (resource instanceof Request ? resource.method : "GET")).toUpperCase();
    const url = new URL(resource instanceof Request ? resource.url : String(resource), location.href);
    if (url.origin === location.origin && !["GET", "HEAD", "OPTIONS"].includes(method)) {
      const headers = new Headers(options.headers || (resource instanceof Request ? resource.headers : undefined));
      if (!headers.has("X-CSRF-Token")) headers.set("X-CSRF-Token", csrfToken());
      options.headers = headers;
    }
    return plainFetch(resource, options);
  };

  // The broadcast shows twice on a lesson page: the toast (#broadcast, server-rendered) and a
  // line above the terminal, its text copied from the toast.
  function mirrorBroadcast() {
    const line = document.getElementById("workbench-broadcast");
    if (!line) return;
    const text = document.querySelector("#broadcast .broadcast-text");
    line.textContent = text ? "From the instructor: " + text.textContent : "";
    line.hidden = !text;
  }

  function showBroadcast(event) {
    const box = document.getElementById("broadcast");
    if (!box || !event.html) return;
    box.innerHTML = event.html;  // rendered and escaped by the server (_partials/broadcast.html)
    mirrorBroadcast();
  }

  function hideDismissedBroadcast() {
    const shown = document.querySelector("#broadcast .broadcast-message");
    if (shown && sessionStorage.getItem(DISMISSED) === shown.dataset.id) shown.remove();
    mirrorBroadcast();
  }

  function refreshHand() {
    const hand = document.getElementById("hand");
    if (!hand) return;
    fetch("/hand", { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        if (!html) return;
        const template = document.createElement("template");
        template.innerHTML = html.trim();
        const fresh = template.content.firstElementChild;
        hand.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
      })
      .catch(() => {});
  }

  function reloadWhenLessonOpens(event) {
    const page = document.querySelector("[data-locked-lesson]");
    if (page && !(event.locked || []).includes(page.dataset.lockedLesson)) location.reload();
  }

  function dispatch(event) {
    (listeners[event.type] || []).forEach((listener) => listener(event));
    document.dispatchEvent(new CustomEvent("labdeck:" + event.type, { detail: event }));
  }

  window.labdeckEvents = {
    on(type, listener) { (listeners[type] = listeners[type] || []).push(listener); },
  };
  window.labdeckEvents.on("broadcast", showBroadcast);
  window.labdeckEvents.on("hand", refreshHand);
  window.labdeckEvents.on("lessons", reloadWhenLessonOpens);

  function connect() {
    window.labdeckSocket("/ws/events", {
      finalCodes: [UNAUTHORIZED],
      onMessage(message) {
        let event;
        try { event = JSON.parse(message.data); } catch (_) { return; }
        if (event && typeof event.type === "string") dispatch(event);
      },
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".broadcast-dismiss");
    if (!button) return;
    const message = button.closest(".broadcast-message");
    if (message) { sessionStorage.setItem(DISMISSED, message.dataset.id); message.remove(); }
    mirrorBroadcast();
  });

  // The attendee's resume link (attendee_nav.html): Copy puts it on the clipboard.
  document.addEventListener("click", (event) => {
    const button = event.target.closest(".copy-resume");
    if (!button) return;
    const field = document.querySelector(button.dataset.copy);
    field.select();
    const done = () => { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).then(done, () => {});
    else { try { document.execCommand("copy"); done(); } catch (_) { /* selected: Ctrl+C works */ } }
  });

  hideDismissedBroadcast();
  connect();
})();
