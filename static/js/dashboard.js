// The instructor's dashboard: live updates over /ws/instructor (no polling), sort and filter in
// the page, and the action buttons. The server renders every fragment (a grid row, the figures,
// the raised hands); this file only puts them in place.
(function () {
  "use strict";

  const UNAUTHORIZED = 4401;
  const FORBIDDEN = 4403;
  const IDLE_SECONDS = 600;
  const VIEW_KEY = "labdeck-dashboard-view";
  const controls = ["filter-text", "filter-show", "filter-lesson", "sort"];

  const byId = (id) => document.getElementById(id);
  const csrfToken = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function replaceById(id, html) {
    const old = byId(id);
    if (old && html) old.replaceWith(fragment(html));
  }

  function replaceParts(html, ids) {
    // The grid's fragment holds the content problems' notice, then the table.
    const template = document.createElement("template");
    template.innerHTML = html;
    for (const id of ids) {
      const old = byId(id);
      const part = template.content.getElementById(id);
      if (old && part) old.replaceWith(part);
    }
  }

  // -- sort and filter ------------------------------------------------------------------------

  function number(row, key) { return Number(row.dataset[key] || 0); }

  const sorters = {
    joined: (a, b) => number(a, "joined") - number(b, "joined") || number(a, "attendee") - number(b, "attendee"),
    name: (a, b) => a.dataset.name.localeCompare(b.dataset.name),
    progress: (a, b) => number(a, "passed") - number(b, "passed"),
    "progress-desc": (a, b) => number(b, "passed") - number(a, "passed"),
    activity: (a, b) => number(a, "activity") - number(b, "activity"),
    hand: (a, b) => (number(a, "hand") || Infinity) - (number(b, "hand") || Infinity),
  };

  function visible(row, view, now) {
    if (view.text && !row.dataset.name.includes(view.text.toLowerCase())) return false;
    if (view.lesson && row.dataset.lesson !== view.lesson) return false;
    switch (view.show) {
      case "hand": return number(row, "hand") > 0;
      case "stuck": return row.dataset.stuck === "1";
      case "idle": return now - number(row, "activity") > IDLE_SECONDS;
      case "no-sandbox": return row.dataset.sandbox !== "ready";
      default: return true;
    }
  }

  function currentView() {
    return {
      text: byId("filter-text").value.trim(),
      show: byId("filter-show").value,
      lesson: byId("filter-lesson").value,
      sort: byId("sort").value,
    };
  }

  function applyView() {
    const body = byId("grid-body");
    if (!body) return;
    const view = currentView();
    const now = Date.now() / 1000;
    const rows = Array.from(body.rows);
    const sorter = sorters[view.sort] || sorters.joined;
    rows.sort((a, b) => sorter(a, b) || number(a, "attendee") - number(b, "attendee"));
    let shown = 0;
    rows.forEach((row) => {
      row.hidden = !visible(row, view, now);
      if (!row.hidden) shown += 1;
      body.appendChild(row);  // moves it: the rows end up in sorted order
    });
    byId("shown-count").textContent = rows.length ? shown + " of " + rows.length + " shown" : "";
    byId("grid-empty").hidden = rows.length > 0;
    sessionStorage.setItem(VIEW_KEY, JSON.stringify(view));
  }

  function restoreView() {
    let saved = {};
    try { saved = JSON.parse(sessionStorage.getItem(VIEW_KEY) || "{}"); } catch (_) { /* fresh view */ }
    if (saved.text) byId("filter-text").value = saved.text;
    if (saved.show) byId("filter-show").value = saved.show;
    if (saved.lesson !== undefined) byId("filter-lesson").value = saved.lesson;
    if (saved.sort) byId("sort").value = saved.sort;
  }

  // -- live updates ---------------------------------------------------------------------------

  function flashCell(row, cause) {
    if (!row || !cause) return;
    const cell = cause.task_id ? row.querySelector('[data-task="' + CSS.escape(cause.task_id) + '"]') : row.querySelector(".who");
    if (cell) cell.classList.add("just-changed");
  }

  function applyUpdate(message) {
    if (message.attendee_id !== undefined) {
      const id = "attendee-" + message.attendee_id;
      const old = byId(id);
      if (message.row) {
        const row = fragment(message.row);
        if (old) old.replaceWith(row); else byId("grid-body").appendChild(row);
        flashCell(row, message.cause);
      } else if (old) {
        old.remove();
      }
    }
    replaceById("figures", message.figures);
    replaceById("hands", message.hands);
    replaceById("summary", message.summary);
    replaceById("locks", message.locks);
    applyView();
  }

  function resync() {
    // One request after a reconnect or a dropped update, never on a timer.
    fetch("/instructor", { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => { if (html) { replaceParts(html, ["content-problems", "grid"]); applyView(); } })
      .catch(() => {});
  }

  function setLive(state, text) {
    const badge = byId("live");
    badge.dataset.state = state;
    badge.textContent = text;
  }

  function connect() {
    window.labdeckSocket("/ws/instructor", {
      finalCodes: [UNAUTHORIZED, FORBIDDEN],
      onOpen(socket, isReconnect) {
        setLive("live", "live");
        if (isReconnect) resync();
      },
      onMessage(event) {
        let message;
        try { message = JSON.parse(event.data); } catch (_) { return; }
        if (message.type === "update") applyUpdate(message);
        else if (message.type === "resync") resync();
      },
      onRetry() { setLive("off", "reconnecting…"); },
      onFinal() { setLive("off", "signed out: reload the page"); },
    });
  }

  // -- actions --------------------------------------------------------------------------------

  function showFlash(html) {
    const area = byId("flash");
    area.innerHTML = html;  // a server-rendered, escaped fragment (instructor/_flash.html)
  }

  function errorText(html, status) {
    const page = new DOMParser().parseFromString(html, "text/html");
    const detail = page.querySelector(".error-page h1 + p, .flash");
    return detail ? detail.textContent : "The portal answered " + status + ".";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), "HX-Request": "true" },
    }).then((response) => response.text().then((html) => {
      if (response.ok || html.includes('class="flash')) { showFlash(html); return response.ok; }
      const line = document.createElement("p");
      line.className = "flash error";
      line.textContent = errorText(html, response.status);
      byId("flash").replaceChildren(line);
      return false;
    })).catch(() => {
      showFlash('<p class="flash error">The portal did not answer; try again.</p>');
      return false;
    });
  }

  // One action menu (template#row-actions) serves every row: "ID" and "NAME" are filled in. It
  // lives in <body> with position: fixed beside its button, so neither the next row nor the
  // grid's scroll box clips it; arrows move between its items, Escape or Tab closes it.
  let openMenuState = null;

  function closeMenus(returnFocus) {
    if (!openMenuState) return;
    const { menu, button } = openMenuState;
    openMenuState = null;
    menu.remove();
    button.setAttribute("aria-expanded", "false");
    if (returnFocus && button.isConnected) button.focus();
  }

  function fillMenu(menu, row) {
    const id = row.dataset.attendee;
    const name = row.querySelector(".name").textContent;
    menu.setAttribute("aria-label", menu.getAttribute("aria-label").replace("NAME", name));
    menu.querySelectorAll("[href]").forEach((link) => { link.href = link.getAttribute("href").replace("ID", id); });
    menu.querySelectorAll("[data-action]").forEach((item) => {
      item.dataset.action = item.dataset.action.replace("ID", id);
      if (item.dataset.confirm) item.dataset.confirm = item.dataset.confirm.replace("NAME", name);
      if (item.dataset.if === "hand" && row.dataset.hand === "0") item.remove();
    });
  }

  function placeMenu(menu, button) {
    const spot = button.getBoundingClientRect();
    menu.style.left = Math.max(4, Math.min(spot.left, window.innerWidth - menu.offsetWidth - 4)) + "px";
    const below = spot.bottom + 2;
    const fits = below + menu.offsetHeight <= window.innerHeight - 4;
    menu.style.top = (fits ? below : Math.max(4, spot.top - menu.offsetHeight - 2)) + "px";
  }

  function menuItems() {
    return openMenuState ? Array.from(openMenuState.menu.querySelectorAll('[role="menuitem"]')) : [];
  }

  function openMenu(button) {
    const row = button.closest("tr");
    const template = byId("row-actions");
    if (!row || !template) return;
    closeMenus(false);
    const menu = template.content.firstElementChild.cloneNode(true);
    fillMenu(menu, row);
    menu.querySelectorAll('[role="menuitem"]').forEach((item) => { item.tabIndex = -1; });
    document.body.appendChild(menu);
    placeMenu(menu, button);
    button.setAttribute("aria-expanded", "true");
    openMenuState = { menu, button };
    menuItems()[0].focus();
  }

  function moveInMenu(event) {
    const items = menuItems();
    const at = items.indexOf(document.activeElement);
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (step) {
      event.preventDefault();
      items[(at + step + items.length) % items.length].focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      items[event.key === "Home" ? 0 : items.length - 1].focus();
    } else if (event.key === "Escape") {
      closeMenus(true);
    } else if (event.key === "Tab") {
      closeMenus(true);
    }
  }

  document.addEventListener("click", (event) => {
    const opener = event.target.closest(".row-menu");
    const wasOpen = opener && openMenuState && openMenuState.button === opener;
    const item = event.target.closest(".row-actions [role=menuitem]");
    if (!item) closeMenus(false);
    if (opener && !wasOpen) { openMenu(opener); return; }
    if (item && item.tagName === "A") { closeMenus(false); return; }  // the link opens as usual
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    closeMenus(false);
    post(button.dataset.action, new FormData());
  });

  document.addEventListener("keydown", (event) => {
    if (openMenuState && openMenuState.menu.contains(document.activeElement)) moveInMenu(event);
    else if (event.key === "Escape") closeMenus(true);
  });
  window.addEventListener("resize", () => closeMenus(false));
  document.addEventListener("scroll", () => closeMenus(false), true);

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-action-form]");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    post(form.action, new FormData(form)).then((ok) => {
      const message = form.querySelector("textarea");
      if (ok && message) message.value = "";
    });
  });

  // -- relative times -------------------------------------------------------------------------

  function ago(seconds) {
    if (seconds < 10) return "just now";
    if (seconds < 60) return Math.round(seconds) + "s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m ago";
    return Math.floor(seconds / 3600) + "h" + String(Math.floor((seconds % 3600) / 60)).padStart(2, "0") + " ago";
  }

  function refreshTimes() {
    const now = Date.now() / 1000;
    document.querySelectorAll(".activity[data-ts]").forEach((cell) => {
      const ts = Number(cell.dataset.ts);
      if (ts) cell.textContent = ago(now - ts);
    });
  }

  controls.forEach((id) => byId(id).addEventListener("input", applyView));
  restoreView();
  applyView();
  setInterval(refreshTimes, 30000);  // local clock only: no request
  connect();
})();
