// consentgate dashboard: reads /api/stats and draws the page. No framework, no build step.
// Everything from the server is written with textContent, never as HTML.
'use strict';

(function () {
  const REFRESH_MS = 15000;
  const WINDOWS = ['15m', '1h', '24h'];
  const DEFAULT_WINDOW = '1h';
  // '' lets the server choose: the whole fleet when it has one, else this instance.
  const SCOPES = ['fleet', 'instance'];
  const TOP_REASONS = 8;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const ACTIONS = ['forward', 'anonymise', 'drop'];
  const ACTION_WORD = { forward: 'forwarded', anonymise: 'anonymised', drop: 'dropped' };

  const WINDOW_TEXT = {
    '15m': { since: 'In the last 15 minutes', note: 'in the last 15 minutes' },
    '1h': { since: 'In the last hour', note: 'in the last hour' },
    '24h': { since: 'In the last 24 hours', note: 'in the last 24 hours' },
  };

  const VENDORS = {
    "ga4": "Google Analytics 4",
    "meta_pixel": "Meta Pixel",
    "meta": "Meta Pixel",
    "google_ads": "Google Ads",
    "ms_uet": "Microsoft UET",
    "bing": "Microsoft UET",
    "linkedin": "LinkedIn Insight",
    "tiktok": "TikTok Pixel",
    "matomo": "Matomo",
    "plausible": "Plausible",
  };

  // name: how the group is listed; where: how a sentence says a visitor was there.
  const JURISDICTIONS = {
    "eea": { name: 'EEA', where: 'in the EEA' },
    "uk": { name: 'United Kingdom', where: 'in the United Kingdom' },
    "ch": { name: 'Switzerland', where: 'in Switzerland' },
    "us-ca": { name: 'California', where: 'in California' },
    "us-states": { name: 'Other US privacy states', where: 'in other US privacy states' },
    "other": { name: 'Rest of world', where: 'in the rest of the world' },
    "unknown": { name: 'Unknown location', where: 'whose location is unknown' },
  };

  // Every reason the proxy reports, in words for people who do not read the code. A key
  // missing here is shown with the generic text of unknownReason.
  const REASONS = {
    "consent_granted": {
      title: 'Consent given',
      text: 'The visitor agreed to this kind of tracking, so the hit could be sent.',
    },
    "cmp_granted": {
      title: 'Consent given in the consent banner',
      text: 'The consent banner (CMP) on the website reported that the visitor agreed to this kind of tracking.',
    },
    "tcf_granted": {
      title: 'Consent given (TCF)',
      text: 'The IAB TCF consent string sent by the website\'s consent banner allows this vendor what it needs.',
    },
    "cmp_consent_granted": {
      title: 'Consent given in the consent banner',
      text: 'The consent banner (CMP) on the website reported that the visitor agreed to this kind of tracking.',
    },
    "no_consent_required": {
      title: 'No consent needed',
      text: 'The visitor is in a place whose privacy rules do not require asking before this kind of tracking.',
    },
    "not_opted_out": {
      title: 'Visitor has not objected',
      text: 'Where the visitor is, tracking is allowed unless the visitor objects (opts out), and they had not.',
    },
    "consent_missing": {
      title: 'No consent given yet',
      text: 'The visitor is in a place where tracking needs their agreement first, and they had not agreed to this kind of tracking (for example, they ignored the consent banner).',
    },
    "consent_denied": {
      title: 'Consent refused',
      text: 'The visitor said no to this kind of tracking in the consent banner.',
    },
    "gpc_opt_out": {
      title: 'Browser privacy signal',
      text: 'The visitor\'s browser sent a Global Privacy Control signal, which the law where they are treats as opting out of this kind of tracking.',
    },
    "consent_mode_denied": {
      title: 'Google Consent Mode said no',
      text: 'The Google tag on the page reported that the visitor had not allowed this kind of tracking (Google Consent Mode "denied").',
    },
    "store_unavailable": {
      title: 'Consent could not be checked',
      text: 'consentgate could not look up the visitor\'s consent choice at that moment, so it played safe and treated the hit as not consented. This is a technical problem: tell your engineering team if it is frequent.',
    },
    "anonymise_failed": {
      title: 'Could not be anonymised safely',
      text: 'The hit should have been sent without personal identifiers, but it could not be cleaned reliably, so it was not sent at all.',
    },
    "method_not_allowed": {
      title: 'Unexpected kind of request',
      text: 'The request did not look like something this vendor\'s tag sends (wrong HTTP method), so it was ignored. Usually a bot, a scanner or a misconfigured tag.',
    },
    "body_too_large": {
      title: 'Hit too large',
      text: 'The hit carried more data than consentgate accepts, so it was not sent. Usually a misconfigured tag or an abusive request.',
    },
    "bad_path": {
      title: 'Unexpected web address',
      text: 'The hit was sent to a web address that does not look like the one this vendor\'s tag uses (for example, something other than a conversion number where Google Ads puts it), so it was not sent. Usually a bot, a scanner or an attempt to slip data past consentgate.',
    },
    "bad_body_encoding": {
      title: 'Unreadable compressed data',
      text: 'The hit came compressed in a way consentgate does not read, or its compressed data was damaged, so it could not be checked and was not sent.',
    },
    "internal_error": {
      title: 'Internal error',
      text: 'Something went wrong inside consentgate while handling the hit, so it was not sent rather than risk sending personal data. Tell your engineering team.',
    },
    "tcf_invalid": {
      title: 'Unreadable consent string (TCF)',
      text: 'The hit carried an IAB TCF consent string that could not be read, so it was treated as having no consent.',
    },
    "tcf_denied": {
      title: 'Consent refused (TCF)',
      text: 'The IAB TCF consent string sent by the website\'s consent banner says the visitor did not allow this vendor or purpose.',
    },
    "gpp_opt_out": {
      title: 'Opted out (GPP)',
      text: 'The IAB Global Privacy Platform signal sent by the website says the visitor opted out of this kind of tracking.',
    },
    "gpp_invalid": {
      title: 'Unreadable privacy signal (GPP)',
      text: 'The hit carried an IAB Global Privacy Platform string that could not be read, so advertising and marketing use was treated as refused.',
    },
    "usp_opt_out": {
      title: 'Opted out (US Privacy string)',
      text: 'The US Privacy (CCPA) string sent by the website says the visitor opted out of the sale or sharing of their data.',
    },
    "usp_invalid": {
      title: 'Unreadable US Privacy string',
      text: 'The hit carried a US Privacy (CCPA) string that could not be read, so advertising and marketing use was treated as refused.',
    },
    "cmp_denied": {
      title: 'Consent refused in the consent banner',
      text: 'The consent banner (CMP) on the website reported that the visitor did not allow this kind of tracking.',
    },
  };

  function unknownReason(key) {
    return {
      title: key,
      text: 'consentgate reported the reason "' + key + '", which this dashboard does not describe yet. Ask your engineering team what it means.',
    };
  }

  // ---- formatting --------------------------------------------------------------------

  function fmtCount(n) {
    const s = String(Math.round(n));
    return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  // Percent with one decimal, rounded half up, in integer arithmetic so every browser
  // (and the tests) get the same digits.
  function fmtPct(part, total) {
    if (!(total > 0)) return '–';
    const tenths = Math.floor((2000 * part + total) / (2 * total));
    return Math.floor(tenths / 10) + '.' + (tenths % 10) + '%';
  }

  function vendorName(key) { return Object.hasOwn(VENDORS, key) ? VENDORS[key] : key; }
  function jurisdictionName(key) { return Object.hasOwn(JURISDICTIONS, key) ? JURISDICTIONS[key].name : key; }
  function jurisdictionWhere(key) { return Object.hasOwn(JURISDICTIONS, key) ? JURISDICTIONS[key].where : 'in "' + key + '"'; }
  function reasonInfo(key) { return Object.hasOwn(REASONS, key) ? REASONS[key] : unknownReason(key); }

  function pad2(n) { return String(n).padStart(2, '0'); }
  function fmtClock(d) { return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()); }
  function fmtHM(d) { return pad2(d.getHours()) + ':' + pad2(d.getMinutes()); }
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function fmtDate(d) { return d.getDate() + ' ' + MONTHS[d.getMonth()] + ' ' + d.getFullYear(); }
  function parseTime(s) {
    if (typeof s !== 'string' || s === '') return null;
    const d = new Date(s);
    return isNaN(d.getTime()) ? null : d;
  }

  // ---- data --------------------------------------------------------------------------

  function num(v) { const n = Number(v); return Number.isFinite(n) && n > 0 ? n : 0; }

  function counts(o) {
    o = o || {};
    const c = { forward: num(o.forward), anonymise: num(o.anonymise), drop: num(o.drop) };
    c.total = o.total === undefined ? c.forward + c.anonymise + c.drop : num(o.total);
    return c;
  }

  function keyed(list) {
    return (Array.isArray(list) ? list : [])
      .filter((r) => r && typeof r.key === 'string')
      .map((r) => Object.assign(counts(r), { key: r.key }));
  }

  class LoadError extends Error {}

  // normalise checks the shape of the answer and fills what the contract allows to be
  // absent, so the drawing code never meets undefined.
  function normalise(d) {
    if (!d || typeof d !== 'object' || !d.totals || typeof d.totals !== 'object') {
      throw new LoadError('The server sent an answer this page does not understand.');
    }
    const scopes = Array.isArray(d.scopes) ? d.scopes.filter((s) => SCOPES.includes(s)) : [];
    const fleet = d.fleet && typeof d.fleet === 'object' ? d.fleet : null;
    return {
      window: d.window,
      scope: SCOPES.includes(d.scope) ? d.scope : 'instance',
      scopes: scopes.length ? scopes : ['instance'],
      fleet: fleet ? { instances: num(fleet.instances), publishSeconds: num(fleet.publish_seconds) } : null,
      generatedAt: parseTime(d.generated_at),
      instance: d.instance && typeof d.instance === 'object' ? d.instance : {},
      totals: counts(d.totals),
      series: (Array.isArray(d.series) ? d.series : []).map((p) => Object.assign(counts(p), { t: parseTime(p && p.t) })),
      byVendor: keyed(d.by_vendor),
      byJurisdiction: keyed(d.by_jurisdiction),
      byReason: keyed(d.by_reason),
      byVJ: (Array.isArray(d.by_vendor_jurisdiction) ? d.by_vendor_jurisdiction : [])
        .filter((r) => r && typeof r.vendor === 'string' && typeof r.jurisdiction === 'string')
        .map((r) => Object.assign(counts(r), { vendor: r.vendor, jurisdiction: r.jurisdiction, reasons: keyed(r.reasons) })),
      selection: d.selection && typeof d.selection === 'object' && Array.isArray(d.selection.series)
        ? {
          vendor: String(d.selection.vendor || ''),
          jurisdiction: String(d.selection.jurisdiction || ''),
          series: d.selection.series.map((p) => Object.assign(counts(p), { t: parseTime(p && p.t) })),
        }
        : null,
    };
  }

  function byTotalDesc(a, b) { return b.total - a.total || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0); }

  function group(rows, keyOf) {
    const m = new Map();
    for (const r of rows) {
      const k = keyOf(r);
      const g = m.get(k) || { key: k, forward: 0, anonymise: 0, drop: 0, total: 0 };
      for (const a of ACTIONS) g[a] += r[a];
      g.total += r.total;
      m.set(k, g);
    }
    return Array.from(m.values()).sort(byTotalDesc);
  }

  // view is what the page shows for the current filters.
  function view(d, vendor, jurisdiction) {
    if (!vendor && !jurisdiction) {
      return { totals: d.totals, vendors: d.byVendor, jurisdictions: d.byJurisdiction, reasons: d.byReason };
    }
    const rows = d.byVJ.filter((r) => (!vendor || r.vendor === vendor) && (!jurisdiction || r.jurisdiction === jurisdiction));
    const totals = { forward: 0, anonymise: 0, drop: 0, total: 0 };
    for (const r of rows) { for (const a of ACTIONS) totals[a] += r[a]; totals.total += r.total; }
    return {
      totals,
      vendors: group(rows, (r) => r.vendor),
      jurisdictions: group(rows, (r) => r.jurisdiction),
      reasons: group(rows.flatMap((r) => r.reasons), (r) => r.key),
    };
  }

  // ---- state -------------------------------------------------------------------------

  const state = {
    window: DEFAULT_WINDOW,
    scope: '', // as chosen: '' (the server's default), 'fleet' or 'instance'
    canFleet: false, // the server has fleet figures to offer
    vendor: '',
    jurisdiction: '',
    data: null, // last good answer, normalised
    dataWindow: '', // the window data is for
    dataScope: '', // the scope asked for when data came
    loads: 0,
    seq: 0,
    timer: 0,
    controller: null,
  };

  const $ = (id) => document.getElementById(id);
  const byTestId = (id) => document.querySelector('[data-testid="' + id + '"]');
  let root;

  function readURL() {
    const q = new URLSearchParams(location.search);
    const w = q.get('window');
    state.window = WINDOWS.includes(w) ? w : DEFAULT_WINDOW;
    const sc = q.get('scope');
    state.scope = SCOPES.includes(sc) ? sc : '';
    state.vendor = q.get('vendor') || '';
    state.jurisdiction = q.get('jurisdiction') || '';
  }

  function writeURL() {
    const q = new URLSearchParams();
    q.set('window', state.window);
    if (state.scope) q.set('scope', state.scope);
    if (state.vendor) q.set('vendor', state.vendor);
    if (state.jurisdiction) q.set('jurisdiction', state.jurisdiction);
    history.replaceState(null, '', location.pathname + '?' + q.toString());
  }

  // ---- loading -----------------------------------------------------------------------

  async function load() {
    clearTimeout(state.timer);
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const seq = ++state.seq;
    const win = state.window;
    const scope = state.scope;
    if (state.dataWindow !== win || state.dataScope !== scope) setState('loading');
    root.classList.add('is-fetching');
    try {
      let res;
      try {
        let url = '/api/stats?window=' + encodeURIComponent(win);
        if (scope) url += '&scope=' + encodeURIComponent(scope);
        if (state.vendor) url += '&vendor=' + encodeURIComponent(state.vendor);
        if (state.jurisdiction) url += '&jurisdiction=' + encodeURIComponent(state.jurisdiction);
        res = await fetch(url, {
          signal: controller.signal,
          cache: 'no-store',
          headers: { Accept: 'application/json' },
        });
      } catch (e) {
        if (e && e.name === 'AbortError') throw e;
        throw new LoadError('consentgate could not be reached. Check that it is running and that your network connection works.');
      }
      if (!res.ok) {
        let said = '';
        try {
          const b = await res.json();
          if (b && typeof b.error === 'string' && b.error !== '') said = ' It said: "' + b.error + '".';
        } catch (e) {
          if (e && e.name === 'AbortError') throw e;
        }
        let way = '';
        if (res.status === 503 && scope !== 'instance') {
          // Only the fleet figures can be unavailable (Redis): this instance's still are.
          state.canFleet = true;
          way = ' Choose "This instance" above to see the figures of the instance that answered.';
        }
        throw new LoadError('The server answered with an error (HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '') + ').' + said + way);
      }
      let body;
      try {
        body = await res.json();
      } catch (e) {
        if (e && e.name === 'AbortError') throw e;
        throw new LoadError('The server sent an answer this page does not understand.');
      }
      const data = normalise(body);
      if (seq !== state.seq) return;
      state.data = data;
      state.dataWindow = win;
      state.dataScope = scope;
      state.canFleet = data.scopes.includes('fleet');
      state.loads++;
      hideError();
      render();
    } catch (e) {
      if (seq !== state.seq || (e && e.name === 'AbortError')) return;
      showError(e instanceof LoadError ? e.message : 'Something went wrong while reading the numbers.');
    } finally {
      if (seq === state.seq) {
        root.classList.remove('is-fetching');
        state.timer = setTimeout(load, REFRESH_MS);
      }
    }
  }

  function setState(s) {
    root.dataset.state = s;
    $('loading').hidden = s !== 'loading';
    if (s === 'loading') {
      $('content').classList.add('is-stale');
    }
  }

  function showError(message) {
    const stale = state.data && state.dataWindow === state.window && state.dataScope === state.scope;
    renderScopeControl();
    let detail = message + ' The page tries again every 15 seconds.';
    if (stale) detail += ' The numbers below are from ' + fmtClock(updatedAt(state.data)) + '.';
    $('error-detail').textContent = detail;
    $('error').hidden = false;
    $('content').hidden = !stale;
    $('content').classList.toggle('is-stale', !!stale);
    setState('error');
  }

  function hideError() {
    $('error').hidden = true;
    $('error-detail').textContent = '';
  }

  function updatedAt(d) { return d.generatedAt || new Date(); }

  // ---- drawing -----------------------------------------------------------------------

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function render() {
    const d = state.data;
    const v = view(d, state.vendor, state.jurisdiction);
    const filtered = !!(state.vendor || state.jurisdiction);
    const wt = WINDOW_TEXT[state.dataWindow] || WINDOW_TEXT[DEFAULT_WINDOW];

    root.dataset.window = state.dataWindow;
    root.dataset.scope = d.scope;
    root.dataset.loads = String(state.loads);
    fillFilters(d);

    // headline
    byTestId('count-total').textContent = fmtCount(v.totals.total);
    $('window-note').textContent = wt.note;
    for (const a of ACTIONS) {
      byTestId('count-' + a).textContent = fmtCount(v.totals[a]);
      const share = byTestId('share-' + a);
      share.textContent = fmtPct(v.totals[a], v.totals.total);
      share.classList.toggle('zero', v.totals.total === 0);
    }
    $('summary').textContent = summary(wt, v.totals);
    renderScopeControl();
    renderScopeNote(d, wt);
    $('clear-filters').hidden = !filtered;

    const empty = v.totals.total === 0;
    $('empty').hidden = !empty;
    $('details').hidden = empty;
    if (empty) {
      $('empty-title').textContent = filtered ? 'No hits match these filters in this window.' : 'No hits in this window yet.';
      $('empty-text').textContent = filtered
        ? 'Try a longer time window, or show all vendors and locations.'
        : 'As soon as your websites send tracking hits through consentgate, they appear here. The page refreshes by itself every 15 seconds.';
    } else {
      renderChart(chartSeries(d), filtered && !selected(d));
      renderRows('vendor-body', 'vendor-row-', v.vendors, vendorName, 'vendor');
      renderRows('jurisdiction-body', 'jurisdiction-row-', v.jurisdictions, jurisdictionName, 'jurisdiction');
      renderReasons(v);
    }

    renderFooter(d);
    $('content').hidden = false;
    $('content').classList.remove('is-stale');
    setState(empty ? 'empty' : 'ready');
  }

  function scopeWords() {
    const what = state.vendor ? vendorName(state.vendor) + ' hits' : 'tracking hits';
    const where = state.jurisdiction ? ' from visitors ' + jurisdictionWhere(state.jurisdiction) : '';
    return what + where;
  }

  // renderScopeControl offers the fleet / this-instance switch when the server has a
  // fleet, marking the scope shown (or, before any answer, the one asked for).
  function renderScopeControl() {
    $('scope-control').hidden = !state.canFleet;
    const shown = state.data && state.dataScope === state.scope ? state.data.scope : (state.scope || 'fleet');
    for (const b of document.querySelectorAll('button[data-scope]')) {
      b.setAttribute('aria-pressed', String(b.dataset.scope === shown));
    }
  }

  // renderScopeNote says whose hits the numbers are: how many instances reported, or
  // that they are this instance's only.
  function renderScopeNote(d, wt) {
    const note = $('scope-note');
    note.textContent = '';
    if (d.scope === 'fleet' && d.fleet) {
      const n = d.fleet.instances;
      note.append('Figures from ');
      note.appendChild(el('strong', { 'data-testid': 'fleet-instances' }, fmtCount(n)));
      note.append((n === 1 ? ' consentgate instance' : ' consentgate instances') + ' that reported ' + wt.note + '.');
      if (d.fleet.publishSeconds > 0) {
        note.append(' Each sends its figures every ' + fmtCount(d.fleet.publishSeconds) + ' seconds, so the last few seconds may not be in yet.');
      }
      note.hidden = false;
    } else if (d.scopes.includes('fleet')) {
      note.textContent = 'Figures from this consentgate instance only (the one that answered): other instances are not counted. Choose "All instances" for the whole site.';
      note.hidden = false;
    } else {
      note.hidden = true;
    }
  }

  function summary(wt, t) {
    const head = wt.since + ', consentgate handled ' + fmtCount(t.total) + ' ' + scopeWords();
    if (t.total === 0) return head + '.';
    return head + ': ' + fmtPct(t.forward, t.total) + ' were forwarded, ' + fmtPct(t.anonymise, t.total) +
      ' anonymised and ' + fmtPct(t.drop, t.total) + ' dropped.';
  }

  function fillFilters(d) {
    const vendors = new Set(d.byVendor.map((r) => r.key));
    const jurisdictions = new Set(d.byJurisdiction.map((r) => r.key));
    for (const r of d.byVJ) { vendors.add(r.vendor); jurisdictions.add(r.jurisdiction); }
    fillSelect($('filter-vendor'), vendors, state.vendor, 'All vendors', vendorName);
    fillSelect($('filter-jurisdiction'), jurisdictions, state.jurisdiction, 'All locations', jurisdictionName);
  }

  function fillSelect(sel, keys, selected, allText, name) {
    if (selected) keys.add(selected); // keep the choice visible even with no hits for it now
    const list = Array.from(keys).sort((a, b) => name(a).localeCompare(name(b), 'en'));
    sel.textContent = '';
    sel.appendChild(el('option', { value: '' }, allText));
    for (const k of list) sel.appendChild(el('option', { value: k }, name(k)));
    sel.value = selected;
  }

  function mixBar(r) {
    const bar = el('div', { class: 'mix', 'aria-hidden': 'true' });
    for (const a of ACTIONS) {
      if (r[a] <= 0 || r.total <= 0) continue;
      const seg = el('span', { class: 'mix-' + a });
      seg.style.width = (100 * r[a] / r.total) + '%';
      bar.appendChild(seg);
    }
    return bar;
  }

  function renderRows(bodyId, prefix, rows, name, filterKind) {
    const body = $(bodyId);
    body.textContent = '';
    for (const r of rows) {
      const tr = el('tr', { 'data-testid': prefix + r.key, 'data-key': r.key });
      const nameCell = el('th', { scope: 'row', 'data-col': 'name' });
      const current = filterKind === 'vendor' ? state.vendor : state.jurisdiction;
      if (current === r.key) {
        nameCell.appendChild(el('span', { class: 'row-name' }, name(r.key)));
      } else {
        const b = el('button', { type: 'button', class: 'link row-name', title: 'Show only ' + name(r.key) }, name(r.key));
        b.addEventListener('click', () => setFilter(filterKind, r.key));
        nameCell.appendChild(b);
      }
      nameCell.appendChild(mixBar(r));
      tr.appendChild(nameCell);
      tr.appendChild(el('td', { class: 'num', 'data-col': 'total', 'data-label': 'Hits' }, fmtCount(r.total)));
      for (const a of ACTIONS) {
        const cls = 'num pct-' + a + (r[a] === 0 ? ' zero' : '');
        const label = ACTION_WORD[a].charAt(0).toUpperCase() + ACTION_WORD[a].slice(1);
        tr.appendChild(el('td', { class: cls, 'data-col': a, 'data-label': label, title: fmtCount(r[a]) + ' hits ' + ACTION_WORD[a] }, fmtPct(r[a], r.total)));
      }
      body.appendChild(tr);
    }
  }

  function renderReasons(v) {
    const drops = v.reasons.filter((r) => r.drop > 0)
      .sort((a, b) => b.drop - a.drop || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const shown = drops.slice(0, TOP_REASONS);
    const totalDrop = v.totals.drop;
    const filtered = !!(state.vendor || state.jurisdiction);
    $('reasons-title').textContent = filtered ? 'Why ' + scopeWords() + ' were dropped' : 'Why hits were dropped';

    let note;
    if (totalDrop === 0) {
      note = '';
    } else {
      note = fmtCount(totalDrop) + (totalDrop === 1 ? ' hit was' : ' hits were') + ' dropped. ';
      note += drops.length > shown.length ? 'These are the ' + shown.length + ' most common reasons.' : 'These are the reasons.';
      const rest = drops.slice(shown.length).reduce((s, r) => s + r.drop, 0);
      if (rest > 0) note += ' ' + (drops.length - shown.length) + ' other reasons account for ' + fmtCount(rest) + ' more.';
    }
    $('reasons-note').textContent = note;
    $('reasons-none').hidden = drops.length > 0;

    const body = $('reason-body');
    body.textContent = '';
    for (const r of shown) {
      const info = reasonInfo(r.key);
      const tr = el('tr', { 'data-testid': 'reason-row-' + r.key, 'data-key': r.key });
      const th = el('th', { scope: 'row', 'data-col': 'reason' });
      th.appendChild(el('span', { class: 'reason-title' }, info.title));
      th.appendChild(el('code', { class: 'reason-key' }, r.key));
      tr.appendChild(th);
      tr.appendChild(el('td', { class: 'explanation', 'data-col': 'explanation' }, info.text));
      tr.appendChild(el('td', { class: 'num', 'data-col': 'drop', 'data-label': 'Dropped hits' }, fmtCount(r.drop)));
      tr.appendChild(el('td', { class: 'num', 'data-col': 'share', 'data-label': 'Share of drops' }, fmtPct(r.drop, totalDrop)));
      body.appendChild(tr);
    }
  }

  // renderChart draws the per-minute series as stacked bars (forward at the bottom, then
  // anonymise, then drop). Long windows are drawn in buckets of several minutes so a bar
  // stays wide enough to see.
  function renderChart(series, filtered) {
    const box = $('chart');
    box.textContent = '';
    const points = series.filter((p) => p.t);
    const per = bucketMinutes(points.length);
    const buckets = [];
    for (let i = 0; i < points.length; i += per) {
      const b = { t: points[i].t, forward: 0, anonymise: 0, drop: 0, total: 0 };
      for (const p of points.slice(i, i + per)) {
        for (const a of ACTIONS) b[a] += p[a];
        b.total += p.forward + p.anonymise + p.drop;
      }
      buckets.push(b);
    }

    const unit = per === 1 ? 'one minute' : per + ' minutes';
    let note = 'Each bar is ' + unit + ' (times in your time zone). Hover over a bar for its numbers.';
    if (filtered) note = 'The chart shows all vendors and locations: the minute-by-minute numbers are not broken down by vendor or location. ' + note;
    $('chart-note').textContent = note;
    if (buckets.length === 0) return;

    const width = Math.max(280, Math.floor(box.clientWidth || 800));
    const height = width < 600 ? 200 : 260;
    const m = { top: 10, right: 8, bottom: 26, left: 44 };
    const iw = width - m.left - m.right;
    const ih = height - m.top - m.bottom;
    const max = Math.max(1, ...buckets.map((b) => b.total));
    const ticks = niceTicks(max);
    const top = ticks[ticks.length - 1];
    const y = (v) => m.top + ih - (v / top) * ih;
    const bw = iw / buckets.length;
    const gap = bw >= 6 ? Math.min(4, bw * 0.2) : 0;

    const s = svg('svg', {
      width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
      role: 'img', class: 'chart-svg',
      'aria-label': 'Stacked bar chart of forwarded, anonymised and dropped hits over time',
    });

    for (const t of ticks) {
      s.appendChild(svg('line', { class: 'grid', x1: m.left, x2: width - m.right, y1: y(t), y2: y(t) }));
      const label = svg('text', { class: 'axis', x: m.left - 6, y: y(t) + 4, 'text-anchor': 'end' });
      label.textContent = fmtCount(t);
      s.appendChild(label);
    }

    buckets.forEach((b, i) => {
      const g = svg('g', { class: 'bar' });
      const title = svg('title');
      const end = new Date(b.t.getTime() + per * 60000);
      title.textContent = fmtHM(b.t) + (per > 1 ? '–' + fmtHM(end) : '') + ': ' + fmtCount(b.total) + ' hits (' +
        fmtCount(b.forward) + ' forwarded, ' + fmtCount(b.anonymise) + ' anonymised, ' + fmtCount(b.drop) + ' dropped)';
      g.appendChild(title);
      const x = m.left + i * bw + gap / 2;
      let base = 0;
      for (const a of ACTIONS) {
        if (b[a] <= 0) continue;
        const y0 = y(base), y1 = y(base + b[a]);
        g.appendChild(svg('rect', { class: 'seg-' + a, x: x.toFixed(2), y: y1.toFixed(2), width: Math.max(0.5, bw - gap).toFixed(2), height: Math.max(0.5, y0 - y1).toFixed(2) }));
        base += b[a];
      }
      // an invisible full-height target so every bar, even an empty one, shows its numbers
      g.appendChild(svg('rect', { class: 'hit', x: (m.left + i * bw).toFixed(2), y: m.top, width: bw.toFixed(2), height: ih }));
      s.appendChild(g);
    });

    s.appendChild(svg('line', { class: 'baseline', x1: m.left, x2: width - m.right, y1: y(0), y2: y(0) }));

    // Time axis: labels on round local times (every 2, 5, 10 … minutes or hours,
    // whichever fits), placed where that moment falls in the bars.
    const t0 = buckets[0].t.getTime();
    const span = buckets.length * per * 60000;
    const xAt = (t) => m.left + ((t - t0) / span) * iw;
    const maxLabels = Math.max(2, Math.floor(iw / 80));
    const minutes = span / 60000;
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720].find((st) => minutes / st <= maxLabels) || 1440;
    for (let t = t0; t <= t0 + span; t += 60000) {
      const d = new Date(t);
      if ((d.getHours() * 60 + d.getMinutes()) % step !== 0) continue;
      const x = xAt(t);
      if (x < m.left + 14 || x > width - m.right - 14) continue; // would be cut off at an edge
      s.appendChild(svg('line', { class: 'tick', x1: x.toFixed(2), x2: x.toFixed(2), y1: y(0), y2: y(0) + 4 }));
      const label = svg('text', { class: 'axis', x: x.toFixed(2), y: height - 8, 'text-anchor': 'middle' });
      label.textContent = fmtHM(d);
      s.appendChild(label);
    }
    box.appendChild(s);
  }

  function bucketMinutes(n) {
    for (const per of [1, 2, 5, 10, 15, 30, 60]) {
      if (n / per <= 150) return per;
    }
    return Math.ceil(n / 150);
  }

  function niceTicks(max) {
    const rough = max / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = Math.max(1, [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= rough));
    const out = [];
    for (let v = 0; v < max + step; v += step) {
      out.push(v);
      if (v >= max) break;
    }
    return out;
  }

  function renderFooter(d) {
    const i = d.instance;
    const text = (v) => (typeof v === 'string' && v !== '' ? v : 'not reported');
    byTestId('instance-version').textContent = text(i.version);
    byTestId('instance-config-version').textContent = text(i.config_version);
    const loaded = parseTime(i.config_loaded_at);
    byTestId('instance-config-loaded').textContent = loaded ? fmtDate(loaded) + ' ' + fmtClock(loaded) : text(i.config_loaded_at);
    const geo = parseTime(i.geoip_build);
    byTestId('instance-geoip').textContent = geo ? fmtDate(geo) : text(i.geoip_build);
    byTestId('updated-at').textContent = fmtClock(updatedAt(d));
    $('footer').hidden = false;
  }

  // ---- interaction -------------------------------------------------------------------

  function setWindow(w) {
    if (!WINDOWS.includes(w)) return;
    state.window = w;
    markWindow();
    writeURL();
    load();
  }

  function setScope(sc) {
    if (!SCOPES.includes(sc)) return;
    state.scope = sc;
    renderScopeControl();
    writeURL();
    load();
  }

  function markWindow() {
    for (const b of document.querySelectorAll('[data-window]')) {
      if (b.tagName === 'BUTTON') b.setAttribute('aria-pressed', String(b.dataset.window === state.window));
    }
  }

  function setFilter(kind, key) {
    if (kind === 'vendor') state.vendor = key; else state.jurisdiction = key;
    writeURL();
    if (state.data) render();
    load(); // the chart's per-minute series for the new filters comes from the server
  }

  // selected tells whether d carries the per-minute series of the current filters.
  function selected(d) {
    const s = d.selection;
    return !!s && s.vendor === (state.vendor || '') && s.jurisdiction === (state.jurisdiction || '');
  }

  function chartSeries(d) {
    return (state.vendor || state.jurisdiction) && selected(d) ? d.selection.series : d.series;
  }

  let resizeFrame = 0;
  let lastWidth = 0;
  function onResize() {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => {
      const w = $('chart').clientWidth;
      if (state.data && w !== lastWidth && root.dataset.state === 'ready') {
        lastWidth = w;
        renderChart(chartSeries(state.data), !!(state.vendor || state.jurisdiction) && !selected(state.data));
      }
    });
  }

  function start() {
    root = $('dashboard');
    readURL();
    markWindow();
    writeURL();
    for (const b of document.querySelectorAll('button[data-window]')) {
      b.addEventListener('click', () => setWindow(b.dataset.window));
    }
    for (const b of document.querySelectorAll('button[data-scope]')) {
      b.addEventListener('click', () => setScope(b.dataset.scope));
    }
    $('filter-vendor').addEventListener('change', (e) => setFilter('vendor', e.target.value));
    $('filter-jurisdiction').addEventListener('change', (e) => setFilter('jurisdiction', e.target.value));
    $('clear-filters').addEventListener('click', () => {
      state.vendor = '';
      state.jurisdiction = '';
      writeURL();
      if (state.data) render();
    });
    window.addEventListener('resize', onResize);
    load();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
