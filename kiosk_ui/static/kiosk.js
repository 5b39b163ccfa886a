"use strict";
// The lane screen: verdicts and status arrive on the WebSocket; typed codes go back on it.
// docs/lane-screen.md describes every message.
const LABELS = {
  es: { accepted: "ACEPTADO", refused: "RECHAZADO", online: "EN LÍNEA", offline: "SIN CONEXIÓN", revoked: "KIOSCO REVOCADO", storage_fault: "NO SE PUEDEN GUARDAR ESCANEOS",
        idle: "Presente su ticket", offline_banner: "SIN CONEXIÓN · el kiosco decide solo", revoked_banner: "KIOSCO REVOCADO · avise al supervisor",
        offline_verdict: "SIN CONEXIÓN · decidido en el kiosco",
        last_sync: "Última sincronización", pending: "Pendientes de envío", tickets: "Tickets", rejected: "Rechazadas por el servidor", manual: "Código manual", check: "Verificar",
        company: "Empresa", itinerary: "Itinerario", services: "Servicios", used: "Usado", where: "en", ticket: "Ticket",
        err_empty: "Escriba un código.", err_too_long: "El código es demasiado largo.",
        err_not_printable: "El código tiene caracteres no válidos.", err_busy: "Espere un momento e intente de nuevo." },
  en: { accepted: "ACCEPTED", refused: "REFUSED", online: "ONLINE", offline: "OFFLINE", revoked: "KIOSK REVOKED", storage_fault: "SCANS CANNOT BE SAVED",
        idle: "Present your ticket", offline_banner: "OFFLINE · this kiosk decides alone", revoked_banner: "KIOSK REVOKED · call the supervisor",
        offline_verdict: "OFFLINE · decided by this kiosk",
        last_sync: "Last sync", pending: "Pending uploads", tickets: "Tickets", rejected: "Refused by the server", manual: "Manual code", check: "Check",
        company: "Company", itinerary: "Itinerary", services: "Services", used: "Used", where: "at", ticket: "Ticket",
        err_empty: "Type a code.", err_too_long: "The code is too long.",
        err_not_printable: "The code has characters that are not allowed.", err_busy: "Wait a moment and try again." },
};
// Until the agent's first status says otherwise (its settings come with every status).
let settings = { language: "es", verdict_hold_s: 6, sound: false };
let socket = null;
let resetTimer = null;
let audio = null;
const $ = (id) => document.getElementById(id);

function label(key) { return (LABELS[settings.language] || LABELS.es)[key]; }

function applyLanguage() {
  document.documentElement.lang = settings.language;
  document.querySelectorAll("[data-label]").forEach((el) => { el.textContent = label(el.dataset.label); });
  if ($("verdict").dataset.state === "idle") showIdle();
}

// Accepted: two short rising notes; refused: three low buzzes. Made here, so no audio files are needed.
const TONES = {
  accepted: [{ hz: 660, type: "sine", at: 0, s: 0.12 }, { hz: 990, type: "sine", at: 0.14, s: 0.18 }],
  refused: [0, 0.22, 0.44].map((at) => ({ hz: 220, type: "square", at, s: 0.16 })),
};

function playTones(kind) {
  try {
    // One context for the page's life: browsers cap how many a page may open.
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") audio.resume();
    for (const tone of TONES[kind]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = tone.type;
      osc.frequency.value = tone.hz;
      gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(audio.currentTime + tone.at);
      osc.stop(audio.currentTime + tone.at + tone.s);
    }
  } catch (e) { /* no audio device: the colour still tells */ }
}

function detail(dl, key, value) {
  if (!value) return;
  const dt = document.createElement("dt"); dt.textContent = label(key);
  const dd = document.createElement("dd"); dd.textContent = value;
  dl.append(dt, dd);
}

function showIdle() {
  const box = $("verdict");
  box.className = "verdict idle";
  box.dataset.state = "idle";
  delete box.dataset.reason; delete box.dataset.mode; delete box.dataset.scanId; delete box.dataset.advice;
  $("verdict-title").textContent = label("idle");
  $("verdict-mode").hidden = true;
  $("verdict-reason").textContent = "";
  $("verdict-details").replaceChildren();
}

// While a ticket in view goes unread, the camera's advice (tilt it, hold it still) shows under the request
// for a ticket; it comes again every two seconds while it lasts, so it fades when the ticket is taken away.
let adviceTimer = null;
const ADVICE_SHOWN_MS = 3000;

function showAdvice(a) {
  const box = $("verdict");
  if (box.dataset.state !== "idle") return;  // a verdict on screen is what the driver reads
  box.dataset.advice = a.advice;
  // Rewritten only when it changes: the verdict area is a live region, and a screen reader would repeat it.
  if ($("verdict-reason").textContent !== a.text) $("verdict-reason").textContent = a.text;
  clearTimeout(adviceTimer);
  adviceTimer = setTimeout(() => { if (box.dataset.state === "idle") showIdle(); }, ADVICE_SHOWN_MS);
}

function showVerdict(v) {
  const box = $("verdict");
  const state = v.accepted ? "accepted" : "refused";
  const offline = v.mode !== "online";
  box.className = "verdict " + state + (offline ? " decided-offline" : "");
  box.dataset.state = state;
  delete box.dataset.advice;
  clearTimeout(adviceTimer);
  box.dataset.reason = v.reason;
  box.dataset.mode = v.mode;
  box.dataset.scanId = v.scan_id || "";
  $("verdict-title").textContent = label(state);
  $("verdict-mode").textContent = label("offline_verdict");
  $("verdict-mode").hidden = !offline;
  $("verdict-reason").textContent = v.text || v.reason;
  const dl = $("verdict-details");
  dl.replaceChildren();
  detail(dl, "ticket", v.ticket_id ? "#" + v.ticket_id : "");
  detail(dl, "company", v.company);
  detail(dl, "itinerary", v.itinerary);
  detail(dl, "services", (v.services || []).join(", "));
  if (v.used_at) detail(dl, "used", new Date(v.used_at).toLocaleString(settings.language) + (v.used_where ? " " + label("where") + " " + v.used_where : ""));
  if (settings.sound) playTones(state);
  clearTimeout(resetTimer);
  resetTimer = setTimeout(showIdle, settings.verdict_hold_s * 1000);
}

function showConnection(online, revoked) {
  document.body.classList.toggle("offline", !online);
  const banner = $("offline-banner");
  banner.hidden = online;
  banner.textContent = label(revoked ? "revoked_banner" : "offline_banner");
}

function syncTime(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  // Today's time alone fits the small panel; an older sync keeps its date, which is the news.
  return when.toDateString() === new Date().toDateString()
    ? when.toLocaleTimeString(settings.language) : when.toLocaleString(settings.language);
}

function showStatus(s) {
  const languageChanged = s.language && s.language !== settings.language;
  settings = { language: s.language || settings.language, verdict_hold_s: s.verdict_hold_s || settings.verdict_hold_s, sound: !!s.sound };
  if (languageChanged) applyLanguage();
  const badge = $("online");
  badge.dataset.online = s.online ? "1" : "0";
  badge.className = "badge " + (s.online && !s.storage_fault ? "online" : "offline");
  badge.dataset.fault = s.storage_fault ? "1" : "0";
  badge.textContent = s.revoked ? label("revoked") : s.storage_fault ? label("storage_fault")
    : (s.online ? label("online") : label("offline"));
  showConnection(s.online, s.revoked);
  $("last-sync").textContent = syncTime(s.last_sync);
  $("pending").textContent = String(s.pending ?? 0);
  $("tickets").textContent = String(s.tickets ?? 0);
  // Scans the server refused for good stay on the kiosk until `portgate-agent outbox --retry`.
  $("rejected").textContent = String(s.rejected ?? 0);
  $("rejected-box").hidden = !s.rejected;
  if (s.kiosk) $("kiosk-name").textContent = s.kiosk;
}

function connect() {
  socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  socket.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "verdict") showVerdict(msg);
    else if (msg.type === "status") showStatus(msg);
    else if (msg.type === "advice") showAdvice(msg);
    else if (msg.type === "input_error") $("input-error").textContent = label("err_" + msg.reason) || msg.message;
  };
  // Without the agent the screen can show no verdict at all: as offline as it gets.
  socket.onclose = () => { $("online").className = "badge offline"; $("online").dataset.online = "0"; showConnection(false, false); setTimeout(connect, 1000); };
}

$("manual").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("code");
  const code = input.value.trim();
  $("input-error").textContent = "";
  if (code && socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "manual", code }));
  input.value = "";
  input.focus();
});
// Keep the field focused so a keyboard-wedge scanner always types into it.
document.addEventListener("click", () => $("code").focus());
applyLanguage();
connect();
