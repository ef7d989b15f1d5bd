/* Clinician's queue: the treatment and triage queues with names, colours,
 * waits and overdue marks, live; call next; act on the patients this screen
 * called (start, finish, no-show, recall, classify); re-triage and transfer
 * from the lists; active alerts with acknowledgement. */
"use strict";

(() => {
  const { t, h, api, unit, unitName, storage } = Triagem;
  const $ = (id) => document.getElementById(id);
  const U = encodeURIComponent(unit);
  const ACTIVE_KEY = `triagem.active.${unit}`;
  const ROOM_KEY = `triagem.room.${unit}`;
  const TRIAGE_ROOM_KEY = `triagem.triage-room.${unit}`;

  const state = {
    queue: null, triage: null, alerts: null,
    queueError: null, triageError: null, alertsForbidden: false,
    active: new Map(), // protocol -> patient view, for patients this screen called
    fetchedAt: Date.now(),
    offset: 0, // server clock minus this machine's
  };

  Triagem.setupHeader();
  document.title = `${unitName} · ${t("clinician.title")} · Triagem`;

  const loadActive = () => { try { return JSON.parse(storage.get(ACTIVE_KEY) || "[]"); } catch (_) { return []; } };
  const saveActive = () => storage.set(ACTIVE_KEY, JSON.stringify([...state.active.keys()]));

  const serverNow = () => Date.now() + state.offset;
  const waitedNow = (p) => p.waited_seconds + (Date.now() - state.fetchedAt) / 1000;
  const isOverdue = (p) => p.overdue || serverNow() > Date.parse(p.due_at);

  // ---- dialog for re-triage and transfer ----
  function openDialog(title, fields, submitLabel, onSubmit) {
    const err = h("p", { class: "error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
    const form = h("form", { method: "dialog" },
      h("h2", { id: "dlg-title" }, title), fields, err,
      h("div", { class: "actions" }, submit,
        h("button", { type: "button", onclick: () => dlg.close() }, t("token.cancel"))));
    const dlg = h("dialog", { class: "action-dialog", "aria-labelledby": "dlg-title" }, form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      err.hidden = true;
      try {
        await onSubmit(form);
        dlg.close();
        refreshSoon();
      } catch (e) {
        err.textContent = e.describe ? e.describe() : String(e);
        err.hidden = false;
        submit.disabled = false;
      }
    });
    dlg.addEventListener("close", () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector("input:checked, input, select, textarea");
    if (first) first.focus();
  }

  function colourRadios(current) {
    return h("fieldset", { class: "field colours" },
      h("legend", {}, t("col.colour")),
      h("div", { class: "radios" }, Triagem.protocol.colours.map((c, i) =>
        h("label", { class: "radio" },
          h("input", { type: "radio", name: "colour", value: c.id, required: true, checked: c.id === current || (!current && i === 0) }),
          Triagem.chip(c.id), h("small", {}, `${t("target")} ${Triagem.targetText(c.max_wait_seconds)}`)))));
  }

  function triageDialog(p) {
    const title = t(p.colour ? "retriage.title" : "classify.title", { ticket: p.ticket, name: p.name });
    openDialog(title, [colourRadios(p.colour),
      h("div", { class: "field" }, h("label", { for: "dlg-note" }, t("retriage.note"), " ", h("small", {}, t("admit.optional"))),
        h("textarea", { id: "dlg-note", name: "note", rows: 2, maxlength: 1000 }))],
    t("retriage.submit"), async (form) => {
      const body = { colour: form.elements.colour.value };
      const note = form.elements.note.value.trim();
      if (note) body.note = note;
      const v = await api("POST", `/patients/${p.protocol}/triage`, body);
      if (state.active.has(v.protocol)) state.active.set(v.protocol, v);
      Triagem.notify(`${v.ticket}: ${Triagem.colourLabel(v.colour)}`, "ok");
    });
  }

  function transferDialog(p) {
    const others = Triagem.units.filter((u) => u.id !== unit);
    if (!others.length) { Triagem.notify(t("transfer.none"), "error"); return; }
    openDialog(t("transfer.title", { ticket: p.ticket, name: p.name }), [
      h("div", { class: "field" }, h("label", { for: "dlg-unit" }, t("transfer.unit")),
        h("select", { id: "dlg-unit", name: "unit" }, others.map((u) => h("option", { value: u.id }, u.name))))],
    t("transfer.submit"), async (form) => {
      const v = await api("POST", `/patients/${p.protocol}/transfer`, { unit: form.elements.unit.value });
      Triagem.notify(`${v.ticket} → ${(Triagem.units.find((u) => u.id === v.unit) || {}).name || v.unit}`, "ok");
    });
  }

  // ---- queues ----
  function waitCell(p) {
    const late = isOverdue(p);
    return h("td", { class: "wait" },
      h("strong", { "data-wait": "" }, Triagem.duration(waitedNow(p))),
      h("span", { class: "target" }, ` / ${Triagem.targetText(p.max_wait_seconds)}`),
      late ? h("span", { class: "badge late" }, "⚠ " + t("overdue")) : null);
  }

  function queueTable(page, error, kind) {
    if (error) return h("p", { class: "error" }, error);
    if (!page) return h("p", { class: "muted" }, t("loading"));
    if (!page.patients.length) return h("p", { class: "empty" }, t("queue.empty"));
    return h("table", { class: "queue" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", class: "num" }, t("col.pos")),
        h("th", { scope: "col" }, t("col.ticket")),
        h("th", { scope: "col" }, t("col.name")),
        kind === "treatment" ? h("th", { scope: "col" }, t("col.colour")) : null,
        h("th", { scope: "col" }, t("col.complaint")),
        h("th", { scope: "col" }, t("col.wait")),
        h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("col.actions"))))),
      h("tbody", {}, page.patients.map((p) => h("tr", { class: isOverdue(p) ? "overdue" : "", dataset: { protocol: p.protocol } },
        h("td", { class: "num" }, p.position),
        h("td", { class: "ticket mono" }, p.ticket),
        h("td", { class: "name" }, p.name),
        kind === "treatment" ? h("td", {}, Triagem.chip(p.colour)) : null,
        h("td", { class: "complaint" }, p.complaint || "—"),
        waitCell(p),
        h("td", { class: "row-actions" },
          h("button", { type: "button", class: "small", dataset: { key: p.protocol + ":triage" }, onclick: () => triageDialog(p) }, t(kind === "treatment" ? "retriage" : "active.classify")),
          h("button", { type: "button", class: "small", dataset: { key: p.protocol + ":transfer" }, onclick: () => transferDialog(p) }, t("transfer")))))));
  }

  function renderQueues() {
    Triagem.rerender($("queue"), [queueTable(state.queue, state.queueError, "treatment")]);
    Triagem.rerender($("triage"), [queueTable(state.triage, state.triageError, "triage")]);
    $("queue-total").textContent = state.queue ? t("queue.total", { n: state.queue.total }) : "";
    $("triage-total").textContent = state.triage ? t("queue.total", { n: state.triage.total }) : "";
  }

  /** Waits move every second without a fetch; a row that just turned
   *  overdue needs its mark, which a single re-render after the loop gives
   *  (one inside it would rebuild the tables once per such row). */
  function tick() {
    let late = false;
    for (const [id, page] of [["queue", state.queue], ["triage", state.triage]]) {
      if (!page) continue;
      const rows = $(id).querySelectorAll("tbody tr");
      page.patients.forEach((p, i) => {
        const row = rows[i];
        if (!row) return;
        row.querySelector("[data-wait]").textContent = Triagem.duration(waitedNow(p));
        if (isOverdue(p) && !row.classList.contains("overdue")) late = true;
      });
    }
    if (late) renderQueues();
  }

  // ---- patients called from this screen ----
  const DONE = new Set(["finished", "left", "waiting", "awaiting_triage"]);

  function act(p, path, body, message) {
    return async (ev) => {
      const button = ev.currentTarget;
      button.disabled = true;
      try {
        const v = await api("POST", `/patients/${p.protocol}/${path}`, body);
        track(v);
        Triagem.notify(message ? message(v) : t("active.gone", { ticket: v.ticket, status: t("status." + v.status) }), "ok");
        refreshSoon();
      } catch (e) {
        Triagem.showError(e);
      } finally {
        button.disabled = false;
      }
    };
  }

  function activeCard(p) {
    const actions = [];
    if (p.status === "called") actions.push(h("button", { type: "button", class: "primary", dataset: { key: p.protocol + ":start" }, onclick: act(p, "start") }, t("active.start")));
    if (p.status === "called" || p.status === "in_treatment") {
      const outcome = h("select", { "aria-label": t("active.outcome"), dataset: { key: p.protocol + ":outcome" } },
        ["discharged", "admitted", "transferred", "deceased"].map((o) => h("option", { value: o }, t("outcome." + o))));
      actions.push(h("span", { class: "finish" }, outcome,
        h("button", { type: "button", dataset: { key: p.protocol + ":finish" }, onclick: (ev) => act(p, "finish", { outcome: outcome.value })(ev) }, t("active.finish"))));
    }
    if (p.status === "in_triage") actions.push(h("button", { type: "button", class: "primary", dataset: { key: p.protocol + ":classify" }, onclick: () => triageDialog(p) }, t("active.classify")));
    if (p.status === "called" || p.status === "in_triage") {
      actions.push(h("button", { type: "button", dataset: { key: p.protocol + ":recall" }, onclick: act(p, "recall", undefined, (v) => t("call.done", { ticket: v.ticket, room: v.room })) }, t("active.recall")));
      actions.push(h("button", { type: "button", class: "warn", dataset: { key: p.protocol + ":no-show" }, onclick: act(p, "no-show") }, t("active.noshow")));
    }
    return h("article", { class: "active-card " + Triagem.colourClass(p.colour), dataset: { protocol: p.protocol } },
      h("div", { class: "active-head" },
        h("span", { class: "ticket-mid mono" }, p.ticket),
        h("div", {},
          h("div", { class: "name" }, p.name),
          h("div", { class: "meta" }, Triagem.chip(p.colour), " ", t("status." + p.status), p.room ? ` · ${p.room}` : ""))),
      p.complaint ? h("p", { class: "complaint" }, p.complaint) : null,
      h("div", { class: "actions" }, actions));
  }

  // A card is rebuilt only when what it shows changed, so a live update never
  // resets a chosen outcome or moves the keyboard focus.
  const cards = new Map(); // protocol -> { key, el }
  function renderActive() {
    const list = [...state.active.values()].filter(Boolean);
    const els = list.map((p) => {
      const key = JSON.stringify([p.status, p.room, p.colour, p.ticket, p.name, p.complaint]);
      let c = cards.get(p.protocol);
      if (!c || c.key !== key) {
        c = { key, el: activeCard(p) };
        cards.set(p.protocol, c);
      }
      return c.el;
    });
    for (const k of [...cards.keys()]) if (!state.active.get(k)) cards.delete(k);
    const box = $("active");
    const children = els.length ? els : [h("p", { class: "empty" }, t("active.none"))];
    const same = children.length === box.children.length && children.every((el, i) => box.children[i] === el);
    if (!same) Triagem.rerender(box, children);
  }

  /** Keeps a patient this screen called on its panel until it is done or gone. */
  function track(v) {
    if (DONE.has(v.status) || v.unit !== unit) {
      if (state.active.delete(v.protocol)) {
        Triagem.notify(t("active.gone", { ticket: v.ticket, status: t("status." + v.status) }), "info");
      }
    } else {
      state.active.set(v.protocol, v);
    }
    saveActive();
    renderActive();
  }

  async function refreshActive() {
    await Promise.all([...state.active.keys()].map(async (protocol) => {
      try {
        track(await api("GET", `/patients/${protocol}`));
      } catch (e) {
        if (e.status === 404) { state.active.delete(protocol); saveActive(); renderActive(); }
      }
    }));
  }

  // ---- alerts ----
  function renderAlerts() {
    const box = $("alerts");
    if (state.alertsForbidden) { box.replaceChildren(h("p", { class: "muted" }, t("alerts.forbidden"))); return; }
    if (!state.alerts) { box.replaceChildren(h("p", { class: "muted" }, t("loading"))); return; }
    $("alerts-total").textContent = state.alerts.length ? String(state.alerts.length) : "";
    if (!state.alerts.length) { box.replaceChildren(h("p", { class: "empty" }, t("alerts.none"))); return; }
    const names = new Map();
    for (const page of [state.queue, state.triage]) for (const p of page?.patients || []) names.set(p.protocol, p.name);
    for (const p of state.active.values()) if (p) names.set(p.protocol, p.name);
    const list = [...state.alerts].sort((a, b) => (b.level - a.level) || Date.parse(a.arrived_at) - Date.parse(b.arrived_at));
    Triagem.rerender(box, [h("ul", { class: "alerts" }, list.map((a) => {
      const kind = a.kind === "warning" ? t("alerts.warning") : `${t("alerts.breach")} · ${t("alerts.level", { n: a.level })}`;
      const acked = a.state === "acknowledged";
      return h("li", { class: `alert ${a.kind} ${acked ? "acked" : ""}` },
        h("div", { class: "alert-main" },
          h("span", { class: "ticket-sm mono" }, a.ticket),
          Triagem.chip(a.colour),
          h("span", { class: "alert-name" }, names.get(a.protocol) || "")),
        h("div", { class: "alert-kind" }, (a.kind === "warning" ? "⏱ " : "⚠ ") + kind, a.level_name ? ` — ${a.level_name}` : "",
          acked ? ` (${t("alerts.acknowledged")}${a.acknowledged_by ? ": " + a.acknowledged_by : ""})` : ""),
        h("div", { class: "alert-wait" }, `${Triagem.duration(a.waited_seconds)} / ${Triagem.targetText(a.max_wait_seconds)}`),
        acked ? null : h("button", {
          type: "button", class: "small", dataset: { key: "alert:" + a.id },
          onclick: async (ev) => {
            ev.currentTarget.disabled = true;
            try { await api("POST", `/alerts/${a.id}/ack`); } catch (e) { Triagem.showError(e); }
            refreshAlerts();
          },
        }, t("alerts.ack")));
    }))]);
  }

  async function refreshAlerts() {
    if (state.alertsForbidden) return;
    try {
      state.alerts = await api("GET", `/alerts?unit=${U}`);
    } catch (e) {
      if (e.status === 403) state.alertsForbidden = true;
      else throw e;
    }
    renderAlerts();
  }

  // ---- loading ----
  async function fetchQueue(kind) {
    const key = kind === "treatment" ? "queue" : "triage";
    try {
      const page = await api("GET", `/units/${U}/queue?queue=${kind}&limit=200`);
      state[key] = page;
      state[key + "Error"] = null;
      const p = page.patients[0];
      if (p) state.offset = Date.parse(p.arrived_at) + p.waited_seconds * 1000 - Date.now();
    } catch (e) {
      if (e.code === "network" || e.status === 503) throw e;
      state[key + "Error"] = e.describe();
    }
  }

  async function refresh() {
    const started = Date.now();
    await Promise.all([fetchQueue("treatment"), fetchQueue("triage")]);
    state.fetchedAt = started;
    renderQueues();
    await Promise.all([refreshAlerts(), refreshActive()]);
  }
  const refreshSoon = Triagem.throttle(() => refresh().catch(() => {}), 120);

  // ---- calling ----
  /** The rooms for each kind of call, from the unit's configuration: its
   *  `triage_rooms` call the triage queue and the other rooms the treatment
   *  queue. Without triage rooms (or when every room is one) any room may
   *  make either call. */
  function callRooms() {
    const u = Triagem.units.find((x) => x.id === unit) || {};
    const rooms = u.rooms || [];
    const triage = (u.triage_rooms || []).filter((r) => rooms.includes(r));
    const others = rooms.filter((r) => !triage.includes(r));
    return {
      triage: triage.length ? triage : rooms,
      treatment: triage.length && others.length ? others : rooms,
    };
  }

  /** Fills a room list; the room last chosen on this screen stays chosen. */
  function roomSelect(select, key, rooms) {
    const saved = storage.get(key);
    const chosen = rooms.includes(saved) ? saved : rooms[0];
    select.replaceChildren(...rooms.map((r) => h("option", { value: r, selected: r === chosen }, r)));
    select.addEventListener("change", () => storage.set(key, select.value));
  }

  async function call(ev, queue) {
    ev.preventDefault();
    const button = ev.submitter || ev.target.querySelector("button[type=submit]");
    const body = { queue, room: (queue === "triage" ? $("triage-room") : $("call-room")).value };
    if (queue === "treatment") {
      const colours = [...document.querySelectorAll("#call-colours input:checked")].map((i) => i.value);
      if (colours.length) body.colours = colours;
    }
    button.disabled = true;
    try {
      const v = await api("POST", `/units/${U}/call`, body);
      if (!v) Triagem.notify(t("call.nobody"), "info");
      else {
        track(v);
        Triagem.notify(t("call.done", { ticket: v.ticket, room: v.room }), "ok");
      }
      refreshSoon();
    } catch (e) {
      Triagem.showError(e);
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    for (;;) {
      try { await Triagem.loadInfo(); break; } catch (e) {
        Triagem.showError(e);
        if (e.status === 401) return;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    const rooms = callRooms();
    roomSelect($("call-room"), ROOM_KEY, rooms.treatment);
    roomSelect($("triage-room"), TRIAGE_ROOM_KEY, rooms.triage);
    $("call-colours").replaceChildren(...Triagem.protocol.colours.map((c) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", value: c.id }), Triagem.chip(c.id))));
    $("call-form").addEventListener("submit", (ev) => call(ev, "treatment"));
    $("triage-call-form").addEventListener("submit", (ev) => call(ev, "triage"));
    // Patients called before a reload come back once their views are fetched.
    for (const p of loadActive()) state.active.set(p, null);
    renderActive();
    renderAlerts();
    setInterval(tick, 1000);
    setInterval(() => { if ($("reconnecting").hidden) refresh().catch(() => {}); }, 30000);
    Triagem.live({
      probe: refresh,
      onEvent: refreshSoon,
      onState: (up) => { $("reconnecting").hidden = up; },
    });
  }
  start();
})();
