/* Reception desk: admit a patient, with an optional contact for messages
 * (then show the protocol number, grouped for reading aloud but copied plain,
 * the ticket large, the check code and the QR code of the follow-up link,
 * with a printable receipt that carries them), find a patient by protocol,
 * name, document or today's ticket, mark a patient as left. Whether the
 * patient's messages went out is shown beside the result and the looked-up
 * patient, refreshed on the unit's events and every few seconds while one is
 * being sent. The risk colour is offered only to roles that may classify. */
"use strict";

(() => {
  const { t, h, api, unit, unitName } = Triagem;
  const $ = (id) => document.getElementById(id);
  const U = encodeURIComponent(unit);
  let idempotencyKey = null; // kept until the admission succeeds, so a retry admits nobody twice
  let shown = null; // what the lookup card shows: { protocol } or { q }

  Triagem.setupHeader();

  /** Form fields by the API's `field` of an `invalid` problem. */
  const FIELDS = {
    name: "name", colour: "colour", complaint: "complaint", arrived_at: "arrived", birth_date: "birth", document: "document",
    "contact.phone": "phone", "contact.email": "email",
  };

  function markInvalid(id) {
    for (const f of Object.values(FIELDS)) $(f).removeAttribute("aria-invalid");
    if (id) {
      $(id).setAttribute("aria-invalid", "true");
      $(id).focus();
    }
  }

  /** A `datetime-local` value (local time) as RFC 3339 UTC. */
  /** The field's wall-clock time ("2026-11-28T09:30") read in the service's
   *  zone, as every time on the pages is shown, not in the computer's. */
  function toRfc3339(local) {
    const zone = Triagem.protocol.timezone;
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
    if (!zone || !m) {
      const d = new Date(local);
      return isNaN(d) ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z");
    }
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    // The zone's offset at an instant: its wall clock then, less the instant.
    const offset = (at) => {
      const p = Object.fromEntries(parts.formatToParts(new Date(at)).map((x) => [x.type, x.value]));
      return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - at;
    };
    // Twice, for a time near a change of offset.
    const at = wall - offset(wall - offset(wall));
    return new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  // ---- messages the service can send (config `notifications`) ----
  /** The channels that send something: none when no channel or no event is configured. */
  function channels() {
    const m = Triagem.protocol.messages;
    return m && m.on.length ? m.channels : [];
  }
  /** The channels that reach this contact. */
  const reaching = (contact) => channels().filter((c) => (c === "sms" ? contact.phone : contact.email));
  /** The consent's hint says what would be sent and how, or that nothing is. */
  function consentHint() {
    const m = Triagem.protocol.messages;
    if (!m) return; // the protocol could not be read: no promise either way
    const list = (items) => new Intl.ListFormat(Triagem.lang, { type: "conjunction" }).format(items);
    $("consent-hint").textContent = channels().length
      ? t("contact.consent.hint", {
        channels: list(channels().map((c) => t("contact.channel." + c))),
        what: list(m.on.map((e) => t("contact.consent.what." + e))),
      })
      : t("contact.consent.off");
  }

  // ---- admission ----
  async function admit(ev) {
    ev.preventDefault();
    Triagem.errorTo($("admit-error"), null);
    markInvalid(null);
    const name = $("name").value.trim();
    if (!name) {
      Triagem.errorTo($("admit-error"), t("admit.name.missing"));
      markInvalid("name");
      return;
    }
    const body = { name };
    if (!$("colour").disabled && $("colour").value) body.colour = $("colour").value;
    const complaint = $("complaint").value.trim();
    if (complaint) body.complaint = complaint;
    if ($("arrived").value) {
      const at = toRfc3339($("arrived").value);
      if (at && Date.parse(at) > Date.now() + 5000) {
        Triagem.errorTo($("admit-error"), t("admit.future"));
        markInvalid("arrived");
        return;
      }
      if (at) body.arrived_at = at;
    }
    if ($("birth").value) body.birth_date = $("birth").value;
    const doc = $("document").value.trim();
    if (doc) body.document = doc;
    // A phone as people write it ("+55 (11) 98765-4321"): the API wants E.164.
    const phone = $("phone").value.replace(/[\s().-]/g, "");
    const email = $("email").value.trim();
    const consent = $("consent").checked;
    if (consent && !phone && !email) {
      Triagem.errorTo($("admit-error"), t("contact.consent.nochannel"));
      markInvalid("phone");
      return;
    }
    // Consent with a contact no configured channel reaches would send nothing.
    const only = channels();
    if (consent && only.length === 1 && !reaching({ phone, email }).length) {
      Triagem.errorTo($("admit-error"), t("contact.consent.only." + only[0]));
      markInvalid(only[0] === "sms" ? "phone" : "email");
      return;
    }
    if (phone || email || consent) body.contact = { phone: phone || null, email: email || null, consent };

    const button = $("admit-submit");
    button.disabled = true;
    button.textContent = t("admit.busy");
    idempotencyKey = idempotencyKey || Triagem.randomKey();
    try {
      const p = await api("POST", `/units/${U}/patients`, body, { "Idempotency-Key": idempotencyKey });
      idempotencyKey = null;
      showResult(p);
    } catch (e) {
      Triagem.errorTo($("admit-error"), e);
      if (e.code === "invalid" && FIELDS[e.field]) markInvalid(FIELDS[e.field]);
    } finally {
      button.disabled = false;
      button.textContent = t("admit.submit");
    }
  }

  // ---- receipt: check code and the QR code of the follow-up link ----
  /** Where a patient without a QR reader types the number and code in: the
   *  follow-up page's form, `{host}/p`. */
  function formAddress(followUrl) {
    try {
      const u = new URL(followUrl);
      return `${u.host}/p`;
    } catch (_) {
      return null;
    }
  }

  const qrCache = new Map(); // protocol -> data: URI of its QR code
  /** The QR code of the patient's follow-up link, as a data: URI: the API
   *  needs the page's token, so it is fetched, not linked. */
  async function qrOf(protocol) {
    if (qrCache.has(protocol)) return qrCache.get(protocol);
    const svg = await api("GET", `/patients/${protocol}/qr`, undefined, { Accept: "image/svg+xml" }, { raw: true });
    const bytes = new TextEncoder().encode(svg);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    const uri = "data:image/svg+xml;base64," + btoa(bin);
    qrCache.set(protocol, uri);
    return uri;
  }

  /** Shows the QR code in the images once it is there (decoded, so a print
   *  right after has it); resolves false when it could not be had. */
  async function showQr(p, imgs) {
    try {
      const uri = await qrOf(p.protocol);
      await Promise.all(imgs.map((img) => {
        img.alt = t("receipt.qr", { ticket: p.ticket });
        img.src = uri;
        img.hidden = false;
        return img.decode().catch(() => undefined);
      }));
      return true;
    } catch (e) {
      console.info("Triagem: no QR code for the receipt", e);
      for (const img of imgs) { img.hidden = true; img.removeAttribute("src"); }
      return false;
    }
  }

  let receiptReady = Promise.resolve(true);
  /** Fills the printable receipt with the patient's numbers; the QR code
   *  follows (`receiptReady` settles when it is in). */
  function fillReceipt(p) {
    $("rc-ticket").textContent = p.ticket;
    $("rc-protocol").replaceChildren(Triagem.protocolEl(p.protocol));
    $("rc-code").textContent = p.check_code || "";
    const address = formAddress(p.follow_url);
    $("rc-or").textContent = address ? t("receipt.or", { url: address }) : "";
    $("rc-name").textContent = p.name;
    $("rc-arrived").textContent = Triagem.fmtDateTime(p.arrived_at);
    $("rc-colour").textContent = Triagem.colourLabel(p.colour);
    $("rc-printed").textContent = Triagem.fmtDateTime(new Date().toISOString());
    receiptReady = showQr(p, [$("rc-qr")]);
    return receiptReady;
  }

  async function printReceipt() {
    await receiptReady;
    window.print();
  }

  function showResult(p) {
    $("result-ticket").textContent = p.ticket;
    $("result-protocol").replaceChildren(Triagem.protocolEl(p.protocol));
    $("result-copy").replaceChildren(Triagem.copyButton(p.protocol));
    // Without a colour the chip already says "awaiting triage".
    // (replaceChildren would write a null out as the text "null".)
    $("result-who").replaceChildren(...[h("strong", {}, p.name), Triagem.chip(p.colour),
      p.colour ? h("span", { class: "muted" }, t("status." + p.status)) : null].filter(Boolean));
    $("result-code").textContent = p.check_code || "";
    const address = formAddress(p.follow_url);
    $("result-or").textContent = address ? t("receipt.or", { url: address }) : "";
    $("result-qr").hidden = true;
    fillReceipt(p);
    showQr(p, [$("result-qr")]);
    $("result-messages").replaceChildren(messagesBox(p));
    $("result").hidden = false;
    $("result").focus();
    $("admit-form").reset();
  }

  // ---- how the patient's messages went ----
  const MESSAGES_POLL_MS = 3000;
  const sentMessages = new Map(); // protocol -> the last list seen, so a re-render does not flicker
  const boxes = new Set(); // the message lists on the page, refreshed on the unit's events

  function messageItem(m) {
    const state = ["pending", "delivered", "failed"].includes(m.state) ? m.state : "pending";
    const event = t("messages.event." + m.event);
    const attempts = m.attempts > 1 ? ` (${t("messages.attempts", { n: m.attempts })})` : "";
    return h("li", { class: "msg " + state, dataset: { state, channel: m.channel, event: m.event } },
      h("span", { class: "ico i-msg-" + state, "aria-hidden": "true" }),
      h("span", { class: "msg-what" }, `${t("messages.channel." + m.channel)} · ${event}`),
      h("span", { class: "msg-state" }, t("messages.state." + state) + attempts),
      h("span", { class: "msg-time muted" }, Triagem.fmtTime(m.created_at)));
  }

  /** The messages to a patient and how each went: a box that keeps itself
   *  up to date while it is on the page (every few seconds while one is
   *  still being sent, and on the unit's events). */
  function messagesBox(p) {
    const body = h("div", { class: "msgs-body" });
    const el = h("div", { class: "messages", dataset: { protocol: p.protocol } },
      h("h3", {}, t("messages.title")), body);
    const contact = p.contact;
    if (!contact || (!contact.phone && !contact.email)) {
      body.append(h("p", { class: "muted" }, t("messages.nocontact")));
      return el;
    }
    if (!contact.consent) {
      body.append(h("p", { class: "muted" }, t("messages.noconsent")));
      return el;
    }
    if (Triagem.protocol.messages && !reaching(contact).length) {
      body.append(h("p", { class: "muted" }, t(channels().length ? "messages.unreachable" : "messages.off")));
      return el;
    }
    let timer = null;
    let started = false;
    const draw = (list) => {
      body.replaceChildren(list.length
        ? h("ul", { class: "msgs" }, list.map(messageItem))
        : h("p", { class: "muted" }, t("messages.none")));
    };
    const box = {
      async refresh() {
        if (started && !el.isConnected) { clearTimeout(timer); boxes.delete(box); return; }
        started = true;
        clearTimeout(timer);
        let list;
        try {
          list = (await api("GET", `/patients/${p.protocol}/messages`)) || [];
        } catch (e) {
          body.replaceChildren(h("p", { class: "error" }, t("messages.error")));
          timer = setTimeout(box.refresh, MESSAGES_POLL_MS * 2);
          return;
        }
        sentMessages.set(p.protocol, list);
        draw(list);
        // While one is being sent, ask again soon; otherwise events will say.
        if (list.some((m) => m.state === "pending")) timer = setTimeout(box.refresh, MESSAGES_POLL_MS);
      },
    };
    const known = sentMessages.get(p.protocol);
    if (known) draw(known); else body.append(h("p", { class: "muted" }, t("messages.loading")));
    boxes.add(box);
    setTimeout(box.refresh, 0);
    return el;
  }
  const refreshMessages = Triagem.throttle(() => Promise.all([...boxes].map((b) => b.refresh())), 500);

  // ---- lookup and leave ----
  function row(k, v) {
    return [h("dt", {}, k), h("dd", {}, v)];
  }

  // What the lookup card last drew, and when: a unit's events redraw it, and
  // a redraw of the same patient would close the leave reason's list under
  // the desk's hand and reset its choice.
  const NOTHING_DRAWN = { json: null, protocol: null, at: 0 };
  let drawn = NOTHING_DRAWN;

  /** The card emptied after a failed lookup or search. */
  function clearCard(e) {
    shown = null;
    drawn = NOTHING_DRAWN;
    $("lookup-result").replaceChildren();
    Triagem.errorTo($("lookup-error"), e);
  }

  function renderPatient(p) {
    // The wait grows every second: not a change to redraw for.
    const json = JSON.stringify({ ...p, waited_seconds: null });
    // Unchanged: left as it is, but for a refresh of its times now and then.
    if (json === drawn.json && performance.now() - drawn.at < 30000) return;
    const chosen = drawn.protocol === p.protocol ? $("leave-reason")?.value : null;
    drawn = { json, protocol: p.protocol, at: performance.now() };
    const terminal = p.status === "finished" || p.status === "left";
    const age = Triagem.age(p.birth_date);
    const waiting = p.status === "awaiting_triage" || p.status === "waiting";
    const due = waiting ? Triagem.due(p.due_at) : null;
    const details = h("dl", { class: "facts" },
      row(t("col.ticket"), h("strong", { class: "mono" }, p.ticket)),
      row(t("col.name"), p.name),
      p.check_code ? row(t("patient.code"), h("span", { class: "mono code" }, p.check_code)) : null,
      p.contact && (p.contact.phone || p.contact.email)
        ? row(t("patient.contact"), [p.contact.phone, p.contact.email].filter(Boolean).join(" · ") +
            ` (${t(p.contact.consent ? "contact.yes" : "contact.no")})`)
        : null,
      age ? row(t("patient.age"), age) : null,
      row(t("patient.status"), t("status." + p.status)),
      row(t("col.colour"), Triagem.chip(p.colour)),
      row(t("patient.unit"), (Triagem.units.find((u) => u.id === p.unit) || {}).name || p.unit),
      row(t("patient.arrived"), Triagem.fmtDateTime(p.arrived_at)),
      row(t("patient.waited"), Triagem.duration(p.waited_seconds)),
      due ? row(t("patient.due"), h("span", { class: due.late ? "late-text" : "" }, due.text)) : null,
      p.position ? row(t("patient.position"), p.position) : null,
      p.room ? row(t("patient.room"), p.room) : null,
      p.document ? row(t("patient.document"), p.document) : null,
      p.complaint ? row(t("patient.complaint"), p.complaint) : null,
      p.outcome ? row(t("patient.outcome"), t("outcome." + p.outcome)) : null,
      p.leave_reason ? row(t("patient.reason"), t("reason." + p.leave_reason)) : null);
    const parts = [h("h3", { class: "found-protocol" }, Triagem.protocolEl(p.protocol), Triagem.copyButton(p.protocol)), details,
      messagesBox(p)];
    if (!terminal) {
      parts.push(h("div", { class: "actions reprint" },
        h("button", { type: "button", class: "small", "data-key": "reprint", onclick: () => { fillReceipt(p); printReceipt(); } }, t("receipt.reprint"))));
      const reason = h("select", { id: "leave-reason", "data-key": "leave-reason" },
        ["lwbs", "cancelled", "error"].map((r) => h("option", { value: r }, t("reason." + r))));
      if (chosen) reason.value = chosen;
      const button = h("button", { type: "submit", class: "danger", "data-key": "leave-submit" }, t("leave.submit"));
      parts.push(h("form", {
        class: "inline leave",
        onsubmit: async (ev) => {
          ev.preventDefault();
          const ok = await Triagem.confirmDialog({
            title: t("leave.title"),
            message: t("leave.confirm", { ticket: p.ticket, name: p.name, reason: t("reason." + reason.value) }),
            ok: t("leave.ok"),
            cls: "leave-confirm",
          });
          if (!ok) return;
          button.disabled = true;
          try {
            const left = await api("POST", `/patients/${p.protocol}/leave`, { reason: reason.value });
            if (shown?.protocol === left.protocol) renderPatient(left);
            Triagem.notify(t("leave.done", { ticket: left.ticket }), "ok");
          } catch (e) {
            Triagem.errorTo($("lookup-error"), e);
            button.disabled = false;
          }
        },
      }, h("div", { class: "field" }, h("label", { for: "leave-reason" }, t("leave.reason")), reason), button));
    }
    Triagem.rerender($("lookup-result"), parts);
  }

  // Answers can come back out of order (a refresh on an event, then the
  // desk's next lookup): only the latest request's answer is drawn, or the
  // card would show one patient while the field names another.
  let asked = 0;

  async function lookup(protocol) {
    Triagem.errorTo($("lookup-error"), null);
    shown = { protocol }; // what the card should show, refreshes included
    const mine = ++asked;
    try {
      const p = await api("GET", `/patients/${protocol}`);
      if (mine !== asked) return;
      renderPatient(p);
    } catch (e) {
      if (mine !== asked) return;
      clearCard(e.status === 404 ? Object.assign(e, { words: t("lookup.notfound") }) : e);
    }
  }

  /** Patients of the unit by name (accents and case ignored), document or
   *  today's ticket, latest arrival first. */
  async function find(q) {
    Triagem.errorTo($("lookup-error"), null);
    shown = { q };
    const mine = ++asked;
    let list;
    try {
      list = (await api("GET", `/patients?q=${encodeURIComponent(q)}&unit=${U}&limit=50`)).patients || [];
      if (mine !== asked) return;
    } catch (e) {
      if (mine !== asked) return;
      clearCard(e);
      return;
    }
    drawn = NOTHING_DRAWN;
    const summary = h("p", { class: "muted", role: "status" },
      list.length ? (list.length === 1 ? t("lookup.result.one") : t("lookup.results", { n: list.length })) : t("lookup.none", { q }));
    Triagem.rerender($("lookup-result"), [summary,
      list.length >= 50 ? h("p", { class: "muted" }, t("lookup.more")) : "",
      list.length ? h("ul", { class: "results" }, list.map((p) => {
        const age = Triagem.age(p.birth_date);
        return h("li", { class: "result-item" },
          h("span", { class: "ticket-sm mono" }, p.ticket),
          h("div", { class: "result-who" },
            h("div", { class: "who" }, h("span", { class: "name" }, p.name), age ? h("span", { class: "age" }, age) : null),
            h("div", { class: "meta" }, Triagem.chip(p.colour), h("span", {}, t("status." + p.status)),
              h("span", {}, `${t("patient.arrived")} ${Triagem.fmtDateTime(p.arrived_at)}`),
              p.document ? h("span", {}, `${t("patient.document")} ${p.document}`) : null,
              Triagem.protocolEl(p.protocol, "small"))),
          h("button", { type: "button", class: "small", "aria-label": t("lookup.open.label", { ticket: p.ticket, name: p.name }), "data-key": `${p.protocol}:open`, onclick: () => lookup(p.protocol) }, t("lookup.open")));
      })) : ""]);
  }

  $("lookup-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const raw = $("lookup").value.trim();
    const digits = raw.replace(/[\s.-]/g, "");
    if (/^\d{17}$/.test(digits)) { lookup(digits); return; }
    if (!raw) {
      Triagem.errorTo($("lookup-error"), t("lookup.bad"));
      $("lookup").focus();
      return;
    }
    find(raw);
  });

  $("admit-form").addEventListener("submit", admit);
  // The field stops at 1000 characters: near the end, say so, rather than
  // letting a pasted complaint lose its tail unnoticed.
  const countComplaint = () => {
    const n = $("complaint").value.length;
    const max = $("complaint").maxLength;
    $("complaint-count").hidden = n < max * 0.9;
    $("complaint-count").textContent = t(n >= max ? "admit.complaint.full" : "admit.complaint.count", { n, max });
  };
  $("complaint").addEventListener("input", countComplaint);
  $("admit-form").addEventListener("reset", () => setTimeout(countComplaint));
  $("print").addEventListener("click", printReceipt);
  $("again").addEventListener("click", () => { $("result").hidden = true; $("name").focus(); });
  // Anything typed after a failed admission is a new admission.
  $("admit-form").addEventListener("input", () => { idempotencyKey = null; });

  async function start() {
    document.title = `${unitName} · ${t("reception.title")} · Triagem`;
    try {
      const [{ protocol }] = await Promise.all([Triagem.loadInfo(), Triagem.loadSession()]);
      // A display's token reads what the desk reads, but admits nobody: said
      // now, not after a patient's details were typed.
      if (!Triagem.may("admit")) {
        Triagem.wrongToken();
        return;
      }
      $("colour").append(...protocol.colours.map((c) =>
        h("option", { value: c.id }, `${c.label} — ${t("target")} ${Triagem.targetText(c.max_wait_seconds)}`)));
      // Risk classification is the nurses': offered only to roles that may triage.
      const classify = Triagem.may("triage");
      $("colour-field").hidden = !classify;
      $("colour").disabled = !classify;
      consentHint();
    } catch (e) {
      if (e.status === 403) {
        Triagem.wrongToken();
        return;
      }
      Triagem.showError(e);
    }
    $("name").focus();
    // What the lookup card shows follows the unit's events.
    const again = Triagem.throttle(() => (shown ? (shown.protocol ? lookup(shown.protocol) : find(shown.q)) : null), 200);
    Triagem.live({
      probe: () => api("GET", "/units"),
      onEvent: () => { again(); refreshMessages(); },
      onState: (up) => { $("reconnecting").hidden = up; },
    });
  }
  start();
})();
