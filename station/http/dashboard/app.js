// steward's dashboard: plain JavaScript, no build step, no third-party code. Pages by
// location hash (#/, #/node/NAME, #/command/ID, #/request/ID, #/audit); a node's page
// can also stream the agent's own log live (debugCard). Each page reads
// a snapshot from /api/v1 (which carries the feed position it was read at, event_id),
// then follows /api/v1/events from that position: nothing that happens between the
// snapshot and the stream is missed, and a reconnect resumes where it stopped. Text
// from the station goes into the page as text, never as HTML.
'use strict';

const $main = document.getElementById('main');
const $live = document.getElementById('live');
const $dispatch = document.getElementById('dispatch');
let stopPage = () => {};

// ---- helpers ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function badge(text, extra) {
  return el('span', { class: `badge s-${text}${extra ? ' ' + extra : ''}`, 'data-state': text }, text);
}

function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 1) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function when(ms) { return el('span', { class: 'ago', 'data-ms': ms || 0, title: ms ? new Date(ms).toISOString() : '' }, ago(ms)); }

// Keeps every "x ago" current without asking the station.
setInterval(() => { for (const e of document.querySelectorAll('.ago')) e.textContent = ago(Number(e.dataset.ms)); }, 1000);

function token() { return localStorage.getItem('steward-token') || ''; }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) h.Authorization = 'Bearer ' + token();
  return h;
}

async function api(path, options) {
  const res = await fetch(path, Object.assign({}, options, { headers: headers(options && options.headers) }));
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 && options && options.method === 'POST') askToken('This needs an operator token.');
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function post(path, body) {
  return api(path, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
}

function askToken(why) {
  const t = prompt(`${why || ''}\nOperator token (stewardctl token create --name NAME); empty to forget it:`, token());
  if (t === null) return;
  if (t.trim()) localStorage.setItem('steward-token', t.trim()); else localStorage.removeItem('steward-token');
}
document.getElementById('token').addEventListener('click', () => askToken(''));

function fail(err) { $main.replaceChildren(el('p', { class: 'error' }, String(err.message || err))); }

// Each route() is a new page; a page renders after its reads, and a slow read must not
// paint a page left behind over the one asked for since: a page shows itself only while
// it is the latest (each captures routeSeq when it starts).
let routeSeq = 0;
function show(seq, ...children) {
  if (seq === routeSeq) $main.replaceChildren(...children);
}

// ---- the event stream ----

// follow reads /api/v1/events with `query` from event `after`, calls onEvent(type, data)
// for each event and onReset() when the station no longer holds what came after the
// position (the page reloads its snapshot). Reconnects by itself; returns a stop function.
function follow(query, after, onEvent, onReset) {
  return sse('/api/v1/events?' + query, after, onEvent, onReset, {});
}

// sse reads Server-Sent Events from `path` (with the token: EventSource cannot send
// one), resuming from the last id seen when it reconnects. opts.onRefused(status,
// error) ends it on a 4xx answer (a stream that is gone or not this operator's);
// without it, the header's live mark shows the connection. Returns a stop function.
function sse(path, after, onEvent, onReset, opts) {
  let last = String(after || '');
  let stopped = false;
  let ctrl = null;
  const mark = !opts.onRefused;
  (async () => {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const h = headers();
        if (last) h['Last-Event-ID'] = last;
        const res = await fetch(path, { headers: h, signal: ctrl.signal });
        if (res.status === 401 && token()) {
          // The token was revoked or expired (a stream it opened ends then): forgotten,
          // so the next try goes without it, or with the one the operator gives now.
          localStorage.removeItem('steward-token');
          askToken('The station refused the token (revoked or expired).');
          continue;
        }
        if (opts.onRefused && res.status >= 400 && res.status < 500) {
          const body = await res.json().catch(() => ({}));
          stopped = true;
          return opts.onRefused(res.status, body.error || `HTTP ${res.status}`);
        }
        if (!res.ok) throw new Error(`events: HTTP ${res.status}`);
        if (mark) {
          $live.textContent = 'live';
          $live.classList.remove('off');
        }
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let event = '', data = '', id = '';
            for (const line of frame.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data = line.slice(6);
              else if (line.startsWith('id: ')) id = line.slice(4);
            }
            if (id) last = id;
            if (event === 'reset') { onReset(); continue; }
            if (event && data) onEvent(event, JSON.parse(data));
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      if (stopped) return;
      if (mark) {
        $live.textContent = 'reconnecting';
        $live.classList.add('off');
      }
      await new Promise((r) => setTimeout(r, 1500));
    }
  })();
  return () => { stopped = true; if (ctrl) ctrl.abort(); };
}

// ---- the dispatch switch (every page) ----

function showDispatch(sw) {
  $dispatch.hidden = !sw.paused;
  const pause = document.getElementById('pause');
  if (pause) pause.hidden = !!sw.paused;
  $dispatch.className = 'banner' + (sw.paused ? ' paused' : '');
  if (!sw.paused) return $dispatch.replaceChildren();
  $dispatch.replaceChildren(
    el('b', {}, 'Dispatch is PAUSED'),
    el('span', {}, `by ${sw.by || '?'} `, when(sw.since_unix_ms), sw.reason ? `: ${sw.reason}` : ''),
    el('button', { id: 'resume', onclick: () => post('/api/v1/dispatch', { paused: false }).catch((e) => alert(e.message)) }, 'Resume'));
}

// ---- fleet ----

async function fleetPage() {
  const seq = routeSeq;  // (see show)
  const data = await api('/api/v1/fleet');
  showDispatch(data.dispatch);
  const rows = new Map();
  const counts = el('div', { class: 'counts', id: 'counts' });
  const search = el('input', { id: 'search', type: 'search', placeholder: 'search nodes' });
  const status = el('select', { id: 'status' },
    ['all', 'online', 'offline', 'unknown', 'pending', 'maintenance', 'alarm'].map((s) => el('option', { value: s }, s)));
  const pause = el('button', { id: 'pause', class: 'danger' }, 'Pause dispatch');
  pause.addEventListener('click', () => {
    const reason = prompt('Pause all dispatch. Reason:');
    if (reason !== null) post('/api/v1/dispatch', { paused: true, reason }).catch((e) => alert(e.message));
  });
  const tbody = el('tbody', { id: 'nodes' });
  const table = el('table', {}, el('thead', {}, el('tr', {},
    el('th', {}, 'node'), el('th', {}, 'status'), el('th', { class: 'wide' }, 'since'), el('th', {}, 'last heard'),
    el('th', { class: 'num' }, 'pending'), el('th', { class: 'wide' }, 'last command'), el('th', { class: 'wide' }, 'version'))), tbody);

  function renderRow(n) {
    const tr = rows.get(n.name) || el('tr', { 'data-node': n.name });
    rows.set(n.name, tr);
    tr.dataset.status = n.status;
    tr.dataset.maintenance = n.maintenance ? '1' : '';
    tr.dataset.alarm = n.status === 'offline' && !n.maintenance ? '1' : '';
    tr.replaceChildren(
      el('td', {}, el('a', { href: `#/node/${encodeURIComponent(n.name)}` }, n.name)),
      el('td', { class: 'status' }, badge(n.status, n.maintenance ? 'maint' : ''), n.maintenance ? ' ' : '',
        n.maintenance ? badge('maintenance') : ''),
      el('td', { class: 'wide' }, when(n.since_unix_ms)),
      el('td', {}, when(n.last_heard_unix_ms)),
      el('td', { class: 'num pending' }, n.pending),
      el('td', { class: 'last wide' }, n.last_command_id
        ? [el('a', { href: `#/command/${n.last_command_id}` }, n.last_command_id.slice(-8)), ' ', badge(n.last_command_state)]
        : '-'),
      el('td', { class: 'wide' }, n.version || '-'));
    tr._node = n;
    return tr;
  }
  function renderCounts() {
    const c = { online: 0, offline: 0, unknown: 0, pending: 0, maintenance: 0, alarm: 0 };
    for (const tr of rows.values()) {
      c[tr._node.status] = (c[tr._node.status] || 0) + 1;
      if (tr._node.maintenance) c.maintenance++;
      if (tr.dataset.alarm) c.alarm++;
    }
    counts.replaceChildren(...Object.entries(c).map(([k, v]) =>
      el('div', { class: 'count' + (k === 'alarm' && v ? ' alarm' : ''), 'data-count': k, onclick: () => { status.value = k; filter(); } },
        el('b', {}, v), el('span', {}, k === 'alarm' ? 'alarms' : k))));
  }
  function filter() {
    const q = search.value.trim().toLowerCase();
    const s = status.value;
    for (const tr of rows.values()) {
      const n = tr._node;
      const ok = (!q || n.name.toLowerCase().includes(q) || (n.hostname || '').toLowerCase().includes(q)) &&
        (s === 'all' || n.status === s || (s === 'maintenance' && n.maintenance) || (s === 'alarm' && tr.dataset.alarm));
      tr.hidden = !ok;
    }
  }
  for (const n of data.nodes) tbody.append(renderRow(n));
  search.addEventListener('input', filter);
  status.addEventListener('change', filter);
  renderCounts();
  const approvals = el('div', { class: 'card', id: 'approvals', hidden: true });
  show(seq, counts, approvals, el('div', { class: 'toolbar' }, search, status, pause), el('div', { class: 'card' }, table));
  const approvalIds = new Set();
  let approvalsRead = Promise.resolve();
  // What waits for an operator's decision: read again whenever a command enters or
  // leaves that state (one of them, in any dashboard, decided it).
  async function renderApprovals() {
    const a = await api('/api/v1/approvals').catch(() => null);
    if (!a) return;
    approvalIds.clear();
    for (const c of a.commands) approvalIds.add(c.id);
    approvals.hidden = a.commands.length === 0;
    approvals.replaceChildren(el('h2', {}, `awaiting approval (${a.commands.length})`), el('table', {}, el('tbody', {},
      a.commands.map((c) => {
        const m = (c.marks && c.marks.approval) || {};
        return el('tr', { 'data-approval': c.id },
          el('td', {}, el('a', { href: `#/command/${c.id}`, title: c.id }, c.id.slice(-10))),
          el('td', {}, el('a', { href: `#/node/${encodeURIComponent(c.node)}` }, c.node)),
          el('td', {}, commandText(c.command)),
          el('td', {}, `by ${(c.command && c.command.operator) || '?'} `, when(c.created_unix_ms)),
          el('td', { class: 'wide muted' }, m.reason || ''),
          el('td', {}, approveButtons(c.id)));
      }))));
  }
  approvalsRead = renderApprovals();
  showDispatch(data.dispatch);  // now that the pause button is in the page

  function update(name, change) {
    let tr = rows.get(name);
    if (!tr) {  // a node heard from for the first time
      tr = renderRow({ name, status: 'unknown', pending: 0 });
      tbody.append(tr);
    }
    renderRow(Object.assign({}, tr._node, change));
    renderCounts();
    filter();
  }
  // Heartbeats are not events (too many): "last heard" is read again now and then, less
  // often for a large fleet.
  const refresh = setInterval(async () => {
    const again = await api('/api/v1/fleet').catch(() => null);
    if (!again) return;
    for (const n of again.nodes) {
      if (!rows.has(n.name)) tbody.append(renderRow(n)); else renderRow(n);
    }
    renderCounts();
    filter();
  }, Math.max(15000, data.nodes.length * 10));
  const stop = follow('types=node,command,dispatch,maintenance', data.event_id, (type, e) => {
    if (type === 'node') update(e.node, { status: e.status, since_unix_ms: e.at_unix_ms, last_heard_unix_ms: e.status === 'online' ? e.at_unix_ms : undefined });
    else if (type === 'maintenance') update(e.node, { maintenance: e.on, maintenance_reason: e.reason });
    else if (type === 'dispatch') showDispatch({ paused: e.paused, by: e.by, reason: e.reason, since_unix_ms: e.at_unix_ms });
    else if (type === 'command') {
      if (e.state === 'awaiting_approval' || approvalIds.has(e.command)) approvalsRead = approvalsRead.then(renderApprovals);
      const n = rows.get(e.node) && rows.get(e.node)._node;
      const change = { pending: e.pending };
      if (e.state === 'queued' || (n && n.last_command_id === e.command)) {
        change.last_command_id = e.command;
        change.last_command_state = e.state;
      }
      update(e.node, change);
    }
  }, () => route());
  return () => { clearInterval(refresh); stop(); };
}

// ---- one node ----

async function nodePage(name) {
  const seq = routeSeq;  // (see show)
  const data = await api(`/api/v1/nodes/${encodeURIComponent(name)}`);
  showDispatch(data.dispatch);
  const n = data.node;
  const stats = n.agent_stats || {};
  const toggle = el('button', { id: 'maintenance' }, n.maintenance && n.maintenance.on ? 'End maintenance' : 'Start maintenance');
  toggle.addEventListener('click', () => {
    const on = !(n.maintenance && n.maintenance.on);
    const reason = on ? prompt('Maintenance reason:') : '';
    if (reason === null) return;
    post(`/api/v1/nodes/${encodeURIComponent(name)}/maintenance`, { on, reason }).then(route, (e) => alert(e.message));
  });
  const details = el('dl', {},
    el('dt', {}, 'status'), el('dd', { id: 'node-status' }, badge(n.status), ' since ', when(n.since_unix_ms)),
    el('dt', {}, 'last heard'), el('dd', {}, when(n.last_heard_unix_ms)),
    el('dt', {}, 'maintenance'), el('dd', {}, n.maintenance && n.maintenance.on
      ? `on, by ${n.maintenance.by}: ${n.maintenance.reason || '(no reason)'}` : 'off', ' ', toggle),
    el('dt', {}, 'host'), el('dd', {}, `${n.hostname || '-'} (${n.os || '-'})`),
    el('dt', {}, 'version'), el('dd', {}, n.version || '-'),
    el('dt', {}, 'pending'), el('dd', {}, n.pending),
    el('dt', {}, 'methods'), el('dd', {}, (n.methods || []).join(', ') || '-'),
    el('dt', {}, 'errors reported'), el('dd', {}, n.errors),
    el('dt', {}, 'log lines'), el('dd', {}, `${n.log_lines} (${n.log_errors} errors, ${n.log_dropped} dropped by the agent)`),
    el('dt', {}, 'agent'), el('dd', {}, stats.at_unix_ms
      ? `RSS ${(stats.rss_bytes / 1048576).toFixed(1)} MiB, CPU ${stats.cpu_seconds.toFixed(1)} s, ${stats.open_fds} fds, ` +
        `outbox ${stats.outbox_entries}, queue ${stats.queue_depth}, restarts ${stats.restarts}` : '-'));
  const recent = el('tbody', {}, data.recent.map(commandRow));
  const errors = el('tbody', {}, data.errors.length ? [] : el('tr', {}, el('td', { class: 'muted' }, 'none')), data.errors.map((e) => el('tr', {},
    el('td', {}, when(e.at_unix_ms)), el('td', {}, e.process), el('td', {}, e.severity), el('td', {}, e.error), el('td', {}, e.decision))));
  const logs = el('pre', { id: 'logs' });
  show(seq, el('h1', {}, name),
    el('div', { class: 'grid2' },
      el('div', { class: 'card' }, el('h2', {}, 'details'), details),
      el('div', { class: 'card' }, el('h2', {}, 'recent commands'), el('table', {}, recent))),
    el('div', { class: 'card' }, el('h2', {}, 'errors reported'), el('table', {}, errors)),
    debugCard(name),
    el('div', { class: 'card' }, el('h2', {}, 'log tail'), logs));
  const tail = await api(`/api/v1/logs?node=${encodeURIComponent(name)}&limit=50`);
  const addLog = (e) => {
    const r = e.record || {};
    logs.append(`${new Date((r.timestamp_unix_us || r.received_unix_us) / 1000).toISOString()} ${r.app_name || r.domain} ${r.message ?? '(binary)'}\n`);
  };
  tail.entries.slice().reverse().forEach(addLog);  // newest first: shown oldest first, then followed
  return follow(`types=node,command,maintenance,log&node=${encodeURIComponent(name)}`, `${data.event_id}:${tail.cursor}`,
    (type, e) => {
      if (type === 'log') addLog(e);
      else route();  // the node changed: read it again
    }, () => route());
}

// ---- the agent's own log, live (a debug stream) ----

// The node page's debug card: the agent's log lines at a chosen level for a chosen time,
// read through the station (POST /api/v1/nodes/NAME/debug, then that stream's events).
// It outlives re-renders of the same node's page (the page reads itself again on the
// node's events, and the debug command is one of them); leaving the page, or closing
// it, stops the stream. The station ends it too when nobody reads it any more.
let debug = null;  // { node, card, id, stopStream }
const kDebugLines = 2000;  // kept in the page; older lines scroll away

function onNodePage(name) {
  const [, page, arg] = (location.hash || '#/').split('/');
  return page === 'node' && decodeURIComponent(arg || '') === name;
}

function stopDebug() {
  if (!debug) return;
  if (debug.id) {
    // keepalive: sent even when the page is going away.
    fetch(`/api/v1/debug/${debug.id}/stop`, { method: 'POST', keepalive: true, headers: headers() }).catch(() => {});
  }
  debug.stopStream();
  debug = null;
}
window.addEventListener('pagehide', stopDebug);

function debugCard(name) {
  if (debug && debug.node === name) return debug.card;
  stopDebug();
  const level = el('select', { id: 'debug-level' }, ['debug', 'info', 'warning', 'error'].map((l) => el('option', { value: l }, l)));
  const span = el('select', { id: 'debug-for' },
    [['1m', 60], ['5m', 300], ['15m', 900], ['1h', 3600]].map(([t, sec]) => el('option', { value: sec * 1000, selected: t === '5m' }, t)));
  const start = el('button', { id: 'debug-start' }, 'Start');
  const stop = el('button', { id: 'debug-stop', class: 'danger', hidden: true }, 'Stop');
  const state = el('span', { id: 'debug-state', class: 'muted' }, 'not streaming');
  const lines = el('pre', { id: 'debug-lines', hidden: true });
  const card = el('div', { class: 'card', id: 'debug', 'data-stream': 'off' }, el('h2', {}, 'agent log, live'),
    el('div', { class: 'toolbar' }, level, span, start, stop, state), lines);
  const view = { node: name, card, id: null, stopStream: () => {} };
  debug = view;
  const append = (text) => {
    lines.append(text + '\n');
    while (lines.childNodes.length > kDebugLines) lines.firstChild.remove();
    lines.scrollTop = lines.scrollHeight;
  };
  const ended = (why) => {
    view.stopStream();
    view.stopStream = () => {};
    view.id = null;
    card.dataset.stream = 'ended';
    state.textContent = `ended: ${why}`;
    start.hidden = false;
    start.disabled = false;
    stop.hidden = true;
    level.disabled = span.disabled = false;
  };
  start.addEventListener('click', async () => {
    start.disabled = true;
    state.textContent = 'starting…';
    let s;
    try {
      s = await post(`/api/v1/nodes/${encodeURIComponent(name)}/debug`, { level: level.value, for_ms: Number(span.value) });
    } catch (e) {
      return ended(e.message);
    }
    view.id = s.id;
    card.dataset.stream = 'on';
    lines.replaceChildren();
    lines.hidden = false;
    start.hidden = true;
    stop.hidden = false;
    level.disabled = span.disabled = true;
    state.textContent = `${s.level} and above, until ${new Date(s.until_unix_ms).toLocaleTimeString()}`;
    view.stopStream = sse(`/api/v1/debug/${s.id}/events`, '', (type, e) => {
      if (type === 'line') append(e.text);
      else if (type === 'missed') append(`[dashboard] ${e.lines} lines came too fast to show`);
      else if (type === 'end') ended(e.reason);
    }, () => {}, { onRefused: (status, why) => ended(why) });
  });
  stop.addEventListener('click', () => {
    if (!view.id) return;
    post(`/api/v1/debug/${view.id}/stop`, {}).then((info) => ended(info.reason), (e) => alert(e.message));
  });
  return card;
}

// A command as an operator who decides about it must see it (common/command_rule.h,
// CommandShownText): argv, a shell string as the shell runs it, and the environment
// variables and working directory it sets, either of which can change what runs.
function commandText(cmd) {
  if (!cmd) return '';
  const sh = cmd.shell || {};
  const argv = cmd.argv || [];
  let out = sh.use_shell && argv.length === 1 ? `/bin/sh -c ${argv[0]}` : argv.join(' ');
  if (sh.env && sh.env.length) out += ` [env: ${sh.env.join(' ')}]`;
  if (sh.working_dir) out += ` [in: ${sh.working_dir}]`;
  return out;
}

// Approve and Deny buttons for a command awaiting approval (four eyes: the station
// refuses its submitter; the first decision wins, and a late one says who decided).
function approveButtons(id) {
  const approve = el('button', { class: 'approve', onclick: () => post(`/api/v1/commands/${id}/approve`, {}).catch((e) => alert(e.message)) }, 'Approve');
  const deny = el('button', { class: 'deny danger', onclick: () => {
    const reason = prompt('Deny: the reason (the submitter reads it)');
    if (reason) post(`/api/v1/commands/${id}/deny`, { reason }).catch((e) => alert(e.message));
  } }, 'Deny');
  return [approve, ' ', deny];
}

function approvalRow(s) {
  const a = s.marks && s.marks.approval;
  if (!a || !a.required) return [];
  const decided = a.decided_by ? [`${a.approved ? 'approved' : 'denied'} by ${a.decided_by} `, when(a.decided_unix_ms),
    a.comment ? `: ${a.comment}` : ''] : [`until ${new Date(a.expires_unix_ms).toISOString()}`];
  return [el('dt', {}, 'approval'), el('dd', { id: 'approval' }, `needed (${a.reason}), `, decided)];
}

function commandRow(s) {
  return el('tr', {},
    el('td', {}, badge(s.state)),
    el('td', {}, el('a', { href: `#/node/${encodeURIComponent(s.node)}` }, s.node)),
    el('td', {}, el('a', { href: `#/command/${s.id}`, title: s.id }, s.id.slice(-10))),
    el('td', { class: 'wide' }, when(s.created_unix_ms)),
    el('td', {}, commandText(s.command)));
}

// ---- one command ----

async function commandPage(id) {
  const seq = routeSeq;  // (see show)
  const s = await api(`/api/v1/commands/${id}`);
  const r = s.result || {};
  const cancel = el('button', { id: 'cancel', class: 'danger' }, 'Cancel');
  cancel.addEventListener('click', () => post(`/api/v1/commands/${id}/cancel`, {}).then(route, (e) => alert(e.message)));
  const terminal = ['succeeded', 'failed', 'timed_out', 'rejected', 'canceled', 'expired', 'busy', 'preempted', 'lost'].includes(s.state);
  show(seq, el('h1', {}, `command ${id}`),
    el('div', { class: 'card' }, el('dl', {},
      el('dt', {}, 'state'), el('dd', { id: 'command-state' }, badge(s.state), ' ', terminal ? '' : cancel,
        s.state === 'awaiting_approval' ? [' ', approveButtons(id)] : ''),
      approvalRow(s),
      el('dt', {}, 'node'), el('dd', {}, el('a', { href: `#/node/${encodeURIComponent(s.node)}` }, s.node)),
      el('dt', {}, 'request'), el('dd', {}, el('a', { href: `#/request/${s.request_id}` }, s.request_id)),
      el('dt', {}, 'command'), el('dd', { id: 'command-text' }, `${s.command.method}: ${commandText(s.command)}`),
      el('dt', {}, 'operator'), el('dd', {}, s.command.operator),
      el('dt', {}, 'attempts'), el('dd', {}, s.attempts),
      el('dt', {}, 'created'), el('dd', {}, when(s.created_unix_ms)),
      el('dt', {}, 'updated'), el('dd', {}, when(s.updated_unix_ms)),
      el('dt', {}, 'outcome'), el('dd', { id: 'outcome' }, s.result
        ? `${r.outcome}, exit ${r.exit_code}${r.term_signal ? `, signal ${r.term_signal}` : ''}` +
          (r.started_unix_ms && r.finished_unix_ms ? `, ran ${r.finished_unix_ms - r.started_unix_ms} ms` : '') : '-'),
      r.error ? [el('dt', {}, 'error'), el('dd', { class: 'error' }, r.error)] : [])),
    el('div', { class: 'card' }, el('h2', {}, 'stdout', s.output_cut ? ` (first part of ${s.stdout_bytes} bytes)` : ''),
      el('pre', { id: 'stdout' }, r.stdout ?? (r.stdout_base64 ? '(binary output)' : ''))),
    el('div', { class: 'card' }, el('h2', {}, 'stderr'), el('pre', { id: 'stderr' }, r.stderr ?? (r.stderr_base64 ? '(binary output)' : ''))));
  if (terminal) return () => {};
  // Live output: the chunks held when the page was read, then the stream's, in order of
  // their numbers, each once; a gap reads the page again. When the station no longer
  // holds all of it, the page says so and shows the output whole once the command ends.
  const out = document.getElementById('stdout');
  const err = document.getElementById('stderr');
  let next = 1;
  const append = (c) => {
    if (c.seq < next) return true;
    if (c.seq > next || !out || !err) return false;
    out.append(c.text || '');
    err.append(c.stderr || '');
    next = c.seq + 1;
    return true;
  };
  const live = s.live || { chunks: [] };
  const whole = live.chunks.every(append);
  if (!whole && out) out.append('(the station no longer holds all of the live output: it is shown whole when the command ends)\n');
  return follow(`types=command,output&command=${id}`, s.event_id, (type, e) => {
    if (type !== 'output') return route();
    if (whole && !append(e)) route();
  }, () => route());
}

// ---- one fan-out ----

// A staged rollout's state and its batches (a send by target that is no rollout: nothing).
function rolloutCard(job) {
  if (!job || !job.job.rollout) return [];
  const j = job.job;
  const n = job.batches.length;
  let state = j.state;
  if (j.state === 'running') state = `batch ${j.progress.released} of ${n} running`;
  if (j.state === 'waiting') {
    const left = Math.max(0, Math.round((j.progress.next_release_unix_ms - Date.now()) / 1000));
    state = `batch ${j.progress.released} of ${n} ended, next in ${left}s`;
  }
  if (j.reason) state += `: ${j.reason}`;
  const cell = (b, k) => el('td', {}, String(b.counts[k]));
  return [el('h2', {}, 'rollout'), el('p', { id: 'rollout-state' }, state),
    el('table', { id: 'batches' },
      el('thead', {}, el('tr', {}, ['batch', 'released', 'nodes', 'succeeded', 'failed', 'timed out', 'not answered', 'canceled', 'pending'].map((h) => el('th', {}, h)))),
      el('tbody', {}, job.batches.map((b) => el('tr', {},
        el('td', {}, String(b.index + 1)),
        el('td', {}, b.released_unix_ms ? new Date(b.released_unix_ms).toLocaleTimeString() : 'not yet'),
        cell(b, 'targets'), cell(b, 'succeeded'), cell(b, 'failed'), cell(b, 'timed_out'),
        cell(b, 'not_answered'), cell(b, 'canceled'), cell(b, 'pending')))))];
}

async function requestPage(id) {
  const seq = routeSeq;  // (see show)
  const q = await api(`/api/v1/requests/${id}`);
  const c = q.counts;
  const done = c.total - c.pending;
  const bar = el('div', { id: 'progress' });
  bar.style.width = `${c.total ? (100 * done / c.total) : 0}%`;  // CSSOM: allowed by the page's CSP
  show(seq, el('h1', {}, `request ${id}`),
    el('div', { class: 'card' },
      el('div', { id: 'progress-text' }, `${done} of ${c.total} finished: ${c.succeeded} succeeded, ${c.failed} failed, ${c.pending} pending`),
      el('div', { class: 'progress' }, bar),
      ...rolloutCard(q.job),
      el('h2', {}, `not answered (${q.not_answered.length})`),
      el('p', { id: 'not-answered' }, q.not_answered.length ? q.not_answered.join(', ') : 'every node answered')),
    el('div', { class: 'card' }, el('table', {}, el('tbody', {}, q.commands.map(commandRow)))));
  const rolling = q.job && q.job.job.rollout && ['running', 'waiting'].includes(q.job.job.state);
  if (c.pending === 0 && !rolling) return () => {};
  let timer = rolling ? setTimeout(route, 2000) : null;  // a batch-wait ends without a command event
  const stop = follow(`types=command&request=${id}`, q.event_id, () => {
    clearTimeout(timer);
    timer = setTimeout(route, 300);  // a burst of states: read once
  }, () => route());
  return () => { clearTimeout(timer); stop(); };
}

// ---- audit ----

async function auditPage() {
  const seq = routeSeq;  // (see show)
  const a = await api('/api/v1/audit?limit=200');
  show(seq, el('h1', {}, 'audit'),
    el('div', { class: 'card' }, el('h2', {}, 'operator actions'), el('table', {},
      el('thead', {}, el('tr', {}, ['when', 'operator', 'via', 'action', 'target', 'detail', 'outcome'].map((h) => el('th', {}, h)))),
      el('tbody', { id: 'actions' }, a.actions.map((x) => el('tr', {},
        el('td', {}, when(x.at_unix_ms)), el('td', {}, x.operator), el('td', {}, x.via), el('td', {}, x.action),
        el('td', {}, x.target), el('td', {}, x.detail), el('td', { class: x.outcome === 'ok' ? '' : 'error' }, x.outcome)))))),
    el('div', { class: 'card' }, el('h2', {}, 'commands'), el('table', {}, el('tbody', {}, a.commands.map(commandRow)))));
  return () => {};
}

// ---- routing ----

async function route() {
  if (debug && !onNodePage(debug.node)) stopDebug();
  stopPage();
  stopPage = () => {};
  const seq = ++routeSeq;
  const [, page, arg] = (location.hash || '#/').split('/');
  const name = decodeURIComponent(arg || '');
  let stop = () => {};
  try {
    if (page === 'node' && name) stop = await nodePage(name);
    else if (page === 'command' && name) stop = await commandPage(name);
    else if (page === 'request' && name) stop = await requestPage(name);
    else if (page === 'audit') stop = await auditPage();
    else stop = await fleetPage();
  } catch (e) {
    if (seq === routeSeq) fail(e);
  }
  if (seq === routeSeq) stopPage = stop;
  else stop();  // another page was asked for meanwhile: this one's live updates end
}

window.addEventListener('hashchange', route);
route();
