// The local dashboard page: a snapshot from the server, then one Server-Sent Event per sample.
// Charts are small hand-drawn SVGs; every text from the run (client ids, topics, keys) goes in as
// text, never as markup. Each list is trimmed to the server's bounds, so the page stays small too.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
  const MAX_POINTS = 300;
  const MAX_WINDOWS = 500;
  let state = null;
  let queued = false;
  let source = null;

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function fmt(n) {
    if (n === null || n === undefined) return "–";
    if (typeof n !== "number") return String(n);
    return Number.isInteger(n) ? n.toLocaleString("en") : n.toFixed(2);
  }

  function clock(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  function setStatus(kind, text) {
    const s = $("status");
    s.dataset.state = kind;
    s.textContent = text;
  }

  /**
   * A line chart: `lines` of {label, color, points: [[x, y]], dots} over a shared x range;
   * `horizontal` lines (thresholds) are drawn dashed. Returns the <svg>.
   */
  function chart(lines, opts) {
    const w = 600;
    const h = opts.height || 160;
    const pad = { l: 44, r: 8, t: 8, b: 20 };
    const svg = svgEl("svg", { viewBox: `0 0 ${w} ${h}`, role: "img" });
    const all = lines.flatMap((l) => l.points);
    const hs = (opts.horizontal || []).map((a) => a.value);
    const xs = all.map((p) => p[0]);
    const ys = all.map((p) => p[1]).concat(hs);
    let x0 = xs.length ? Math.min(...xs) : 0;
    let x1 = xs.length ? Math.max(...xs) : 1;
    if (x1 === x0) x1 = x0 + 1;
    let y0 = Math.min(0, ...ys);
    let y1 = ys.length ? Math.max(...ys) : 1;
    if (opts.fitY && all.length) {
      y0 = Math.min(...all.map((p) => p[1]));
      y1 = Math.max(...all.map((p) => p[1]));
    }
    if (y1 === y0) y1 = y0 + 1;
    const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const sy = (y) => h - pad.b - ((y - y0) / (y1 - y0)) * (h - pad.t - pad.b);
    svg.appendChild(
      svgEl("line", { x1: pad.l, x2: w - pad.r, y1: sy(y0), y2: sy(y0), stroke: "#ccc" }),
    );
    for (const [y, label] of [
      [y0, fmt(y0)],
      [y1, fmt(y1)],
    ]) {
      const t = svgEl("text", { x: pad.l - 4, y: sy(y) + 3, "text-anchor": "end" });
      t.textContent = label;
      svg.appendChild(t);
    }
    if (xs.length) {
      for (const [x, anchor] of [
        [x0, "start"],
        [x1, "end"],
      ]) {
        const t = svgEl("text", { x: sx(x), y: h - 5, "text-anchor": anchor });
        t.textContent = clock(x);
        svg.appendChild(t);
      }
    }
    for (const a of opts.horizontal || []) {
      svg.appendChild(
        svgEl("line", {
          x1: pad.l,
          x2: w - pad.r,
          y1: sy(a.value),
          y2: sy(a.value),
          stroke: "#c62828",
          "stroke-dasharray": "4 3",
          class: "threshold",
        }),
      );
      const t = svgEl("text", { x: w - pad.r, y: sy(a.value) - 3, "text-anchor": "end" });
      t.textContent = `${a.label} ${fmt(a.value)}`;
      svg.appendChild(t);
    }
    for (const l of lines) {
      if (l.points.length > 1 && !l.dotsOnly) {
        const d = l.points
          .map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
          .join("");
        svg.appendChild(svgEl("path", { d, fill: "none", stroke: l.color, "stroke-width": 1.5 }));
      }
    }
    if (opts.groups) {
      // One <g class="window"> per window, a dot per column: the browser suite counts them.
      for (const g of opts.groups) {
        const group = svgEl("g", { class: "window", "data-seq": g.seq });
        for (const d of g.dots) {
          group.appendChild(
            svgEl("circle", { cx: sx(d[0]), cy: sy(d[1]), r: 3, fill: d[2], "data-column": d[3] }),
          );
        }
        svg.appendChild(group);
      }
    }
    return svg;
  }

  function legend(items) {
    const ul = el("ul", { class: "legend" });
    for (const it of items) {
      const li = el("li", it.attrs || {});
      const sw = el("span", { class: "swatch" });
      sw.style.background = it.color;
      li.appendChild(sw);
      li.appendChild(el("span", {}, it.label));
      if (it.total !== undefined) li.appendChild(el("span", { class: "total" }, it.total));
      ul.appendChild(li);
    }
    return ul;
  }

  function metricKey(line) {
    return line.slice(0, 4).join("|");
  }

  function renderWidgets() {
    const box = $("widgets");
    box.replaceChildren();
    for (const wdg of state.widgets) {
      const p = wdg.properties;
      const panel = el("div", { class: "panel widget", "data-widget-title": p.title });
      panel.appendChild(el("h3", {}, p.title));
      const lines = [];
      const items = [];
      p.metrics.forEach((m, i) => {
        const key = metricKey(m);
        const opts = typeof m[4] === "object" ? m[4] : {};
        const stat = opts.stat || p.stat;
        const s = state.series[key] || { points: [], total: 0, stat };
        const color = COLORS[i % COLORS.length];
        lines.push({ points: s.points, color });
        items.push({
          color,
          label: `${m[0]} ${m[1]} ${m[2]}=${m[3]} (${stat})`,
          total: stat === "Sum" ? `${fmt(s.total)} in this run` : `now ${fmt(s.total)}`,
          attrs: { "data-metric": key, "data-total": s.total },
        });
      });
      const horizontal = (p.annotations && p.annotations.horizontal) || [];
      panel.appendChild(chart(lines, { horizontal }));
      panel.appendChild(legend(items));
      box.appendChild(panel);
    }
    $("widgets-note").textContent =
      `One point per ${state.sampleMs / 1000} s of this run (Sum: the count in it; Maximum and Average: ` +
      `the value then). CloudWatch draws the same metrics per ${state.periodSeconds} s period.` +
      (state.timeScale !== 1 ? ` Delivery runs ${state.timeScale}× faster here (--fast).` : "");
  }

  function renderAlarms() {
    const body = $("alarms").tBodies[0];
    body.replaceChildren();
    for (const a of state.alarms) {
      const tr = el("tr", { "data-alarm": a.name });
      tr.appendChild(el("td", {}, a.name + (a.enabled ? "" : " (not deployed: alarms off)")));
      tr.appendChild(el("td", { class: "state", "data-state": a.state }, a.state));
      tr.appendChild(el("td", {}, a.value === null ? "–" : `${fmt(a.value)} ${a.unit}`));
      tr.appendChild(el("td", {}, `> ${fmt(a.threshold)} ${a.unit}`));
      tr.appendChild(el("td", {}, a.description));
      body.appendChild(tr);
    }
  }

  function reading(r) {
    if (!r) return "–";
    const parts = Object.entries(r.values)
      .filter(([k]) => k !== "thing" && k !== "timestamp")
      // A payload's values as the device sent them: an integer field (a timestamp, a counter) is
      // not a count to group in thousands.
      .map(([k, v]) => `${k} ${typeof v === "number" && Number.isInteger(v) ? String(v) : fmt(v)}`);
    return `${clock(r.at)} ${parts.join(", ")}`;
  }

  function renderDevices() {
    const body = $("devices").tBodies[0];
    body.replaceChildren();
    for (const d of state.devices) {
      const tr = el("tr", { "data-thing": d.thing });
      tr.appendChild(el("td", {}, d.thing));
      tr.appendChild(el("td", { class: d.connected ? "yes" : "no" }, d.connected ? "yes" : "no"));
      const c = d.client || {};
      tr.appendChild(el("td", { "data-col": "sent" }, fmt(c.sent)));
      tr.appendChild(el("td", { "data-col": "acked" }, fmt(c.acked)));
      tr.appendChild(el("td", { "data-col": "rejected" }, fmt(c.rejected)));
      tr.appendChild(el("td", { "data-col": "matched" }, fmt(d.matched)));
      tr.appendChild(el("td", { "data-col": "denials" }, fmt(d.denials)));
      tr.appendChild(el("td", {}, reading(d.lastReading)));
      body.appendChild(tr);
    }
    const notes = [];
    if (state.devicesNotShown) {
      notes.push(
        `${state.devicesNotShown} more thing(s) of the fleet not listed (the table's bound)`,
      );
    }
    if (state.strangerEventsNotShown) {
      notes.push(`${state.strangerEventsNotShown} event(s) of other client ids not shown`);
    }
    $("devices-note").textContent = notes.join("; ");
  }

  function renderReadings() {
    const box = $("readings");
    box.replaceChildren();
    for (const [thing, points] of Object.entries(state.readings)) {
      const panel = el("div", { class: "panel", "data-readings": thing });
      panel.appendChild(el("h3", {}, thing));
      const fields = [...new Set(points.flatMap((p) => Object.keys(p[1])))];
      const lines = fields.map((f, i) => ({
        color: COLORS[i % COLORS.length],
        points: points.filter((p) => f in p[1]).map((p) => [p[0], p[1][f]]),
      }));
      panel.appendChild(chart(lines, { height: 120, fitY: true }));
      panel.appendChild(
        legend(
          fields.map((f, i) => {
            const last = points.length ? points[points.length - 1][1][f] : undefined;
            return { color: COLORS[i % COLORS.length], label: f, total: fmt(last) };
          }),
        ),
      );
      box.appendChild(panel);
    }
  }

  function renderWindows() {
    const box = $("windows");
    box.replaceChildren();
    const cols = state.windowColumns;
    if (!cols.length) {
      box.appendChild(el("p", { class: "note" }, "this stack has no analytics window"));
      return;
    }
    const groups = state.windows.map((w) => ({
      seq: w.seq,
      dots: cols
        .filter((c) => typeof w.row[c] === "number")
        .map((c, i) => [Date.parse(w.end), w.row[c], COLORS[i % COLORS.length], c]),
    }));
    const lines = cols.map((c, i) => ({
      color: COLORS[i % COLORS.length],
      points: state.windows
        .filter((w) => typeof w.row[c] === "number")
        .map((w) => [Date.parse(w.end), w.row[c]]),
    }));
    const panel = el("div", {
      class: "panel",
      "data-windows-delivered": state.windowsDelivered,
      id: "windows-panel",
    });
    panel.appendChild(chart(lines, { height: 220, fitY: true, groups }));
    panel.appendChild(
      legend(
        cols
          .map((c, i) => ({ color: COLORS[i % COLORS.length], label: c }))
          .concat([
            {
              color: "transparent",
              label: "windows delivered",
              total: fmt(state.windowsDelivered),
              attrs: { id: "windows-delivered" },
            },
          ]),
      ),
    );
    box.appendChild(panel);
  }

  function renderLists() {
    const ul = $("objects");
    ul.replaceChildren();
    for (const o of state.objects.slice().reverse()) {
      const li = el("li", o.error ? { class: "error" } : {});
      const href = "/bucket/" + o.key.split("/").map(encodeURIComponent).join("/");
      li.appendChild(el("a", { href, target: "_blank", rel: "noopener" }, o.key));
      li.appendChild(document.createTextNode(` (${o.stream}${o.error ? ", error output" : ""})`));
      ul.appendChild(li);
    }
    if (!state.objects.length) ul.appendChild(el("li", { class: "note" }, "none yet"));
    const errs = $("rule-errors");
    errs.replaceChildren();
    for (const e of state.ruleErrors.slice().reverse()) {
      errs.appendChild(el("li", {}, `${clock(e.at)} ${e.clientId} on ${e.topic}: ${e.message}`));
    }
    if (!state.ruleErrors.length) errs.appendChild(el("li", { class: "note" }, "none"));
    $("rule-errors-total").textContent = `${fmt(state.ruleErrorsTotal)} in this run`;
  }

  function render() {
    queued = false;
    if (!state) return;
    $("stack").textContent =
      `· stack ${state.stack} · bucket ${state.bucket} · started ${clock(state.startedAt)} UTC`;
    renderWidgets();
    renderAlarms();
    renderDevices();
    renderReadings();
    renderWindows();
    renderLists();
    document.body.dataset.ended = state.ended ? "true" : "false";
  }

  function schedule() {
    if (!queued) {
      queued = true;
      requestAnimationFrame(render);
    }
  }

  function trim(list, n) {
    if (list.length > n) list.splice(0, list.length - n);
  }

  function applyTick(t) {
    for (const [key, s] of Object.entries(t.series)) {
      const have = state.series[key];
      if (!have) continue;
      have.points.push(s.point);
      trim(have.points, MAX_POINTS);
      have.total = s.total;
    }
    state.alarms = t.alarms;
    const rows = new Map(state.devices.map((d, i) => [d.thing, i]));
    for (const d of t.devices) {
      if (rows.has(d.thing)) state.devices[rows.get(d.thing)] = d;
      else state.devices.push(d);
    }
    state.devicesNotShown = t.devicesNotShown;
    state.strangerEventsNotShown = t.strangerEventsNotShown;
    for (const [thing, pts] of Object.entries(t.readings)) {
      const list = state.readings[thing] || (state.readings[thing] = []);
      list.push(...pts);
      trim(list, MAX_POINTS);
    }
    const seen = new Set(state.windows.map((w) => w.seq));
    for (const w of t.windows) if (!seen.has(w.seq)) state.windows.push(w);
    trim(state.windows, MAX_WINDOWS);
    state.windowsDelivered = t.windowsDelivered;
    state.objects = t.objects;
    state.ruleErrors = t.ruleErrors;
    state.ruleErrorsTotal = t.ruleErrorsTotal;
    state.ended = t.ended;
  }

  function connect() {
    source = new EventSource("/events");
    source.addEventListener("snapshot", (e) => {
      state = JSON.parse(e.data);
      setStatus(state.ended ? "ended" : "live", state.ended ? "run ended" : "live");
      schedule();
    });
    source.addEventListener("tick", (e) => {
      if (!state) return;
      applyTick(JSON.parse(e.data));
      setStatus(state.ended ? "ended" : "live", state.ended ? "run ended" : "live");
      schedule();
    });
    source.addEventListener("end", () => {
      // The run is over: keep its last figures on screen; no reconnecting to a stopped server.
      source.close();
      if (state) state.ended = true;
      setStatus("ended", "run ended: these are its final figures");
      schedule();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setStatus("lost", "not connected (the run may have ended, or too many pages are open)");
      } else {
        setStatus("lost", "reconnecting…");
      }
    };
  }

  connect();
})();
