// Portcullis dashboard: polls GET api/v1/dashboard every second and renders
// it in place. Plain ES2020, no framework, no build step; everything it needs
// is served by the daemon itself.
'use strict';
(() => {
  const API = 'api/v1/dashboard';
  const POLL_MS = 1000;
  const TIMEOUT_MS = 4000;
  const TOKEN_KEY = 'portcullis.adminToken';
  const STRIP_MS = 15 * 60 * 1000; // the history strip spans at most 15 minutes
  const STRIP_MIN_MS = 10 * 1000; // and at least 10 seconds
  const HIST_MAX = 10; // transitions listed per target

  const $ = (id) => document.getElementById(id);

  // h builds an element. attrs: class, text, data-*, aria-*, any attribute;
  // null, undefined and false are left out. Never innerHTML: daemon data is
  // always text.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, kids);
    return el;
  }
  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : String(k));
    }
  }
  function setText(el, s) {
    if (el.textContent !== s) el.textContent = s;
  }

  // fill replaces el's children only when what they render changed, so an
  // unchanged cell keeps its focus, selection and open <details>.
  function fill(el, ...kids) {
    const tmp = document.createElement(el.tagName);
    append(tmp, kids);
    const sig = tmp.innerHTML;
    if (el._sig === sig) return;
    const open = new Set([...el.querySelectorAll('details[open]')].map((d) => d.dataset.k));
    el.replaceChildren(...tmp.childNodes);
    el._sig = sig;
    for (const d of el.querySelectorAll('details')) if (open.has(d.dataset.k)) d.open = true;
  }

  // reconcile keeps parent's children in the order of items, one element per
  // key, creating, updating and removing as needed.
  function reconcile(parent, items, keyOf, create, update) {
    const old = new Map();
    for (const c of [...parent.children]) old.set(c.dataset.key, c);
    items.forEach((it, i) => {
      const k = keyOf(it);
      let el = old.get(k);
      if (el) old.delete(k);
      else {
        el = create(it);
        el.dataset.key = k;
      }
      update(el, it);
      const at = parent.children[i];
      if (at !== el) parent.insertBefore(el, at || null);
    });
    for (const el of old.values()) el.remove();
  }

  // table renders rows into a table inside holder. cols: [{label, num}];
  // rows: [{key, cls, cells: [content...]}]. The first cell is the row header.
  function table(holder, caption, cols, rows) {
    const colSig = cols.map((c) => c.label).join('|');
    let t = holder.querySelector(':scope > .scroll > table');
    if (!t || t.dataset.cols !== colSig) {
      holder.querySelector(':scope > .scroll')?.remove();
      t = h('table', { class: 'stack', 'data-cols': colSig },
        h('caption', { class: 'visually-hidden', text: caption }),
        h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null, text: c.label })))),
        h('tbody'));
      holder.append(h('div', { class: 'scroll' }, t));
    }
    reconcile(t.tBodies[0], rows, (r) => r.key, () => h('tr'), (tr, r) => {
      if (tr.className !== (r.cls || '')) tr.className = r.cls || '';
      while (tr.cells.length > cols.length) tr.lastElementChild.remove();
      cols.forEach((c, i) => {
        let cell = tr.cells[i];
        if (!cell) {
          cell = i === 0 ? h('th', { scope: 'row' }) : h('td');
          tr.append(cell);
        }
        if (i > 0) cell.dataset.label = c.label;
        if (c.num) cell.classList.add('num');
        const v = r.cells[i];
        if (typeof v === 'function') v(cell);
        else fill(cell, v);
      });
    });
  }

  // empty shows text (or nothing) in holder's .empty paragraph.
  function empty(holder, text) {
    let p = holder.querySelector(':scope > .empty');
    if (!text) {
      if (p) p.remove();
      return;
    }
    if (!p) {
      p = h('p', { class: 'empty' });
      holder.prepend(p);
    }
    fill(p, text);
  }
  function clearTable(holder) {
    holder.querySelector(':scope > .scroll')?.remove();
  }

  // ---- formatting ----

  const nf = new Intl.NumberFormat('en-US');
  // si writes v with an SI prefix: "12.0k/s", "480/s", "9.0 MB/s".
  function si(v, unit) {
    if (v === null || v === undefined) return '…';
    const sep = unit.startsWith('/') ? '' : ' ';
    const a = Math.abs(v);
    for (const [f, p] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
      if (a >= f) return (v / f).toFixed(a / f >= 100 ? 0 : 1) + sep + p + unit;
    }
    return (a >= 100 || a === 0 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2)) + sep + unit;
  }
  const rateTitle = 'Needs two polls';
  function rate(v) { return v === null ? h('span', { class: 'muted', title: rateTitle, text: '…' }) : si(v, '/s'); }
  function byteRate(v) { return v === null ? h('span', { class: 'muted', title: rateTitle, text: '…' }) : si(v, 'B/s'); }
  function ms(v) {
    if (v === null || v === undefined || !isFinite(v)) return '—';
    if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
    if (v >= 100) return v.toFixed(0) + ' ms';
    if (v >= 10) return v.toFixed(1) + ' ms';
    return v.toFixed(2) + ' ms';
  }
  function pct(v) { return v === null ? '—' : (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + '%'; }
  function parseTime(s) {
    if (!s) return null;
    const t = Date.parse(s);
    return isNaN(t) || t < 86400000 ? null : t; // Go's zero time means "never"
  }
  const pad = (n) => String(n).padStart(2, '0');
  function clock(t) {
    const d = new Date(t);
    const hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return hms;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hms;
  }
  function dur(msec) {
    let s = Math.max(0, Math.round(msec / 1000));
    if (s < 60) return s + ' s';
    let m = Math.floor(s / 60); s %= 60;
    if (m < 60) return m + ' m ' + s + ' s';
    let hh = Math.floor(m / 60); m %= 60;
    if (hh < 48) return hh + ' h ' + m + ' m';
    return Math.floor(hh / 24) + ' d ' + (hh % 24) + ' h';
  }
  // ago is a <time> saying how long before the document's own time t was.
  function ago(s, now, suffix = ' ago') {
    const t = parseTime(s);
    if (t === null) return h('span', { class: 'muted', text: 'never' });
    return h('time', { datetime: new Date(t).toISOString(), title: new Date(t).toString() }, dur(now - t) + suffix);
  }
  function absTime(s) {
    const t = parseTime(s);
    if (t === null) return h('span', { class: 'muted', text: '—' });
    return h('time', { datetime: new Date(t).toISOString(), title: new Date(t).toString() }, clock(t));
  }
  const shortDigest = (d) => (d ? String(d).replace(/^sha256:/, '').slice(0, 12) : '—');

  function badge(kind, text, title) { return h('span', { class: 'st st-' + kind, title }, text); }
  const HEALTH = { up: 'ok', down: 'bad', unknown: 'none' };
  function healthBadge(state) {
    const s = HEALTH[state] ? state : 'unknown';
    return badge(HEALTH[s], s);
  }
  const MEMBER = { alive: 'ok', suspect: 'warn', dead: 'bad', left: 'none' };
  const DISCO = { ok: 'ok', stale: 'warn', pending: 'none' };
  const SESSION = { established: 'ok', idle: 'bad', active: 'warn', connect: 'warn', opensent: 'warn', openconfirm: 'warn' };
  const BFD = { up: 'ok', down: 'bad', init: 'warn', admin_down: 'none' };
  const tag = (text, cls, title) => h('span', { class: 'tag' + (cls ? ' ' + cls : ''), title }, text);

  // ---- rates: the difference of two polls ----

  let prev = null; // {t, counters: Map}
  let cur = null;
  function startRates(doc) {
    const t = parseTime(doc.time) ?? Date.now();
    cur = { t, counters: new Map() };
  }
  function rateOf(key, value) {
    value = Number(value) || 0;
    cur.counters.set(key, value);
    if (!prev) return null;
    const before = prev.counters.get(key);
    const dt = (cur.t - prev.t) / 1000;
    if (before === undefined || dt <= 0 || value < before) return null; // new, or a counter reset
    return (value - before) / dt;
  }
  function deltaOf(key) {
    if (!prev) return null;
    const a = prev.counters.get(key);
    const b = cur.counters.get(key);
    return a === undefined || b === undefined || b < a ? null : b - a;
  }

  // ---- token and access ----

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(v) {
    try {
      if (v) sessionStorage.setItem(TOKEN_KEY, v);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lives until reload */ }
    memToken = v;
  }
  let memToken = '';
  const currentToken = () => token() || memToken;

  // ---- rendering ----

  let data = null;
  let canWrite = false;

  function render(doc) {
    data = doc;
    canWrite = !!doc.can_write;
    startRates(doc);
    const now = cur.t;
    renderHeader(doc);
    const counts = renderPools(doc, now);
    const vcounts = renderVIPs(doc, now);
    renderCluster(doc);
    renderBGP(doc, now);
    renderRoutes(doc);
    renderDiscovery(doc, now);
    renderSummary(doc, counts, vcounts);
    prev = cur;
    const down = counts.down + vcounts.down;
    document.title = (down ? '(' + down + ' down) ' : '') + (doc.node || 'node') + ' · Portcullis';
  }

  function renderHeader(doc) {
    setText($('node'), doc.node || '(unnamed node)');
    setText($('f-version'), doc.version || '—');
    fill($('f-ready'), doc.ready ? badge('ok', 'ready') : badge('bad', 'not ready'));
    const c = doc.config || {};
    fill($('f-config'), h('span', { class: 'mono', title: (c.digest || '') + (c.path ? ' — ' + c.path : '') }, shortDigest(c.digest)),
      c.path ? h('span', { class: 'muted' }, ' ', c.path) : null);
    fill($('f-loaded'), absTime(c.loaded_at));
    const tok = currentToken();
    let access;
    if (canWrite) access = badge('ok', 'admin (token accepted)');
    else if (tok) access = badge('bad', 'read-only: token not accepted');
    else access = badge('none', 'read-only');
    fill($('f-access'), access);
    $('token-forget').hidden = !tok;
  }

  function countText(c) {
    if (!c.total) return 'none';
    const parts = [c.up + ' up'];
    if (c.down) parts.push(c.down + ' down');
    if (c.unknown) parts.push(c.unknown + ' unknown');
    if (c.drained) parts.push(c.drained + ' drained');
    if (c.ejected) parts.push(c.ejected + ' ejected');
    return parts.join(' · ') + ' (of ' + c.total + ')';
  }
  function renderSummary(doc, pc, vc) {
    const members = (doc.cluster && doc.cluster.members) || [];
    const alive = members.filter((m) => m.state === 'alive').length;
    const disco = doc.discovery || [];
    const stale = disco.filter((d) => d.state === 'stale').length;
    const pending = disco.filter((d) => d.state === 'pending').length;
    const l4 = doc.l4 || {};
    const items = [
      ['Pool endpoints', pc.down ? badge('bad', countText(pc)) : countText(pc), '#pools'],
      ['VIP backends', vc.down ? badge('bad', countText(vc)) : countText(vc), '#vips'],
      ['Cluster', doc.cluster && doc.cluster.enabled ? alive + ' of ' + members.length + ' members alive' : 'off (single node)', '#cluster'],
      ['BGP', bgpSummary(doc.bgp || {}), '#bgp'],
      ['L4 dataplane', l4.attached ? 'XDP ' + (l4.mode || '') + ' on ' + (l4.interface || '?') : 'not attached', '#vips'],
      ['Discovery', disco.length ? disco.length - stale - pending + ' ok' + (stale ? ' · ' + stale + ' stale' : '') + (pending ? ' · ' + pending + ' pending' : '') : 'none', '#discovery'],
    ];
    reconcile($('summary-list'), items, (it) => it[0], () => h('li'), (li, [k, v, href]) =>
      fill(li, h('span', { class: 'k' }, h('a', { href }, k)), h('span', { class: 'v' }, v)));
  }

  // Effective weight of a pool endpoint or VIP backend as traffic sees it.
  function weightCell(configured, effective, hl) {
    const w = Number(configured) || 0;
    const pctW = hl.weight_percent;
    let eff = effective;
    if (eff === undefined) {
      if (hl.state === 'down' || hl.drained) eff = 0;
      else eff = pctW > 0 && pctW < 100 ? Math.max(1, Math.round(w * pctW / 100)) : w;
    }
    const why = hl.drained ? 'drained' : hl.state === 'down' ? 'down' : pctW > 0 && pctW < 100 ? 'slow start ' + pctW + '%' : '';
    if (eff === w && !why) return String(w);
    return [h('span', { title: 'configured → effective' }, w + ' → ' + eff), why ? h('span', { class: 'sub', text: why }) : null];
  }

  function healthCell(hl, extra) {
    return [healthBadge(hl.state), hl.drained ? tag('drained', 'tag-warn', 'Admin drain: no new flows or requests; established ones stay') : null, extra];
  }

  function lastCheck(hl, checked, now) {
    if (!checked) return h('span', { class: 'muted', text: 'not checked' });
    if (hl.last_ok === undefined || hl.last_ok === null) return h('span', { class: 'muted', text: 'pending' });
    return [
      hl.last_ok ? h('span', { class: 'ok-text', text: 'passed' }) : h('span', { class: 'bad-text', text: 'failed' }),
      ' ', h('span', { class: 'muted nowrap' }, ms(hl.latency_ms)),
      hl.detail ? h('span', { class: 'detail', title: hl.detail }, hl.detail.length > 90 ? hl.detail.slice(0, 88) + '…' : hl.detail) : null,
      hl.checked_at ? h('span', { class: 'sub' }, ago(hl.checked_at, now)) : null,
    ];
  }

  // history: a strip of the recent past (up solid, down hatched, unknown
  // blank) and the last transitions, newest first, with times and reasons.
  // The strip spans from the oldest transition kept (at least a minute, at
  // most 15 minutes), so that a recent flip is wide enough to see.
  function historyCell(hl, now) {
    const hist = (hl.history || []).filter((t) => parseTime(t.at) !== null);
    const oldest = hist.length ? parseTime(hist[0].at) : now;
    const span = Math.min(STRIP_MS, Math.max(STRIP_MIN_MS, now - oldest + 5000));
    const start = now - span;
    const segs = [];
    let state;
    const before = hist.filter((t) => parseTime(t.at) <= start);
    const within = hist.filter((t) => parseTime(t.at) > start);
    if (before.length) state = before[before.length - 1].to;
    else if (within.length) state = within[0].from;
    else state = hl.state;
    let t0 = start;
    for (const tr of within) {
      const at = Math.min(parseTime(tr.at), now);
      if (tr.to === state) continue;
      if (at > t0) segs.push([state, at - t0]);
      state = tr.to;
      t0 = at;
    }
    if (now > t0) segs.push([state, now - t0]);
    const totals = {};
    for (const [s, d] of segs) totals[s] = (totals[s] || 0) + d;
    const label = 'Last ' + dur(span) + ': ' + Object.entries(totals).map(([s, d]) => s + ' ' + dur(d)).join(', ');
    const strip = h('span', { class: 'strip', role: 'img', 'aria-label': label, title: label },
      segs.map(([s, d]) => {
        const seg = h('span', { class: 's-' + (HEALTH[s] ? s : 'unknown') });
        seg.style.width = (100 * d / span).toFixed(2) + '%';
        return seg;
      }));
    let list;
    if (!hist.length) list = h('span', { class: 'sub', text: 'no changes' });
    else {
      const items = hist.slice(-HIST_MAX).reverse().map((t) => {
        const what = t.from === t.to ? (t.drained ? 'drained' : 'undrained') : t.from + ' → ' + t.to;
        return h('li', null, absTime(t.at), ' ', h('strong', null, what),
          t.reason ? ' — ' + t.reason : '', t.latency_ms ? ' (' + ms(t.latency_ms) + ')' : '');
      });
      list = h('details', { 'data-k': 'hist' },
        h('summary', null, hist.length + (hist.length === 1 ? ' change' : ' changes')),
        h('ul', { class: 'hist' }, items));
    }
    // The strip moves with time; the list only when history changes, so an
    // open list keeps its focus.
    return (cell) => {
      if (cell.children.length !== 2 || !cell.firstElementChild.classList.contains('h-strip')) {
        cell.replaceChildren(h('div', { class: 'h-strip' }), h('div', { class: 'h-list' }));
      }
      fill(cell.firstElementChild, strip);
      fill(cell.lastElementChild, list);
    };
  }

  function drainButton(kind, group, name, hl) {
    if (!canWrite) return null;
    const to = !hl.drained;
    return h('button', {
      type: 'button', 'data-act': 'drain', 'data-kind': kind, 'data-group': group, 'data-name': name,
      'data-drained': String(to), 'aria-label': (to ? 'Drain ' : 'Undrain ') + name + ' in ' + kind + ' ' + group,
    }, to ? 'Drain' : 'Undrain');
  }

  function newCounts() { return { total: 0, up: 0, down: 0, unknown: 0, drained: 0, ejected: 0 }; }
  function count(c, hl, ejected) {
    c.total++;
    c[HEALTH[hl.state] ? hl.state : 'unknown']++;
    if (hl.drained) c.drained++;
    if (ejected) c.ejected++;
  }

  function card(titleKids) {
    return h('article', { class: 'card' },
      h('div', { class: 'card-head' }, h('h3', null, titleKids), h('dl', { class: 'kv' }), h('div', { class: 'actions' })),
      h('div', { class: 'card-body' }));
  }
  function kv(pairs) {
    return pairs.filter(Boolean).map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v)));
  }

  function renderPools(doc, now) {
    const holder = $('pools-body');
    const pools = doc.pools || [];
    const total = newCounts();
    const anyChecked = pools.some((p) => p.checked) || (doc.vips || []).some((v) => v.checked);
    let msg = '';
    if (!pools.length) msg = 'No L7 pools configured. Add l7.pools (with endpoints, or a discovery source) and l7.routes to proxy HTTP.';
    else if (!anyChecked) msg = 'No health checks configured: every endpoint shows “unknown” and keeps getting traffic. Add a healthchecks entry (pool: <name>, type: http, tcp or grpc) to check them.';
    empty(holder, msg);
    let list = holder.querySelector(':scope > .list');
    if (!list) holder.append(list = h('div', { class: 'list' }));
    const disco = doc.discovery || [];
    reconcile(list, pools, (p) => p.name, (p) => card(p.name), (el, p) => {
      const c = newCounts();
      const eps = p.endpoints || [];
      for (const e of eps) count(c, e.health || {}, e.ejected);
      for (const k of Object.keys(total)) total[k] += c[k];
      const src = disco.find((d) => d.pool === p.name);
      fill(el.querySelector('h3'), p.name, ' ', h('small', null, p.algorithm || ''));
      fill(el.querySelector('.kv'), kv([
        ['Endpoints', c.down ? badge('bad', countText(c)) : countText(c)],
        ['Health check', p.checked ? p.check_name || 'yes' : h('span', { class: 'bad-text', text: 'none' })],
        src ? ['Discovery', src.name + ' (' + src.provider + ', ' + src.state + ')'] : null,
      ]));
      const body = el.querySelector('.card-body');
      if (!eps.length) {
        clearTable(body);
        empty(body, src ? 'No endpoints: discovery source “' + src.name + '” has none (' + src.state + ').' : 'No endpoints in this pool.');
        return;
      }
      empty(body, p.checked ? '' : 'No health check covers this pool, so its endpoints stay “unknown” and always get traffic. Add a healthchecks entry with pool: ' + p.name + '.');
      const cols = [
        { label: 'Endpoint' }, { label: 'Health' }, { label: 'Last check' }, { label: 'In state for' },
        { label: 'Weight', num: true }, { label: 'In flight', num: true }, { label: 'Req/s', num: true },
        { label: 'Fail/s', num: true }, { label: 'History' },
      ];
      if (canWrite) cols.push({ label: 'Action' });
      table(body, 'Endpoints of pool ' + p.name, cols, eps.map((e) => {
        const hl = e.health || {};
        const k = 'pool/' + p.name + '/' + e.address;
        const cells = [
          h('span', { class: 'mono' }, e.address),
          healthCell(hl, e.ejected ? tag('ejected', 'tag-bad', 'Ejected by passive outlier detection') : null),
          lastCheck(hl, p.checked, now),
          parseTime(hl.since) === null ? h('span', { class: 'muted', text: '—' }) : ago(hl.since, now, ''),
          weightCell(e.weight, typeof e.effective_weight === 'number' ? e.effective_weight : undefined, hl),
          nf.format(e.in_flight || 0),
          rate(rateOf(k + '/req', e.requests)),
          rate(rateOf(k + '/fail', e.failures)),
          historyCell(hl, now),
        ];
        if (canWrite) cells.push(drainButton('pool', p.name, e.address, hl));
        return { key: e.address, cls: hl.state === 'down' || e.ejected ? 'row-bad' : '', cells };
      }));
    });
    return total;
  }

  function renderVIPs(doc, now) {
    const l4 = doc.l4 || {};
    const vips = doc.vips || [];
    let line = '';
    if (l4.attached) {
      const cap = Number(l4.conntrack_capacity) || 0;
      const n = Number(l4.conntrack_entries) || 0;
      line = 'XDP attached (' + (l4.mode || '?') + ') on ' + (l4.interface || '?') + ' · conntrack ' + nf.format(n) +
        (cap ? ' of ' + nf.format(cap) + ' entries (' + pct(100 * n / cap) + ')' : ' entries');
    } else if (vips.length) line = 'The XDP dataplane is not attached.';
    setText($('l4-line'), line);
    $('l4-line').hidden = !line;
    const holder = $('vips-body');
    empty(holder, vips.length ? '' : 'No VIPs configured. Add vips (address, port, protocol, backends) and node.interface to balance TCP and UDP in XDP.');
    let list = holder.querySelector(':scope > .list');
    if (!list) holder.append(list = h('div', { class: 'list' }));
    const total = newCounts();
    const clusterOn = doc.cluster && doc.cluster.enabled;
    reconcile(list, vips, (v) => v.name, (v) => card(v.name), (el, v) => {
      const k = 'vip/' + v.name;
      const bes = v.backends || [];
      const c = newCounts();
      for (const b of bes) count(c, b.health || {}, false);
      for (const key of Object.keys(total)) total[key] += c[key];
      fill(el.querySelector('h3'), v.name, ' ', h('small', { class: 'mono' }, v.address + ':' + v.port + '/' + (v.protocol || 'tcp')));
      let owner;
      if (!clusterOn) owner = h('span', { class: 'muted', text: 'this node (no cluster)' });
      else if (!v.owner) owner = badge('bad', 'none');
      else owner = [v.owner, v.owner === doc.node ? tag('this node', 'tag-self') : null];
      fill(el.querySelector('.kv'), kv([
        ['Owner', owner],
        ['Packets', rate(rateOf(k + '/pkts', v.packets))],
        ['Bytes', byteRate(rateOf(k + '/bytes', v.bytes))],
        ['New flows', rate(rateOf(k + '/flows', v.new_flows))],
        ['Backends', c.down ? badge('bad', countText(c)) : countText(c)],
        ['Health check', v.checked ? v.check_name || 'yes' : h('span', { class: 'bad-text', text: 'none' })],
      ]));
      fill(el.querySelector('.actions'), canWrite && clusterOn && v.owner && v.owner === doc.node
        ? h('button', { type: 'button', class: 'danger', 'data-act': 'release', 'data-vip': v.name, 'aria-label': 'Release VIP ' + v.name }, 'Release VIP')
        : null);
      const body = el.querySelector('.card-body');
      if (!bes.length) {
        clearTable(body);
        empty(body, 'No backends.');
        return;
      }
      empty(body, v.checked ? '' : 'No health check covers this VIP: its backends stay “unknown” and always get traffic. Add a healthchecks entry with vip: ' + v.name + '.');
      const cols = [
        { label: 'Backend' }, { label: 'Health' }, { label: 'Last check' }, { label: 'In state for' },
        { label: 'Weight', num: true }, { label: 'Maglev share', num: true }, { label: 'Packets/s', num: true },
        { label: 'Bytes/s', num: true }, { label: 'New flows/s', num: true }, { label: 'History' },
      ];
      if (canWrite) cols.push({ label: 'Action' });
      table(body, 'Backends of VIP ' + v.name, cols, bes.map((b) => {
        const hl = b.health || {};
        const bk = k + '/' + b.name;
        const cells = [
          [b.name, h('span', { class: 'sub mono' }, b.address + (b.forwarding ? ' · ' + b.forwarding : ''))],
          healthCell(hl),
          lastCheck(hl, v.checked, now),
          parseTime(hl.since) === null ? h('span', { class: 'muted', text: '—' }) : ago(hl.since, now, ''),
          weightCell(b.weight, b.effective_weight, hl),
          [pct(100 * (Number(b.share) || 0)), h('span', { class: 'sub' }, nf.format(b.slots || 0) + ' slots')],
          rate(rateOf(bk + '/pkts', b.packets)),
          byteRate(rateOf(bk + '/bytes', b.bytes)),
          rate(rateOf(bk + '/flows', b.new_flows)),
          historyCell(hl, now),
        ];
        if (canWrite) cells.push(drainButton('vip', v.name, b.name, hl));
        return { key: b.name, cls: hl.state === 'down' ? 'row-bad' : '', cells };
      }));
    });
    return total;
  }

  function renderCluster(doc) {
    const holder = $('cluster-body');
    const cl = doc.cluster || {};
    const members = cl.members || [];
    if (!cl.enabled) {
      empty(holder, 'Clustering is off: this node runs alone and holds its VIPs itself. To share VIPs between nodes, add a cluster section (bind, peers, key_file) to the config.');
      clearTable(holder);
      return;
    }
    if (!members.length) {
      empty(holder, 'No cluster members known yet: gossip has not reached any peer. Check cluster.peers and the gossip port.');
      clearTable(holder);
      return;
    }
    empty(holder, '');
    const ourDigest = (doc.config || {}).digest;
    const vipOwners = new Map((doc.vips || []).map((v) => [v.name, v.owner]));
    table(holder, 'Cluster members', [
      { label: 'Member' }, { label: 'Address' }, { label: 'State' }, { label: 'Priority', num: true },
      { label: 'Healthy' }, { label: 'Config' }, { label: 'VIPs held' },
    ], members.map((m) => ({
      key: m.name,
      cls: m.state === 'dead' || !m.healthy ? 'row-bad' : '',
      cells: [
        [m.name, m.self ? tag('this node', 'tag-self') : null],
        h('span', { class: 'mono' }, m.address || '—'),
        badge(MEMBER[m.state] || 'none', m.state || 'unknown'),
        String(m.priority ?? ''),
        m.healthy ? badge('ok', 'healthy') : badge('bad', 'unhealthy'),
        [h('span', { class: 'mono', title: m.digest || '' }, shortDigest(m.digest)),
          m.digest && ourDigest && m.digest !== ourDigest ? tag('differs from this node', 'tag-warn', 'This member runs another config') : null],
        (m.vips || []).length ? (m.vips || []).map((n, i) => [i ? ', ' : '', n,
          vipOwners.has(n) && vipOwners.get(n) !== m.name ? tag('owner says ' + (vipOwners.get(n) || 'none'), 'tag-warn') : null])
          : h('span', { class: 'muted', text: 'none' }),
      ],
    })));
  }

  function bgpSummary(b) {
    if (!b.enabled) return 'off';
    const peers = b.peers || [];
    const up = peers.filter((p) => p.state === 'established').length;
    const vips = b.vips || [];
    const ann = vips.filter((v) => v.announced).length;
    const text = up + ' of ' + peers.length + ' sessions up · ' + ann + ' of ' + vips.length + ' VIPs announced';
    return up < peers.length || ann < vips.length ? badge('warn', text) : text;
  }

  function renderBGP(doc, now) {
    const holder = $('bgp-body');
    const vipsHolder = $('bgp-vips-body');
    const b = doc.bgp || {};
    if (!b.enabled) {
      empty(holder, 'BGP is off. To run several nodes active-active behind a router\'s ECMP, add a bgp section (asn, peers, vips) to the config.');
      clearTable(holder);
      clearTable(vipsHolder);
      return;
    }
    empty(holder, '');
    table(holder, 'BGP sessions (AS ' + b.asn + ')', [
      { label: 'Peer' }, { label: 'AS', num: true }, { label: 'Session' }, { label: 'Since' },
      { label: 'Hold', num: true }, { label: 'BFD' }, { label: 'Flaps', num: true }, { label: 'Last disconnect' },
    ], (b.peers || []).map((p) => ({
      key: 'peer/' + p.address,
      cls: p.state !== 'established' ? 'row-bad' : '',
      cells: [
        h('span', { class: 'mono' }, p.address),
        String(p.asn),
        badge(SESSION[p.state] || 'none', p.state || 'unknown'),
        p.since ? ago(p.since, now) : h('span', { class: 'muted', text: '—' }),
        p.hold_time_s ? p.hold_time_s + ' s' : '—',
        p.bfd ? badge(BFD[p.bfd] || 'none', p.bfd) : h('span', { class: 'muted', text: 'off' }),
        String(p.flaps || 0),
        p.last_disconnect_reason ? p.last_disconnect_reason.replace(/_/g, ' ') : h('span', { class: 'muted', text: '—' }),
      ],
    })));
    table(vipsHolder, 'Announcements', [
      { label: 'VIP' }, { label: 'Prefix' }, { label: 'State' }, { label: 'Why' }, { label: 'Since' },
    ], (b.vips || []).map((v) => ({
      key: 'vip/' + v.vip,
      cls: v.announced ? '' : 'row-bad',
      cells: [
        v.vip,
        h('span', { class: 'mono' }, v.prefix),
        v.announced ? badge('ok', 'announced') : badge('bad', 'withdrawn'),
        v.reason.replace(/_/g, ' '),
        ago(v.since, now),
      ],
    })));
  }

  function renderRoutes(doc) {
    const holder = $('routes-body');
    const routes = doc.routes || [];
    if (!routes.length) {
      empty(holder, 'No L7 routes configured. Add l7.listeners, l7.pools and l7.routes to proxy HTTP.');
      clearTable(holder);
      return;
    }
    empty(holder, '');
    table(holder, 'Routes', [
      { label: 'Route' }, { label: 'Pool' }, { label: 'Req/s', num: true }, { label: '5xx/s', num: true },
      { label: 'Error rate', num: true }, { label: 'p50', num: true }, { label: 'p99', num: true },
    ], routes.map((r) => {
      const k = 'route/' + r.name;
      const rq = rateOf(k + '/req', r.requests);
      const er = rateOf(k + '/err', r.errors);
      const dReq = deltaOf(k + '/req');
      const dErr = deltaOf(k + '/err');
      const errPct = dReq && dErr !== null ? 100 * dErr / dReq : null;
      const hasLat = (Number(r.requests) || 0) > 0;
      return {
        key: r.name,
        cls: errPct !== null && errPct >= 5 ? 'row-bad' : '',
        cells: [r.name, h('a', { href: '#pools' }, r.pool), rate(rq), rate(er),
          errPct === null ? h('span', { class: 'muted', title: 'No requests between the last two polls', text: '—' }) : pct(errPct),
          hasLat ? ms(r.p50_ms) : '—', hasLat ? ms(r.p99_ms) : '—'],
      };
    }));
  }

  function renderDiscovery(doc, now) {
    const holder = $('discovery-body');
    const ds = doc.discovery || [];
    if (!ds.length) {
      empty(holder, 'No discovery sources: pools use the endpoints written in the config. Add a discovery entry (provider dns, etcd or consul) to fill a pool from a registry.');
      clearTable(holder);
      return;
    }
    empty(holder, '');
    table(holder, 'Discovery sources', [
      { label: 'Source' }, { label: 'Provider' }, { label: 'Pool' }, { label: 'State' },
      { label: 'Endpoints', num: true }, { label: 'Last update' }, { label: 'State since' }, { label: 'Error' },
    ], ds.map((d) => ({
      key: d.name,
      cls: d.state === 'stale' ? 'row-bad' : '',
      cells: [d.name, d.provider, d.pool, [badge(DISCO[d.state] || 'none', d.state || 'unknown'),
        d.state === 'stale' ? h('span', { class: 'sub', text: 'keeping the last known endpoints' }) : null],
      nf.format(d.endpoints || 0), ago(d.updated, now), ago(d.since, now),
      d.error ? h('span', { class: 'detail bad-text', text: d.error }) : h('span', { class: 'muted', text: '—' })],
    })));
  }

  // ---- polling ----

  let timer = null;
  let running = false;
  let again = false;
  let failures = 0;
  let failSince = null;
  let lastOK = null;

  function schedule(delay) {
    clearTimeout(timer);
    timer = null;
    if (document.hidden) return;
    timer = setTimeout(poll, delay);
  }

  async function errorText(r) {
    let body = '';
    try { body = await r.text(); } catch (e) { /* ignore */ }
    try {
      const j = JSON.parse(body);
      if (j && j.error) return j.error + (Array.isArray(j.errors) && j.errors.length ? ': ' + j.errors.join('; ') : '');
    } catch (e) { /* not JSON */ }
    body = body.trim();
    return body.length > 300 ? body.slice(0, 300) + '…' : body;
  }

  async function poll() {
    if (running) { again = true; return; }
    running = true;
    clearTimeout(timer);
    const ctl = new AbortController();
    const to = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const headers = { Accept: 'application/json' };
      const tok = currentToken();
      if (tok) headers.Authorization = 'Bearer ' + tok;
      const r = await fetch(API, { headers, cache: 'no-store', signal: ctl.signal });
      if (!r.ok) {
        const t = await errorText(r);
        throw new Error('HTTP ' + r.status + (t ? ': ' + t : ''));
      }
      const doc = await r.json();
      render(doc);
      failures = 0;
      failSince = null;
      lastOK = Date.now();
      document.body.classList.remove('is-stale');
      $('stale').hidden = true;
      const c = $('conn');
      c.className = 'conn live';
      setText(c, 'Live · updated ' + clock(lastOK));
    } catch (e) {
      failures++;
      if (failSince === null) failSince = lastOK ?? Date.now();
      const why = e && e.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : (e && e.message) || String(e);
      showStale(why);
    } finally {
      clearTimeout(to);
      running = false;
      if (again) { again = false; schedule(0); } else schedule(failures ? Math.min(5000, POLL_MS * 2 ** Math.min(failures - 1, 3)) : POLL_MS);
    }
  }

  function showStale(why) {
    document.body.classList.add('is-stale');
    const c = $('conn');
    c.className = 'conn stale';
    const b = $('stale');
    b.hidden = false;
    if (lastOK === null) {
      setText(c, 'No data');
      setText(b, 'Cannot load ' + API + ' (' + failures + (failures === 1 ? ' attempt' : ' attempts') + '): ' + why + '. Retrying.');
      return;
    }
    setText(c, 'Stale since ' + clock(failSince));
    setText(b, 'Stale since ' + clock(failSince) + ' (' + dur(Date.now() - failSince) + '): the last ' + failures +
      (failures === 1 ? ' poll' : ' polls') + ' failed — ' + why + '. The figures below are from ' + clock(lastOK) + '. Retrying.');
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
      const c = $('conn');
      if (!c.classList.contains('stale')) {
        c.className = 'conn paused';
        setText(c, 'Paused while hidden');
      }
    } else {
      poll();
    }
  });

  // ---- actions: drain, undrain, release ----

  function say(text, bad) {
    const m = $('action-msg');
    m.hidden = false;
    m.className = 'banner ' + (bad ? 'banner-bad' : 'banner-ok');
    m.setAttribute('role', bad ? 'alert' : 'status');
    m.replaceChildren(h('span', { class: 'msg' }, text), h('button', { type: 'button', 'data-act': 'dismiss' }, 'Dismiss'));
  }

  async function post(url, body) {
    const headers = { Accept: 'application/json' };
    const tok = currentToken();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(url, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    if (!r.ok) {
      const t = await errorText(r);
      throw new Error('HTTP ' + r.status + (t ? ' — ' + t : ''));
    }
  }

  async function act(btn) {
    const a = btn.dataset.act;
    if (a === 'dismiss') {
      $('action-msg').hidden = true;
      return;
    }
    if (a === 'release' && !btn.classList.contains('armed')) {
      // A second click confirms: releasing moves the VIP's traffic to another node.
      btn.classList.add('armed');
      btn.textContent = 'Confirm release';
      setTimeout(() => { btn.classList.remove('armed'); btn.textContent = 'Release VIP'; }, 5000);
      return;
    }
    btn.disabled = true;
    let what;
    try {
      if (a === 'drain') {
        const d = btn.dataset;
        const drained = d.drained === 'true';
        what = (drained ? 'drain ' : 'undrain ') + d.name + ' (' + d.kind + ' ' + d.group + ')';
        await post('api/v1/health/drain', { kind: d.kind, group: d.group, name: d.name, drained });
        say((drained ? 'Drained ' : 'Undrained ') + d.name + ' in ' + d.kind + ' ' + d.group + '.', false);
      } else if (a === 'release') {
        const vip = btn.dataset.vip;
        what = 'release VIP ' + vip;
        await post('api/v1/vips/' + encodeURIComponent(vip) + '/release');
        say('Released VIP ' + vip + '.', false);
      }
    } catch (e) {
      say('Could not ' + what + ': ' + ((e && e.message) || e), true);
    } finally {
      btn.disabled = false;
      if (btn.classList.contains('armed')) {
        btn.classList.remove('armed');
        btn.textContent = 'Release VIP';
      }
      poll();
    }
  }

  document.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[data-act]');
    if (btn) act(btn);
  });

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('token');
    setToken(input.value.trim());
    input.value = '';
    poll();
  });
  $('token-forget').addEventListener('click', () => {
    setToken('');
    say('Admin token forgotten; the page is read-only.', false);
    poll();
  });

  memToken = token();
  poll();
})();
