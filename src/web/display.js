/* Ward display screen: the call being made now, the last calls and, per
 * colour, how many wait, the time left to (or overdue past) the earliest
 * deadline on the target's own clock, and the longest wait since arrival.
 * Reads only the board and the event stream, which never carry a name or a
 * protocol number. Text is fitted to its box: nothing is cut at 720p or
 * 1080p, and the recent calls shown are those that fit whole. */
"use strict";

(() => {
  const { t, h, api, unit, lang, storage } = Triagem;
  const $ = (id) => document.getElementById(id);
  /** Calls older than this when they reach the page are shown but not announced. */
  const ANNOUNCE_WITHIN_MS = 60000;
  const SOUND_KEY = "triagem.display.sound";
  /** How many announcements `window.triagemSpoken` keeps: a screen runs for months. */
  const SPOKEN_KEEP = 50;

  let board = null;
  let fetchedAt = 0;
  let serverOffset = 0; // server clock minus this machine's, from the board's generated_at
  let soundOn = storage.get(SOUND_KEY) !== "off";
  let audio = null;
  window.triagemSpoken = []; // the latest announcements, for tests and troubleshooting

  Triagem.setupHeader();

  // ---- clock ----
  function tickClock() {
    const now = new Date(Date.now() + serverOffset);
    $("clock").textContent = now.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", timeZone: Triagem.protocol.timezone });
    $("clock").dateTime = now.toISOString();
  }

  // ---- sound ----
  // Browsers keep sound off until someone interacts with the page (a kiosk
  // can be started with --autoplay-policy=no-user-gesture-required): say so.
  const blocked = () => soundOn && audio && audio.state === "suspended";
  function renderSound() {
    const b = $("sound");
    b.setAttribute("aria-pressed", String(soundOn));
    const label = blocked() ? "display.sound.blocked" : soundOn ? "display.sound.on" : "display.sound.off";
    b.replaceChildren(speakerIcon(soundOn && !blocked()), t(label));
    b.classList.toggle("off", !soundOn || blocked());
    // A wall screen nobody touches stays silent unless its browser was
    // started to allow sound: say so, small, with how.
    $("sound-hint").hidden = !blocked();
  }
  function speakerIcon(on) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "icon");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", on
      ? "M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z"
      : "M3 9v6h4l5 5V4L7 9H3zm12.4.4 1.4-1.4 2.2 2.2 2.2-2.2 1.4 1.4-2.2 2.2 2.2 2.2-1.4 1.4-2.2-2.2-2.2 2.2-1.4-1.4 2.2-2.2z");
    svg.append(path);
    return svg;
  }
  function audioContext() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!audio) {
      audio = new AC();
      audio.addEventListener("statechange", renderSound);
    }
    if (audio.state === "suspended") audio.resume().catch(() => {});
    return audio;
  }
  $("sound").addEventListener("click", () => {
    if (blocked()) { audioContext(); renderSound(); return; }
    soundOn = !soundOn;
    storage.set(SOUND_KEY, soundOn ? "on" : "off");
    if (soundOn) audioContext(); // a user gesture lets the browser play sound
    else if (window.speechSynthesis) { toSpeak.length = 0; speechSynthesis.cancel(); }
    renderSound();
  });
  // Any touch of the screen is the gesture the browser waits for.
  document.addEventListener("pointerdown", (e) => {
    if (blocked() && !$("sound").contains(e.target)) { audioContext(); }
  });
  document.addEventListener("keydown", (e) => {
    if ((e.key === "s" || e.key === "S") && !e.ctrlKey && !e.metaKey && !e.altKey) $("sound").click();
  });

  /** A two-note chime ("ding-dong"), about one second. */
  function chime() {
    const ctx = audioContext();
    if (!ctx) return;
    const start = ctx.currentTime + 0.05;
    [[880, 0], [659.25, 0.45]].forEach(([freq, at]) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start + at);
      gain.gain.exponentialRampToValueAtTime(0.5, start + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.9);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start + at);
      osc.stop(start + at + 1);
    });
  }

  // Calls can come faster than a voice reads them: they are read in turn,
  // and one whose moment has passed is skipped (read a minute late, it would
  // send a patient to a room long after the screen showed the call).
  const SPEAK_WITHIN_MS = 60000;
  const toSpeak = [];
  let speaking = false;
  function speakNext() {
    if (speaking) return;
    while (toSpeak.length && performance.now() - toSpeak[0].at > SPEAK_WITHIN_MS) toSpeak.shift();
    const next = toSpeak.shift();
    if (!next) return;
    speaking = true;
    let over = false;
    const done = () => {
      if (over) return;
      over = true;
      speaking = false;
      speakNext();
    };
    next.u.onend = done;
    next.u.onerror = done;
    // A voice that never says it ended must not stop the ones after it.
    setTimeout(done, 15000);
    speechSynthesis.speak(next.u);
  }
  function speak(ticket, room) {
    // Spelled out ("A 0 1 2") so every voice reads it the same way.
    const text = t("display.say", { ticket: ticket.split("").join(" "), room });
    if (!window.speechSynthesis || !window.SpeechSynthesisUtterance) return;
    const u = new SpeechSynthesisUtterance(text);
    u.lang = lang === "en" ? "en-US" : "pt-BR";
    const voice = speechSynthesis.getVoices().find((v) => v.lang.replace("_", "-").toLowerCase().startsWith(u.lang.slice(0, 2).toLowerCase()));
    if (voice) u.voice = voice;
    u.rate = 0.9;
    toSpeak.push({ u, at: performance.now() });
    speakNext();
  }

  function announce(call) {
    if (!soundOn) return;
    const age = Date.now() + serverOffset - Date.parse(call.at);
    if (!(age < ANNOUNCE_WITHIN_MS)) return;
    const spoken = window.triagemSpoken;
    spoken.push(t("display.say", { ticket: call.ticket, room: call.room }));
    if (spoken.length > SPOKEN_KEEP) spoken.splice(0, spoken.length - SPOKEN_KEEP);
    try { chime(); } catch (_) { /* no audio device */ }
    setTimeout(() => { try { speak(call.ticket, call.room); } catch (_) { /* no voices */ } }, 1100);
  }

  // ---- rendering ----
  const colourClass = Triagem.colourClass;

  /** Shrinks the text of `el` (font scale `--fit`, 1 down to `min`) until
   *  it fits its box on one line; below that it may wrap. */
  function fit(el, min = 0.35) {
    if (!el || !el.isConnected) return;
    el.classList.remove("wrap");
    let scale = 1;
    el.style.setProperty("--fit", "1");
    while (el.scrollWidth > el.clientWidth + 0.5 && scale > min) {
      scale = Math.max(min, scale - 0.05);
      el.style.setProperty("--fit", String(scale));
    }
    if (el.scrollWidth > el.clientWidth + 0.5) el.classList.add("wrap");
  }

  /** The current call: each line fitted to the card's width, then the
   *  ticket made smaller until the whole card's content fits its height. */
  function fitNow() {
    const card = $("now");
    const ticket = $("now-ticket");
    fit(ticket);
    fit($("now-room"));
    let scale = Number(ticket.style.getPropertyValue("--fit")) || 1;
    while (card.scrollHeight > card.clientHeight + 0.5 && scale > 0.3) {
      scale = Math.max(0.3, scale - 0.05);
      ticket.style.setProperty("--fit", String(scale));
    }
  }

  /** The recent calls: made smaller (--rs) until all fit their column; if
   *  even the smallest do not, the oldest are left out rather than cut. */
  function fitRecent() {
    const list = $("recent");
    const items = [...list.children];
    items.forEach((li) => { li.hidden = false; });
    let scale = 1;
    list.style.setProperty("--rs", "1");
    const fitLines = () => items.forEach((li) => { fit(li.querySelector(".d-recent-room"), 0.6); fit(li.querySelector(".d-recent-ticket"), 0.6); });
    fitLines();
    while (list.scrollHeight > list.clientHeight + 0.5 && scale > 0.6) {
      scale = Math.max(0.6, scale - 0.05);
      list.style.setProperty("--rs", String(scale));
      fitLines();
    }
    for (let i = items.length - 1; i > 0 && list.scrollHeight > list.clientHeight + 0.5; i--) items[i].hidden = true;
  }

  function fitAll() {
    fit($("unit-name"), 0.5);
    fitNow();
    fitRecent();
  }

  function callChip(call) {
    return Triagem.chip(call.colour || null);
  }

  // The card is a live region: rewriting it with the same call on every
  // board refresh had screen readers announce that call again each time.
  let nowShown = null;
  function showNow(call, fresh) {
    const key = JSON.stringify(call && [call.ticket, call.room, call.colour]);
    if (key === nowShown && !fresh) return;
    nowShown = key;
    const card = $("now");
    card.className = "d-now-card " + (call ? colourClass(call.colour) : "c-none") + (call ? "" : " empty");
    $("now-ticket").textContent = call ? call.ticket : t("display.none");
    $("now-room").textContent = call ? call.room : "";
    card.querySelector(".d-room-line").hidden = !call;
    $("now-colour").replaceChildren(call ? callChip(call) : "");
    fitNow();
    if (fresh) {
      card.classList.remove("flash");
      void card.offsetWidth; // restart the animation
      card.classList.add("flash");
    }
  }

  function renderCalls(calls) {
    showNow(calls[0] || null, false);
    $("recent").replaceChildren(...calls.slice(1, 7).map((c) =>
      h("li", { class: "d-recent-item " + colourClass(c.colour) },
        h("span", { class: "d-recent-ticket fit" }, c.ticket),
        h("span", { class: "d-recent-room fit" }, c.room),
        callChip(c),
        h("span", { class: "d-recent-time" }, Triagem.fmtTime(c.called_at)))));
    fitRecent();
  }

  /** Per queue: how many wait; the time left to the earliest deadline, or
   *  how long it is overdue (both on the target's clock, from `next_due_at`);
   *  below, the longest wait since arrival. */
  function renderQueues() {
    if (!board) return;
    const elapsed = (Date.now() - fetchedAt) / 1000;
    $("queues").replaceChildren(...board.queues.map((q) => {
      const longest = q.waiting > 0 ? q.longest_wait_seconds + elapsed : 0;
      const d = q.waiting > 0 && q.next_due_at ? Triagem.due(q.next_due_at, true) : null;
      const late = q.overdue > 0 || (d && d.late);
      return h("div", { class: "d-queue " + colourClass(q.colour) + (late ? " late" : "") + (q.waiting ? "" : " none") },
        h("div", { class: "d-queue-head" }, Triagem.chip(q.colour || null, "big")),
        h("div", { class: "d-queue-count" }, h("span", { class: "n" }, q.waiting), h("span", { class: "w" }, t("waiting.n"))),
        h("div", { class: "d-queue-due" + (d && d.late ? " over" : "") },
          h("span", { class: "k" }, t(d && d.late ? "display.over" : "display.left")),
          h("strong", { class: "v" }, d ? d.d : "—")),
        h("div", { class: "d-queue-since", hidden: !(q.waiting > 0) }, t("display.longest", { d: Triagem.duration(longest, true) })),
        h("div", { class: "d-queue-late", hidden: !(q.overdue > 0) },
          h("span", { class: "ico i-warn", "aria-hidden": "true" }),
          t(q.overdue === 1 ? "overdue.one" : "overdue.n", { n: q.overdue })));
    }));
    // The queues' height decides how much room the calls above them get.
    fitAll();
  }

  async function refresh() {
    const b = await api("GET", `/units/${encodeURIComponent(unit)}/board`);
    board = b;
    fetchedAt = Date.now();
    serverOffset = Date.parse(b.generated_at) - fetchedAt;
    Triagem.setServerTime(Date.parse(b.generated_at), fetchedAt);
    renderCalls(b.calls);
    renderQueues();
    return b;
  }
  const refreshSoon = Triagem.throttle(() => refresh().catch(() => {}), 120);

  function onEvent(name, data) {
    if (name === "called" && data.ticket && data.room) {
      // Shown at once from the event; the board follows a moment later.
      showNow({ ticket: data.ticket, room: data.room, colour: data.colour, queue: data.queue }, true);
      announce(data);
    }
    refreshSoon();
  }

  function onState(up) {
    $("reconnecting").hidden = up;
    document.body.classList.toggle("is-offline", !up);
  }

  async function start() {
    window.addEventListener("resize", fitAll);
    if (document.fonts) document.fonts.ready.then(fitAll);
    if (soundOn) audioContext();
    renderSound();
    tickClock();
    setInterval(tickClock, 1000);
    setInterval(renderQueues, 1000);
    setInterval(() => { if (!document.body.classList.contains("is-offline")) refresh().catch(() => {}); }, 20000);
    for (;;) {
      try { await Triagem.loadInfo(); break; } catch (e) {
        if (e.status === 403) { Triagem.wrongToken(); return; }
        if (e.status === 401) { Triagem.showError(e); return; }
        onState(false);
        if (e.code !== "network" && e.status !== 503) Triagem.showError(e);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    Triagem.live({ onEvent, onState, probe: refresh });
  }
  start();
})();
