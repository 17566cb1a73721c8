/* haystack_rl run report: summary, rollout browser (virtual table, transcripts, token view), learning curves,
   per-example comparison. Reads the JSON block #report-data; works from a file, offline. */
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const report = (window.report = { data: DATA, charts: {}, tables: {}, ready: false });
  const PALETTE = ["#2f6fdb", "#e07b00", "#2e7d32", "#8e44ad", "#c62828", "#00838f", "#6d4c41", "#ad1457", "#546e7a"];
  const ROW_HEIGHT = 26;

  // --- small helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      const abs = Math.abs(value);
      if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
      return value.toFixed(4);
    }
    if (typeof value === "boolean") return value ? "yes" : "no";
    return String(value);
  }
  function figureRow(label, path, value, cls) {
    // data-figure holds the JSON path into the section's data, data-value the exact recorded number
    return el("tr", { "data-figure": JSON.stringify(path), "data-value": JSON.stringify(value === undefined ? null : value) },
      el("th", { text: label }), el("td", { class: cls, text: fmt(value) }));
  }
  function kvTable(rows) {
    return el("table", { class: "kv" }, el("tbody", {}, rows));
  }
  function compare(a, b) {
    const an = a === null || a === undefined || Number.isNaN(a);
    const bn = b === null || b === undefined || Number.isNaN(b);
    if (an || bn) return an === bn ? 0 : an ? 1 : -1; // missing values last, whatever the direction
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }
  function mean(values) {
    const xs = values.filter((v) => typeof v === "number");
    return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : null;
  }
  function std(values) {
    const xs = values.filter((v) => typeof v === "number");
    if (!xs.length) return null;
    const m = mean(xs);
    return Math.sqrt(xs.reduce((s, v) => s + (v - m) * (v - m), 0) / xs.length);
  }
  function completionText(rollout) {
    for (let i = rollout.messages.length - 1; i >= 0; i--) {
      if (rollout.messages[i].role === "assistant") return rollout.messages[i].text || "";
    }
    return "";
  }
  function oneLine(text, max) {
    const line = String(text || "").replace(/\s+/g, " ").trim();
    return line.length > max ? line.slice(0, max - 1) + "…" : line;
  }

  // --- summary ---------------------------------------------------------------------------------
  function summaryPanel(section) {
    const s = section.summary || {};
    const panel = el("section", { class: "panel summary", "data-section": section.id });
    panel.append(el("h2", { text: "Summary" }),
      el("div", { class: "note", text: `${section.environment || ""} · model ${section.model || "?"} · ${section.path} · summary from ${section.summary_source}` }));
    const head = [
      figureRow("rollouts", ["n"], s.n), figureRow("examples", ["n_examples"], s.n_examples),
      figureRow("reward mean", ["reward_mean"], s.reward_mean), figureRow("reward std", ["reward_std"], s.reward_std),
      figureRow("scored", ["n_scored"], s.n_scored), figureRow("unscored (reward None)", ["n_unscored"], s.n_unscored),
    ];
    if ("success" in s) head.push(figureRow("success", ["success"], s.success));
    const rewards = Object.entries(s.rewards || {}).map(([k, v]) => figureRow(k, ["rewards", k], v));
    const metrics = Object.entries(s.metrics || {}).map(([k, v]) => figureRow(k, ["metrics", k], v));
    const pass = Object.entries(s.pass_at_k || {}).map(([k, v]) => figureRow(k, ["pass_at_k", k], v));
    const errors = [figureRow("errors", ["errors"], s.errors, s.errors ? "bad" : null)]
      .concat(Object.entries(s.reward_errors || {}).map(([k, v]) => figureRow(`reward error: ${k}`, ["reward_errors", k], v, "bad")))
      .concat(Object.entries((section.derived || {}).errors_by_kind || {}).map(([k, v]) => figureRow(k, ["derived", "errors_by_kind", k], v, "bad")));
    const tools = Object.entries(s.tool_use || {}).map(([k, v]) => figureRow(k.replace(/_/g, " "), ["tool_use", k], v));
    const stops = Object.entries(s.stop_reasons || {}).map(([k, v]) => figureRow(k, ["stop_reasons", k], v));
    const t = s.tokens || {};
    const cost = [
      figureRow("rollouts with tokens", ["tokens", "rollouts_with_tokens"], t.rollouts_with_tokens),
      figureRow("completion tokens total", ["tokens", "completion_total"], t.completion_total),
      figureRow("completion tokens mean", ["tokens", "completion_mean"], t.completion_mean),
      figureRow("rollout time mean (s)", ["rollout_time_mean_s"], s.rollout_time_mean_s),
      figureRow("wall time (s)", ["wall_time_s"], s.wall_time_s),
      figureRow("rollouts / s", ["rollouts_per_s"], s.rollouts_per_s),
    ];
    const d = section.derived || {};
    const derived = ["success", "tool_calls_per_rollout", "tool_error_rate", "no_tool_share"]
      .filter((k) => k in d).map((k) => figureRow(k.replace(/_/g, " "), ["derived", k], d[k]));
    const block = (title, rows) => (rows.length ? el("div", {}, el("h3", { text: title }), kvTable(rows)) : null);
    panel.append(el("div", { class: "figures" },
      block("reward", head), block("reward functions", rewards), block("metrics", metrics), block("pass@k", pass),
      block("tool use", tools), block("errors", errors), block("stop reasons", stops), block("tokens and time", cost),
      derived.length ? el("div", {}, el("h3", { text: "from the rollouts" }), kvTable(derived),
        el("div", { class: "note", text: d.success_source ? `success: ${d.success_source}` : "" })) : null));
    for (const [key, byValue] of Object.entries(s.breakdowns || {})) panel.append(breakdownTable(key, byValue));
    if ((s.error_examples || []).length) {
      panel.append(el("h3", { text: "error examples" }), ...s.error_examples.map((e) => el("div", { class: "bad note", text: e })));
    }
    return panel;
  }

  function breakdownTable(key, byValue) {
    const metricNames = [...new Set(Object.values(byValue).flatMap((row) => Object.keys(row.metrics || {})))].sort();
    const head = el("tr", {}, el("th", { text: key }), el("th", { text: "n" }), el("th", { text: "reward mean" }),
      metricNames.map((m) => el("th", { text: m })));
    const cell = (path, value) => el("td", { "data-figure": JSON.stringify(path), "data-value": JSON.stringify(value === undefined ? null : value), text: fmt(value) });
    const rows = Object.entries(byValue).map(([value, row]) => el("tr", {}, el("td", { text: value }),
      cell(["breakdowns", key, value, "n"], row.n), cell(["breakdowns", key, value, "reward_mean"], row.reward_mean),
      metricNames.map((m) => cell(["breakdowns", key, value, "metrics", m], (row.metrics || {})[m]))));
    return el("div", { class: "breakdown" }, el("h3", { text: `by ${key}` }), el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, rows)));
  }

  // --- a sortable, filterable table that renders only the rows in view ------------------------------
  class VirtualTable {
    constructor(columns, onSelect) {
      this.columns = columns;
      this.onSelect = onSelect;
      this.rows = [];
      this.sort = null;
      this.selected = null;
      this.body = el("tbody");
      this.headCells = columns.map((column) => el("th", { style: column.width ? `width:${column.width}` : null, title: column.title || column.label,
        text: column.label, onclick: () => this.sortBy(column) }));
      this.wrap = el("div", { class: "table-wrap" },
        el("table", { class: "rows" }, el("thead", {}, el("tr", {}, this.headCells)), this.body));
      let pending = false;
      this.wrap.addEventListener("scroll", () => {
        if (pending) return;
        pending = true;
        requestAnimationFrame(() => { pending = false; this.render(); });
      });
    }
    setRows(rows) {
      this.rows = rows;
      if (this.sort) this.applySort();
      this.wrap.style.height = `${Math.max(3, Math.min(16, rows.length + 1)) * ROW_HEIGHT + 8}px`;
      this.wrap.scrollTop = 0;
      this.render();
    }
    sortBy(column, direction) {
      const dir = direction || (this.sort && this.sort.column === column && this.sort.dir === "desc" ? "asc" : "desc");
      this.sort = { column, dir };
      this.headCells.forEach((cell, i) => { cell.className = this.columns[i] === column ? `sorted-${dir}` : ""; });
      this.applySort();
      this.render();
    }
    applySort() {
      const { column, dir } = this.sort;
      const sign = dir === "asc" ? 1 : -1;
      const keyed = this.rows.map((row) => [column.value(row), row]);
      keyed.sort((a, b) => {
        const missingA = a[0] === null || a[0] === undefined, missingB = b[0] === null || b[0] === undefined;
        if (missingA || missingB) return compare(a[0], b[0]);
        return sign * compare(a[0], b[0]);
      });
      this.rows = keyed.map((pair) => pair[1]);
    }
    render() {
      const height = this.wrap.clientHeight || 420;
      const first = Math.max(0, Math.floor(this.wrap.scrollTop / ROW_HEIGHT) - 10);
      const last = Math.min(this.rows.length, first + Math.ceil(height / ROW_HEIGHT) + 20);
      const out = [el("tr", { style: `height:${first * ROW_HEIGHT}px` })];
      for (let i = first; i < last; i++) {
        const row = this.rows[i];
        const tr = el("tr", { class: row === this.selected ? "row selected" : "row", onclick: () => this.select(row) });
        for (const column of this.columns) {
          const value = column.value(row);
          const text = column.format ? column.format(value, row) : fmt(value);
          tr.append(el("td", { class: (column.numeric ? "num " : "") + (column.cls ? column.cls(value, row) : ""), title: text, text }));
        }
        out.push(tr);
      }
      out.push(el("tr", { style: `height:${(this.rows.length - last) * ROW_HEIGHT}px` }));
      this.body.replaceChildren(...out);
    }
    select(row) {
      this.selected = row;
      this.render();
      this.onSelect(row);
    }
  }

  // --- rollout browser ---------------------------------------------------------------------------
  function rolloutBrowser(section) {
    const rollouts = section.rollouts;
    const groups = new Map();
    for (const r of rollouts) {
      if (!groups.has(r.group_id)) groups.set(r.group_id, { group_id: r.group_id, example_id: r.example_id, prompt: r.prompt, rollouts: [] });
      groups.get(r.group_id).rollouts.push(r);
      r._search = null;
    }
    for (const g of groups.values()) {
      const rewards = g.rollouts.map((r) => r.reward);
      g.mean = mean(rewards);
      g.spread = std(rewards);
      g.min = rewards.filter((v) => typeof v === "number").reduce((m, v) => Math.min(m, v), Infinity);
      g.max = rewards.filter((v) => typeof v === "number").reduce((m, v) => Math.max(m, v), -Infinity);
      if (!Number.isFinite(g.min)) g.min = g.max = null;
      g.errors = g.rollouts.filter((r) => r.error).length;
      g.stops = [...new Set(g.rollouts.map((r) => r.stop_reason))].join(", ");
    }
    const detail = el("div", { class: "detail" });
    const groupColumns = [
      { label: "example", value: (g) => g.example_id, width: "12%" },
      { label: "rollouts", value: (g) => g.rollouts.length, numeric: true, width: "7%" },
      { label: "mean reward", value: (g) => g.mean, numeric: true, width: "9%" },
      { label: "spread", title: "standard deviation of the group's rewards", value: (g) => g.spread, numeric: true, width: "8%" },
      { label: "min", value: (g) => g.min, numeric: true, width: "7%" },
      { label: "max", value: (g) => g.max, numeric: true, width: "7%" },
      { label: "errors", value: (g) => g.errors, numeric: true, width: "6%", cls: (v) => (v ? "bad" : "") },
      { label: "stop reasons", value: (g) => g.stops, width: "12%" },
      { label: "prompt", value: (g) => oneLine(g.prompt, 200) },
    ];
    const rolloutColumns = [
      { label: "example", value: (r) => r.example_id, width: "11%" },
      { label: "#", value: (r) => r.rollout_index, numeric: true, width: "4%" },
      { label: "reward", value: (r) => r.reward, numeric: true, width: "8%" },
      ...section.reward_names.slice(0, 4).map((name) => ({ label: name, value: (r) => r.rewards[name], numeric: true, width: "9%",
        cls: (v, r) => (name in (r.reward_errors || {}) ? "bad" : "") })),
      { label: "stop", value: (r) => r.stop_reason, width: "8%" },
      { label: "error", value: (r) => r.error_kind || (Object.keys(r.reward_errors || {}).length ? "reward error" : ""), width: "12%", cls: (v) => (v ? "bad" : "") },
      { label: "tokens", value: (r) => r.n_tokens, numeric: true, width: "6%" },
      { label: "answer", value: (r) => oneLine(r.answer ? r.answer.text : completionText(r), 160) },
    ];
    const groupTable = new VirtualTable(groupColumns, (g) => showGroup(g, g.rollouts[0]));
    const rolloutTable = new VirtualTable(rolloutColumns, (r) => showGroup(groups.get(r.group_id), r));
    const filters = { view: groups.size < rollouts.length ? "groups" : "rollouts", stop: "", error: "", text: "" };

    function showGroup(group, rollout) {
      detail.replaceChildren(rolloutDetail(section, group.rollouts, rollout, (other) => showGroup(group, other)));
    }
    const count = el("span", { class: "count" });
    const stopSelect = el("select", { "aria-label": "stop reason", onchange: (e) => apply({ stop: e.target.value }) },
      el("option", { value: "", text: "any stop reason" }),
      [...new Set(rollouts.map((r) => r.stop_reason))].sort().map((s) => el("option", { value: s, text: `stop: ${s}` })));
    const kinds = [...new Set(rollouts.map((r) => r.error_kind).filter(Boolean))].sort();
    const errorSelect = el("select", { "aria-label": "errors", onchange: (e) => apply({ error: e.target.value }) },
      el("option", { value: "", text: "errors or not" }), el("option", { value: "any", text: "with an error" }),
      el("option", { value: "none", text: "without errors" }), el("option", { value: "reward", text: "with a reward error" }),
      kinds.map((k) => el("option", { value: "kind:" + k, text: k })));
    const viewSelect = el("select", { "aria-label": "view", onchange: (e) => apply({ view: e.target.value }) },
      el("option", { value: "groups", text: "groups (one row per example)", selected: filters.view === "groups" }),
      el("option", { value: "rollouts", text: "rollouts", selected: filters.view === "rollouts" }));
    let timer = null;
    const search = el("input", { type: "search", placeholder: "search prompts, replies, errors…",
      oninput: (e) => { clearTimeout(timer); timer = setTimeout(() => apply({ text: e.target.value }), 120); } });
    const tableHolder = el("div");

    function matches(r) {
      if (filters.stop && r.stop_reason !== filters.stop) return false;
      if (filters.error === "any" && !r.error) return false;
      if (filters.error === "none" && (r.error || Object.keys(r.reward_errors || {}).length)) return false;
      if (filters.error === "reward" && !Object.keys(r.reward_errors || {}).length) return false;
      if (filters.error.startsWith("kind:") && r.error_kind !== filters.error.slice(5)) return false;
      if (filters.text) {
        if (r._search === null) {
          r._search = [r.example_id, r.group_id, r.error || "", ...r.messages.map((m) => m.text || "")].join("\n").toLowerCase();
        }
        if (!r._search.includes(filters.text)) return false;
      }
      return true;
    }
    function apply(change) {
      Object.assign(filters, change || {});
      filters.text = (filters.text || "").toLowerCase().trim();
      const kept = rollouts.filter(matches);
      let shown;
      if (filters.view === "groups") {
        const ids = new Set(kept.map((r) => r.group_id));
        shown = [...groups.values()].filter((g) => ids.has(g.group_id));
        tableHolder.replaceChildren(groupTable.wrap);
        groupTable.setRows(shown);
      } else {
        shown = kept;
        tableHolder.replaceChildren(rolloutTable.wrap);
        rolloutTable.setRows(shown);
      }
      count.textContent = `${kept.length} of ${rollouts.length} rollouts` + (filters.view === "groups" ? ` · ${shown.length} of ${groups.size} groups` : "");
      return shown.length;
    }
    report.tables[section.id] = {
      apply, filters, groups: groupTable, rollouts: rolloutTable,
      shown: () => (filters.view === "groups" ? groupTable.rows.length : rolloutTable.rows.length),
    };
    const panel = el("section", { class: "panel browser", "data-section": section.id },
      el("h2", { text: "Rollouts" }),
      el("div", { class: "controls" }, viewSelect, stopSelect, errorSelect, search, count),
      tableHolder, detail);
    apply();
    return panel;
  }

  // --- one rollout: rewards, answer, transcript, tokens ------------------------------------------
  function rolloutDetail(section, siblings, rollout, onPick) {
    const box = el("div", { class: "rollout", "data-rollout": String(rollout.i) });
    box.append(el("div", { class: "head" },
      `example ${rollout.example_id} · rollout #${rollout.rollout_index} · reward ${fmt(rollout.reward)} · stop ${rollout.stop_reason} · seed ${rollout.seed}`));
    if (siblings.length > 1) {
      box.append(el("div", { class: "chips" }, siblings.map((r) => el("button", {
        class: r === rollout ? "chip current" : "chip", title: `rollout #${r.rollout_index}`, onclick: () => onPick(r),
        text: `#${r.rollout_index} · ${fmt(r.reward)}` }))));
    }
    if (rollout.error) box.append(el("div", { class: "bad error" }, "error: ", rollout.error));
    const rewardRows = Object.entries(rollout.rewards).map(([k, v]) => el("tr", { class: "reward-fn" }, el("th", { text: k }), el("td", { text: fmt(v) })));
    const errorRows = Object.entries(rollout.reward_errors || {}).map(([k, v]) => el("tr", { class: "bad" }, el("th", { text: `${k} failed` }), el("td", { text: v })));
    const metricRows = Object.entries(rollout.metrics).map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: fmt(v) })));
    const other = [["reward", rollout.reward], ["success", rollout.success], ["completion tokens", rollout.n_tokens],
      ["time (s)", (rollout.timing || {}).total_s]].filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: fmt(v) })));
    box.append(el("div", { class: "figures" },
      el("div", {}, el("h3", { text: "reward functions" }), kvTable([...rewardRows, ...errorRows])),
      metricRows.length ? el("div", {}, el("h3", { text: "metrics" }), kvTable(metricRows)) : null,
      el("div", {}, el("h3", { text: "rollout" }), kvTable(other))));
    if (rollout.answer || rollout.expected !== null) {
      const ok = rollout.answer && rollout.expected !== null ? rollout.answer.text === rollout.expected : null;
      box.append(el("div", { class: "answer" },
        el("h3", { text: "answer" }),
        rollout.answer ? el("div", {}, `parsed <${rollout.answer.tag}>: `, el("b", { class: ok === null ? "" : ok ? "good" : "bad", text: rollout.answer.text }))
          : el("div", { class: "note", text: "no tagged answer in the last reply" }),
        rollout.expected !== null ? el("div", {}, "expected: ", el("b", { text: rollout.expected })) : null));
    }
    box.append(el("h3", { text: "transcript" }), transcript(rollout));
    if (rollout.tokens) box.append(tokenView(section, rollout.tokens));
    else box.append(el("div", { class: "note no-tokens", text: "no token data (the policy returned none, e.g. a served or scripted model)" }));
    box.append(el("details", {}, el("summary", { text: "info and example" }),
      el("pre", { class: "json", text: JSON.stringify({ info: rollout.info, timing: rollout.timing }, null, 1) })));
    return box;
  }

  function transcript(rollout) {
    return el("div", { class: "transcript" }, rollout.messages.map((m) => {
      const parts = [el("div", { class: "role", text: m.role + (m.name ? ` (${m.name})` : "") + (m.meta && m.meta.finish_reason ? ` · ${m.meta.finish_reason}` : "") })];
      if (m.reasoning) parts.push(el("details", {}, el("summary", { text: "reasoning" }), el("div", { class: "text", text: m.reasoning })));
      if (m.text) parts.push(el("div", { class: "text", text: m.text }));
      for (const call of m.tool_calls) {
        parts.push(el("div", { class: "tool-call", text: `→ ${call.name}(${JSON.stringify(call.arguments)})` }));
      }
      if (m.tool_result) {
        const r = m.tool_result;
        parts.push(el("div", { class: r.error ? "tool-result error" : "tool-result",
          text: `← ${r.name}${r.error ? " failed" : ""}: ${r.result}` }));
      }
      return el("div", { class: `msg role-${m.role}` }, parts);
    }));
  }

  function tokenSpan(section, id, cls, logprob) {
    const piece = section.vocab && id in section.vocab ? section.vocab[id] : `[${id}]`;
    const shown = piece === "" ? "∅" : piece.replace(/\n/g, "↵\n");
    let title = `id ${id}`;
    let style = null;
    if (typeof logprob === "number") {
      const p = Math.exp(logprob);
      title += ` · logprob ${logprob.toFixed(3)} · p ${p.toFixed(3)}`;
      style = `background:hsl(${Math.round(120 * p)},70%,${88 - 10 * (1 - p)}%)`;
    }
    return el("span", { class: `tok ${cls}`, title, style, "data-id": String(id) }, shown);
  }

  function tokenView(section, tokens) {
    const model = tokens.mask.filter((m) => m === 1).length;
    const box = el("div", { class: "token-view" }, el("h3", { text: `tokens: ${model} model, ${tokens.mask.length - model} environment, ${tokens.prompt.length} in the first prompt` }),
      el("div", { class: "legend" },
        el("span", {}, el("span", { class: "swatch", style: "background:hsl(120,70%,88%)" }), "model token, p≈1"),
        el("span", {}, el("span", { class: "swatch", style: "background:hsl(0,70%,78%)" }), "model token, p≈0"),
        el("span", {}, el("span", { class: "swatch", style: "background:#e6e8ec" }), "environment token (mask 0)"),
        section.token_note ? el("span", { text: section.token_note }) : null));
    if (tokens.error) box.append(el("div", { class: "bad note", text: tokens.error }));
    const prompt = el("details", { class: "prompt-tokens" }, el("summary", { text: `first prompt (${tokens.prompt.length} tokens)` }));
    prompt.addEventListener("toggle", () => {
      if (prompt.open && !prompt.querySelector(".tokens")) {
        prompt.append(el("div", { class: "tokens" }, tokens.prompt.map((id) => tokenSpan(section, id, "tok-prompt", null))));
      }
    });
    box.append(prompt, el("div", { class: "tokens completion-tokens" },
      tokens.ids.map((id, i) => tokenSpan(section, id, tokens.mask[i] ? "tok-model" : "tok-env", tokens.mask[i] ? tokens.logprobs[i] : null))));
    return box;
  }

  // --- learning curves ---------------------------------------------------------------------------
  function chartCard(chart) {
    const holder = el("div", { class: "plot" });
    const card = el("div", { class: "chart", "data-chart": chart.id });
    let picker = null;
    const draw = (series) => {
      holder.replaceChildren();
      const width = Math.max(300, (card.clientWidth || 520) - 14);
      const opts = {
        width, height: 230, legend: { live: true },
        scales: { x: { time: false }, y: { range: (u, min, max) => (min === max ? [min - 1, max + 1] : uPlot.rangeNum(min, max, 0.1, true)) } },
        series: [{ label: "step" }, ...series.map((s, i) => ({ label: s.name, stroke: PALETTE[i % PALETTE.length], width: 1.5,
          spanGaps: true, points: { show: chart.x.length <= 60, size: 5 } }))],
        axes: [{ label: `${chart.stage.toUpperCase()} step`, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }, {}],
      };
      const plot = new uPlot(opts, [chart.x, ...series.map((s) => s.values)], holder);
      report.charts[chart.id] = { plot, x: chart.x, series: series.map((s) => s.name), stage: chart.stage, title: chart.title };
    };
    if (chart.pick) {
      picker = el("select", { "aria-label": "figure", onchange: (e) => draw([chart.series[Number(e.target.value)]]) },
        chart.series.map((s, i) => el("option", { value: String(i), text: s.name })));
    }
    card.append(el("div", { class: "chart-head" }, el("span", { text: chart.title }), picker), holder);
    card._draw = () => draw(chart.pick ? [chart.series[picker ? Number(picker.value) : 0]] : chart.series);
    return card;
  }

  function trainingTab(training) {
    const wrap = el("div");
    const cfg = training.config || {};
    const steps = Object.entries(training.steps_logged).filter(([, n]) => n).map(([stage, n]) => `${stage}: ${n} logged steps`).join(" · ");
    wrap.append(el("section", { class: "panel" }, el("h2", { text: "Training" }),
      el("div", { class: "note", text: `${cfg.agent || cfg.env || ""} · model ${cfg.model || "?"} · ${training.path}` }),
      el("div", { class: "note", text: steps || "no logged steps in metrics.jsonl" }),
      Object.keys(training.wall_s).length ? el("div", { class: "note", text: Object.entries(training.wall_s).map(([k, v]) => `${k.replace("_wall_s", "")} ${v.toFixed(1)} s`).join(" · ") }) : null,
      el("details", {}, el("summary", { text: "config" }), el("pre", { class: "json", text: JSON.stringify(cfg, null, 1) }))));
    const cards = training.curves.map(chartCard);
    wrap.append(el("section", { class: "panel" }, el("h2", { text: "Learning curves" }),
      cards.length ? el("div", { class: "charts" }, cards) : el("div", { class: "note", text: "metrics.jsonl has no logged steps yet" })));
    const ev = training.evals;
    if (ev.columns.length) {
      wrap.append(el("section", { class: "panel evals" }, el("h2", { text: "Evaluations side by side" }),
        el("table", { class: "grid" }, el("thead", {}, el("tr", {}, el("th", { text: "figure" }), ev.columns.map((c) => el("th", { text: c })))),
          el("tbody", {}, ev.rows.map(([name, ...values]) => el("tr", {}, el("td", { text: name }), values.map((v) => el("td", { text: fmt(v) }))))))));
    }
    wrap._afterShow = () => cards.forEach((card) => { if (!report.charts[card.dataset.chart]) card._draw(); });
    return wrap;
  }

  // --- comparison of two evaluations -------------------------------------------------------------
  function comparisonTab(comp) {
    const sectionA = DATA.sections.find((s) => s.id === comp.a), sectionB = DATA.sections.find((s) => s.id === comp.b);
    const labelA = sectionA ? sectionA.label : comp.a_label, labelB = sectionB ? sectionB.label : comp.b_label;
    const wrap = el("div");
    if (sectionA && sectionB) {
      const sa = sectionA.summary, sb = sectionB.summary;
      const names = [["reward mean", (s) => s.reward_mean], ["reward std", (s) => s.reward_std], ["rollouts", (s) => s.n], ["errors", (s) => s.errors]]
        .concat([...new Set([...Object.keys(sa.rewards || {}), ...Object.keys(sb.rewards || {})])].map((k) => [`reward: ${k}`, (s) => (s.rewards || {})[k]]))
        .concat([...new Set([...Object.keys(sa.metrics || {}), ...Object.keys(sb.metrics || {})])].map((k) => [`metric: ${k}`, (s) => (s.metrics || {})[k]]))
        .concat([...new Set([...Object.keys(sa.pass_at_k || {}), ...Object.keys(sb.pass_at_k || {})])].map((k) => [k, (s) => (s.pass_at_k || {})[k]]));
      const rows = names.map(([name, get]) => {
        const a = get(sa), b = get(sb);
        const delta = typeof a === "number" && typeof b === "number" ? b - a : null;
        return el("tr", {}, el("td", { text: name }), el("td", { text: fmt(a) }), el("td", { text: fmt(b) }),
          el("td", { class: delta > 0 ? "good" : delta < 0 ? "bad" : "", text: delta === null ? "–" : (delta > 0 ? "+" : "") + fmt(delta) }));
      });
      wrap.append(el("section", { class: "panel" }, el("h2", { text: `${labelA} vs ${labelB}` }),
        el("table", { class: "grid" }, el("thead", {}, el("tr", {}, el("th", { text: "figure" }), el("th", { text: labelA }), el("th", { text: labelB }), el("th", { text: "Δ (B − A)" }))),
          el("tbody", {}, rows))));
    }
    const detail = el("div", { class: "detail" });
    const byExample = (section) => {
      const map = new Map();
      for (const r of section ? section.rollouts : []) {
        if (!map.has(r.example_id)) map.set(r.example_id, []);
        map.get(r.example_id).push(r);
      }
      return map;
    };
    const mapA = byExample(sectionA), mapB = byExample(sectionB);
    const side = (section, rollouts, label, current) => {
      const box = el("div", {}, el("h3", { text: label }));
      if (!rollouts || !rollouts.length) return box.append(el("div", { class: "note", text: "no rollout for this example" })), box;
      const render = (r) => box.replaceChildren(el("h3", { text: label }), rolloutDetail(section, rollouts, r, render));
      render(current || rollouts[0]);
      return box;
    };
    const table = new VirtualTable([
      { label: "example", value: (r) => r.example_id, width: "14%" },
      { label: labelA, value: (r) => r.a, numeric: true, width: "10%" },
      { label: labelB, value: (r) => r.b, numeric: true, width: "10%" },
      { label: "Δ (B − A)", value: (r) => r.delta, numeric: true, width: "10%", cls: (v) => (v > 0 ? "good" : v < 0 ? "bad" : "") },
      { label: "n A", value: (r) => r.a_n, numeric: true, width: "6%" },
      { label: "n B", value: (r) => r.b_n, numeric: true, width: "6%" },
      { label: "prompt", value: (r) => oneLine(r.prompt, 200) },
    ], (row) => detail.replaceChildren(el("div", { class: "columns" },
      side(sectionA, mapA.get(row.example_id), labelA), side(sectionB, mapB.get(row.example_id), labelB))));
    const filters = { text: "", changed: false };
    const count = el("span", { class: "count" });
    const apply = (change) => {
      Object.assign(filters, change || {});
      const text = filters.text.toLowerCase().trim();
      const rows = comp.rows.filter((r) => (!filters.changed || (r.delta !== null && Math.abs(r.delta) > 1e-9) || r.a === null || r.b === null) &&
        (!text || (r.example_id + "\n" + r.prompt).toLowerCase().includes(text)));
      table.setRows(rows);
      count.textContent = `${rows.length} of ${comp.rows.length} examples`;
      return rows.length;
    };
    report.tables[`compare:${comp.a}:${comp.b}`] = { apply, table };
    wrap.append(el("section", { class: "panel comparison" }, el("h2", { text: "Per example" }),
      el("div", { class: "controls" },
        el("input", { type: "search", placeholder: "search examples…", oninput: (e) => apply({ text: e.target.value }) }),
        el("label", {}, el("input", { type: "checkbox", onchange: (e) => apply({ changed: e.target.checked }) }), " only examples whose reward changed"),
        count),
      table.wrap, detail));
    apply();
    table.sortBy(table.columns[3], "desc");
    return wrap;
  }

  // --- page --------------------------------------------------------------------------------------
  function evalTab(section) {
    return el("div", {}, summaryPanel(section), rolloutBrowser(section));
  }

  function main() {
    const app = document.getElementById("app");
    const tabs = [];
    if (DATA.training) tabs.push({ id: "training", label: "Training", build: () => trainingTab(DATA.training) });
    for (const comp of DATA.comparisons) {
      const a = DATA.sections.find((s) => s.id === comp.a), b = DATA.sections.find((s) => s.id === comp.b);
      tabs.push({ id: `compare-${comp.a}-${comp.b}`, label: `${a ? a.label : comp.a} vs ${b ? b.label : comp.b}`, build: () => comparisonTab(comp) });
    }
    for (const section of DATA.sections) tabs.push({ id: `eval-${section.id}`, label: DATA.sections.length > 1 || DATA.training ? `eval: ${section.label}` : "Evaluation", build: () => evalTab(section) });
    const nav = el("nav", { class: "tabs" });
    const body = el("main");
    const built = new Map();
    function show(tab) {
      for (const button of nav.children) button.classList.toggle("active", button.dataset.tab === tab.id);
      if (!built.has(tab.id)) built.set(tab.id, tab.build());
      const content = built.get(tab.id);
      body.replaceChildren(content);
      if (content._afterShow) content._afterShow();
      report.activeTab = tab.id;
    }
    report.show = (id) => show(tabs.find((t) => t.id === id));
    for (const tab of tabs) nav.append(el("button", { "data-tab": tab.id, onclick: () => show(tab), text: tab.label }));
    app.replaceChildren(
      el("header", {}, el("h1", { text: DATA.title }),
        el("div", { class: "sub", text: `${DATA.sources.join(" · ")} · report written ${DATA.generated_at}` }), nav),
      body);
    if (tabs.length) show(tabs[0]);
    else body.append(el("p", { class: "note", text: "This run has nothing to show yet." }));
    report.tabs = tabs.map((t) => t.id);
    report.ready = true;
  }

  main();
})();
