"use strict";
// The kiosk screen: verdicts and status arrive on the WebSocket; typed codes go back on it.
const LABELS = {
  es: { accepted: "ACEPTADO", refused: "RECHAZADO", online: "EN LÍNEA", offline: "SIN CONEXIÓN", revoked: "KIOSCO REVOCADO", storage_fault: "NO SE PUEDEN GUARDAR ESCANEOS",
        last_sync: "Última sincronización", pending: "Pendientes de envío", rejected: "Rechazadas por el servidor", manual: "Código manual", check: "Verificar",
        company: "Empresa", itinerary: "Itinerario", services: "Servicios", used: "Usado", where: "en", ticket: "Ticket",
        err_empty: "Escriba un código.", err_too_long: "El código es demasiado largo.",
        err_not_printable: "El código tiene caracteres no válidos.", err_busy: "Espere un momento e intente de nuevo." },
  en: { accepted: "ACCEPTED", refused: "REFUSED", online: "ONLINE", offline: "OFFLINE", revoked: "KIOSK REVOKED", storage_fault: "SCANS CANNOT BE SAVED",
        last_sync: "Last sync", pending: "Pending uploads", rejected: "Refused by the server", manual: "Manual code", check: "Check",
        company: "Company", itinerary: "Itinerary", services: "Services", used: "Used", where: "at", ticket: "Ticket",
        err_empty: "Type a code.", err_too_long: "The code is too long.",
        err_not_printable: "The code has characters that are not allowed.", err_busy: "Wait a moment and try again." },
};
let lang = "es";
let socket = null;
let resetTimer = null;
const $ = (id) => document.getElementById(id);

function label(key) { return (LABELS[lang] || LABELS.es)[key]; }

function applyLanguage() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-label]").forEach((el) => { el.textContent = label(el.dataset.label); });
}

function beep(ok) {
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = ok ? 880 : 220;
    osc.type = ok ? "sine" : "square";
    gain.gain.value = 0.2;
    osc.connect(gain); gain.connect(ctx.destination);
    osc.start(); osc.stop(ctx.currentTime + (ok ? 0.15 : 0.45));
  } catch (e) { /* no audio device: the colour still tells */ }
}

function detail(dl, key, value) {
  if (!value) return;
  const dt = document.createElement("dt"); dt.textContent = label(key);
  const dd = document.createElement("dd"); dd.textContent = value;
  dl.append(dt, dd);
}

function showVerdict(v) {
  const box = $("verdict");
  box.className = "verdict " + (v.accepted ? "accepted" : "refused");
  box.dataset.state = v.accepted ? "accepted" : "refused";
  box.dataset.reason = v.reason;
  $("verdict-title").textContent = v.accepted ? label("accepted") : label("refused");
  $("verdict-reason").textContent = v.text || v.reason;
  const dl = $("verdict-details");
  dl.replaceChildren();
  detail(dl, "ticket", v.ticket_id ? "#" + v.ticket_id : "");
  detail(dl, "company", v.company);
  detail(dl, "itinerary", v.itinerary);
  detail(dl, "services", (v.services || []).join(", "));
  if (v.used_at) detail(dl, "used", new Date(v.used_at).toLocaleString(lang) + (v.used_where ? " " + label("where") + " " + v.used_where : ""));
  beep(v.accepted);
  clearTimeout(resetTimer);
  resetTimer = setTimeout(() => { box.className = "verdict idle"; box.dataset.state = "idle"; $("verdict-title").textContent = "—";
                                   $("verdict-reason").textContent = ""; dl.replaceChildren(); }, 6000);
}

function showStatus(s) {
  if (s.language && s.language !== lang) { lang = s.language; applyLanguage(); }
  const badge = $("online");
  badge.dataset.online = s.online ? "1" : "0";
  badge.className = "badge " + (s.online && !s.storage_fault ? "online" : "offline");
  badge.dataset.fault = s.storage_fault ? "1" : "0";
  badge.textContent = s.revoked ? label("revoked") : s.storage_fault ? label("storage_fault")
    : (s.online ? label("online") : label("offline"));
  $("last-sync").textContent = s.last_sync ? new Date(s.last_sync).toLocaleString(lang) : "—";
  $("pending").textContent = String(s.pending ?? 0);
  // Scans the server refused for good stay on the kiosk until `portgate-agent outbox --retry`.
  $("rejected").textContent = String(s.rejected ?? 0);
  $("rejected-box").hidden = !s.rejected;
  if (s.kiosk) $("kiosk-name").textContent = "Portgate · " + s.kiosk;
}

function connect() {
  socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  socket.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "verdict") showVerdict(msg);
    else if (msg.type === "status") showStatus(msg);
    else if (msg.type === "input_error") $("input-error").textContent = label("err_" + msg.reason) || msg.message;
  };
  socket.onclose = () => { $("online").className = "badge offline"; setTimeout(connect, 1000); };
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
