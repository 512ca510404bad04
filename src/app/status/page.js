// The status page, live: draws the JSON view of this very path, then asks
// for it again every second and draws it anew. No framework and nothing
// from anywhere else; the Content-Security-Policy allows this script alone.
"use strict";
(() => {
  const STATES = ["Idle", "ReadingHead", "AwaitingAnswer", "ReadingBody",
    "DiscardingBody", "Closing", "Lingering", "Closed"];
  // Where the diagram draws each state of the core (src/http/conn.rs), and
  // the transitions between them.
  const AT = {
    Idle: [10, 10], ReadingHead: [200, 10], AwaitingAnswer: [390, 10],
    ReadingBody: [390, 100], DiscardingBody: [200, 100],
    Closing: [10, 190], Lingering: [200, 190], Closed: [390, 190],
  };
  // [from, to, bend]: a bend draws the edge as a curve that far off the
  // straight line, where a straight one would run over another.
  const EDGES = [
    ["Idle", "ReadingHead", 0], ["ReadingHead", "AwaitingAnswer", 0],
    ["AwaitingAnswer", "ReadingBody", 0], ["ReadingBody", "DiscardingBody", 0],
    ["AwaitingAnswer", "DiscardingBody", 0], ["DiscardingBody", "Idle", 0],
    ["AwaitingAnswer", "Idle", -34], ["Idle", "Closing", 0], ["ReadingHead", "Closing", 0],
    ["Closing", "Lingering", 0], ["Closing", "Closed", 34], ["Lingering", "Closed", 0],
  ];
  const W = 150, H = 44;
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...children) {
    const node = tag.startsWith("svg:")
      ? document.createElementNS(SVG, tag.slice(4))
      : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      node.setAttribute(name, value);
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function table(head, rows, id) {
    const attrs = id ? { id } : {};
    return el("table", attrs,
      el("tr", {}, ...head.map((h) => el("th", {}, h))),
      ...rows.map((row) => el("tr", {}, ...row.map((cell) => el("td", {}, cell)))));
  }

  function summary(s) {
    const c = s.connections, r = s.refused, k = s.cache;
    const rows = [
      ["Uptime", `${Math.round(s.uptime_seconds)} s`],
      ["Open connections", c.open],
      ...["handshake", "reading", "writing", "waiting", "closing"]
        .map((phase) => [`\u00a0\u00a0${phase}`, c[phase]]),
      ["Accepted", s.accepted],
      ["Requests served", s.requests],
      ["Body bytes sent", s.body_bytes],
      ["Responses by status", Object.entries(s.responses)
        .map(([status, count]) => `${status}: ${count}`).join(", ") || "none yet"],
      ["By site", Object.entries(s.sites)
        .map(([name, site]) => `${name}: ${site.sent_bytes} bytes, ` +
          (Object.entries(site.responses).map(([status, count]) => `${status}: ${count}`)
            .join(", ") || "no responses")).join("; ") || "none yet"],
      ["Requests refused", Object.entries(s.rejected)
        .map(([reason, count]) => `${reason.replaceAll("_", " ")}: ${count}`).join(", ")],
      ["Accepting held back", `${s.accept_pauses} times`],
      ["Clients refused", `${r.denied} denied, ${r.too_many_connections} over the ` +
        `connection cap (503), ${r.rate_limited} over the rate (429)`],
      ["File cache", `${k.hits} hits, ${k.revalidations} revalidations, ${k.misses} misses; ` +
        `${k.entries} entries, ${k.bytes_held} bytes and ${k.files_open} open files held`],
      ["Event loops", `${s.loops}: ${s.turns} turns, ${s.events} readiness events, ` +
        `${s.timers} deadlines in the heap`],
    ];
    return el("table", { id: "summary-table" },
      ...rows.map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, value))));
  }

  // The core's states, with how many connections of every loop are in each.
  function diagram(s) {
    const counts = Object.fromEntries(STATES.map((state) => [state, 0]));
    for (const view of s.live) {
      for (const state of STATES) counts[state] += view.states[state] || 0;
    }
    const svg = el("svg:svg", { viewBox: "0 -30 550 310", width: "550", height: "310",
      role: "img", "aria-label": "the connection state machine" });
    svg.append(el("svg:defs", {}, el("svg:marker", { id: "arrow", viewBox: "0 0 10 10",
      refX: "10", refY: "5", markerWidth: "6", markerHeight: "6", orient: "auto" },
    el("svg:path", { d: "M0,0 L10,5 L0,10 z" }))));
    for (const [from, to, bend] of EDGES) {
      const [x1, y1] = AT[from], [x2, y2] = AT[to];
      let d;
      if (bend === 0) {
        // From edge to edge of the boxes, not centre to centre.
        const a = [x1 + W / 2, y1 + H / 2], b = [x2 + W / 2, y2 + H / 2];
        const dx = b[0] - a[0], dy = b[1] - a[1];
        const t = Math.min(Math.abs(dx) > 0 ? (W / 2) / Math.abs(dx) : 1,
          Math.abs(dy) > 0 ? (H / 2) / Math.abs(dy) : 1);
        d = `M${a[0] + dx * t},${a[1] + dy * t} L${b[0] - dx * t},${b[1] - dy * t}`;
      } else {
        // Over (or under) the row: from the top (or bottom) of one box to
        // that of the other.
        const side = bend < 0 ? 0 : H;
        const a = [x1 + W / 2, y1 + side], b = [x2 + W / 2, y2 + side];
        d = `M${a[0]},${a[1]} Q${(a[0] + b[0]) / 2},${a[1] + 2 * bend} ${b[0]},${b[1]}`;
      }
      svg.append(el("svg:path", { d, class: "edge", "marker-end": "url(#arrow)" }));
    }
    for (const state of STATES) {
      const [x, y] = AT[state];
      const busy = counts[state] > 0 ? " busy" : "";
      svg.append(el("svg:g", { class: `state${busy}`, "data-state": state,
        "data-count": counts[state] },
      el("svg:rect", { x, y, width: W, height: H, rx: "6" }),
      el("svg:text", { x: x + W / 2, y: y + 18 }, state),
      el("svg:text", { x: x + W / 2, y: y + 36, class: "count" }, counts[state])));
    }
    return svg;
  }

  function loop(view) {
    const conns = view.connections;
    const turns = table(["turn", "events", "deadlines due", "time in the turn"],
      view.turns.slice().reverse().map((t) => [t.turn, t.events, t.deadlines, `${t.micros} µs`]));
    const rows = conns.shown.map((c) => [`#${c.token}`, c.client,
      c.handshake ? `${c.state} (TLS handshake)` : c.state,
      c.streams === null ? "HTTP/1.1" : `HTTP/2, ${c.streams} open`, c.interest, c.queued,
      c.deadline_ms === null ? "none" : `${(c.deadline_ms / 1000).toFixed(1)} s`, c.served]);
    const list = table(["token", "client", "state", "streams", "interest", "queued bytes", "deadline in",
      "requests served"], rows, `connections-${view.loop}`);
    const more = conns.count > conns.shown.length
      ? el("p", {}, `and ${conns.count - conns.shown.length} more`) : "";
    return el("section", { class: "loop", "data-loop": view.loop, "data-connections": conns.count },
      el("h3", {}, `Loop ${view.loop}: ${conns.count} connection${conns.count === 1 ? "" : "s"}`,
        el("small", {}, ` (as of ${view.as_of_ms} ms ago)`)),
      el("h4", {}, "Its last turns"), turns,
      el("h4", {}, "Its connections"), list, more);
  }

  function render(s) {
    document.getElementById("summary").replaceChildren(summary(s));
    document.getElementById("diagram").replaceChildren(diagram(s));
    const loops = s.live.length > 0 ? s.live.map(loop)
      : [el("p", {}, "The threaded models keep no per-connection view: each " +
        "connection is its own thread's.")];
    document.getElementById("loops").replaceChildren(...loops);
    document.getElementById("updated").textContent =
      `Updated ${new Date().toLocaleTimeString()}.`;
  }

  async function refresh() {
    try {
      const response = await fetch(location.pathname,
        { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error(`${response.status}`);
      render(await response.json());
    } catch (error) {
      document.getElementById("updated").textContent = `Not updated: ${error.message}.`;
    }
    setTimeout(refresh, 1000);
  }

  render(JSON.parse(document.getElementById("snapshot").textContent));
  setTimeout(refresh, 1000);
})();
