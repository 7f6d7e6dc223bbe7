"use strict";
// The /ui page: reads /ui/api/* with the session cookie and draws what it reads. Everything
// from records goes in as text (textContent, setAttribute), never as markup.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const cell = (row, text, cls) => {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  };
  const node = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  };
  const status = (text, bad) => {
    $("status").textContent = text;
    $("status").className = bad ? "bad" : "";
  };
  let ended = false;

  async function call(path, init) {
    const headers = Object.assign({ "x-zta-ui": "1" }, (init && init.headers) || {});
    const response = await fetch(path, Object.assign({ credentials: "same-origin" }, init || {}, { headers }));
    if (response.status === 401) {
      ended = true;
      status("Your session has ended: reload the page to log in again.", true);
      throw new Error("session ended");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  const actionOf = (r) => (r.action ? r.action.kind + ":" + r.action.name : "");
  const targetOf = (r) => {
    if (r.target_agent) return r.target_agent;
    if (r.resource) return (r.resource.kind || r.resource.type || "") + ":" + (r.resource.id || "");
    return "";
  };

  function drawDecisions(records) {
    const body = $("decisions").tBodies[0];
    body.replaceChildren();
    for (const r of records.slice().reverse()) {
      const row = document.createElement("tr");
      row.className = "decision " + r.effect;
      row.setAttribute("data-agent", r.agent_id || "");
      row.setAttribute("data-effect", r.effect);
      cell(row, r.time);
      cell(row, r.event);
      cell(row, r.agent_id || "");
      cell(row, actionOf(r));
      cell(row, targetOf(r));
      cell(row, r.effect, "effect-" + r.effect);
      cell(row, r.reason || "");
      body.appendChild(row);
    }
  }

  // Agents in boxes, one per segment; tools in a box of their own; an edge per (from, to,
  // effect), green allowed, red denied.
  function drawGraph(records, segments) {
    const graph = $("graph");
    graph.replaceChildren();
    const edges = new Map();
    const agents = new Set();
    const tools = new Set();
    for (const r of records) {
      if (r.event !== "authorization" || !r.agent_id || !r.action) continue;
      let to;
      if (r.target_agent) {
        to = { kind: "agent", id: r.target_agent };
        agents.add(r.target_agent);
      } else if (r.action.kind === "tool_call") {
        to = { kind: "tool", id: r.action.name };
        tools.add(r.action.name);
      } else {
        continue;
      }
      agents.add(r.agent_id);
      const key = JSON.stringify([r.agent_id, to.kind, to.id, r.effect]);
      const edge = edges.get(key) || { from: r.agent_id, to, effect: r.effect, count: 0, actions: new Set() };
      edge.count += 1;
      edge.actions.add(actionOf(r));
      edges.set(key, edge);
    }
    const groups = new Map();
    for (const agent of [...agents].sort()) {
      const segment = Object.prototype.hasOwnProperty.call(segments, agent) ? segments[agent] : "(no segment)";
      if (!groups.has(segment)) groups.set(segment, []);
      groups.get(segment).push(agent);
    }
    const columns = [...groups.keys()].sort().map((name) => ({ name, items: groups.get(name), tools: false }));
    if (tools.size) columns.push({ name: "tools", items: [...tools].sort(), tools: true });
    const colWidth = 210, rowHeight = 56, top = 50, left = 20;
    const rows = Math.max(1, ...columns.map((c) => c.items.length));
    const width = left * 2 + Math.max(1, columns.length) * colWidth;
    const height = top + rows * rowHeight + 30;
    graph.setAttribute("width", width);
    graph.setAttribute("height", height);
    const defs = node("defs", {});
    for (const effect of ["allow", "deny"]) {
      const marker = node("marker", { id: "arrow-" + effect, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
      marker.appendChild(node("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: effect === "allow" ? "#1a7f37" : "#c62828" }));
      defs.appendChild(marker);
    }
    graph.appendChild(defs);
    const place = new Map();
    columns.forEach((column, i) => {
      const x = left + i * colWidth;
      const box = node("rect", { class: column.tools ? "tools" : "segment", x, y: top - 30, width: colWidth - 30, height: column.items.length * rowHeight + 30, rx: 8 });
      box.setAttribute("data-segment", column.tools ? "" : column.name);
      graph.appendChild(box);
      graph.appendChild(node("text", { class: "segment", x: x + 8, y: top - 12 }, column.tools ? "tools" : "segment " + column.name));
      column.items.forEach((item, j) => {
        const cx = x + 22, cy = top + j * rowHeight + rowHeight / 2;
        const group = node("g", { class: column.tools ? "tool" : "agent", "data-id": item });
        if (column.tools) group.appendChild(node("rect", { class: "tool", x: cx - 8, y: cy - 8, width: 16, height: 16 }));
        else group.appendChild(node("circle", { class: "agent", cx, cy, r: 10 }));
        group.appendChild(node("text", { x: cx + 16, y: cy + 4 }, item));
        graph.appendChild(group);
        place.set((column.tools ? "tool:" : "agent:") + item, { x: cx, y: cy });
      });
    });
    for (const edge of edges.values()) {
      const a = place.get("agent:" + edge.from);
      const b = place.get(edge.to.kind + ":" + edge.to.id);
      if (!a || !b) continue;
      const bend = edge.effect === "deny" ? 40 : -40;
      const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2 + (a.x === b.x ? 0 : bend);
      const dx = a.x === b.x ? bend * 2 : 0;
      const path = node("path", {
        class: "edge " + edge.effect,
        d: `M ${a.x} ${a.y} Q ${mx + dx} ${my} ${b.x} ${b.y}`,
        "marker-end": "url(#arrow-" + edge.effect + ")",
        "data-from": edge.from,
        "data-to": edge.to.id,
        "data-to-kind": edge.to.kind,
        "data-effect": edge.effect,
        "data-count": edge.count,
      });
      path.appendChild(node("title", {}, `${edge.from} -> ${edge.to.id}: ${edge.effect} x${edge.count} (${[...edge.actions].join(", ")})`));
      graph.appendChild(path);
    }
  }

  function drawAlerts(answer) {
    const suspended = $("suspended").tBodies[0];
    suspended.replaceChildren();
    for (const s of answer.suspended) {
      const row = document.createElement("tr");
      row.setAttribute("data-agent", s.agent_id);
      cell(row, s.agent_id);
      cell(row, s.since);
      cell(row, s.by);
      cell(row, s.reason);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reinstate";
      button.textContent = "Reinstate";
      button.setAttribute("data-agent", s.agent_id);
      button.addEventListener("click", () => reinstate(s.agent_id, button));
      row.appendChild(document.createElement("td")).appendChild(button);
      suspended.appendChild(row);
    }
    if (!answer.suspended.length) {
      const row = document.createElement("tr");
      cell(row, "nobody is suspended").colSpan = 5;
      suspended.appendChild(row);
    }
    const events = $("events").tBodies[0];
    events.replaceChildren();
    for (const r of answer.events) {
      const row = document.createElement("tr");
      row.className = "event " + r.event;
      cell(row, r.time);
      cell(row, r.event);
      cell(row, r.agent_id || r.target_agent || "");
      cell(row, (r.detail && r.detail.by) || "");
      cell(row, r.reason || "");
      events.appendChild(row);
    }
  }

  async function reinstate(agent, button) {
    button.disabled = true;
    try {
      await call("/ui/api/agents/" + encodeURIComponent(agent) + "/reinstate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ reason: "reinstated from /ui" }),
      });
      status("reinstated " + agent);
      await refresh();
    } catch (e) {
      button.disabled = false;
      status("could not reinstate " + agent + ": " + e.message, true);
    }
  }

  function filters() {
    const form = $("filters");
    const query = new URLSearchParams();
    for (const name of ["agent", "effect", "reason"]) {
      const value = form.elements[name].value.trim();
      if (value) query.set(name, value);
    }
    query.set("limit", "500");
    return query.toString();
  }

  let busy = false;
  async function refresh() {
    if (busy || ended) return;
    busy = true;
    try {
      const [table, all, alerts] = await Promise.all([
        call("/ui/api/audit?" + filters()),
        call("/ui/api/audit?event=authorization&limit=1000"),
        call("/ui/api/alerts"),
      ]);
      drawDecisions(table.records);
      drawGraph(all.records, all.segments);
      drawAlerts(alerts);
      status("updated " + new Date().toISOString() + (table.more ? " (older decisions not shown)" : ""));
      document.body.setAttribute("data-loaded", "true");
    } catch (e) {
      if (!ended) status("could not read the audit log: " + e.message, true);
    } finally {
      busy = false;
    }
  }

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  refresh();
  setInterval(refresh, 3000);
})();
