"use strict";
const $ = (id) => document.getElementById(id);
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}
function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const m = Math.floor(s / 60) % 60, pad = (x) => String(x).padStart(2, "0");
  if (d) return d + "d " + pad(h) + "h";
  if (h) return h + "h " + pad(m) + "m";
  if (m) return m + "m " + pad(s % 60) + "s";
  return s + "s";
}
function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "\u2014" : String(text);
  if (className) td.className = className;
  return td;
}
function fill(id, rows, columns, emptyText) {
  const body = $(id).tBodies[0];
  if (!rows.length) {
    const td = cell(emptyText, "empty");
    td.colSpan = columns;
    const tr = document.createElement("tr");
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}
const ORDER = ["connect", "bind", "udp", "4", "4a", "5"];
const rank = (name) => ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length;
function counts(id, table) {
  const entries = Object.entries(table).sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : 1));
  fill(id, entries.map(([name, c]) =>
    [cell(name), cell(c.open, "n"), cell(c.total, "n")]), 3, "none");
}
function render(s) {
  $("uptime").textContent = duration(s.uptime);
  $("started").textContent = s.started;
  $("listen").textContent = s.listen.join(", ");
  $("open").textContent = s.sessions.open;
  $("total").textContent = s.sessions.total;
  $("denials").textContent = s.denials;
  $("out").textContent = bytes(s.bytes.out);
  $("out").title = s.bytes.out + " bytes";
  $("in").textContent = bytes(s.bytes.in);
  $("in").title = s.bytes.in + " bytes";
  counts("commands", s.sessions.byCommand);
  counts("versions", s.sessions.byVersion);
  fill("outcomes", Object.entries(s.sessions.byOutcome).map(([name, n]) =>
    [cell(name), cell(n, "n")]), 2, "none yet");
  fill("rules", s.rules.map((r) =>
    [cell(r.rule, "n"), cell(r.action, r.action), cell(r.message), cell(r.hits, "n")]),
    4, "no rules: loopback clients only");
  fill("upstreams", (s.upstreams || []).map((u) => [
    cell(u.upstream), cell(u.server), cell(u.up ? "up" : "down for " + duration(u.downFor), u.up ? "permit" : "deny"),
    cell(u.sessions, "n"), cell(u.failures, "n"), cell(u.lastFailure)]), 6, "none: every session is direct");
  fill("sessions", s.openSessions.map((o) => [
    cell(o.client, "client"), cell(o.user), cell(o.version), cell(o.command),
    cell(o.destination, "destination"), cell(bytes(o.bytesOut), "n"),
    cell(bytes(o.bytesIn), "n"), cell(duration(o.age), "n")]), 8, "no open sessions");
  const hidden = s.sessions.open - s.openSessions.length;
  $("hidden").textContent = hidden > 0 ? "and " + hidden + " more, newer" : "";
}
async function refresh() {
  try {
    const response = await fetch("status.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    $("state").textContent = "live, updated " + new Date().toLocaleTimeString();
    $("state").className = "";
  } catch (error) {
    $("state").textContent = "cannot reach the gateway (" + error.message + ")";
    $("state").className = "down";
  }
  setTimeout(refresh, 1500);
}
refresh();
