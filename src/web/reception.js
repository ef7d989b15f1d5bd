/* Reception desk: admit a patient (then show the protocol number and ticket
 * large, with a printable receipt), look a protocol up, mark a patient as left. */
"use strict";

(() => {
  const { t, h, api, unit, unitName } = Triagem;
  const $ = (id) => document.getElementById(id);
  let idempotencyKey = null; // kept until the admission succeeds, so a retry admits nobody twice
  let shown = null; // the protocol shown in the lookup card

  Triagem.setupHeader();

  function fieldError(id, message) {
    const p = $(id);
    p.textContent = message || "";
    p.hidden = !message;
  }

  /** A `datetime-local` value (local time) as RFC 3339 UTC. */
  function toRfc3339(local) {
    const d = new Date(local);
    return isNaN(d) ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  // ---- admission ----
  async function admit(ev) {
    ev.preventDefault();
    fieldError("admit-error", "");
    const name = $("name").value.trim();
    if (!name) {
      fieldError("admit-error", `${t("err.invalid")}: ${t("admit.name")}`);
      $("name").setAttribute("aria-invalid", "true");
      $("name").focus();
      return;
    }
    $("name").removeAttribute("aria-invalid");
    const body = { name };
    if ($("colour").value) body.colour = $("colour").value;
    const complaint = $("complaint").value.trim();
    if (complaint) body.complaint = complaint;
    if ($("arrived").value) {
      const at = toRfc3339($("arrived").value);
      if (at && Date.parse(at) > Date.now() + 5000) {
        fieldError("admit-error", t("admit.future"));
        $("arrived").focus();
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
      const p = await api("POST", `/units/${encodeURIComponent(unit)}/patients`, body, { "Idempotency-Key": idempotencyKey });
      idempotencyKey = null;
      showResult(p);
    } catch (e) {
      fieldError("admit-error", e.describe ? e.describe() : String(e));
    } finally {
      button.disabled = false;
      button.textContent = t("admit.submit");
    }
  }

  function showResult(p) {
    $("result-ticket").textContent = p.ticket;
    $("result-protocol").textContent = p.protocol;
    $("result-who").replaceChildren(h("strong", {}, p.name), Triagem.chip(p.colour), h("span", { class: "muted" }, t("status." + p.status)));
    $("rc-ticket").textContent = p.ticket;
    $("rc-protocol").textContent = p.protocol;
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
    const details = h("dl", { class: "facts" },
      row(t("col.ticket"), h("strong", { class: "mono" }, p.ticket)),
      row(t("col.name"), p.name),
      row(t("patient.status"), t("status." + p.status)),
      row(t("col.colour"), Triagem.chip(p.colour)),
      row(t("patient.unit"), (Triagem.units.find((u) => u.id === p.unit) || {}).name || p.unit),
      row(t("patient.arrived"), Triagem.fmtDateTime(p.arrived_at)),
      row(t("patient.waited"), Triagem.duration(p.waited_seconds)),
      p.position ? row(t("patient.position"), p.position) : null,
      p.room ? row(t("patient.room"), p.room) : null,
      p.complaint ? row(t("patient.complaint"), p.complaint) : null,
      p.outcome ? row(t("patient.outcome"), t("outcome." + p.outcome)) : null,
      p.leave_reason ? row(t("patient.reason"), t("reason." + p.leave_reason)) : null);
    const parts = [h("h3", {}, h("span", { class: "mono" }, p.protocol)), details];
    if (!terminal) {
      const reason = h("select", { id: "leave-reason" },
        ["lwbs", "cancelled", "error"].map((r) => h("option", { value: r }, t("reason." + r))));
      const button = h("button", { type: "submit", class: "danger" }, t("leave.submit"));
      parts.push(h("form", {
        class: "inline leave",
        onsubmit: async (ev) => {
          ev.preventDefault();
          if (!confirm(t("leave.confirm", { ticket: p.ticket, name: p.name }))) return;
          button.disabled = true;
          try {
            const left = await api("POST", `/patients/${p.protocol}/leave`, { reason: reason.value });
            renderPatient(left);
            Triagem.notify(t("leave.done", { ticket: left.ticket }), "ok");
          } catch (e) {
            fieldError("lookup-error", e.describe());
            button.disabled = false;
          }
        },
      }, h("div", { class: "field" }, h("label", { for: "leave-reason" }, t("leave.reason")), reason), button));
    }
    $("lookup-result").replaceChildren(...parts);
  }

  async function lookup(protocol) {
    fieldError("lookup-error", "");
    try {
      const p = await api("GET", `/patients/${protocol}`);
      shown = protocol;
      renderPatient(p);
    } catch (e) {
      shown = null;
      $("lookup-result").replaceChildren();
      fieldError("lookup-error", e.describe());
    }
  }

  $("lookup-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("lookup").value.replace(/\D/g, "");
    if (v.length !== 17) {
      fieldError("lookup-error", t("lookup.bad"));
      $("lookup").focus();
      return;
    }
    lookup(v);
  });

  $("admit-form").addEventListener("submit", admit);
  $("print").addEventListener("click", () => window.print());
  $("again").addEventListener("click", () => { $("result").hidden = true; $("name").focus(); });
  // Anything typed after a failed admission is a new admission.
  $("admit-form").addEventListener("input", () => { idempotencyKey = null; });

  async function start() {
    document.title = `${unitName} · ${t("reception.title")} · Triagem`;
    try {
      const { protocol } = await Triagem.loadInfo();
      $("colour").append(...protocol.colours.map((c) =>
        h("option", { value: c.id }, `${c.label} — ${t("target")} ${Triagem.targetText(c.max_wait_seconds)}`)));
    } catch (e) {
      Triagem.showError(e);
    }
    $("name").focus();
    // A looked-up patient's status follows the unit's events.
    const again = Triagem.throttle(() => (shown ? lookup(shown) : null), 200);
    Triagem.live({
      probe: () => api("GET", "/units"),
      onEvent: again,
      onState: (up) => { $("reconnecting").hidden = up; },
    });
  }
  start();
})();
