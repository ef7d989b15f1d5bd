/* Reports for a nurse manager: the standard ED measures of a period
 * (docs/reports.md) for one unit, from GET /api/v1/reports/summary and
 * /daily (a monitor's or admin's token in tokens mode), with the CSV of
 * /summary.csv to download. A period picker (today, the last 7 days, last
 * month, a range), the measures as cards whose definition shows on hover and
 * focus, and charts drawn here as SVG (no library): within target per colour
 * against 100 %, wait percentiles per colour against the colour's target,
 * the days of the period, and arrivals by weekday and hour. Every colour is
 * also written out and carries its own pattern, so nothing is told by colour
 * alone; the page prints on A4. */
"use strict";

(() => {
  const { t, h, api, unit, unitName, lang } = Triagem;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  Triagem.addStrings({
    "pt-BR": {
      "rp.nav": "Relatórios",
      "rp.title": "Indicadores do pronto atendimento",
      "rp.skip": "Ir para as medidas",
      "rp.csv": "Baixar CSV",
      "rp.csv.label": "Baixar CSV com as medidas do período",
      "rp.print": "Imprimir",
      "rp.period": "Período",
      "rp.today": "Hoje",
      "rp.7d": "Últimos 7 dias",
      "rp.month": "Mês passado",
      "rp.custom": "Outro período",
      "rp.from": "De",
      "rp.to": "Até",
      "rp.apply": "Ver período",
      "rp.range": "{from} a {to}",
      "rp.period.line": "{range} · visitas que chegaram no período, contadas na unidade onde foram admitidas · horário de {tz}",
      "rp.loading": "Carregando…",
      "rp.generated": "Gerado em {time}. Percentis pelo posto mais próximo: o p90 é o menor valor com pelo menos 90 % dos valores iguais ou abaixo dele. Definições completas em docs/reports.md.",
      "rp.forbidden": "Seu perfil não pode ver relatórios. Use “Sair” e entre com um token de gestão (perfil monitor ou admin).",
      "rp.custom.missing": "Escolha as duas datas do período.",
      "rp.custom.reversed": "A data inicial deve ser igual ou anterior à final.",
      "err.invalid.from": "A data inicial deve ser igual ou anterior à final.",
      "err.invalid.to": "Período longo demais: no máximo 366 dias.",
      "rp.measures": "Medidas do período",
      "rp.measures.hint": "Passe o mouse ou o foco do teclado sobre uma medida para ver a sua definição.",
      "rp.median": "mediana",
      "rp.stat.sub": "p90 {p90} · p95 {p95} · {n} visitas",
      "rp.stat.sub.one": "p90 {p90} · p95 {p95} · {n} visita",
      "rp.stat.none": "nenhuma visita no período",
      "rp.stat.none.ack": "nenhum alerta reconhecido no período",
      "rp.of": "{n} de {total} pacientes",
      "rp.of.one": "{n} de {total} paciente",
      "rp.lwbs.sub": "{before} antes da classificação · {after} depois",
      "m.arrivals": "Chegadas",
      "m.arrivals.def": "Visitas que chegaram no período (dias locais) nesta unidade, onde foram admitidas, qualquer que tenha sido o seu destino depois.",
      "m.within": "Atendidos dentro da meta",
      "m.within.def": "Dos pacientes chamados para atendimento (ou que saíram sem ser atendidos), os chamados dentro do tempo máximo da sua cor, como estava configurado quando foram classificados; todas as cores juntas (auditoria do Protocolo de Manchester). Quem saiu sem ser atendido não foi atendido dentro da meta; cancelados, registros por engano e quem ainda espera não contam.",
      "m.triage": "Porta → classificação",
      "m.triage.def": "Da chegada à primeira classificação de risco (NHS, tempo até a avaliação inicial). Para quem foi classificado na admissão, o tempo entre a chegada registrada e a admissão. Quem nunca foi classificado não conta.",
      "m.provider": "Porta → atendimento",
      "m.provider.def": "Da chegada à primeira chamada para atendimento (CMS OP-20, porta ao profissional). A chamada para a sala de triagem não conta; quem nunca foi chamado para atendimento também não.",
      "m.lwbs": "Saíram sem atendimento",
      "m.lwbs.def": "Visitas que saíram com o motivo “saiu sem ser atendido” ou por faltar às chamadas além do limite, sobre as chegadas (CMS OP-22), separadas por antes e depois da classificação. Cancelamentos e registros por engano não contam.",
      "m.los_discharged": "Permanência até a alta",
      "m.los_discharged.def": "Da chegada ao desfecho registrado, para as visitas finalizadas com alta (CMS OP-18; padrão de 4 horas do NHS). Visitas ainda em curso não contam.",
      "m.los_admitted": "Permanência até a internação",
      "m.los_admitted.def": "Da chegada ao desfecho registrado, para as visitas finalizadas com internação no hospital (CMS OP-18). Visitas ainda em curso não contam.",
      "m.ack": "Tempo até reconhecer um alerta",
      "m.ack.def": "Do primeiro estouro de tempo de um alerta (nível 1) ao seu reconhecimento num nível de estouro, para as visitas do período (medida local de qualidade). Avisos reconhecidos antes de estourar e estouros nunca reconhecidos não contam.",
      "rp.chart.target": "Atendidos dentro da meta, por cor",
      "rp.chart.target.sub": "Proporção dos pacientes de cada cor chamados dentro do tempo máximo, contra 100 %.",
      "rp.chart.waits": "Espera até a chamada, por cor",
      "rp.chart.waits.sub": "Mediana, 90º e 95º percentis de cada cor, contra a meta da cor (linha tracejada); o trecho hachurado passou da meta. Cada cor tem a sua escala, escrita sob as barras.",
      "rp.scale": "escala: 0 a {d}",
      "rp.chart.daily": "Dia a dia",
      "rp.chart.daily.sub": "Chegadas por dia (barras) e proporção atendida dentro da meta (linha com pontos).",
      "rp.chart.heatmap": "Chegadas por dia da semana e hora",
      "rp.chart.heatmap.sub": "Quantas chegadas houve em cada hora de cada dia da semana (hora local), para a escala de pessoal.",
      "rp.table": "Por cor",
      "rp.col.colour": "Cor",
      "rp.col.patients": "Pacientes",
      "rp.col.within": "Dentro da meta",
      "rp.col.ratio": "%",
      "rp.col.median": "Mediana",
      "rp.col.p90": "P90",
      "rp.col.p95": "P95",
      "rp.col.target": "Meta",
      "rp.no.patients": "sem pacientes no período",
      "rp.no.calls": "sem chamadas no período",
      "rp.target.line": "meta {d}",
      "rp.over": "acima da meta",
      "rp.within.row": "{label}: {ratio} ({n} de {total})",
      "rp.within.none": "{label}: sem pacientes",
      "rp.waits.row": "{label}: mediana {median}, p90 {p90}, p95 {p95}; meta {target}",
      "rp.waits.none": "{label}: sem chamadas",
      "rp.calls": "{n} chamados",
      "rp.calls.one": "{n} chamado",
      "rp.p50": "Mediana",
      "rp.p90": "P90",
      "rp.p95": "P95",
      "rp.arrivals": "Chegadas",
      "rp.ratio": "Dentro da meta",
      "rp.daily.desc": "{days} dias, {total} chegadas (de {min} a {max} por dia); dentro da meta: {ratios}.",
      "rp.daily.ratios": "de {min} a {max}",
      "rp.daily.noratio": "nenhum paciente julgado",
      "rp.day.point": "{day}: {n} chegadas, {ratio} dentro da meta",
      "rp.heat.cell": "{day}, {hour}h: {n} chegadas",
      "rp.heat.desc": "{total} chegadas; o horário mais cheio foi {day} às {hour}h, com {n}.",
      "rp.heat.empty": "Nenhuma chegada no período.",
      "rp.heat.missing": "Este servidor ainda não informa as chegadas por hora (campo arrivals_by_hour do resumo).",
      "rp.heat.legend": "chegadas na hora",
      "rp.hour": "hora",
    },
    en: {
      "rp.nav": "Reports",
      "rp.title": "Emergency department measures",
      "rp.skip": "Skip to the measures",
      "rp.csv": "Download CSV",
      "rp.csv.label": "Download CSV of the period's measures",
      "rp.print": "Print",
      "rp.period": "Period",
      "rp.today": "Today",
      "rp.7d": "Last 7 days",
      "rp.month": "Last month",
      "rp.custom": "Custom range",
      "rp.from": "From",
      "rp.to": "To",
      "rp.apply": "Show period",
      "rp.range": "{from} to {to}",
      "rp.period.line": "{range} · visits that arrived in the period, counted in the unit where they were admitted · {tz} time",
      "rp.loading": "Loading…",
      "rp.generated": "Generated at {time}. Nearest-rank percentiles: p90 is the smallest value with at least 90 % of the values at or below it. Full definitions in docs/reports.md.",
      "rp.forbidden": "Your role may not see reports. Use “Sign out” and sign in with a manager's token (role monitor or admin).",
      "rp.custom.missing": "Choose both dates of the period.",
      "rp.custom.reversed": "The first date must be on or before the last.",
      "err.invalid.from": "The first date must be on or before the last.",
      "err.invalid.to": "Period too long: at most 366 days.",
      "rp.measures": "The period's measures",
      "rp.measures.hint": "Hover over a measure, or move the keyboard focus to it, to see its definition.",
      "rp.median": "median",
      "rp.stat.sub": "p90 {p90} · p95 {p95} · {n} visits",
      "rp.stat.sub.one": "p90 {p90} · p95 {p95} · {n} visit",
      "rp.stat.none": "no visit in the period",
      "rp.stat.none.ack": "no alert acknowledged in the period",
      "rp.of": "{n} of {total} patients",
      "rp.of.one": "{n} of {total} patient",
      "rp.lwbs.sub": "{before} before triage · {after} after",
      "m.arrivals": "Arrivals",
      "m.arrivals.def": "Visits that arrived in the period (local days) in this unit, where they were admitted, whatever happened to them later.",
      "m.within": "Seen within target",
      "m.within.def": "Of the patients called to treatment (or who left unseen), those called within their colour's maximum wait as configured when they were classified; all colours together (Manchester Triage audit). A patient who left unseen was not seen within target; cancellations, registrations in error and patients still waiting are left out.",
      "m.triage": "Door to triage",
      "m.triage.def": "Arrival to the first risk classification (NHS time to initial assessment). For a patient classified at admission, the time between the recorded arrival and the admission. Visits never classified are left out.",
      "m.provider": "Door to provider",
      "m.provider.def": "Arrival to the first call to treatment (CMS OP-20, door to a qualified professional). A call to the triage room does not count; visits never called to treatment are left out.",
      "m.lwbs": "Left without being seen",
      "m.lwbs.def": "Visits that left with the reason “left without being seen”, or after missing too many calls, over the arrivals (CMS OP-22), split by before and after triage. Cancellations and registrations in error are left out.",
      "m.los_discharged": "Length of stay, discharged",
      "m.los_discharged.def": "Arrival to the recorded outcome, for visits finished as discharged (CMS OP-18; NHS 4-hour standard). Visits still going on are left out.",
      "m.los_admitted": "Length of stay, admitted",
      "m.los_admitted.def": "Arrival to the recorded outcome, for visits finished as admitted to the hospital (CMS OP-18). Visits still going on are left out.",
      "m.ack": "Time to acknowledge an alert",
      "m.ack.def": "The first breach of an alert (level 1) to its acknowledgement at a breach level, for the period's visits (a local quality measure). Warnings acknowledged before any breach and breaches never acknowledged are left out.",
      "rp.chart.target": "Seen within target, by colour",
      "rp.chart.target.sub": "The share of each colour's patients called within the maximum wait, against 100 %.",
      "rp.chart.waits": "Wait to the call, by colour",
      "rp.chart.waits.sub": "Median, 90th and 95th percentiles of each colour against the colour's target (dashed line); the hatched part is over the target. Each colour has its own scale, written under its bars.",
      "rp.scale": "scale: 0 to {d}",
      "rp.chart.daily": "Day by day",
      "rp.chart.daily.sub": "Arrivals per day (bars) and the share seen within target (line with dots).",
      "rp.chart.heatmap": "Arrivals by weekday and hour",
      "rp.chart.heatmap.sub": "How many patients arrived in each hour of each weekday (local time), for staffing.",
      "rp.table": "By colour",
      "rp.col.colour": "Colour",
      "rp.col.patients": "Patients",
      "rp.col.within": "Within target",
      "rp.col.ratio": "%",
      "rp.col.median": "Median",
      "rp.col.p90": "P90",
      "rp.col.p95": "P95",
      "rp.col.target": "Target",
      "rp.no.patients": "no patients in the period",
      "rp.no.calls": "no calls in the period",
      "rp.target.line": "target {d}",
      "rp.over": "over the target",
      "rp.within.row": "{label}: {ratio} ({n} of {total})",
      "rp.within.none": "{label}: no patients",
      "rp.waits.row": "{label}: median {median}, p90 {p90}, p95 {p95}; target {target}",
      "rp.waits.none": "{label}: no calls",
      "rp.calls": "{n} called",
      "rp.p50": "Median",
      "rp.p90": "P90",
      "rp.p95": "P95",
      "rp.arrivals": "Arrivals",
      "rp.ratio": "Within target",
      "rp.daily.desc": "{days} days, {total} arrivals ({min} to {max} a day); within target: {ratios}.",
      "rp.daily.ratios": "{min} to {max}",
      "rp.daily.noratio": "no patient judged",
      "rp.day.point": "{day}: {n} arrivals, {ratio} within target",
      "rp.heat.cell": "{day}, {hour}:00: {n} arrivals",
      "rp.heat.desc": "{total} arrivals; the busiest hour was {day} at {hour}:00, with {n}.",
      "rp.heat.empty": "No arrivals in the period.",
      "rp.heat.missing": "This server does not give arrivals by hour yet (the summary's arrivals_by_hour field).",
      "rp.heat.legend": "arrivals in the hour",
      "rp.hour": "hour",
    },
  });

  Triagem.setupHeader();
  document.title = `${unitName} · ${t("rp.nav")} · Triagem`;

  // ---- formatting ----
  const pct = (r, digits = 0) => (r == null ? "—" : new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: digits }).format(r));
  const num = (n) => new Intl.NumberFormat(lang).format(n);
  const dur = (s) => (s == null ? "—" : Triagem.duration(s));
  const ymd = (s) => s.split("-").map(Number);
  const utcDate = (s) => { const [y, m, d] = ymd(s); return new Date(Date.UTC(y, m - 1, d)); };
  const iso = (d) => d.toISOString().slice(0, 10);
  const addDays = (s, n) => { const d = utcDate(s); d.setUTCDate(d.getUTCDate() + n); return iso(d); };
  const fmtDay = (s, opts) => utcDate(s).toLocaleDateString(lang, { timeZone: "UTC", ...opts });
  const longDay = (s) => fmtDay(s, { day: "numeric", month: "short", year: "numeric" });
  const shortDay = (s) => fmtDay(s, { day: "2-digit", month: "2-digit" });
  /** Monday first, as `arrivals_by_hour` is (1 Jan 2024 was a Monday). */
  const WEEKDAYS = Array.from({ length: 7 }, (_, i) => fmtDay(addDays("2024-01-01", i), { weekday: "short" }));
  const WEEKDAYS_LONG = Array.from({ length: 7 }, (_, i) => fmtDay(addDays("2024-01-01", i), { weekday: "long" }));

  // ---- the period ----
  let timezone = null; // the service's, once a report has said it
  /** Today as the service counts days (its time zone, its clock). */
  function today() {
    const at = new Date(Triagem.now());
    if (timezone) {
      try {
        return new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
      } catch (_) { /* an unknown zone: the browser's day */ }
    }
    const local = new Date(at.getTime() - at.getTimezoneOffset() * 60000);
    return iso(local);
  }
  /** The days a preset stands for, `{ from, to }`; null for "custom" (the inputs). */
  function presetRange(kind) {
    const d = today();
    if (kind === "today") return { from: d, to: d };
    if (kind === "7d") return { from: addDays(d, -6), to: d };
    if (kind === "month") {
      const [y, m] = ymd(d);
      const first = new Date(Date.UTC(y, m - 2, 1));
      const last = new Date(Date.UTC(y, m - 1, 0));
      return { from: iso(first), to: iso(last) };
    }
    return null;
  }

  /** The period asked for in the URL (`?period=7d`, or `?from=&to=`), so a
   *  report can be bookmarked and sent. */
  function periodFromUrl() {
    const q = new URLSearchParams(location.search);
    const from = q.get("from");
    const to = q.get("to");
    const valid = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || "");
    if (valid(from) && valid(to)) return { kind: "custom", from, to };
    const kind = q.get("period");
    return { kind: ["today", "7d", "month"].includes(kind) ? kind : "today" };
  }
  function periodToUrl(p) {
    const url = new URL(location.href);
    for (const k of ["period", "from", "to"]) url.searchParams.delete(k);
    if (p.kind === "custom") { url.searchParams.set("from", p.from); url.searchParams.set("to", p.to); }
    else if (p.kind !== "today") url.searchParams.set("period", p.kind);
    history.replaceState(null, "", url.pathname + url.search);
    // The language switch keeps the period.
    const sw = $("lang-switch");
    if (sw) {
      const other = new URL(url);
      other.searchParams.set("lang", lang === "en" ? "pt-BR" : "en");
      sw.href = other.pathname + other.search;
    }
  }

  let period = periodFromUrl();
  const query = (p) => new URLSearchParams({ unit, from: p.from, to: p.to }).toString();
  const csvPath = (p) => `/reports/summary.csv?${query(p)}`;
  const csvName = (p) => `triagem-${unit}-${p.from}-${p.to}.csv`;

  // ---- SVG ----
  /** Creates an SVG element: `s("rect", {x: 1, class: "bar"}, child…)`. */
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  let charts = 0;
  /** An SVG chart with its title and description for assistive technology. */
  function chart(width, height, title, desc, cls) {
    const id = `chart-${++charts}`;
    const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`, class: "chart-svg " + (cls || ""), preserveAspectRatio: "xMidYMid meet" },
      s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, desc));
    return { svg, id };
  }

  const css = getComputedStyle(document.documentElement);
  const FALLBACK = { red: "#c62828", orange: "#f57c00", yellow: "#f9c513", green: "#2e7d32", blue: "#1565c0", white: "#eceff1", black: "#212121", purple: "#6a1b9a" };
  /** A colour's fill: the pages' own chip colours (app.css). */
  function fillOf(id) {
    const known = Object.prototype.hasOwnProperty.call(FALLBACK, id);
    const v = known ? css.getPropertyValue("--" + id).trim() : "";
    return v || FALLBACK[id] || "#6d4c41";
  }
  /** Relative luminance (WCAG) of `#rrggbb`. */
  function luminance(hex) {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) return 0;
    const [r, g, b] = m.slice(1).map((x) => {
      const c = parseInt(x, 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  /** Black or white, whichever reads better on `hex`. */
  const inkOn = (hex) => ((luminance(hex) + 0.05) / 0.05 > 1.05 / (luminance(hex) + 0.05) ? "#111111" : "#ffffff");

  /** Each colour's pattern, by its rank in the scale: solid, stripes, dots,
   *  cross-hatch…, so the colours differ by more than their hue. */
  const PATTERNS = [
    null,
    "M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4",
    "dots",
    "M0,0 L8,8 M8,0 L0,8",
    "M0,4 H8",
    "M4,0 V8",
    "M0,0 l8,8 M-2,6 l4,4 M6,-2 l4,4",
  ];
  /** The `<defs>` of a chart: a pattern per colour, and the hatching of what is over the target. */
  function defs(id, colours) {
    const d = s("defs");
    colours.forEach((c, i) => {
      const fill = fillOf(c.colour);
      const ink = inkOn(fill);
      const kind = PATTERNS[i % PATTERNS.length];
      const p = s("pattern", { id: `${id}-c${i}`, patternUnits: "userSpaceOnUse", width: 8, height: 8 },
        s("rect", { width: 8, height: 8, fill }));
      if (kind === "dots") p.append(s("circle", { cx: 4, cy: 4, r: 1.6, fill: ink, "fill-opacity": 0.75 }));
      else if (kind) p.append(s("path", { d: kind, stroke: ink, "stroke-width": 1.4, "stroke-opacity": 0.75 }));
      d.append(p);
    });
    d.append(s("pattern", { id: `${id}-over`, patternUnits: "userSpaceOnUse", width: 6, height: 6, patternTransform: "rotate(45)" },
      s("rect", { width: 6, height: 6, fill: "#ffffff", "fill-opacity": 0.35 }),
      s("rect", { width: 2.5, height: 6, fill: "#111111" })));
    return d;
  }
  const patternOf = (id, i) => `url(#${id}-c${i})`;
  /** A colour's swatch and written label, for the start of a row. */
  function rowLabel(id, i, c, x, y, sub) {
    return s("g", { class: "row-label" },
      s("rect", { x, y: y - 11, width: 14, height: 14, fill: patternOf(id, i), stroke: "#333333", "stroke-width": 1, rx: 2 }),
      s("text", { x: x + 20, y, class: "t-label" }, c.label),
      sub ? s("text", { x: x + 20, y: y + 14, class: "t-small" }, sub) : null);
  }
  /** Round steps for an axis up to `max`: [0, step, …, top]. */
  function ticks(max, count = 4) {
    if (!(max > 0)) return [0, 1];
    const raw = max / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw) || 10 * mag;
    const out = [];
    for (let v = 0; v < max + step * 0.999; v += step) out.push(Math.round(v * 1000) / 1000);
    return out;
  }
  const noData = (text) => h("p", { class: "chart-empty" }, text);
  /** The first round duration (seconds) at or above `seconds`. */
  function niceSpan(seconds) {
    const minutes = [1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440];
    const m = minutes.find((v) => v * 60 >= seconds);
    return m ? m * 60 : Math.ceil(seconds / 86400) * 86400;
  }

  // ---- charts ----
  /** Within target per colour, each bar against its 100 % track. */
  function targetChart(summary) {
    const colours = summary.by_colour || [];
    const W = 680, L = 168, X1 = 560, ROW = 40, TOP = 10;
    const H = TOP + colours.length * ROW + 30;
    const x = (r) => L + (X1 - L) * r;
    const lines = colours.map((c) => (c.within_target_ratio == null
      ? t("rp.within.none", { label: c.label })
      : t("rp.within.row", { label: c.label, ratio: pct(c.within_target_ratio), n: c.within_target, total: c.patients })));
    const { svg, id } = chart(W, H, t("rp.chart.target"), lines.join("; "), "chart-target");
    svg.append(defs(id, colours));
    const grid = s("g", { class: "grid" });
    for (const r of [0, 0.25, 0.5, 0.75, 1]) {
      grid.append(s("line", { x1: x(r), x2: x(r), y1: TOP - 4, y2: H - 24, class: r === 1 ? "axis-strong" : "gridline" }),
        s("text", { x: x(r), y: H - 8, class: "t-axis", "text-anchor": "middle" }, pct(r)));
    }
    svg.append(grid);
    colours.forEach((c, i) => {
      const y = TOP + i * ROW;
      const g = s("g", { class: "row", "data-colour": c.colour });
      g.append(rowLabel(id, i, c, 4, y + 20, t("rp.of", { n: c.within_target, total: c.patients })));
      g.append(s("rect", { x: L, y: y + 6, width: X1 - L, height: 20, class: "track" }));
      if (c.within_target_ratio == null) {
        g.append(s("text", { x: L + 8, y: y + 20, class: "t-muted" }, t("rp.no.patients")));
      } else {
        const w = Math.max(c.within_target_ratio > 0 ? 2 : 0, (X1 - L) * c.within_target_ratio);
        g.append(s("rect", { x: L, y: y + 6, width: w, height: 20, fill: patternOf(id, i), stroke: "#222222", "stroke-width": 0.8, class: "mark", "data-mark": "ratio" },
          s("title", {}, lines[i])));
        g.append(s("text", { x: X1 + 8, y: y + 21, class: "t-value" }, pct(c.within_target_ratio)));
      }
      svg.append(g);
    });
    return colours.length ? svg : noData(t("rp.no.patients"));
  }

  /** Median, p90 and p95 of each colour's wait against the colour's target;
   *  what passes the target is hatched. Each colour on its own scale (the
   *  targets run from immediate to hours), its target marked and written. */
  function waitsChart(summary) {
    const colours = summary.by_colour || [];
    const W = 680, L = 150, SUB = 54, X0 = L + SUB, X1 = 590, BAR = 13, GAP = 4, PAD = 22;
    const GROUP = PAD + 3 * (BAR + GAP) + 20;
    const H = colours.length * GROUP + 34;
    const lines = colours.map((c) => {
      const w = c.wait_to_call_seconds || {};
      return w.count ? t("rp.waits.row", { label: c.label, median: dur(w.median), p90: dur(w.p90), p95: dur(w.p95), target: Triagem.targetText(c.max_wait_seconds) })
        : t("rp.waits.none", { label: c.label });
    });
    const { svg, id } = chart(W, H, t("rp.chart.waits"), lines.join("; "), "chart-waits");
    svg.append(defs(id, colours));
    colours.forEach((c, i) => {
      const w = c.wait_to_call_seconds || {};
      const top = i * GROUP;
      const g = s("g", { class: "row", "data-colour": c.colour });
      if (i > 0) g.append(s("line", { x1: 0, x2: W, y1: top + 2, y2: top + 2, class: "separator" }));
      g.append(rowLabel(id, i, c, 4, top + PAD + 10, t("rp.calls", { n: w.count || 0 })));
      const target = c.max_wait_seconds || 0;
      if (!w.count) {
        g.append(s("text", { x: X0, y: top + PAD + 22, class: "t-muted" }, t("rp.no.calls")));
        svg.append(g);
        return;
      }
      // A round end for the row's scale, written under it: a red row (target
      // immediate) in minutes and a blue one in hours must not read alike.
      const max = niceSpan(Math.max(w.p95 || 0, target, 60) * 1.08);
      const x = (v) => X0 + (X1 - X0) * (v / max);
      const axisY = top + PAD + 3 * (BAR + GAP) + 1;
      g.append(s("line", { x1: X0, x2: X1, y1: axisY, y2: axisY, class: "axis" }));
      g.append(s("text", { x: X1, y: axisY + 12, class: "t-small", "text-anchor": "end", "data-scale": max },
        t("rp.scale", { d: dur(max) })));
      [["p50", w.median], ["p90", w.p90], ["p95", w.p95]].forEach(([k, v], j) => {
        const y = top + PAD + j * (BAR + GAP);
        g.append(s("text", { x: X0 - 6, y: y + BAR - 2, class: "t-small", "text-anchor": "end" }, t("rp." + k)));
        g.append(s("rect", { x: X0, y, width: Math.max(2, x(v) - X0), height: BAR, fill: patternOf(id, i), stroke: "#222222", "stroke-width": 0.8, class: "mark", "data-mark": k },
          s("title", {}, `${c.label}, ${t("rp." + k)}: ${dur(v)}`)));
        if (v > target) {
          g.append(s("rect", { x: x(target), y, width: x(v) - x(target), height: BAR, fill: `url(#${id}-over)`, class: "over" }));
        }
        g.append(s("text", { x: x(v) + 5, y: y + BAR - 2, class: v > target ? "t-value over-text" : "t-value" }, dur(v)));
      });
      const tx = x(target);
      g.append(s("line", { x1: tx, x2: tx, y1: top + PAD - 6, y2: top + PAD + 3 * (BAR + GAP), class: "target-line" }));
      g.append(s("text", { x: tx, y: top + PAD - 9, class: "t-target", "text-anchor": tx > X1 - 60 ? "end" : "start" },
        t("rp.target.line", { d: Triagem.targetText(target) })));
      svg.append(g);
    });
    // The legend: the hatching means over the target.
    const ly = H - 14;
    svg.append(s("g", { class: "legend" },
      s("rect", { x: X0, y: ly - 10, width: 22, height: 12, fill: "#9e9e9e" }),
      s("rect", { x: X0, y: ly - 10, width: 22, height: 12, fill: `url(#${id}-over)` }),
      s("text", { x: X0 + 28, y: ly, class: "t-small" }, t("rp.over")),
      s("line", { x1: X0 + 150, x2: X0 + 150, y1: ly - 12, y2: ly + 2, class: "target-line" }),
      s("text", { x: X0 + 158, y: ly, class: "t-small" }, t("rp.target.line", { d: "" }).trim())));
    return colours.length ? svg : noData(t("rp.no.calls"));
  }

  /** Arrivals per day (bars, left axis) and the share within target (line
   *  with dots, right axis 0–100 %). */
  function dailyChart(days) {
    const W = 680, H = 270, L = 46, R = 52, TOP = 34, BOTTOM = 40;
    const n = days.length;
    const plotW = W - L - R, plotH = H - TOP - BOTTOM;
    const maxArrivals = Math.max(1, ...days.map((d) => d.arrivals));
    const yt = ticks(maxArrivals, 4);
    const top = yt[yt.length - 1];
    const ya = (v) => TOP + plotH - plotH * (v / top);
    const yr = (r) => TOP + plotH - plotH * r;
    const band = plotW / Math.max(1, n);
    const cx = (i) => L + band * (i + 0.5);
    const barW = Math.min(44, band * 0.72);
    const total = days.reduce((a, d) => a + d.arrivals, 0);
    const ratios = days.map((d) => d.within_target_ratio).filter((r) => r != null);
    const desc = t("rp.daily.desc", {
      days: n, total: num(total),
      min: num(Math.min(...days.map((d) => d.arrivals))), max: num(Math.max(...days.map((d) => d.arrivals))),
      ratios: ratios.length ? t("rp.daily.ratios", { min: pct(Math.min(...ratios)), max: pct(Math.max(...ratios)) }) : t("rp.daily.noratio"),
    });
    const { svg } = chart(W, H, t("rp.chart.daily"), desc, "chart-daily");
    const grid = s("g", { class: "grid" });
    for (const v of yt) {
      grid.append(s("line", { x1: L, x2: W - R, y1: ya(v), y2: ya(v), class: "gridline" }),
        s("text", { x: L - 6, y: ya(v) + 4, class: "t-axis", "text-anchor": "end" }, num(v)));
    }
    for (const r of [0, 0.5, 1]) {
      grid.append(s("text", { x: W - R + 6, y: yr(r) + 4, class: "t-axis" }, pct(r)));
    }
    grid.append(s("line", { x1: L, x2: W - R, y1: TOP + plotH, y2: TOP + plotH, class: "axis-strong" }));
    svg.append(grid);
    // Day labels: all of them up to two weeks, then every k-th.
    const every = Math.max(1, Math.ceil(n / 14));
    const bars = s("g", { class: "bars" });
    days.forEach((d, i) => {
      const label = n <= 7 ? `${fmtDay(d.date, { weekday: "short" })} ${shortDay(d.date)}` : shortDay(d.date);
      const point = t("rp.day.point", { day: longDay(d.date), n: num(d.arrivals), ratio: pct(d.within_target_ratio) });
      bars.append(s("rect", { x: cx(i) - barW / 2, y: ya(d.arrivals), width: barW, height: TOP + plotH - ya(d.arrivals), class: "bar-arrivals mark", "data-mark": "arrivals" },
        s("title", {}, point)));
      if (i % every === 0) bars.append(s("text", { x: cx(i), y: H - BOTTOM + 16, class: "t-axis", "text-anchor": "middle" }, label));
    });
    svg.append(bars);
    // The within-target line, broken where a day had nobody to judge.
    const line = s("g", { class: "ratio" });
    let run = [];
    const flush = () => {
      if (run.length > 1) line.append(s("polyline", { points: run.map(([x, y]) => `${x},${y}`).join(" "), class: "ratio-line" }));
      run = [];
    };
    days.forEach((d, i) => {
      if (d.within_target_ratio == null) { flush(); return; }
      run.push([cx(i), yr(d.within_target_ratio)]);
    });
    flush();
    days.forEach((d, i) => {
      if (d.within_target_ratio == null) return;
      line.append(s("circle", { cx: cx(i), cy: yr(d.within_target_ratio), r: 4.5, class: "ratio-dot mark", "data-mark": "ratio" },
        s("title", {}, t("rp.day.point", { day: longDay(d.date), n: num(d.arrivals), ratio: pct(d.within_target_ratio) }))));
    });
    svg.append(line);
    // The legend, above the plot.
    svg.append(s("g", { class: "legend" },
      s("rect", { x: L, y: 8, width: 16, height: 12, class: "bar-arrivals" }),
      s("text", { x: L + 22, y: 18, class: "t-small" }, t("rp.arrivals")),
      s("line", { x1: L + 130, x2: L + 160, y1: 14, y2: 14, class: "ratio-line" }),
      s("circle", { cx: L + 145, cy: 14, r: 4.5, class: "ratio-dot" }),
      s("text", { x: L + 168, y: 18, class: "t-small" }, `${t("rp.ratio")} (%)`)));
    return n ? svg : noData(t("rp.heat.empty"));
  }

  /** Sequential blues, light to dark: read by lightness, not hue. */
  const HEAT = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"];
  function heatColour(f) {
    if (f <= 0) return HEAT[0];
    const p = Math.min(1, f) * (HEAT.length - 1);
    const i = Math.min(HEAT.length - 2, Math.floor(p));
    const mix = p - i;
    const a = HEAT[i].slice(1).match(/../g).map((x) => parseInt(x, 16));
    const b = HEAT[i + 1].slice(1).match(/../g).map((x) => parseInt(x, 16));
    return "#" + a.map((v, k) => Math.round(v + (b[k] - v) * mix).toString(16).padStart(2, "0")).join("");
  }

  /** Arrivals by weekday (rows, Monday first) and local hour (columns). */
  function heatmapChart(summary) {
    const grid = summary.arrivals_by_hour;
    if (!Array.isArray(grid) || grid.length !== 7 || grid.some((r) => !Array.isArray(r) || r.length !== 24)) {
      return noData(t("rp.heat.missing"));
    }
    const W = 680, L = 46, TOP = 22, CW = 25, CH = 24, LEG = 44;
    const H = TOP + 7 * CH + LEG;
    const max = Math.max(0, ...grid.flat());
    const total = grid.flat().reduce((a, b) => a + b, 0);
    let busiest = { d: 0, hr: 0, n: -1 };
    grid.forEach((row, d) => row.forEach((n, hr) => { if (n > busiest.n) busiest = { d, hr, n }; }));
    const desc = total
      ? t("rp.heat.desc", { total: num(total), day: WEEKDAYS_LONG[busiest.d], hour: busiest.hr, n: num(busiest.n) })
      : t("rp.heat.empty");
    const { svg, id } = chart(W, H, t("rp.chart.heatmap"), desc, "chart-heatmap");
    const hours = s("g", { class: "hours" });
    for (let hr = 0; hr < 24; hr++) {
      hours.append(s("text", { x: L + hr * CW + CW / 2, y: TOP - 7, class: "t-axis", "text-anchor": "middle" }, String(hr)));
    }
    svg.append(hours);
    grid.forEach((row, d) => {
      const y = TOP + d * CH;
      const g = s("g", { class: "day" }, s("text", { x: L - 6, y: y + CH / 2 + 4, class: "t-label", "text-anchor": "end" }, WEEKDAYS[d]));
      row.forEach((n, hr) => {
        const fill = heatColour(max ? n / max : 0);
        const cell = s("rect", { x: L + hr * CW + 1, y: y + 1, width: CW - 2, height: CH - 2, fill, rx: 2, class: n ? "cell mark" : "cell zero", "data-mark": n ? "arrivals" : null },
          s("title", {}, t("rp.heat.cell", { day: WEEKDAYS_LONG[d], hour: hr, n: num(n) })));
        g.append(cell);
        if (n) g.append(s("text", { x: L + hr * CW + CW / 2, y: y + CH / 2 + 4, class: "t-cell", "text-anchor": "middle", fill: inkOn(fill) }, n > 999 ? "999+" : String(n)));
      });
      svg.append(g);
    });
    // The legend: the scale from none to the busiest hour.
    const ly = TOP + 7 * CH + 16;
    const grad = s("linearGradient", { id: `${id}-scale`, x1: 0, x2: 1, y1: 0, y2: 0 },
      HEAT.map((c, i) => s("stop", { offset: i / (HEAT.length - 1), "stop-color": c })));
    svg.append(s("defs", {}, grad));
    svg.append(s("g", { class: "legend" },
      s("text", { x: L, y: ly + 11, class: "t-small" }, "0"),
      s("rect", { x: L + 14, y: ly, width: 200, height: 14, fill: `url(#${id}-scale)`, stroke: "#8a94a3", "stroke-width": 0.8 }),
      s("text", { x: L + 220, y: ly + 11, class: "t-small" }, num(max)),
      s("text", { x: L + 260, y: ly + 11, class: "t-small" }, t("rp.heat.legend"))));
    return svg;
  }

  // ---- measures ----
  let cards = 0;
  /** A measure's card: name, value, details; its definition shows on hover
   *  and focus (and stays on print), Escape hides it. */
  function card(key, value, sub, extra) {
    const n = ++cards;
    const def = h("p", { class: "m-def", id: `def-${n}`, role: "tooltip" }, t(`m.${key}.def`));
    const el = h("div", { class: "measure " + (extra || ""), tabindex: "0", role: "group", "aria-labelledby": `m-${n}`, "aria-describedby": `def-${n}`, dataset: { measure: key } },
      h("h3", { class: "m-name", id: `m-${n}` }, t(`m.${key}`)),
      h("p", { class: "m-value" }, value),
      sub ? h("p", { class: "m-sub" }, sub) : null,
      def);
    el.addEventListener("keydown", (ev) => { if (ev.key === "Escape") el.classList.add("def-off"); });
    el.addEventListener("mouseleave", () => el.classList.remove("def-off"));
    el.addEventListener("blur", () => el.classList.remove("def-off"));
    return el;
  }
  function statCard(key, stat) {
    if (!stat || !stat.count) {
      // A measure's own "none" where it has one (ack counts alerts, not visits).
      const own = "rp.stat.none." + key;
      return card(key, "—", t(Triagem.has(own) ? own : "rp.stat.none"));
    }
    return card(key, h("span", {}, dur(stat.median), " ", h("small", {}, t("rp.median"))),
      t("rp.stat.sub", { p90: dur(stat.p90), p95: dur(stat.p95), n: num(stat.count) }));
  }
  function measures(sm) {
    const colours = sm.by_colour || [];
    const judged = colours.reduce((a, c) => a + (c.patients || 0), 0);
    const within = colours.reduce((a, c) => a + (c.within_target || 0), 0);
    const lwbs = sm.left_without_being_seen || {};
    const los = sm.length_of_stay_seconds || {};
    return [
      card("arrivals", num(sm.arrivals)),
      card("within", pct(judged ? within / judged : null), t("rp.of", { n: num(within), total: num(judged) })),
      statCard("triage", sm.door_to_triage_seconds),
      statCard("provider", sm.door_to_provider_seconds),
      card("lwbs", pct(lwbs.rate, 1), t("rp.lwbs.sub", { before: num(lwbs.before_triage || 0), after: num(lwbs.after_triage || 0) })),
      statCard("los_discharged", los.discharged),
      statCard("los_admitted", los.admitted),
      statCard("ack", sm.time_to_acknowledge_seconds),
    ];
  }

  function colourTable(sm) {
    const colours = sm.by_colour || [];
    const th = (k) => h("th", { scope: "col" }, t(k));
    return h("table", { class: "rp-colours" },
      h("thead", {}, h("tr", {}, ["rp.col.colour", "rp.col.patients", "rp.col.within", "rp.col.ratio", "rp.col.median", "rp.col.p90", "rp.col.p95", "rp.col.target"].map(th))),
      h("tbody", {}, colours.map((c) => {
        const w = c.wait_to_call_seconds || {};
        return h("tr", {},
          // The label from the report: this page reads no protocol (a monitor may not).
          h("th", { scope: "row" }, h("span", { class: "chip " + Triagem.colourClass(c.colour) },
            h("span", { class: "dot", "aria-hidden": "true" }), c.label)),
          h("td", { class: "num" }, num(c.patients)),
          h("td", { class: "num" }, num(c.within_target)),
          h("td", { class: "num" }, pct(c.within_target_ratio)),
          h("td", { class: "num" }, w.count ? dur(w.median) : "—"),
          h("td", { class: "num" }, w.count ? dur(w.p90) : "—"),
          h("td", { class: "num" }, w.count ? dur(w.p95) : "—"),
          h("td", { class: "num" }, Triagem.targetText(c.max_wait_seconds)));
      })));
  }

  // ---- loading ----
  let loaded = null; // the period now shown
  let loading = 0;

  function showPicker() {
    for (const input of document.querySelectorAll("input[name=period]")) input.checked = input.value === period.kind;
    $("custom").hidden = period.kind !== "custom";
    if (period.from) $("from").value = period.from;
    if (period.to) $("to").value = period.to;
  }

  async function load() {
    const range = period.kind === "custom" ? { from: period.from, to: period.to } : presetRange(period.kind);
    const asked = { ...period, ...range };
    const mine = ++loading;
    Triagem.errorTo($("rp-error"), null);
    document.body.dataset.loaded = "no";
    $("rp-period").textContent = t("rp.loading");
    let summary, daily;
    try {
      [summary, daily] = await Promise.all([
        api("GET", `/reports/summary?${query(asked)}`),
        api("GET", `/reports/daily?${query(asked)}`),
      ]);
    } catch (e) {
      if (mine !== loading) return;
      $("rp-period").textContent = "";
      if (e.status === 403) Triagem.errorTo($("rp-error"), Object.assign(e, { words: t("rp.forbidden") }));
      else Triagem.errorTo($("rp-error"), e);
      if (e.field) $(e.field === "from" ? "from" : "to").setAttribute("aria-invalid", "true");
      document.body.dataset.loaded = "error";
      return;
    }
    if (mine !== loading) return; // a later choice is on its way
    const firstZone = !timezone;
    timezone = summary.timezone || timezone;
    // Presets are days in the service's time zone: ask again if the browser's differed.
    if (firstZone && period.kind !== "custom") {
      const again = presetRange(period.kind);
      if (again.from !== asked.from || again.to !== asked.to) { load(); return; }
    }
    loaded = { ...asked, from: summary.from, to: summary.to };
    for (const id of ["from", "to"]) $(id).removeAttribute("aria-invalid");
    periodToUrl(period);
    render(summary, daily);
  }

  function render(sm, days) {
    const range = sm.from === sm.to ? longDay(sm.from) : t("rp.range", { from: longDay(sm.from), to: longDay(sm.to) });
    $("rp-period").textContent = t("rp.period.line", { range, tz: sm.timezone || "—" });
    $("measures").replaceChildren(...measures(sm));
    $("chart-target").replaceChildren(targetChart(sm));
    $("chart-waits").replaceChildren(waitsChart(sm));
    $("chart-daily").replaceChildren(dailyChart(days || []));
    $("chart-heatmap").replaceChildren(heatmapChart(sm));
    $("colour-table").replaceChildren(colourTable(sm));
    const csv = $("csv");
    csv.href = "/api/v1" + csvPath(loaded);
    csv.setAttribute("download", csvName(loaded));
    $("rp-foot").textContent = t("rp.generated", { time: Triagem.fmtDateTime(new Date(Triagem.now()).toISOString()) });
    document.body.dataset.loaded = "yes";
  }

  // ---- controls ----
  document.querySelectorAll("input[name=period]").forEach((input) => {
    input.addEventListener("change", () => {
      if (!input.checked) return;
      if (input.value === "custom") {
        const shown = loaded || presetRange("today");
        period = { kind: "custom", from: $("from").value || shown.from, to: $("to").value || shown.to };
        showPicker();
        $("from").focus();
        return; // asked for with the button
      }
      period = { kind: input.value };
      showPicker();
      load();
    });
  });
  $("period-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const from = $("from").value;
    const to = $("to").value;
    for (const id of ["from", "to"]) $(id).removeAttribute("aria-invalid");
    if (!from || !to) {
      Triagem.errorTo($("rp-error"), t("rp.custom.missing"));
      const missing = from ? "to" : "from";
      $(missing).setAttribute("aria-invalid", "true");
      $(missing).focus();
      return;
    }
    if (from > to) {
      Triagem.errorTo($("rp-error"), t("rp.custom.reversed"));
      $("from").setAttribute("aria-invalid", "true");
      $("from").focus();
      return;
    }
    period = { kind: "custom", from, to };
    load();
  });

  // The CSV through the API client: in tokens mode a plain link has no token.
  $("csv").setAttribute("aria-label", t("rp.csv.label"));
  $("csv").addEventListener("click", async (ev) => {
    ev.preventDefault();
    if (!loaded) return;
    try {
      const text = await api("GET", csvPath(loaded), undefined, { Accept: "text/csv" }, { raw: true });
      const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
      const a = h("a", { href: url, download: csvName(loaded), hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      Triagem.errorTo($("rp-error"), e.status === 403 ? Object.assign(e, { words: t("rp.forbidden") }) : e);
    }
  });
  $("print").addEventListener("click", () => window.print());

  showPicker();
  load();
})();
