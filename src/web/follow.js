/* The patient's follow-up page. The protocol number is in the path, the check
 * code in the URL's fragment (never sent to a server); the page asks the API
 * every few seconds, so a call shows within 5 s, with a vibration and a beep
 * where the phone allows. No token, no storage beyond this tab. */
"use strict";

(() => {
  const REFRESH_MS = 4000;
  const STRINGS = {
    "pt-BR": {
      "lang.other": "English",
      "ticket": "Sua senha",
      "note": "Pacientes em estado mais grave são atendidos primeiro: a estimativa pode mudar.",
      "form.title": "Acompanhe seu atendimento",
      "form.protocol": "Número do protocolo (17 dígitos)",
      "form.code": "Código de verificação (6 caracteres)",
      "form.submit": "Acompanhar",
      "status.awaiting_triage": "Aguardando a classificação de risco",
      "status.in_triage": "Chamado para a classificação de risco",
      "status.waiting": "Aguardando atendimento",
      "status.called": "Chamado para atendimento",
      "status.in_treatment": "Em atendimento",
      "status.finished": "Atendimento concluído",
      "status.left": "Atendimento encerrado",
      "called": "Dirija-se agora a:",
      "ahead.0": "Você é o próximo",
      "ahead.1": "1 pessoa na sua frente",
      "ahead.n": "{n} pessoas na sua frente",
      "estimate": "Espera estimada: entre {low} e {high} min",
      "estimate.none": "Sem estimativa de espera no momento",
      "time.arrived": "Chegada",
      "time.triaged": "Classificação",
      "time.called": "Chamada",
      "time.closed": "Encerramento",
      "time.protocol": "Protocolo",
      "updated": "Atualizado às {time}",
      "err.not_found": "Protocolo ou código não conferem. Confira o comprovante.",
      "err.rate_limited": "Muitas consultas seguidas. Tente de novo em {s} s.",
      "err.malformed": "O protocolo tem 17 dígitos.",
      "err.code": "O código de verificação tem 6 caracteres, impressos no comprovante.",
      "err.network": "Sem conexão. Tentando de novo…",
      "err.other": "Não foi possível consultar agora. Tentando de novo…",
    },
    en: {
      "lang.other": "Português",
      "ticket": "Your ticket",
      "note": "Patients in a more serious condition are seen first: the estimate may change.",
      "form.title": "Follow your visit",
      "form.protocol": "Protocol number (17 digits)",
      "form.code": "Check code (6 characters)",
      "form.submit": "Follow",
      "status.awaiting_triage": "Waiting for the risk assessment",
      "status.in_triage": "Called to the risk assessment",
      "status.waiting": "Waiting to be seen",
      "status.called": "Called to be seen",
      "status.in_treatment": "Being seen",
      "status.finished": "Visit complete",
      "status.left": "Visit closed",
      "called": "Please go now to:",
      "ahead.0": "You are next",
      "ahead.1": "1 person ahead of you",
      "ahead.n": "{n} people ahead of you",
      "estimate": "Estimated wait: {low} to {high} min",
      "estimate.none": "No wait estimate right now",
      "time.arrived": "Arrived",
      "time.triaged": "Assessed",
      "time.called": "Called",
      "time.closed": "Closed",
      "time.protocol": "Protocol",
      "updated": "Updated at {time}",
      "err.not_found": "The protocol number or the code does not match. Check your receipt.",
      "err.rate_limited": "Too many lookups. Try again in {s} s.",
      "err.malformed": "The protocol number has 17 digits.",
      "err.code": "The check code has 6 characters, printed on the receipt.",
      "err.network": "No connection. Trying again…",
      "err.other": "Cannot check right now. Trying again…",
    },
  };
  const lang = document.documentElement.lang === "en" ? "en" : "pt-BR";
  const t = (key, vars = {}) =>
    (STRINGS[lang][key] || key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
  const $ = (id) => document.getElementById(id);

  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  const other = lang === "en" ? "pt-BR" : "en";
  $("lang-switch").textContent = t("lang.other");
  $("lang-switch").href = `?lang=${other}${location.hash}`;

  const digits = (s) => s.replace(/\D/g, "");
  const match = location.pathname.match(/^\/p\/(\d{17})$/);
  const protocol = match ? match[1] : null;
  // A fragment with a stray `%` is not a code, but must not stop the page.
  const code = (() => {
    try { return decodeURIComponent(location.hash.slice(1)).trim(); } catch (_) { return location.hash.slice(1).trim(); }
  })();
  /** Sets an element's text only when it changes: the page is redrawn every
   *  few seconds, and a live region rewritten with the same words would be
   *  read out again each time. */
  const put = (el, text) => { if (el.textContent !== text) el.textContent = text; };

  // Times in the service's zone (the case says which), as on the receipt and
  // the screens, whatever zone the phone is set to.
  let timeZone;
  const fmtTime = (iso) =>
    new Date(iso).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", timeZone });
  const fmtDateTime = (iso) =>
    new Date(iso).toLocaleString(lang, { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", timeZone });

  function showForm(problem) {
    $("case").hidden = true;
    $("form").hidden = false;
    if (protocol) $("protocol").value = protocol;
    if (code) $("code").value = code;
    $("form-error").hidden = !problem;
    $("form-error").textContent = problem || "";
  }

  /** A field the patient must mend: said in the page's words (the browser's
   *  own bubbles would speak the phone's language), marked, and focused. */
  function refuse(field, problem) {
    showForm(problem);
    for (const id of ["protocol", "code"]) {
      if (id === field) $(id).setAttribute("aria-invalid", "true");
      else $(id).removeAttribute("aria-invalid");
    }
    $(field).focus();
  }

  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    const p = digits($("protocol").value);
    if (p.length !== 17) {
      refuse("protocol", t("err.malformed"));
      return;
    }
    const c = $("code").value.trim().toUpperCase();
    if (c.length !== 6) {
      refuse("code", t("err.code"));
      return;
    }
    const query = new URLSearchParams(location.search).get("lang");
    location.assign(`/p/${p}${query ? `?lang=${encodeURIComponent(query)}` : ""}#${encodeURIComponent(c)}`);
    if (p === protocol) location.reload();
  });

  // A call is announced once: vibration and a short tone where the phone
  // allows. Each render notes the call shown (none, or this one, which a
  // recall renews: it moves `updated_at`); what the page opened on is not
  // announced, every call after it is. Noted only in a room, the first call
  // after opening the page was taken for the opening one and kept silent.
  let shown = null;
  function announce(v, inRoom) {
    const key = inRoom ? `${v.status}|${v.called_at}|${v.updated_at}` : "";
    if (shown === key) return;
    const first = shown === null;
    shown = key;
    if (first || !inRoom) return;
    if (navigator.vibrate) navigator.vibrate([400, 150, 400]);
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      // A page open for hours gets many calls: browsers allow only a few contexts.
      osc.onended = () => ctx.close();
      osc.start();
      osc.stop(ctx.currentTime + 0.4);
    } catch (_) { /* no sound without a gesture: the screen still says it */ }
  }

  function render(v) {
    timeZone = v.timezone || timeZone;
    $("form").hidden = true;
    $("problem").hidden = true;
    $("case").hidden = false;
    put($("ticket"), v.ticket);
    put($("unit"), v.unit_name);
    put($("status"), t(`status.${v.status}`));
    const inRoom = v.room && ["in_triage", "called"].includes(v.status);
    if (inRoom) {
      // The words first, then shown: the alert is read out once, with the room.
      put($("called-text"), t("called"));
      put($("room"), v.room);
    }
    announce(v, inRoom);
    $("called").hidden = !inRoom;
    $("colour").hidden = !v.colour;
    if (v.colour) {
      $("colour").dataset.colour = v.colour;
      put($("colour"), v.colour_label);
    }
    $("queue").hidden = v.position == null;
    if (v.position != null) {
      const ahead = v.ahead;
      put($("ahead"), ahead === 0 ? t("ahead.0") : ahead === 1 ? t("ahead.1") : t("ahead.n", { n: ahead }));
      const est = v.estimated_wait;
      put($("estimate"), est
        ? t("estimate", { low: Math.floor(est.low_seconds / 60), high: Math.max(1, Math.ceil(est.high_seconds / 60)) })
        : t("estimate.none"));
    }
    // After the visit, the times are the proof of attendance.
    // Grouped for reading aloud (2026 000000000 0042); never broken across lines.
    put($("protocol-number"), `${v.protocol.slice(0, 4)} ${v.protocol.slice(4, 13)} ${v.protocol.slice(13)}`);
    const rows = [
      ["time.arrived", v.arrived_at && fmtDateTime(v.arrived_at)],
      ["time.triaged", v.triaged_at && fmtDateTime(v.triaged_at)],
      ["time.called", v.called_at && fmtDateTime(v.called_at)],
      ["time.closed", v.closed_at && fmtDateTime(v.closed_at)],
    ].filter(([, value]) => value);
    const list = $("times");
    const shown = JSON.stringify(rows);
    if (list.dataset.shown !== shown) {
      list.dataset.shown = shown;
      list.replaceChildren();
      for (const [key, value] of rows) {
        const dt = document.createElement("dt");
        dt.textContent = t(key);
        const dd = document.createElement("dd");
        dd.textContent = value;
        list.append(dt, dd);
      }
    }
    put($("updated"), t("updated", { time: fmtTime(new Date().toISOString()) }));
  }

  function problem(text) {
    $("problem").hidden = false;
    put($("problem"), text);
  }

  async function refresh() {
    let res;
    try {
      res = await fetch(`/api/v1/track/${protocol}`, {
        headers: { "Triagem-Check-Code": code },
        cache: "no-store",
      });
    } catch (_) {
      problem(t("err.network"));
      return REFRESH_MS;
    }
    if (res.ok) {
      // A body cut off by the network is a failed refresh, not the end of them.
      let view;
      try {
        view = await res.json();
      } catch (_) {
        problem(t("err.network"));
        return REFRESH_MS;
      }
      render(view);
      return REFRESH_MS;
    }
    if (res.status === 429) {
      const s = Number(res.headers.get("Retry-After")) || 60;
      problem(t("err.rate_limited", { s }));
      return s * 1000;
    }
    if (res.status === 404) {
      showForm(t("err.not_found"));
      return null;
    }
    problem(t("err.other"));
    return REFRESH_MS;
  }

  async function loop() {
    let next;
    try {
      next = await refresh();
    } catch (e) {
      // Whatever went wrong, keep following: a call must still show.
      console.error("Triagem follow-up:", e);
      problem(t("err.other"));
      next = REFRESH_MS;
    }
    if (next != null) setTimeout(loop, next);
  }

  // A link mangled on its way (a digit lost, the code cut short) is said at
  // once, in the form's own words, with what it held filled in.
  const linked = location.pathname.match(/^\/p\/([^/]+)$/);
  if (protocol && code && code.length !== 6) {
    refuse("code", t("err.code"));
  } else if (protocol && code) {
    loop();
  } else if (linked && !protocol) {
    $("protocol").value = digits(decodeURIComponent(linked[1]));
    refuse("protocol", t("err.malformed"));
  } else {
    showForm(null);
  }
})();
