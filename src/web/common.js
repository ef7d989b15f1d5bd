/* Triagem web pages: what the three pages share.
 * Strings in both languages, the API client (bearer token asked for on a 401
 * and kept in localStorage), storage that survives a browser blocking it,
 * problem+json errors in words, the live event stream with reconnection, a
 * throttle for refreshes, and formatting of colours, waits and times.
 * Plain browser JavaScript, no build step, no framework. */
"use strict";

const Triagem = (() => {
  const STRINGS = {
    "pt-BR": {
      "app": "Triagem",
      "lang.switch": "English",
      "token.change": "Trocar token",
      "token.title": "Acesso",
      "token.intro": "Este serviço exige um token de acesso. Peça-o ao administrador do sistema.",
      "token.label": "Token de acesso",
      "token.submit": "Entrar",
      "token.cancel": "Cancelar",
      "token.required": "Sem um token válido a página não pode consultar o serviço.",
      "reconnecting": "Reconectando…",
      "offline": "Sem conexão com o servidor",
      "loading": "Carregando…",
      "close": "Fechar",
      "triage.queue": "Triagem",
      "unclassified": "Sem classificação",
      "immediate": "imediato",
      "min": "min",
      "hm.compact": "{h}h{m}",
      "lt1min": "< 1 min",
      "target": "meta",
      "overdue": "Atrasado",
      "overdue.one": "1 atrasado",
      "overdue.n": "{n} atrasados",
      "waiting.n": "aguardando",
      "longest": "Maior espera",
      "target.label": "Meta",
      "status.awaiting_triage": "Aguardando triagem",
      "status.in_triage": "Em triagem",
      "status.waiting": "Aguardando atendimento",
      "status.called": "Chamado",
      "status.in_treatment": "Em atendimento",
      "status.finished": "Finalizado",
      "status.left": "Saiu",
      "outcome.discharged": "Alta",
      "outcome.admitted": "Internação",
      "outcome.transferred": "Transferência",
      "outcome.deceased": "Óbito",
      "reason.lwbs": "Saiu sem ser atendido",
      "reason.cancelled": "Cancelado",
      "reason.error": "Registro por engano",
      "reason.no_show": "Não compareceu às chamadas",
      "err.network": "Sem conexão com o servidor. Verifique a rede e tente de novo.",
      "err.malformed": "Pedido mal formado",
      "err.unauthorized": "Token ausente ou inválido",
      "err.forbidden": "Seu perfil não tem permissão para esta ação",
      "err.rate_limited": "Muitos pedidos seguidos; aguarde um instante",
      "err.not_found": "Não encontrado",
      "err.method_not_allowed": "Operação não permitida",
      "err.invalid_transition": "A situação do paciente não permite esta ação",
      "err.too_large": "Dados grandes demais",
      "err.unsupported_media_type": "Formato de dados não aceito",
      "err.invalid": "Dados inválidos",
      "err.unavailable": "O serviço não pode registrar alterações agora; nada foi alterado, tente de novo em instantes",
      "err.other": "Erro do servidor",
      // Display
      "display.title": "Painel de chamadas",
      "display.now": "Chamando agora",
      "display.none": "Aguardando chamadas",
      "display.recent": "Últimas chamadas",
      "display.queues": "Fila de espera",
      "display.room": "Dirija-se a",
      "display.sound.on": "Som ligado",
      "display.sound.off": "Som desligado",
      "display.sound.blocked": "Toque para ativar o som",
      "display.say": "Senha {ticket}, {room}",
      "display.nobody": "ninguém",
      // Reception
      "reception.title": "Recepção",
      "admit.title": "Nova admissão",
      "admit.name": "Nome do paciente",
      "admit.colour": "Classificação de risco",
      "admit.colour.none": "Aguardar triagem (sem classificação)",
      "admit.complaint": "Queixa principal",
      "admit.arrived": "Hora de chegada",
      "admit.arrived.hint": "Em branco: agora",
      "admit.birth": "Data de nascimento",
      "admit.document": "Documento (CPF, RG, CNS)",
      "admit.optional": "opcional",
      "admit.submit": "Admitir paciente",
      "admit.busy": "Admitindo…",
      "admit.done": "Paciente admitido",
      "admit.protocol": "Protocolo",
      "admit.ticket": "Senha",
      "admit.print": "Imprimir comprovante",
      "admit.new": "Nova admissão",
      "admit.future": "A hora de chegada não pode estar no futuro.",
      "receipt.title": "Comprovante de atendimento",
      "receipt.keep": "Guarde este número: ele comprova o seu atendimento.",
      "receipt.wait": "Aguarde ser chamado pela sua senha no painel.",
      "receipt.name": "Paciente",
      "receipt.arrived": "Chegada",
      "receipt.colour": "Classificação",
      "receipt.printed": "Emitido em",
      "lookup.title": "Consultar protocolo",
      "lookup.label": "Número do protocolo (17 dígitos)",
      "lookup.submit": "Consultar",
      "lookup.bad": "O protocolo tem exatamente 17 dígitos.",
      "patient.status": "Situação",
      "patient.unit": "Unidade",
      "patient.arrived": "Chegada",
      "patient.waited": "Espera",
      "patient.position": "Posição na fila",
      "patient.room": "Sala",
      "patient.outcome": "Desfecho",
      "patient.reason": "Motivo da saída",
      "patient.complaint": "Queixa",
      "leave.reason": "Motivo",
      "leave.submit": "Marcar como saiu",
      "leave.confirm": "Confirmar que {ticket} ({name}) saiu?",
      "leave.done": "{ticket} marcado como saiu.",
      // Clinician
      "clinician.title": "Atendimento",
      "call.title": "Chamar próximo",
      "call.room": "Sala",
      "call.colours": "Somente as cores",
      "call.colours.hint": "nenhuma marcada: todas",
      "call.submit": "Chamar próximo",
      "call.triage.title": "Triagem",
      "call.triage.submit": "Chamar para triagem",
      "call.nobody": "Ninguém aguardando nesta fila.",
      "call.done": "{ticket} chamado para {room}.",
      "active.title": "Chamados por mim",
      "active.none": "Nenhum paciente chamado. Use “Chamar próximo”.",
      "active.start": "Iniciar atendimento",
      "active.finish": "Finalizar",
      "active.outcome": "Desfecho",
      "active.noshow": "Não compareceu",
      "active.recall": "Chamar de novo",
      "active.classify": "Classificar",
      "active.forget": "Remover do painel",
      "active.gone": "{ticket}: {status}.",
      "queue.title": "Fila de atendimento",
      "queue.triage.title": "Fila de triagem",
      "queue.empty": "Ninguém aguardando.",
      "queue.total": "{n} aguardando",
      "col.pos": "Nº",
      "col.ticket": "Senha",
      "col.name": "Nome",
      "col.colour": "Cor",
      "col.complaint": "Queixa",
      "col.wait": "Espera / meta",
      "col.actions": "Ações",
      "retriage": "Reclassificar",
      "retriage.title": "Reclassificar {ticket} ({name})",
      "classify.title": "Classificar {ticket} ({name})",
      "retriage.note": "Observação",
      "retriage.submit": "Salvar classificação",
      "transfer": "Transferir",
      "transfer.title": "Transferir {ticket} ({name})",
      "transfer.unit": "Para a unidade",
      "transfer.submit": "Transferir",
      "transfer.none": "Não há outra unidade para onde transferir.",
      "alerts.title": "Alertas ativos",
      "alerts.none": "Nenhum alerta ativo.",
      "alerts.forbidden": "Seu perfil não pode ver alertas.",
      "alerts.ack": "Reconhecer",
      "alerts.warning": "Aviso",
      "alerts.breach": "Tempo estourado",
      "alerts.level": "nível {n}",
      "alerts.acknowledged": "reconhecido",
      "done": "Feito.",
    },
    "en": {
      "app": "Triagem",
      "lang.switch": "Português",
      "token.change": "Change token",
      "token.title": "Sign in",
      "token.intro": "This service needs an access token. Ask the system administrator for one.",
      "token.label": "Access token",
      "token.submit": "Sign in",
      "token.cancel": "Cancel",
      "token.required": "Without a valid token this page cannot reach the service.",
      "reconnecting": "Reconnecting…",
      "offline": "No connection to the server",
      "loading": "Loading…",
      "close": "Close",
      "triage.queue": "Triage",
      "unclassified": "Not classified",
      "immediate": "immediate",
      "min": "min",
      "hm.compact": "{h}h {m}m",
      "lt1min": "< 1 min",
      "target": "target",
      "overdue": "Overdue",
      "overdue.one": "1 overdue",
      "overdue.n": "{n} overdue",
      "waiting.n": "waiting",
      "longest": "Longest wait",
      "target.label": "Target",
      "status.awaiting_triage": "Awaiting triage",
      "status.in_triage": "In triage",
      "status.waiting": "Waiting for a clinician",
      "status.called": "Called",
      "status.in_treatment": "In treatment",
      "status.finished": "Finished",
      "status.left": "Left",
      "outcome.discharged": "Discharged",
      "outcome.admitted": "Admitted",
      "outcome.transferred": "Transferred",
      "outcome.deceased": "Deceased",
      "reason.lwbs": "Left without being seen",
      "reason.cancelled": "Cancelled",
      "reason.error": "Registered by mistake",
      "reason.no_show": "Did not answer the calls",
      "err.network": "No connection to the server. Check the network and try again.",
      "err.malformed": "Malformed request",
      "err.unauthorized": "Missing or invalid token",
      "err.forbidden": "Your role may not do this",
      "err.rate_limited": "Too many requests; wait a moment",
      "err.not_found": "Not found",
      "err.method_not_allowed": "Operation not allowed",
      "err.invalid_transition": "The patient's status does not allow this action",
      "err.too_large": "Data too large",
      "err.unsupported_media_type": "Unsupported data format",
      "err.invalid": "Invalid data",
      "err.unavailable": "The service cannot record changes right now; nothing was changed, try again shortly",
      "err.other": "Server error",
      "display.title": "Call board",
      "display.now": "Now calling",
      "display.none": "Waiting for calls",
      "display.recent": "Recent calls",
      "display.queues": "Waiting",
      "display.room": "Please go to",
      "display.sound.on": "Sound on",
      "display.sound.off": "Sound off",
      "display.sound.blocked": "Click to enable sound",
      "display.say": "Ticket {ticket}, {room}",
      "display.nobody": "nobody",
      "reception.title": "Reception",
      "admit.title": "New admission",
      "admit.name": "Patient name",
      "admit.colour": "Risk classification",
      "admit.colour.none": "Wait for triage (not classified)",
      "admit.complaint": "Chief complaint",
      "admit.arrived": "Arrival time",
      "admit.arrived.hint": "Blank: now",
      "admit.birth": "Date of birth",
      "admit.document": "ID document",
      "admit.optional": "optional",
      "admit.submit": "Admit patient",
      "admit.busy": "Admitting…",
      "admit.done": "Patient admitted",
      "admit.protocol": "Protocol",
      "admit.ticket": "Ticket",
      "admit.print": "Print receipt",
      "admit.new": "New admission",
      "admit.future": "The arrival time cannot be in the future.",
      "receipt.title": "Visit receipt",
      "receipt.keep": "Keep this number: it is the proof of your visit.",
      "receipt.wait": "Wait for your ticket to be called on the screen.",
      "receipt.name": "Patient",
      "receipt.arrived": "Arrival",
      "receipt.colour": "Classification",
      "receipt.printed": "Issued at",
      "lookup.title": "Look up a protocol",
      "lookup.label": "Protocol number (17 digits)",
      "lookup.submit": "Look up",
      "lookup.bad": "A protocol number has exactly 17 digits.",
      "patient.status": "Status",
      "patient.unit": "Unit",
      "patient.arrived": "Arrival",
      "patient.waited": "Waited",
      "patient.position": "Place in queue",
      "patient.room": "Room",
      "patient.outcome": "Outcome",
      "patient.reason": "Reason for leaving",
      "patient.complaint": "Complaint",
      "leave.reason": "Reason",
      "leave.submit": "Mark as left",
      "leave.confirm": "Confirm that {ticket} ({name}) left?",
      "leave.done": "{ticket} marked as left.",
      "clinician.title": "Clinician",
      "call.title": "Call next",
      "call.room": "Room",
      "call.colours": "Only these colours",
      "call.colours.hint": "none ticked: all",
      "call.submit": "Call next",
      "call.triage.title": "Triage",
      "call.triage.submit": "Call to triage",
      "call.nobody": "Nobody is waiting in this queue.",
      "call.done": "{ticket} called to {room}.",
      "active.title": "Called by me",
      "active.none": "No patient called. Use “Call next”.",
      "active.start": "Start treatment",
      "active.finish": "Finish",
      "active.outcome": "Outcome",
      "active.noshow": "No-show",
      "active.recall": "Call again",
      "active.classify": "Classify",
      "active.forget": "Remove from panel",
      "active.gone": "{ticket}: {status}.",
      "queue.title": "Treatment queue",
      "queue.triage.title": "Triage queue",
      "queue.empty": "Nobody waiting.",
      "queue.total": "{n} waiting",
      "col.pos": "#",
      "col.ticket": "Ticket",
      "col.name": "Name",
      "col.colour": "Colour",
      "col.complaint": "Complaint",
      "col.wait": "Wait / target",
      "col.actions": "Actions",
      "retriage": "Re-triage",
      "retriage.title": "Re-triage {ticket} ({name})",
      "classify.title": "Classify {ticket} ({name})",
      "retriage.note": "Note",
      "retriage.submit": "Save classification",
      "transfer": "Transfer",
      "transfer.title": "Transfer {ticket} ({name})",
      "transfer.unit": "To unit",
      "transfer.submit": "Transfer",
      "transfer.none": "There is no other unit to transfer to.",
      "alerts.title": "Active alerts",
      "alerts.none": "No active alerts.",
      "alerts.forbidden": "Your role may not see alerts.",
      "alerts.ack": "Acknowledge",
      "alerts.warning": "Warning",
      "alerts.breach": "Wait exceeded",
      "alerts.level": "level {n}",
      "alerts.acknowledged": "acknowledged",
      "done": "Done.",
    },
  };

  const lang = STRINGS[document.documentElement.lang] ? document.documentElement.lang : "pt-BR";
  const unit = document.body.dataset.unit;
  const unitName = document.body.dataset.unitName;

  /** The string `key` in the page's language, with `{name}` filled from `vars`. */
  function t(key, vars) {
    let s = STRINGS[lang][key] ?? STRINGS["pt-BR"][key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  /** Fills `data-i18n*` attributes under `root`. */
  function translate(root = document) {
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    for (const attr of ["placeholder", "title", "aria-label"]) {
      root.querySelectorAll(`[data-i18n-${attr}]`).forEach((el) => {
        el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
      });
    }
  }

  /** Creates an element: `h("td", {class: "x", onclick: f}, child, "text")`. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // ---- storage ----
  /** localStorage that never throws. A kiosk browser may block site storage
   *  (merely reading `window.localStorage` throws a SecurityError) or refuse
   *  a write (quota, private mode); what it refuses is kept in memory for the
   *  rest of the page's life, so the screen still works, only forgets on reload. */
  const storage = (() => {
    const memory = new Map(); // key -> value (null: removed) that storage refused
    const write = (key, value, op) => {
      try { op(window.localStorage); memory.delete(key); } catch (_) { memory.set(key, value); }
    };
    return {
      get(key) {
        if (memory.has(key)) return memory.get(key);
        try { return window.localStorage.getItem(key); } catch (_) { return null; }
      },
      set(key, value) {
        const v = String(value);
        write(key, v, (s) => s.setItem(key, v));
      },
      remove(key) { write(key, null, (s) => s.removeItem(key)); },
    };
  })();

  // ---- token ----
  const TOKEN_KEY = "triagem.token";
  const getToken = () => storage.get(TOKEN_KEY);
  const setToken = (v) => (v ? storage.set(TOKEN_KEY, v) : storage.remove(TOKEN_KEY));

  let asking = null;
  /** Shows the token dialog once, however many requests are waiting on it. */
  function askToken(reason) {
    if (asking) return asking;
    asking = new Promise((resolve, reject) => {
      const input = h("input", { type: "password", id: "token-input", autocomplete: "current-password", required: true, spellcheck: "false" });
      const err = h("p", { class: "error", role: "alert" }, reason || "");
      const dlg = h("dialog", { class: "token-dialog", "aria-labelledby": "token-title" },
        h("form", { method: "dialog" },
          h("h2", { id: "token-title" }, t("token.title")),
          h("p", {}, t("token.intro")),
          err,
          h("label", { for: "token-input" }, t("token.label")),
          input,
          h("div", { class: "actions" },
            h("button", { type: "submit", value: "ok", class: "primary" }, t("token.submit")),
            h("button", { type: "submit", value: "cancel", formnovalidate: true }, t("token.cancel")))));
      document.body.append(dlg);
      dlg.addEventListener("close", () => {
        const value = input.value.trim();
        dlg.remove();
        asking = null;
        if (dlg.returnValue === "ok" && value) {
          setToken(value);
          const tb = document.getElementById("token-button");
          if (tb) tb.hidden = false;
          resolve(value);
        }
        else reject(new ApiError(401, "unauthorized", t("token.required")));
      });
      dlg.showModal();
      input.focus();
    });
    return asking;
  }

  // ---- API ----
  class ApiError extends Error {
    constructor(status, code, detail, title) {
      super(detail || title || code);
      this.status = status;
      this.code = code;
      this.detail = detail;
      this.title = title;
    }
    /** The error in words, in the page's language, with the server's detail. */
    describe() {
      if (this.code === "network") return t("err.network");
      const head = STRINGS[lang]["err." + this.code] ? t("err." + this.code) : `${t("err.other")} (${this.status})`;
      return this.detail && this.detail !== head ? `${head}: ${this.detail}` : head;
    }
  }

  /** Calls the API: JSON in and out; a problem becomes an ApiError; a 401
   *  asks for a token and tries again. */
  async function api(method, path, body, extraHeaders) {
    for (let attempt = 0; ; attempt++) {
      const headers = { Accept: "application/json", ...(extraHeaders || {}) };
      const token = getToken();
      if (token) headers.Authorization = "Bearer " + token;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let res;
      try {
        res = await fetch("/api/v1" + path, {
          method, headers, cache: "no-store",
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (_) {
        throw new ApiError(0, "network", null);
      }
      if (res.status === 204) return null;
      const text = await res.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
      if (res.ok) return data;
      const p = data || {};
      const error = new ApiError(res.status, p.code || "other", p.detail || text.slice(0, 200), p.title);
      if (res.status === 401 && attempt < 3) {
        if (token) setToken(null);
        await askToken(error.describe());
        continue;
      }
      throw error;
    }
  }

  /** An Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
  function randomKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // ---- messages ----
  let toastTimer = null;
  /** A message in the page's live region; errors stay until replaced. */
  function notify(message, kind = "info") {
    const box = document.getElementById("notice");
    if (!box) return;
    box.className = "notice " + kind;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toastTimer);
    if (kind !== "error") toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }
  function showError(e) {
    notify(e instanceof ApiError ? e.describe() : String(e && e.message || e), "error");
  }

  // ---- live events ----
  const EVENTS = ["admitted", "triaged", "called", "started", "no_show", "finished", "left", "transferred", "alert"];

  /** Follows the unit's event stream. `onEvent(name, data)` for each event,
   *  `onState(up)` when the stream goes down or comes back; before each
   *  (re)connection `probe()` runs (a fetch that also asks for a token on 401
   *  and reloads the page's data). Reconnects by itself with a short backoff. */
  function live({ onEvent, onState, probe }) {
    let es = null;
    let lastId = null;
    let delay = 500;
    let timer = null;
    let up = null;
    const setUp = (v) => {
      document.body.dataset.live = v ? "up" : "down";
      if (v !== up) { up = v; onState(v); }
    };

    async function connect() {
      timer = null;
      try {
        await probe();
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          // The token dialog was dismissed: wait for a reload or a new token.
          showError(e);
          return;
        }
        setUp(false);
        if (e instanceof ApiError && e.code !== "network" && e.status !== 503) showError(e);
        return retry();
      }
      const params = new URLSearchParams();
      const token = getToken();
      if (token) params.set("access_token", token);
      if (lastId) params.set("last_event_id", lastId);
      const qs = params.toString();
      es = new EventSource(`/api/v1/units/${encodeURIComponent(unit)}/events${qs ? "?" + qs : ""}`);
      es.onopen = () => { delay = 500; setUp(true); };
      es.onerror = () => {
        // Take reconnection into our own hands: the browser gives up on a
        // non-200 answer (503 while the service recovers), and we want the
        // data reloaded on the way back.
        es.close();
        es = null;
        setUp(false);
        retry();
      };
      for (const name of EVENTS) {
        es.addEventListener(name, (ev) => {
          if (ev.lastEventId) lastId = ev.lastEventId;
          let data = {};
          try { data = JSON.parse(ev.data); } catch (_) { /* keep {} */ }
          onEvent(name, data);
        });
      }
    }
    function retry() {
      if (timer) return;
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 4000);
    }
    connect();
    return { reconnect() { if (es) { es.close(); es = null; } if (!timer) connect(); } };
  }

  /** Re-renders `container` with `children` keeping keyboard focus: the
   *  element that had it comes back focused if an element with the same
   *  `data-key` is rendered again (live updates must not steal focus). */
  function rerender(container, children) {
    const active = document.activeElement;
    const key = active && container.contains(active) ? active.dataset.key : null;
    container.replaceChildren(...children);
    if (key) {
      const keyed = [...container.querySelectorAll("[data-key]")];
      // The same control, or else another one for the same thing (a patient's next action).
      const again = keyed.find((el) => el.dataset.key === key) ||
        keyed.find((el) => el.dataset.key.split(":")[0] === key.split(":")[0]);
      if (again) again.focus({ preventScroll: true });
    }
  }

  const THROTTLE_HOLD_MS = 10000;
  /** Returns a function that runs `fn` at most once per `ms` however often it
   *  is called, and always once more after the last call of a burst. Not a
   *  debounce: under a steady stream of events less than `ms` apart a
   *  debounce never fires, and the page would never refresh. A run that
   *  returns a promise holds the next one back until it settles, so refreshes
   *  do not overlap (an older answer cannot overwrite a newer one), but for
   *  at most THROTTLE_HOLD_MS, so a hung request cannot stop them. */
  function throttle(fn, ms) {
    let timer = null;     // a run is scheduled; it will see every call before it
    let running = false;  // a run has not settled yet
    let again = false;    // called during that run: run once more after it
    let last = -Infinity; // when the last run started (monotonic: a wall clock
                          // set back would stall the refreshes)
    function run() {
      timer = null;
      running = true;
      last = performance.now();
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(hold);
        running = false;
        if (again) { again = false; schedule(); }
      };
      const hold = setTimeout(settle, THROTTLE_HOLD_MS);
      Promise.resolve().then(fn).finally(settle);
    }
    function schedule() {
      if (running) { again = true; return; }
      if (timer) return;
      timer = setTimeout(run, Math.max(0, last + ms - performance.now()));
    }
    return schedule;
  }

  // ---- protocol, units, formatting ----
  let protocol = { colours: [], triage_max_wait_seconds: 600 };
  let units = [];
  async function loadInfo() {
    [protocol, units] = await Promise.all([api("GET", "/protocol"), api("GET", "/units")]);
    return { protocol, units };
  }
  const colourInfo = (id) => protocol.colours.find((c) => c.id === id);
  const colourLabel = (id) => (id ? (colourInfo(id)?.label ?? id) : t("unclassified"));
  const targetSeconds = (id) => (id ? (colourInfo(id)?.max_wait_seconds ?? 0) : protocol.triage_max_wait_seconds);
  const KNOWN = ["red", "orange", "yellow", "green", "blue", "white", "black", "purple"];

  const colourClass = (id) => (id ? (KNOWN.includes(id) ? "c-" + id : "c-other") : "c-none");

  /** A colour chip: the colour and its written label, always together. */
  function chip(id, extra) {
    return h("span", { class: `chip ${colourClass(id)} ${extra || ""}` }, h("span", { class: "dot", "aria-hidden": "true" }), colourLabel(id));
  }

  /** "< 1 min", "12 min", "1 h 05 min" ("1h05" when `compact`). */
  function duration(seconds, compact) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return t("lt1min");
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} ${t("min")}`;
    if (m % 60 === 0) return `${m / 60} h`;
    const hh = Math.floor(m / 60);
    const mm = String(m % 60).padStart(2, "0");
    return compact ? t("hm.compact", { h: hh, m: mm }) : `${hh} h ${mm} ${t("min")}`;
  }
  const targetText = (seconds, compact) => (seconds === 0 ? t("immediate") : duration(seconds, compact));
  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" }) : "—");
  const fmtDateTime = (iso) => (iso ? new Date(iso).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }) : "—");

  /** The language switch link and the token button in the header. */
  function setupHeader() {
    translate();
    const sw = document.getElementById("lang-switch");
    if (sw) {
      const url = new URL(location.href);
      url.searchParams.set("lang", lang === "en" ? "pt-BR" : "en");
      sw.href = url.pathname + url.search;
      sw.textContent = t("lang.switch");
      sw.lang = lang === "en" ? "pt-BR" : "en";
    }
    const tb = document.getElementById("token-button");
    if (tb) {
      tb.hidden = !getToken(); // only in tokens mode
      tb.addEventListener("click", async () => {
        setToken(null);
        try { await askToken(""); location.reload(); } catch (_) { /* cancelled */ }
      });
    }
  }

  return {
    lang, unit, unitName, t, translate, h, api, ApiError, askToken, getToken, randomKey,
    notify, showError, live, throttle, storage, rerender, loadInfo, chip, colourClass, colourLabel, colourInfo,
    targetSeconds, targetText, duration, fmtTime, fmtDateTime, setupHeader,
    get protocol() { return protocol; }, get units() { return units; },
  };
})();
