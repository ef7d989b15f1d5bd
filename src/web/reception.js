/* Reception desk: admit a patient (then show the protocol number, grouped
 * for reading aloud but copied plain, and the ticket large, with a printable
 * receipt), find a patient by protocol, name, document or today's ticket,
 * mark a patient as left. The risk colour is offered only to roles that may
 * classify. */
"use strict";

(() => {
  const { t, h, api, unit, unitName } = Triagem;
  const $ = (id) => document.getElementById(id);
  const U = encodeURIComponent(unit);
  let idempotencyKey = null; // kept until the admission succeeds, so a retry admits nobody twice
  let shown = null; // what the lookup card shows: { protocol } or { q }

  Triagem.setupHeader();

  /** Form fields by the API's `field` of an `invalid` problem. */
  const FIELDS = { name: "name", colour: "colour", complaint: "complaint", arrived_at: "arrived", birth_date: "birth", document: "document" };

  function markInvalid(id) {
    for (const f of Object.values(FIELDS)) $(f).removeAttribute("aria-invalid");
    if (id) {
      $(id).setAttribute("aria-invalid", "true");
      $(id).focus();
    }
  }

  /** A `datetime-local` value (local time) as RFC 3339 UTC. */
  function toRfc3339(local) {
    const d = new Date(local);
    return isNaN(d) ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z");
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

  function showResult(p) {
    $("result-ticket").textContent = p.ticket;
    $("result-protocol").replaceChildren(Triagem.protocolEl(p.protocol));
    $("result-copy").replaceChildren(Triagem.copyButton(p.protocol));
    // Without a colour the chip already says "awaiting triage".
    $("result-who").replaceChildren(h("strong", {}, p.name), Triagem.chip(p.colour), p.colour ? h("span", { class: "muted" }, t("status." + p.status)) : null);
    $("rc-ticket").textContent = p.ticket;
    $("rc-protocol").replaceChildren(Triagem.protocolEl(p.protocol));
    $("rc-name").textContent = p.name;
    $("rc-arrived").textContent = Triagem.fmtDateTime(p.arrived_at);
    $("rc-colour").textContent = Triagem.colourLabel(p.colour);
    $("rc-printed").textContent = Triagem.fmtDateTime(new Date().toISOString());
    $("result").hidden = false;
    $("result").focus();
    $("admit-form").reset();
  }

  // ---- lookup and leave ----
  function row(k, v) {
    return [h("dt", {}, k), h("dd", {}, v)];
  }

  function renderPatient(p) {
    const terminal = p.status === "finished" || p.status === "left";
    const age = Triagem.age(p.birth_date);
    const waiting = p.status === "awaiting_triage" || p.status === "waiting";
    const due = waiting ? Triagem.due(p.due_at) : null;
    const details = h("dl", { class: "facts" },
      row(t("col.ticket"), h("strong", { class: "mono" }, p.ticket)),
      row(t("col.name"), p.name),
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
    const parts = [h("h3", { class: "found-protocol" }, Triagem.protocolEl(p.protocol), Triagem.copyButton(p.protocol)), details];
    if (!terminal) {
      const reason = h("select", { id: "leave-reason" },
        ["lwbs", "cancelled", "error"].map((r) => h("option", { value: r }, t("reason." + r))));
      const button = h("button", { type: "submit", class: "danger" }, t("leave.submit"));
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
            renderPatient(left);
            Triagem.notify(t("leave.done", { ticket: left.ticket }), "ok");
          } catch (e) {
            Triagem.errorTo($("lookup-error"), e);
            button.disabled = false;
          }
        },
      }, h("div", { class: "field" }, h("label", { for: "leave-reason" }, t("leave.reason")), reason), button));
    }
    $("lookup-result").replaceChildren(...parts);
  }

  async function lookup(protocol) {
    Triagem.errorTo($("lookup-error"), null);
    try {
      const p = await api("GET", `/patients/${protocol}`);
      shown = { protocol };
      renderPatient(p);
    } catch (e) {
      shown = null;
      $("lookup-result").replaceChildren();
      Triagem.errorTo($("lookup-error"), e.status === 404 ? Object.assign(e, { words: t("lookup.notfound") }) : e);
    }
  }

  /** Patients of the unit by name (accents and case ignored), document or
   *  today's ticket, latest arrival first. */
  async function find(q) {
    Triagem.errorTo($("lookup-error"), null);
    let list;
    try {
      list = (await api("GET", `/patients?q=${encodeURIComponent(q)}&unit=${U}&limit=50`)).patients || [];
    } catch (e) {
      shown = null;
      $("lookup-result").replaceChildren();
      Triagem.errorTo($("lookup-error"), e);
      return;
    }
    shown = { q };
    const summary = h("p", { class: "muted", role: "status" },
      list.length ? (list.length === 1 ? t("lookup.result.one") : t("lookup.results", { n: list.length })) : t("lookup.none", { q }));
    $("lookup-result").replaceChildren(summary,
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
          h("button", { type: "button", class: "small", "aria-label": t("lookup.open.label", { ticket: p.ticket, name: p.name }), onclick: () => lookup(p.protocol) }, t("lookup.open")));
      })) : "");
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
  $("print").addEventListener("click", () => window.print());
  $("again").addEventListener("click", () => { $("result").hidden = true; $("name").focus(); });
  // Anything typed after a failed admission is a new admission.
  $("admit-form").addEventListener("input", () => { idempotencyKey = null; });

  async function start() {
    document.title = `${unitName} · ${t("reception.title")} · Triagem`;
    try {
      const [{ protocol }] = await Promise.all([Triagem.loadInfo(), Triagem.loadSession()]);
      $("colour").append(...protocol.colours.map((c) =>
        h("option", { value: c.id }, `${c.label} — ${t("target")} ${Triagem.targetText(c.max_wait_seconds)}`)));
      // Risk classification is the nurses': offered only to roles that may triage.
      const classify = Triagem.may("triage");
      $("colour-field").hidden = !classify;
      $("colour").disabled = !classify;
    } catch (e) {
      Triagem.showError(e);
    }
    $("name").focus();
    // What the lookup card shows follows the unit's events.
    const again = Triagem.throttle(() => (shown ? (shown.protocol ? lookup(shown.protocol) : find(shown.q)) : null), 200);
    Triagem.live({
      probe: () => api("GET", "/units"),
      onEvent: again,
      onState: (up) => { $("reconnecting").hidden = up; },
    });
  }
  start();
})();
