// The strangler operator console. Plain JavaScript, no dependencies: it
// reads and acts through /ui/api/... (the admin API, with the session's
// token held by the server) and builds the page with DOM calls only (no
// HTML parsing), so nothing the gateway returns can become markup.
'use strict';
(function () {
  const REFRESH_MS = 3000;
  const main = document.getElementById('main');
  const statusLine = document.getElementById('status');
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  const logoutBtn = document.getElementById('logout');
  const dlg = document.getElementById('confirm');

  let me = null; // {name, role, csrf, expires}
  let skew = 0; // server clock minus ours, ms (from the Date header)
  let page = null; // {refresh: async function}
  let timer = null;
  let busy = false;

  // el builds an element: attrs are attributes (class, text, on<event>),
  // kids are nodes or strings (always text).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function call(method, path, body) {
    const opts = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = me ? me.csrf : '';
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    const date = res.headers.get('Date');
    if (date) skew = Date.parse(date) - Date.now();
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && path.startsWith('/ui/api/') && me) {
      showLogin('Your session ended: log in again.');
      throw new Error('session ended');
    }
    return { status: res.status, ok: res.ok, data };
  }
  const api = (method, p, body) => call(method, '/ui/api/' + p, body);
  const get = (p) => api('GET', p);
  // optional reads an endpoint this gateway may not have (the inventory,
  // the fleet, plans): {missing: true, message} rather than an error. An
  // endpoint found missing is not asked again until the page is reloaded.
  const absent = new Map();
  async function optional(p) {
    const key = p.split('?')[0];
    if (absent.has(key)) return absent.get(key);
    const r = await get(p);
    if (r.status === 404 || r.status === 405) {
      const m = { missing: true, message: r.data && r.data.message };
      absent.set(key, m);
      return m;
    }
    if (!r.ok) return { missing: true, message: (r.data && r.data.message) || 'HTTP ' + r.status };
    return r;
  }
  function must(r, what) {
    if (!r.ok) throw new Error(what + ': ' + ((r.data && r.data.message) || 'HTTP ' + r.status));
    return r.data;
  }

  // Formatting.
  const pct = (x) => (x == null ? '–' : (x * 100).toFixed(x > 0 && x < 0.001 ? 3 : 1) + '%');
  const ms = (x) => (x == null ? '–' : x < 10 ? x.toFixed(2) + ' ms' : Math.round(x) + ' ms');
  const when = (t) => (t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '–');
  const now = () => Date.now() + skew;
  function left(expires) {
    if (!expires) return 'until removed';
    let s = Math.max(0, Math.round((Date.parse(expires) - now()) / 1000));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + s + 's left';
  }
  function describe(ov) {
    if (!ov) return 'none';
    return ov.side ? 'side ' + ov.side : 'canary ' + ov.percent + '%';
  }
  const routeLink = (id) => el('a', { href: '#/route/' + encodeURIComponent(id) }, id);
  function table(caption, head, rows, empty, cls) {
    if (!rows.length) return el('p', { class: 'empty' }, empty);
    return el('table', { class: cls },
      el('caption', { class: 'visually-hidden' }, caption),
      el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c, i) => (i === 0 ? el('th', { scope: 'row' }, c) : el('td', {}, c)))))));
  }
  function section(title, id) {
    const body = el('div', { class: 'body' }, el('p', { class: 'empty' }, 'Loading…'));
    const s = el('section', { 'aria-labelledby': id }, el('h2', { id }, title), body);
    return { s, body, fill: (...kids) => body.replaceChildren(...kids.filter((k) => k !== null && k !== undefined && k !== false)) };
  }
  function dl(pairs) {
    return el('dl', {}, pairs.filter(Boolean).map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }
  const sideTag = (side) => el('span', { class: 'side side-' + (side || '').split(/[ ,]/)[0] }, side || '–');
  function status(text) { statusLine.textContent = text; }

  // Sessions.
  async function boot() {
    logoutBtn.addEventListener('click', logout);
    window.addEventListener('hashchange', () => { if (me) route(); });
    document.addEventListener('visibilitychange', () => { if (!document.hidden && me) refresh(); });
    const r = await call('GET', '/ui/session');
    if (r.status === 200) { me = r.data; showApp(); } else showLogin();
  }

  function showLogin(msg) {
    me = null; page = null;
    if (timer) clearInterval(timer);
    timer = null;
    nav.hidden = true; logoutBtn.hidden = true; who.textContent = '';
    const input = el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
    const err = el('p', { id: 'login-error', class: 'error', role: 'alert' }, msg || '');
    const form = el('form', { id: 'login', class: 'login' },
      el('h1', {}, 'Log in'),
      el('p', {}, 'Paste an admin token to look and act, or a read-only token to look. The token stays on the gateway; this browser gets a session cookie.'),
      el('label', { for: 'token' }, 'Token'), input,
      el('button', { type: 'submit' }, 'Log in'), err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await call('POST', '/ui/login', { token: input.value });
      input.value = '';
      if (r.status !== 200) { err.textContent = (r.data && r.data.message) || 'Login failed (HTTP ' + r.status + ')'; input.focus(); return; }
      me = r.data;
      if (!location.hash || location.hash === '#/login') location.hash = '#/';
      showApp();
    });
    main.replaceChildren(form);
    status('');
    input.focus();
  }

  async function logout() {
    await call('POST', '/ui/logout');
    showLogin('Logged out.');
  }

  function showApp() {
    nav.hidden = false; logoutBtn.hidden = false;
    who.textContent = me.name + ' · ' + (me.role === 'admin' ? 'admin' : 'read-only');
    route();
    timer = setInterval(() => { if (!document.hidden && !dlg.open) refresh(); }, REFRESH_MS);
  }

  function route() {
    const h = location.hash || '#/';
    const m = h.match(/^#\/route\/(.+)$/);
    if (m) page = routePage(decodeURIComponent(m[1]));
    else if (h === '#/inventory') page = inventoryPage();
    else if (h === '#/audit') page = auditPage();
    else page = overviewPage();
    for (const a of nav.querySelectorAll('a')) {
      const cur = a.getAttribute('href') === h || (a.getAttribute('href') === '#/' && !m && !['#/inventory', '#/audit'].includes(h));
      if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    refresh();
  }

  async function refresh() {
    if (!me || !page || busy) return;
    busy = true;
    const p = page;
    try {
      await p.refresh();
      if (p === page) status('Live: updated ' + new Date().toLocaleTimeString() + ', every ' + REFRESH_MS / 1000 + ' s');
    } catch (e) {
      if (me) status('Refresh failed: ' + e.message);
    } finally {
      busy = false;
    }
  }

  // Pages.
  function overviewPage() {
    const cov = section('Migration progress', 'h-cov');
    const health = section('Health', 'h-health');
    const ovs = section('Active overrides', 'h-ovs');
    const rts = section('Routes by side', 'h-routes');
    main.replaceChildren(el('h1', {}, 'Overview'), el('div', { class: 'cols' }, cov.s, health.s), ovs.s, rts.s);
    return {
      async refresh() {
        const [routes, overrides, upstreams, stats, inv, fleet, plans] = await Promise.all([
          get('routes'), get('overrides'), get('upstreams'), get('stats'), optional('inventory'), optional('fleet'), optional('plans')]);
        const rs = must(routes, 'routes').routes;
        const st = stats.ok ? stats.data : null;
        const byRoute = {};
        for (const x of (st && st.routes) || []) byRoute[x.route] = x;

        const onNew = rs.filter((r) => r.effective === 'new');
        const canary = rs.filter((r) => r.effective.includes('canary'));
        const onLegacy = rs.filter((r) => r.effective !== 'new' && !r.effective.includes('canary'));
        const covKids = [
          el('p', {}, el('label', { for: 'cov-routes' }, 'Routes on new: ' + onNew.length + ' of ' + rs.length +
            (canary.length ? ' (' + canary.length + ' canarying)' : '')),
          el('progress', { id: 'cov-routes', max: rs.length || 1, value: onNew.length }, onNew.length + ' of ' + rs.length)),
        ];
        if (inv.missing) {
          covKids.push(el('p', { class: 'na' }, 'Legacy inventory: not available' + (inv.message ? ' (' + inv.message + ')' : '') + '.'));
        } else {
          const c = inv.data.coverage || {};
          covKids.push(el('p', {}, el('label', { for: 'cov-req' }, 'Requests served by new: ' + pct(c.requests_new_share) +
            ' (recently ' + pct(c.recent_new_share) + '); endpoints on new: ' + (c.endpoints_new || 0) + ' of ' + (c.endpoints || 0)),
          el('progress', { id: 'cov-req', max: 1, value: c.requests_new_share || 0 }, pct(c.requests_new_share))));
        }
        if (plans.missing) covKids.push(el('p', { class: 'na' }, 'Migration plans: not available.'));
        cov.fill(...covKids);

        const ups = must(upstreams, 'upstreams').upstreams;
        const open = ups.filter((u) => u.breaker && u.breaker !== 'closed');
        const rl = st && st.reload;
        let reload = 'no reload since start (generation ' + (rl ? rl.generation : routes.data.generation) + ')';
        if (rl && rl.result === 'ok') reload = 'last reload applied ' + when(rl.at) + ' (generation ' + rl.generation + ')';
        if (rl && rl.result === 'error') reload = 'LAST RELOAD REJECTED ' + when(rl.at) + ': ' + rl.error + (rl.problems > 1 ? ' (and ' + (rl.problems - 1) + ' more problems)' : '') + '; generation ' + rl.generation + ' keeps serving';
        let store = 'file';
        if (!fleet.missing) {
          const f = fleet.data;
          store = f.store + ' ' + (f.where || '') + ': ' + (f.up ? 'up' : 'DOWN') + (f.replicas ? ', ' + f.replicas.length + ' replicas' : '') + (f.error ? ' (' + f.error + ')' : '');
        } else if (st && st.store) {
          store = st.store.kind + ' ' + st.store.where + ' (this gateway only)';
        }
        health.fill(dl([
          ['Routes file', routes.data.file],
          ['Reload', el('span', { class: rl && rl.result === 'error' ? 'bad' : '' }, reload)],
          ['Override store', store],
          ['Breakers', open.length ? el('ul', {}, open.map((u) => el('li', { class: 'bad' }, u.name + ': ' + u.breaker.toUpperCase()))) : 'none open'],
        ]));

        const list = must(overrides, 'overrides').overrides;
        ovs.fill(table('Active overrides', ['Route', 'Override', 'By', 'Reason', 'Time left'],
          list.map((o) => [routeLink(o.route), describe(o) + (o.orphan ? ' (orphan: no such route)' : ''), o.by, o.reason, left(o.expires)]),
          'No override: every route follows routes.yaml.'));

        const head = ['Route', 'Match', 'Serving', 'routes.yaml', 'Override', 'Breaker', 'Shadow', 'Requests', '5xx legacy / new'];
        const row = (r) => {
          const w = (byRoute[r.id] && byRoute[r.id].window) || {};
          const n = ((w.legacy && w.legacy.requests) || 0) + ((w.new && w.new.requests) || 0);
          return [routeLink(r.id), r.match, sideTag(r.effective), r.side + (r.canary_percent != null ? ' +' + r.canary_percent + '% canary' : ''),
            r.override ? describe(r.override) + ', ' + left(r.override.expires) : '–',
            r.breaker ? el('span', { class: r.breaker === 'closed' ? '' : 'bad' }, r.breaker) : '–',
            r.shadow ? r.shadow.verdict.replace(/_/g, ' ') : '–', String(n),
            pct(w.legacy && w.legacy.error_rate) + ' / ' + pct(w.new && w.new.error_rate)];
        };
        rts.fill(
          el('h3', {}, 'On new (' + onNew.length + ')'), table('Routes on new', head, onNew.map(row), 'None.', 'routes'),
          el('h3', {}, 'Canary (' + canary.length + ')'), table('Routes with a canary', head, canary.map(row), 'None.', 'routes'),
          el('h3', {}, 'On legacy (' + onLegacy.length + ')'), table('Routes on legacy', head, onLegacy.map(row), 'None.', 'routes'),
          el('p', { class: 'note' }, 'Requests and 5xx rates: the last ' + ((st && st.window_seconds) || 0) + ' s of the gateway\'s own counters.'));
      },
    };
  }

  function routePage(id) {
    const state = section('State', 'h-state');
    const traffic = section('Traffic by side', 'h-traffic');
    const plan = section('Migration plan', 'h-plan');
    const shadow = section('Shadow comparison', 'h-shadow');
    const actions = el('section', { 'aria-labelledby': 'h-actions' }, el('h2', { id: 'h-actions' }, 'Actions'));
    const audit = section('Recent changes', 'h-audit');
    main.replaceChildren(el('p', {}, el('a', { href: '#/' }, '← Overview')), el('h1', {}, 'Route ', el('code', {}, id)),
      state.s, actions, traffic.s, plan.s, shadow.s, audit.s);
    let cur = null; // the route's last state

    if (me.role !== 'admin') {
      actions.append(el('p', { class: 'note', id: 'read-only' }, 'Read-only session: actions are disabled. Log in with an admin token to act.'));
    } else {
      const reason = el('input', { id: 'reason', name: 'reason', type: 'text', autocomplete: 'off', 'aria-describedby': 'reason-help' });
      const ttl = el('select', { id: 'ttl', name: 'ttl' },
        [['', 'never (until removed)'], ['1m', '1 minute'], ['10m', '10 minutes'], ['1h', '1 hour'], ['4h', '4 hours'], ['24h', '24 hours']]
          .map(([v, t]) => el('option', { value: v }, t)));
      const canary = el('input', { id: 'canary', name: 'canary', type: 'number', min: 0, max: 100, step: 'any' });
      const breaker = el('select', { id: 'breaker-state', name: 'breaker' }, ['open', 'closed', 'auto'].map((v) => el('option', { value: v }, v)));
      const result = el('p', { id: 'action-result', role: 'alert' });
      const act = async (label, confirmText, method, path, body) => {
        result.textContent = '';
        if (!(await confirmAction(confirmText))) { result.textContent = 'Cancelled: nothing changed.'; return; }
        const r = await api(method, path, body);
        if (r.ok) {
          result.className = r.data && r.data.warning ? 'error' : 'ok';
          result.textContent = 'Done: ' + label + '.' + (r.data && r.data.warning ? ' Warning: ' + r.data.warning : '');
          reason.value = '';
        } else {
          result.className = 'error';
          result.textContent = 'Refused (HTTP ' + r.status + '): ' + ((r.data && r.data.message) || '');
        }
        refresh();
      };
      const needReason = () => {
        if (reason.value.trim()) return true;
        result.className = 'error';
        result.textContent = 'Say why: a reason is required (it goes to the audit log).';
        reason.focus();
        return false;
      };
      const ttlText = () => (ttl.value ? ' for ' + ttl.options[ttl.selectedIndex].text : ' until removed');
      const flip = (side) => () => {
        if (!needReason()) return;
        act(id + ' sent to ' + side, 'Send all of ' + id + '\'s traffic to ' + side + ttlText() + '? Reason: “' + reason.value.trim() + '”.',
          'POST', 'routes/' + encodeURIComponent(id) + '/side', { side, reason: reason.value.trim(), ttl: ttl.value });
      };
      const setCanary = () => {
        if (!needReason()) return;
        const p = Number(canary.value);
        if (canary.value === '' || !(p >= 0 && p <= 100)) { result.className = 'error'; result.textContent = 'The canary share is a number from 0 to 100.'; canary.focus(); return; }
        act(id + ' canary set to ' + p + '%', 'Send ' + p + '% of ' + id + '\'s users to new' + ttlText() + '? Reason: “' + reason.value.trim() + '”.',
          'POST', 'routes/' + encodeURIComponent(id) + '/canary', { percent: p, reason: reason.value.trim(), ttl: ttl.value });
      };
      const unflip = () => act(id + ' back to routes.yaml', 'Remove the override of ' + id + ' and go back to what routes.yaml says?',
        'DELETE', 'routes/' + encodeURIComponent(id) + '/override', { reason: reason.value.trim() });
      const force = () => {
        const up = cur && cur.new_upstream;
        if (!up) return;
        if (breaker.value !== 'auto' && !needReason()) return;
        act('breaker of ' + up + ' ' + breaker.value, 'Force the breaker of upstream ' + up + ' to ' + breaker.value +
          ' (every route using it)? ' + (breaker.value === 'open' ? 'Its requests go to fallback or fail fast.' : ''),
          'POST', 'upstreams/' + encodeURIComponent(up) + '/breaker', { state: breaker.value, reason: reason.value.trim() });
      };
      actions.append(el('form', { class: 'actions', 'aria-label': 'Actions on ' + id, onsubmit: (e) => e.preventDefault() },
        el('div', { class: 'field' }, el('label', { for: 'reason' }, 'Reason'), reason,
          el('small', { id: 'reason-help' }, 'Goes to the audit log with your name. Required for anything but removing an override or a breaker back to auto.')),
        el('div', { class: 'field' }, el('label', { for: 'ttl' }, 'Revert after'), ttl),
        el('div', { class: 'buttons' },
          el('button', { type: 'button', id: 'act-legacy', class: 'danger', onclick: flip('legacy') }, 'Send to legacy'),
          el('button', { type: 'button', id: 'act-new', onclick: flip('new') }, 'Send to new'),
          el('button', { type: 'button', id: 'act-unflip', onclick: unflip }, 'Remove override')),
        el('div', { class: 'field' }, el('label', { for: 'canary' }, 'Canary share to new (%)'), canary,
          el('button', { type: 'button', id: 'act-canary', onclick: setCanary }, 'Set canary')),
        el('div', { class: 'field', id: 'breaker-field' }, el('label', { for: 'breaker-state' }, 'Breaker of the new upstream'), breaker,
          el('button', { type: 'button', id: 'act-breaker', onclick: force }, 'Force breaker')),
        result));
    }

    return {
      async refresh() {
        const [routes, stats, sh, au, plans] = await Promise.all([get('routes'), get('stats'), optional('shadow?top=5'),
          optional('audit?limit=10&route=' + encodeURIComponent(id)), optional('plans')]);
        const r = must(routes, 'routes').routes.find((x) => x.id === id);
        if (!r) { state.fill(el('p', { class: 'error' }, 'No route ' + id + ' in the running routes file.')); return; }
        cur = r;
        const bf = document.getElementById('breaker-field');
        if (bf) bf.hidden = !r.new_upstream;
        state.fill(dl([
          ['Match', r.match],
          ['Serving now', el('strong', { id: 'serving' }, sideTag(r.effective))],
          ['routes.yaml says', r.side + (r.canary_percent != null ? ', canary ' + r.canary_percent + '% to new' : '') + (r.line ? ' (line ' + r.line + ')' : '')],
          ['Override', r.override ? el('span', { id: 'override' }, describe(r.override) + ' by ' + r.override.by + ', ' + left(r.override.expires) + ': “' + r.override.reason + '”') : el('span', { id: 'override' }, 'none')],
          ['New upstream', r.new_upstream ? r.new_upstream + ' (breaker ' + r.breaker + ')' : 'none: this route has no new side'],
          ['Fallback to legacy', r.fallback ? 'yes' : 'no'],
        ]));

        const s = stats.ok ? (stats.data.routes || []).find((x) => x.route === id) : null;
        if (!s) traffic.fill(el('p', { class: 'na' }, 'Traffic: not available.'));
        else {
          const rows = [];
          for (const [label, part] of [['last ' + stats.data.window_seconds + ' s', s.window], ['since start', s.total]]) {
            // "gateway": answered before a side was chosen (a 401 from auth, say).
            for (const side of ['legacy', 'new'].concat(part.gateway ? ['gateway'] : [])) {
              const v = part[side];
              rows.push([side + ', ' + label, v ? pct(v.share) : '–', v ? String(v.requests) : '0', v ? pct(v.error_rate) : '–', v ? ms(v.p99_ms) : '–']);
            }
          }
          traffic.fill(table('Traffic by side', ['Side', 'Share', 'Requests', 'Error rate (5xx)', 'p99'], rows, ''));
        }

        if (plans.missing) plan.fill(el('p', { class: 'na' }, 'Migration plans: not available on this gateway.'));
        else {
          const list = Array.isArray(plans.data) ? plans.data : plans.data.plans || [];
          const p = list.find((x) => x.route === id);
          plan.fill(p ? dl(Object.entries(p).filter(([, v]) => v !== null && typeof v !== 'object').map(([k, v]) => [k, String(v)]))
            : el('p', { class: 'empty' }, 'No plan for this route.'));
        }

        if (!r.shadow) shadow.fill(el('p', { class: 'empty' }, 'Not shadowed.'));
        else {
          const rep = !sh.missing && (sh.data.routes || []).find((x) => x.route === id);
          const v = r.shadow;
          const kids = [dl([
            ['Verdict', el('strong', {}, v.verdict.replace(/_/g, ' '))],
            ['Why', v.summary],
            ['Compared', v.compared + ' requests, ' + pct(v.match_rate) + ' matched'],
          ])];
          if (sh.missing) kids.push(el('p', { class: 'na' }, 'Differences: not available (' + (sh.message || 'no access') + ').'));
          else if (rep) {
            kids.push(el('h3', {}, 'Top differences'), table('Top differences', ['Path', 'Requests', 'Example (legacy vs new)'],
              (rep.top_paths || []).map((d) => [el('code', {}, d.path), String(d.requests) + (d.noise ? ' (noise)' : ''),
                d.example ? example(d.example) : '']),
              'No difference recorded.'));
          }
          shadow.fill(...kids);
        }

        if (au.missing) audit.fill(el('p', { class: 'na' }, 'Audit trail: not available (' + (au.message || '') + ').'));
        else audit.fill(auditTable(au.data.events || []));
      },
    };
  }

  // example labels a difference's two values by side.
  function example(x) {
    const c = x.control_side || 'control';
    const o = c === 'legacy' ? 'new' : c === 'new' ? 'legacy' : 'candidate';
    return c + ': ' + x.control + ' / ' + o + ': ' + x.candidate;
  }

  function auditTable(events) {
    return table('Audit events', ['Time', 'Action', 'By', 'Target', 'Reason', 'Before → after'],
      events.map((e) => [when(e.time), e.action, e.by, e.route ? routeLink(e.route) : e.upstream || '–', e.reason || '–',
        (e.previous || '–') + ' → ' + (e.new || e.result || '–')]),
      'No change recorded.');
  }

  function inventoryPage() {
    const body = section('Endpoints learnt from traffic', 'h-inv');
    main.replaceChildren(el('h1', {}, 'Legacy inventory'), body.s);
    return {
      async refresh() {
        const inv = await optional('inventory');
        if (inv.missing) { body.fill(el('p', { class: 'na', id: 'inventory-na' }, 'The legacy inventory is not available on this gateway' + (inv.message ? ': ' + inv.message : '') + '.')); return; }
        const d = inv.data;
        const c = d.coverage || {};
        const eps = d.endpoints || [];
        const shown = eps.slice(0, 300);
        body.fill(
          dl([['Requests on new', pct(c.requests_new_share) + ' (recently ' + pct(c.recent_new_share) + ')'],
            ['Endpoints on new', (c.endpoints_new || 0) + ' of ' + (c.endpoints || 0)],
            ['Suspected aliases', String(d.suspected_aliases || 0)]]),
          table('Endpoints', ['Endpoint', 'Side', 'Requests', 'Share of legacy', 'Errors', 'p99', 'Claimed by'],
            shown.map((e) => [el('code', {}, e.endpoint), sideTag(e.side), String(e.requests), pct(e.legacy_share), pct(e.error_rate), ms(e.p99_ms),
              e.claimed_by ? routeLink(e.claimed_by) : 'no route']),
            'Nothing learnt yet.'),
          eps.length > shown.length ? el('p', { class: 'note' }, (eps.length - shown.length) + ' more endpoints: strangler inventory lists them all.') : null);
      },
    };
  }

  function auditPage() {
    const routeF = el('input', { id: 'audit-route', type: 'text', autocomplete: 'off' });
    const actionF = el('select', { id: 'audit-action' }, ['', 'side', 'canary', 'unflip', 'breaker', 'expire', 'reload', 'reseed']
      .map((v) => el('option', { value: v }, v || 'any')));
    const body = section('Changes, newest first', 'h-audit');
    const filters = el('form', { class: 'filters', 'aria-label': 'Filter', onsubmit: (e) => { e.preventDefault(); refresh(); } },
      el('label', { for: 'audit-route' }, 'Route'), routeF, el('label', { for: 'audit-action' }, 'Action'), actionF,
      el('button', { type: 'submit' }, 'Filter'));
    actionF.addEventListener('change', () => refresh());
    main.replaceChildren(el('h1', {}, 'Audit trail'), filters, body.s);
    return {
      async refresh() {
        let q = 'audit?limit=200';
        if (routeF.value.trim()) q += '&route=' + encodeURIComponent(routeF.value.trim());
        if (actionF.value) q += '&action=' + encodeURIComponent(actionF.value);
        const au = await optional(q);
        if (au.missing) { body.fill(el('p', { class: 'na' }, 'The audit trail is not available on this gateway' + (au.message ? ': ' + au.message : '') + '.')); return; }
        body.fill(auditTable(au.data.events || []));
      },
    };
  }

  function confirmAction(text) {
    return new Promise((resolve) => {
      document.getElementById('confirm-text').textContent = text;
      dlg.returnValue = '';
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.showModal();
      document.getElementById('confirm-cancel').focus();
    });
  }

  boot();
})();
