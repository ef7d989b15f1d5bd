/* Clinician's queue: the treatment and triage queues with names, ages,
 * colours and time against the target on the target's own clock, live; call
 * next; the unit's rooms and who is in them (from the server, the same on
 * every desk), with start, finish, no-show, recall and classify; re-triage
 * and transfer from the lists; patient search; active alerts with
 * acknowledgement by a named person. A triage view puts the triage queue
 * and its call first. */
"use strict";

(() => {
  const { t, h, api, unit, unitName, storage } = Triagem;
  const $ = (id) => document.getElementById(id);
  const U = encodeURIComponent(unit);
  const ROOM_KEY = `triagem.room.${unit}`;
  const TRIAGE_ROOM_KEY = `triagem.triage-room.${unit}`;
  const VIEW_KEY = `triagem.view.${unit}`;
  const ACK_NAME_KEY = "triagem.ack-name";
  /** Statuses of a patient who is in a room. */
  const IN_ROOM = ["in_triage", "called", "in_treatment"];
  const OUTCOMES = ["discharged", "admitted", "transferred", "deceased"];

  const state = {
    queue: null, triage: null, alerts: null,
    queueError: null, triageError: null, alertsForbidden: false,
    rooms: null, roomsError: null, // patient views of the unit's patients in a room
    view: "treatment",
  };
  const openComplaints = new Set(); // protocols whose long complaint is expanded

  Triagem.setupHeader();
  document.title = `${unitName} · ${t("clinician.title")} · Triagem`;

  const unitInfo = () => Triagem.units.find((u) => u.id === unit) || { rooms: [], triage_rooms: [], max_no_shows: 3 };
  const isLate = (p) => p.overdue || Triagem.due(p.due_at).late;
  const sinceArrival = (p) => t("since.arrival", { d: Triagem.duration(Triagem.since(p.arrived_at)) });

  // ---- dialog for re-triage and transfer ----
  function openDialog(title, fields, submitLabel, onSubmit) {
    const err = h("p", { class: "error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: "primary" }, submitLabel);
    // novalidate: problems are said in the page's words, not the browser's.
    const form = h("form", { method: "dialog", novalidate: true },
      h("h2", { id: "dlg-title" }, title), fields, err,
      h("div", { class: "actions" }, submit,
        h("button", { type: "button", onclick: () => dlg.close() }, t("cancel"))));
    const dlg = h("dialog", { class: "action-dialog", "aria-labelledby": "dlg-title" }, form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      Triagem.errorTo(err, null);
      try {
        await onSubmit(form);
        dlg.close();
        refreshSoon();
      } catch (e) {
        Triagem.errorTo(err, e);
        submit.disabled = false;
      }
    });
    // Back to what opened the dialog when it closes: the same control, or the
    // one with its key if a live redraw replaced it meanwhile.
    const opener = document.activeElement;
    const key = opener?.dataset?.key;
    dlg.addEventListener("close", () => {
      dlg.remove();
      const back = opener?.isConnected ? opener : key && document.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (back && Triagem.focusLost()) back.focus();
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector("input:checked, input, select, textarea");
    if (first) first.focus();
  }

  /** The colours to choose from; none is chosen for a first classification. */
  function colourRadios(current) {
    return h("fieldset", { class: "field colours" },
      h("legend", {}, t("col.colour")),
      h("div", { class: "radios" }, Triagem.protocol.colours.map((c) =>
        h("label", { class: "radio" },
          h("input", { type: "radio", name: "colour", value: c.id, required: true, checked: c.id === current }),
          Triagem.chip(c.id), h("small", {}, `${t("target")} ${Triagem.targetText(c.max_wait_seconds)}`)))));
  }

  function triageDialog(p) {
    const title = t(p.colour ? "retriage.title" : "classify.title", { ticket: p.ticket, name: p.name });
    openDialog(title, [colourRadios(p.colour),
      h("div", { class: "field" }, h("label", { for: "dlg-note" }, t("retriage.note"), " ", h("small", {}, t("admit.optional"))),
        h("textarea", { id: "dlg-note", name: "note", rows: 2, maxlength: 1000 }))],
    t("retriage.submit"), async (form) => {
      if (!form.elements.colour.value) {
        form.querySelector("input[name=colour]").focus();
        throw new Error(t("retriage.choose"));
      }
      const body = { colour: form.elements.colour.value };
      const note = form.elements.note.value.trim();
      if (note) body.note = note;
      const v = await api("POST", `/patients/${p.protocol}/triage`, body);
      place(v);
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
      place(v);
      Triagem.notify(`${v.ticket} → ${(Triagem.units.find((u) => u.id === v.unit) || {}).name || v.unit}`, "ok");
    });
  }

  // ---- queues ----
  /** The name with the age beside it, and the complaint readable in full. */
  function patientCell(p) {
    const age = Triagem.age(p.birth_date);
    return h("td", { class: "patient" },
      h("div", { class: "who" }, h("span", { class: "name" }, p.name), age ? h("span", { class: "age" }, age) : null),
      complaint(p), triageNote(p));
  }

  /** The triage nurse's note, for whoever calls the patient next. */
  function triageNote(p) {
    if (!p.triage_note) return null;
    return h("div", { class: "triage-note" }, h("span", { class: "label" }, t("patient.triage_note") + ": "), p.triage_note);
  }

  /** A complaint in full; a long one opens on demand (and stays open across refreshes). */
  function complaint(p) {
    const text = p.complaint;
    if (!text) return null;
    if (text.length <= 90) return h("div", { class: "complaint" }, text);
    const box = h("details", { class: "complaint", open: openComplaints.has(p.protocol), title: text },
      h("summary", {},
        h("span", { class: "closed" }, text.slice(0, 70).trimEnd() + "… ", h("span", { class: "more" }, t("complaint.more"))),
        h("span", { class: "more open" }, t("complaint.less"))),
      h("p", {}, text));
    box.addEventListener("toggle", () => { if (box.open) openComplaints.add(p.protocol); else openComplaints.delete(p.protocol); });
    return box;
  }

  /** Time against the target on the target's clock (left, or overdue by),
   *  and the time since arrival below it. */
  function dueCell(p) {
    const d = Triagem.due(p.due_at);
    return h("td", { class: "due" },
      h("span", { class: "left" + (d.late ? " late" : ""), "data-due": "" },
        h("span", { class: "ico i-warn", "aria-hidden": "true" }), h("span", { class: "txt" }, d.text)),
      h("span", { class: "since", "data-since": "" }, sinceArrival(p)));
  }

  function queueTable(page, error, kind) {
    if (error) return h("p", { class: "error", title: error.hint ? error.hint() : null }, error.describe ? error.describe() : String(error));
    if (!page) return h("p", { class: "muted" }, t("loading"));
    if (!page.patients.length) return h("p", { class: "empty" }, t("queue.empty"));
    const canTriage = Triagem.may("triage");
    // With one unit there is nowhere to transfer to: no button that can only refuse.
    const canTransfer = Triagem.may("treatment") && Triagem.units.some((u) => u.id !== unit);
    // The first rows only: say so, so nobody takes them for the whole queue.
    const partial = page.total > page.patients.length
      ? h("p", { class: "muted queue-more" }, t("queue.partial", { n: page.patients.length, total: page.total }))
      : null;
    return [partial, h("table", { class: "queue " + kind },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", class: "num" }, t("col.pos")),
        h("th", { scope: "col" }, t("col.ticket")),
        h("th", { scope: "col" }, t("col.patient")),
        kind === "treatment" ? h("th", { scope: "col" }, t("col.colour")) : null,
        h("th", { scope: "col" }, t("col.due")),
        h("th", { scope: "col", class: "acts" }, h("span", { class: "sr-only" }, t("col.actions"))))),
      h("tbody", {}, page.patients.map((p) => h("tr", { class: isLate(p) ? "overdue" : "", dataset: { protocol: p.protocol } },
        h("td", { class: "num" }, p.position),
        h("td", { class: "ticket mono" }, p.ticket),
        patientCell(p),
        kind === "treatment" ? h("td", { class: "colour" }, Triagem.chip(p.colour)) : null,
        dueCell(p),
        h("td", { class: "row-actions" }, h("div", { class: "stack" },
          canTriage ? h("button", { type: "button", class: "small", dataset: { key: p.protocol + ":triage" }, onclick: () => triageDialog(p) }, t(kind === "treatment" ? "retriage" : "active.classify")) : null,
          canTransfer ? h("button", { type: "button", class: "small", dataset: { key: p.protocol + ":transfer" }, onclick: () => transferDialog(p) }, t("transfer")) : null))))))];
  }

  function renderQueues() {
    const nodes = (x) => [].concat(x).filter(Boolean);
    Triagem.rerender($("queue"), nodes(queueTable(state.queue, state.queueError, "treatment")));
    Triagem.rerender($("triage"), nodes(queueTable(state.triage, state.triageError, "triage")));
    $("queue-total").textContent = state.queue ? t("queue.total", { n: state.queue.total }) : "";
    $("triage-total").textContent = state.triage ? t("queue.total", { n: state.triage.total }) : "";
  }

  /** Times move every second without a fetch; a row that just turned
   *  overdue needs its mark, which a single re-render after the loop gives
   *  (one inside it would rebuild the tables once per such row). */
  function tick() {
    let late = false;
    for (const [id, page] of [["queue", state.queue], ["triage", state.triage]]) {
      if (!page) continue;
      // By protocol, not position: the rows drawn may be older than the
      // page fetched (a redraw held while a button is pressed).
      const rows = new Map([...$(id).querySelectorAll("tbody tr")].map((r) => [r.dataset.protocol, r]));
      page.patients.forEach((p) => {
        const row = rows.get(p.protocol);
        if (!row) return;
        const d = Triagem.due(p.due_at);
        row.querySelector("[data-due] .txt").textContent = d.text;
        row.querySelector("[data-since]").textContent = sinceArrival(p);
        if ((d.late || p.overdue) && !row.classList.contains("overdue")) late = true;
      });
    }
    if (late) renderQueues();
    document.querySelectorAll("#active [data-called-at]").forEach((el) => {
      el.textContent = t("since.call", { d: Triagem.duration(Triagem.since(el.dataset.calledAt)) });
    });
  }

  // ---- the unit's rooms ----
  /** Puts a changed patient view into the rooms list at once (the server's
   *  list follows on the next refresh). */
  function place(v) {
    if (!state.rooms) state.rooms = [];
    state.rooms = state.rooms.filter((p) => p.protocol !== v.protocol);
    if (IN_ROOM.includes(v.status) && v.unit === unit) state.rooms.push(v);
    renderRooms();
  }

  function act(p, path, body, message) {
    return async (ev) => {
      const button = ev && ev.currentTarget;
      if (button) button.disabled = true;
      try {
        const v = await api("POST", `/patients/${p.protocol}/${path}`, body);
        place(v);
        Triagem.notify(message ? message(v) : t("active.gone", { ticket: v.ticket, status: t("status." + v.status) }), "ok");
        refreshSoon();
      } catch (e) {
        Triagem.showError(e);
      } finally {
        if (button && button.isConnected) button.disabled = false;
      }
    };
  }

  /** Finishing needs an outcome chosen on purpose, and a confirmation that names it. */
  async function finish(p, select, ev) {
    const button = ev.currentTarget;
    const outcome = select.value;
    if (!outcome) {
      select.setAttribute("aria-invalid", "true");
      Triagem.notify(t("active.outcome.missing"), "error");
      select.focus();
      return;
    }
    select.removeAttribute("aria-invalid");
    const label = t("outcome." + outcome);
    const ok = await Triagem.confirmDialog({
      title: t("finish.title", { ticket: p.ticket }),
      message: t("finish.confirm", { ticket: p.ticket, name: p.name, outcome: label }),
      ok: t("finish.ok", { outcome: label }),
      danger: outcome === "deceased",
      cls: "finish-confirm",
    });
    if (ok) await act(p, "finish", { outcome })({ currentTarget: button });
  }

  /** The no-show that reaches the unit's limit makes the patient leave: said, and confirmed. */
  async function noShow(p, ev) {
    const button = ev.currentTarget;
    const max = unitInfo().max_no_shows || 3;
    const n = (p.no_shows || 0) + 1;
    if (n >= max) {
      const ok = await Triagem.confirmDialog({
        title: t("noshow.title", { ticket: p.ticket }),
        message: t("noshow.confirm", { n, ticket: p.ticket, name: p.name }),
        ok: t("noshow.ok"),
        cls: "noshow-confirm",
      });
      if (!ok) return;
    }
    await act(p, "no-show")({ currentTarget: button });
  }

  function activeCard(p) {
    const actions = [];
    const treat = Triagem.may("treatment");
    const triage = Triagem.may("triage");
    if (p.status === "called" && treat) actions.push(h("button", { type: "button", class: "primary", dataset: { key: p.protocol + ":start" }, onclick: act(p, "start") }, t("active.start")));
    if ((p.status === "called" || p.status === "in_treatment") && treat) {
      const outcome = h("select", { "aria-label": t("active.outcome.label", { ticket: p.ticket }), dataset: { key: p.protocol + ":outcome" }, required: true },
        h("option", { value: "", selected: true }, t("active.outcome.choose")),
        OUTCOMES.map((o) => h("option", { value: o }, t("outcome." + o))));
      outcome.addEventListener("change", () => outcome.removeAttribute("aria-invalid"));
      actions.push(h("span", { class: "finish" }, outcome,
        h("button", { type: "button", dataset: { key: p.protocol + ":finish" }, onclick: (ev) => finish(p, outcome, ev) }, t("active.finish"))));
    }
    if (p.status === "in_triage" && triage) actions.push(h("button", { type: "button", class: "primary", dataset: { key: p.protocol + ":classify" }, onclick: () => triageDialog(p) }, t("active.classify")));
    if ((p.status === "called" || p.status === "in_triage") && triage) {
      actions.push(h("button", { type: "button", dataset: { key: p.protocol + ":recall" }, onclick: act(p, "recall", undefined, (v) => t("call.done", { ticket: v.ticket, room: v.room })) }, t("active.recall")));
      actions.push(h("button", { type: "button", class: "warn", dataset: { key: p.protocol + ":no-show" }, onclick: (ev) => noShow(p, ev) }, t("active.noshow")));
    }
    const age = Triagem.age(p.birth_date);
    const max = unitInfo().max_no_shows || 3;
    return h("article", { class: "active-card " + Triagem.colourClass(p.colour), dataset: { protocol: p.protocol }, "aria-label": `${p.ticket} ${p.name}` },
      h("div", { class: "active-head" },
        h("span", { class: "ticket-mid mono" }, p.ticket),
        h("div", { class: "who-box" },
          h("div", { class: "who" }, h("span", { class: "name" }, p.name), age ? h("span", { class: "age" }, age) : null),
          // Without a colour the status ("in triage") says it all.
          h("div", { class: "meta" }, p.colour ? Triagem.chip(p.colour) : null, h("span", { class: "status" }, t("status." + p.status)),
            p.called_at ? h("span", { class: "since", dataset: { calledAt: p.called_at } }, t("since.call", { d: Triagem.duration(Triagem.since(p.called_at)) })) : null,
            p.no_shows ? h("span", { class: "noshows" }, t("noshow.count", { n: p.no_shows, max })) : null))),
      complaint(p),
      triageNote(p),
      actions.length ? h("div", { class: "actions" }, actions) : null);
  }

  /** The room this desk calls to in its view (highlighted as its own). */
  const myRooms = () => [(state.view === "triage" ? $("triage-room") : $("call-room")).value].filter(Boolean);

  /** The unit's rooms, each with who is in it; the triage rooms first in the
   *  triage view. Patients in a room the configuration no longer lists are
   *  shown under that room too. */
  function roomOrder() {
    const u = unitInfo();
    const triage = u.triage_rooms || [];
    const rooms = [...(u.rooms || [])];
    if (state.view === "triage") rooms.sort((a, b) => triage.includes(b) - triage.includes(a));
    for (const p of state.rooms || []) if (p.room && !rooms.includes(p.room)) rooms.push(p.room);
    return rooms;
  }

  // A card is rebuilt only when what it shows changed, so a live update never
  // resets a chosen outcome or moves the keyboard focus.
  const cards = new Map(); // protocol -> { key, el }
  function cardFor(p) {
    const key = JSON.stringify([p.status, p.room, p.colour, p.ticket, p.name, p.complaint, p.triage_note, p.no_shows, p.called_at, p.birth_date]);
    let c = cards.get(p.protocol);
    if (!c || c.key !== key) {
      c = { key, el: activeCard(p) };
      cards.set(p.protocol, c);
    }
    return c.el;
  }

  const roomBlocks = new Map(); // room -> element
  function renderRooms() {
    const box = $("active");
    if (state.rooms === null) {
      const msg = state.roomsError
        ? h("p", { class: "error", title: state.roomsError.hint ? state.roomsError.hint() : null }, state.roomsError.describe())
        : h("p", { class: "muted" }, t("loading"));
      box.replaceChildren(msg);
      return;
    }
    const mine = myRooms();
    const byRoom = new Map(roomOrder().map((r) => [r, []]));
    const seen = new Set();
    for (const p of state.rooms) {
      seen.add(p.protocol);
      if (!byRoom.has(p.room)) byRoom.set(p.room, []);
      byRoom.get(p.room).push(p);
    }
    for (const k of [...cards.keys()]) if (!seen.has(k)) cards.delete(k);
    const children = [];
    for (const [room, patients] of byRoom) {
      patients.sort((a, b) => Date.parse(a.called_at || 0) - Date.parse(b.called_at || 0));
      const els = patients.map(cardFor);
      const head = h("div", { class: "room-head" },
        h("h3", { class: "room-name" }, room || "—"),
        mine.includes(room) ? h("span", { class: "mine" }, t("rooms.mine")) : null,
        patients.length ? null : h("span", { class: "free" }, t("rooms.free")));
      const headKey = JSON.stringify([room, mine.includes(room), patients.length > 0]);
      let block = roomBlocks.get(room);
      if (!block || block.dataset.head !== headKey) {
        block = h("div", { class: "room" + (patients.length ? "" : " empty") + (mine.includes(room) ? " is-mine" : ""), dataset: { room: room || "", head: headKey } }, head);
        roomBlocks.set(room, block);
      }
      const current = [...block.children].slice(1);
      if (current.length !== els.length || current.some((el, i) => el !== els[i])) {
        const active = document.activeElement;
        const hadFocus = active && block.contains(active) ? active : null;
        Triagem.place(block, [block.firstChild, ...els]);
        if (hadFocus && hadFocus.isConnected) hadFocus.focus({ preventScroll: true });
      }
      children.push(block);
    }
    for (const k of [...roomBlocks.keys()]) if (!byRoom.has(k)) roomBlocks.delete(k);
    const same = children.length === box.children.length && children.every((el, i) => box.children[i] === el);
    if (!same) Triagem.place(box, children);
    $("rooms-total").textContent = t("rooms.count", { n: state.rooms.length });
  }

  async function fetchRooms() {
    try {
      // Page by page: a busy department can have more than a page (50) in
      // rooms, and the longest-staying would otherwise drop off the panel.
      const seen = new Map();
      for (let offset = 0; offset < 5000; offset += 50) {
        const r = await api("GET", `/patients?unit=${U}&status=${IN_ROOM.join(",")}&limit=50&offset=${offset}`);
        for (const p of r.patients) seen.set(p.protocol, p);
        if (r.patients.length < 50) break;
      }
      state.rooms = [...seen.values()].filter((p) => p.unit === unit && IN_ROOM.includes(p.status));
      state.roomsError = null;
    } catch (e) {
      if (e.code === "network" || e.status === 503) throw e;
      state.roomsError = e;
    }
    renderRooms();
  }

  // ---- alerts ----
  // Kept with the token's name it was given under: on a shared ward PC the
  // next clinician, signed in with their own token, is asked again rather
  // than acknowledging under the previous one's name.
  const tokenName = () => (Triagem.session && Triagem.session.name) || "";
  const ackName = () => {
    let kept = null;
    try { kept = JSON.parse(storage.get(ACK_NAME_KEY) || "null"); } catch (_) { kept = null; }
    return kept && kept.token === tokenName() ? kept.name : null;
  };
  async function askAckName() {
    const name = await Triagem.askText({
      title: t("who.title"), intro: t("who.intro"), label: t("who.label"), value: ackName() || "",
      maxlength: 100, submit: t("who.submit"), missing: t("who.missing"),
    });
    if (name) storage.set(ACK_NAME_KEY, JSON.stringify({ name, token: tokenName() }));
    renderAckAs();
    return name;
  }
  function renderAckAs() {
    const box = $("ack-as");
    const name = ackName();
    box.hidden = !name || state.alertsForbidden;
    if (!name) return;
    box.replaceChildren(t("alerts.by", { name }), " · ",
      h("button", { type: "button", class: "link", onclick: askAckName }, t("alerts.by.change")));
  }

  /** The patient of an alert, from the queues, for the deadline. */
  function patientOf(protocol) {
    for (const page of [state.queue, state.triage]) for (const p of page?.patients || []) if (p.protocol === protocol) return p;
    for (const p of state.rooms || []) if (p.protocol === protocol) return p;
    return null;
  }

  /** The level in the page's words: the warning is ours, the ladder's levels
   *  are the configuration's labels (never the internal level names). */
  function levelText(a) {
    if (a.level === 0 || a.kind === "warning") return t("alerts.warning");
    return `${t("alerts.breach")} · ${a.level_label || t("alerts.level", { n: a.level })}`;
  }

  function renderAlerts() {
    const box = $("alerts");
    renderAckAs();
    if (state.alertsForbidden) { box.replaceChildren(h("p", { class: "muted" }, t("alerts.forbidden"))); return; }
    if (!state.alerts) { box.replaceChildren(h("p", { class: "muted" }, t("loading"))); return; }
    $("alerts-total").textContent = state.alerts.length ? String(state.alerts.length) : "";
    if (!state.alerts.length) { box.replaceChildren(h("p", { class: "empty" }, t("alerts.none"))); return; }
    const list = [...state.alerts].sort((a, b) => (b.level - a.level) || Date.parse(a.arrived_at) - Date.parse(b.arrived_at));
    Triagem.rerender(box, [h("ul", { class: "alerts" }, list.map((a) => {
      const acked = a.state === "acknowledged";
      const p = patientOf(a.protocol);
      const d = p ? Triagem.due(p.due_at) : null;
      return h("li", { class: `alert ${a.kind} ${acked ? "acked" : ""}` },
        h("div", { class: "alert-main" },
          h("span", { class: "ticket-sm mono" }, a.ticket),
          Triagem.chip(a.colour),
          h("span", { class: "alert-name" }, p ? p.name : "")),
        h("div", { class: "alert-kind" },
          h("span", { class: "ico " + (a.kind === "warning" ? "i-clock" : "i-warn"), "aria-hidden": "true" }),
          levelText(a),
          // The name in a <bdi> of its own: whatever its direction, it cannot
          // carry the closing parenthesis or the words around it with it.
          ...(acked ? [` (${t("alerts.acknowledged")}${a.acknowledged_by ? ": " : ""}`,
            a.acknowledged_by ? h("bdi", {}, a.acknowledged_by) : null, ")"] : [])),
        h("div", { class: "alert-wait" }, [d ? d.text : null, t("since.arrival", { d: Triagem.duration(Triagem.since(a.arrived_at)) })].filter(Boolean).join(" · ")),
        acked ? null : h("button", {
          type: "button", class: "small", dataset: { key: "alert:" + a.id }, "aria-label": t("alerts.ack.label", { ticket: a.ticket }),
          onclick: async (ev) => {
            const button = ev.currentTarget;
            const by = ackName() || await askAckName();
            if (!by) return;
            const keyboard = document.activeElement === button;
            button.disabled = true;
            try { await api("POST", `/alerts/${a.id}/ack`, { by }); } catch (e) { Triagem.showError(e); }
            await refreshAlerts().catch(() => {});
            // The button is gone (acknowledged) and the focus with it: a
            // keyboard user goes on to the next alert to acknowledge, or the list.
            if (keyboard && Triagem.focusLost()) {
              const next = document.querySelector("#alerts button[data-key^='alert:']:not([disabled])");
              (next || $("alerts")).focus();
            }
          },
        }, t("alerts.ack")));
    }))]);
  }

  async function refreshAlerts() {
    if (state.alertsForbidden) return;
    if (!Triagem.may("alerts")) { state.alertsForbidden = true; renderAlerts(); return; }
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
    } catch (e) {
      if (e.code === "network" || e.status === 503) throw e;
      state[key + "Error"] = e;
    }
  }

  async function refresh() {
    await Promise.all([fetchQueue("treatment"), fetchQueue("triage"), fetchRooms()]);
    renderQueues();
    await refreshAlerts();
  }
  const refreshSoon = Triagem.throttle(() => refresh().catch(() => {}), 120);

  // ---- search ----
  async function search(ev) {
    ev.preventDefault();
    const q = $("search").value.trim();
    if (!q) { $("search").focus(); return; }
    let found;
    try {
      found = await api("GET", `/patients?q=${encodeURIComponent(q)}&unit=${U}&limit=50`);
    } catch (e) { Triagem.showError(e); return; }
    const list = found.patients || [];
    const id = "search-title";
    const dlg = h("dialog", { class: "search-dialog", "aria-labelledby": id },
      h("form", { method: "dialog" },
        h("h2", { id }, t("search.title", { q })),
        h("p", { class: "muted", role: "status" }, list.length ? (list.length === 1 ? t("lookup.result.one") : t("lookup.results", { n: list.length })) : t("lookup.none", { q })),
        list.length >= 50 ? h("p", { class: "muted" }, t("lookup.more")) : null,
        list.length ? h("ul", { class: "results" }, list.map((p) => {
          const age = Triagem.age(p.birth_date);
          const canTriage = Triagem.may("triage") && ["awaiting_triage", "in_triage", "waiting"].includes(p.status);
          return h("li", { class: "result-item" },
            h("span", { class: "ticket-sm mono" }, p.ticket),
            h("div", { class: "result-who" },
              h("div", { class: "who" }, h("span", { class: "name" }, p.name), age ? h("span", { class: "age" }, age) : null),
              h("div", { class: "meta" }, Triagem.chip(p.colour), h("span", {}, t("status." + p.status)),
                p.room ? h("span", {}, p.room) : null,
                h("span", {}, `${t("patient.arrived")} ${Triagem.fmtDateTime(p.arrived_at)}`),
                Triagem.protocolEl(p.protocol, "small"))),
            canTriage ? h("button", { type: "button", class: "small", onclick: () => { dlg.close(); triageDialog(p); } }, t(p.colour ? "retriage" : "active.classify")) : null);
        })) : null,
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("close")))));
    dlg.addEventListener("close", () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
  }

  // ---- calling ----
  /** The rooms for each kind of call, from the unit's configuration: its
   *  `triage_rooms` call the triage queue and the other rooms the treatment
   *  queue. Without triage rooms (or when every room is one) any room may
   *  make either call. */
  function callRooms() {
    const u = unitInfo();
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
    select.addEventListener("change", () => { storage.set(key, select.value); renderRooms(); });
  }

  function colourSummary() {
    const chosen = [...document.querySelectorAll("#call-colours input:checked")].map((i) => Triagem.colourLabel(i.value));
    $("colour-summary").textContent = chosen.length ? chosen.join(", ") : t("call.colours.all");
    $("colour-filter").classList.toggle("filtered", chosen.length > 0);
  }

  async function call(ev, queue) {
    ev.preventDefault();
    const button = ev.submitter || ev.target.querySelector("button[type=submit]");
    const body = { queue, room: (queue === "triage" ? $("triage-room") : $("call-room")).value };
    if (queue === "treatment") {
      const colours = [...document.querySelectorAll("#call-colours input:checked")].map((i) => i.value);
      if (colours.length) body.colours = colours;
    }
    // Disabling the focused button drops the focus to the page: a keyboard
    // user's next Enter would do nothing. It comes back when re-enabled.
    const hadFocus = document.activeElement === button;
    button.disabled = true;
    try {
      const v = await api("POST", `/units/${U}/call`, body);
      if (!v) Triagem.notify(t("call.nobody"), "info");
      else {
        place(v);
        Triagem.notify(t("call.done", { ticket: v.ticket, room: v.room }), "ok");
      }
      refreshSoon();
    } catch (e) {
      Triagem.showError(e);
    } finally {
      button.disabled = false;
      if (hadFocus && Triagem.focusLost()) button.focus();
    }
  }

  // ---- views ----
  /** The triage view puts the triage call and queue first and makes the
   *  treatment call secondary; chosen by `?view=`, else the last choice on
   *  this browser, else the caller's role. */
  function initialView() {
    const asked = new URLSearchParams(location.search).get("view");
    if (asked === "triage" || asked === "treatment") return asked;
    const saved = storage.get(VIEW_KEY);
    if (saved === "triage" || saved === "treatment") return saved;
    return Triagem.session && Triagem.session.role === "triage" ? "triage" : "treatment";
  }

  function setView(view, remember) {
    state.view = view;
    if (remember) storage.set(VIEW_KEY, view);
    const triage = view === "triage";
    document.body.classList.toggle("view-triage", triage);
    $("view-triage").setAttribute("aria-pressed", String(triage));
    $("view-treatment").setAttribute("aria-pressed", String(!triage));
    const groups = $("call-groups");
    const queues = $("queues");
    if (triage) {
      groups.prepend($("triage-call-form"));
      queues.prepend($("triage-card"));
    } else {
      groups.prepend($("call-form"));
      queues.prepend($("treatment-card"));
    }
    $("call-submit").className = triage ? "secondary" : "primary big";
    $("triage-call-submit").className = triage ? "primary big" : "secondary";
    $("skip").href = triage ? "#triage-call-submit" : "#call-submit";
    $("skip").textContent = t(triage ? "call.triage.submit" : "call.submit");
    // The triage role may not call the treatment queue: no button for it.
    $("call-form").hidden = !Triagem.may("treatment");
    $("triage-call-form").hidden = !Triagem.may("triage");
    renderRooms();
  }

  async function start() {
    for (;;) {
      try { await Promise.all([Triagem.loadInfo(), Triagem.loadSession()]); break; } catch (e) {
        if (e.status === 403) { Triagem.wrongToken(); return; }
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
    $("call-colours").addEventListener("change", colourSummary);
    document.addEventListener("click", (ev) => {
      const f = $("colour-filter");
      if (f.open && !f.contains(ev.target)) f.open = false;
    });
    $("call-form").addEventListener("submit", (ev) => call(ev, "treatment"));
    $("triage-call-form").addEventListener("submit", (ev) => call(ev, "triage"));
    $("search-form").addEventListener("submit", search);
    $("view-triage").addEventListener("click", () => setView("triage", true));
    $("view-treatment").addEventListener("click", () => setView("treatment", true));
    setView(initialView(), false);
    renderRooms();
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
