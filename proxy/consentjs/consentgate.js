/*! consentgate.js: tells consentgate what the visitor chose. Served by the proxy with the
 * visitor's regime, jurisdiction and stored choice filled in; no dependencies.
 *
 *   consentgate.set({statistics: true, marketing: false})  -> Promise of the stored state
 *   consentgate.withdraw()                                  -> Promise of {withdrawn}
 *   consentgate.get()                                       -> Promise of the state, or null
 *   consentgate.regime, consentgate.jurisdiction
 *
 * Bridges, each used when its banner is on the page: Cookiebot, OneTrust, IAB TCF v2,
 * IAB GPP, Google Consent Mode. A bridge posts only when the choice differs from what the
 * proxy holds, and reads a choice the banner made before this script ran.
 */
(function () {
  'use strict';
  // Loaded twice, the second copy would post every choice again.
  if (window.consentgate && window.consentgate.version) return;
  var cfg = __CONSENTGATE_CONFIG__;
  var PURPOSES = ['necessary', 'preferences', 'statistics', 'marketing'];
  var VALUE = { granted: true, denied: false };
  var w = window;
  var script = document.currentScript || document.querySelector('script[src*="consentgate.js"]');
  var src = script && script.src ? new URL(script.src, location.href) : new URL(location.href);
  // The consent API lives on the origin the script came from (the proxy), which sets the
  // consent cookie on its own host; a page on another origin of the site is allowed by
  // allowed_origins (CORS with credentials).
  var endpoint = (script && script.getAttribute('data-endpoint')) || src.origin + '/consent';

  // The choice as the proxy holds it (confirmed) and as last asked for (wanted): a bridge
  // compares with wanted, so two events for one click post once.
  var confirmed = fromState(cfg.stored);
  var wanted = confirmed;
  var queue = Promise.resolve();
  // The dataLayer commands this script pushed itself: they are not the visitor's choice.
  var own = typeof WeakSet === 'function' ? new WeakSet() : { add: function () {}, has: function () { return false; } };

  function fromState(st) {
    var c = { purposes: {}, tcf: '' };
    if (!st) return c;
    PURPOSES.forEach(function (p) {
      var v = st.purposes && VALUE[st.purposes[p]];
      if (typeof v === 'boolean') c.purposes[p] = v;
    });
    c.tcf = st.tcf || '';
    return c;
  }

  function keyOf(c) {
    return PURPOSES.map(function (p) {
      return p in c.purposes ? (c.purposes[p] ? 'g' : 'd') : 'u';
    }).join('') + '|' + c.tcf;
  }

  function emit(name, detail) {
    try {
      w.dispatchEvent(new CustomEvent(name, { detail: detail }));
    } catch (e) { /* an old browser without CustomEvent: the promise still settles */ }
  }

  // send runs one call to the consent API after the ones before it, so that the last
  // choice made is the one stored.
  function send(method, body, source) {
    var run = function () {
      var init = { method: method, credentials: 'include', headers: { Accept: 'application/json' } };
      if (body) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      return fetch(endpoint, init).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) throw new Error('consentgate: ' + method + ' /consent answered ' + r.status + (j.error ? ': ' + j.error : ''));
          return j;
        });
      });
    };
    var p = queue.then(run, run);
    queue = p.catch(function () {});
    return p.then(function (j) {
      confirmed = method === 'DELETE' ? fromState(null) : fromState(j);
      emit('consentgate:change', { source: source, action: method === 'DELETE' ? 'withdraw' : 'set', state: method === 'DELETE' ? null : j });
      return j;
    }, function (err) {
      wanted = confirmed; // a later event may try again
      emit('consentgate:error', { source: source, error: String(err && err.message || err) });
      throw err;
    });
  }

  function post(c, source) {
    wanted = c;
    var body = { purposes: c.purposes };
    if (c.tcf) body.tcf = c.tcf;
    var p = send('POST', body, source);
    pushConsentMode('update', c.purposes);
    return p;
  }

  // choose is a bridge's choice: the purposes it speaks for (true/false), over what is
  // held for the others, and a TC string if it has one. Nothing is sent when that is
  // what the proxy already holds or was last asked for.
  function choose(source, purposes, tcf) {
    var c = { purposes: {}, tcf: tcf || wanted.tcf };
    PURPOSES.forEach(function (p) {
      if (typeof purposes[p] === 'boolean') c.purposes[p] = purposes[p];
      else if (p in wanted.purposes) c.purposes[p] = wanted.purposes[p];
    });
    if (keyOf(c) === keyOf(wanted)) return null;
    return post(c, source).catch(function () { /* reported by the consentgate:error event */ });
  }

  function set(purposes, options) {
    if (!purposes || typeof purposes !== 'object') {
      return Promise.reject(new TypeError('consentgate.set: pass an object such as {statistics: true, marketing: false}'));
    }
    var c = { purposes: {}, tcf: (options && options.tcf) || '' };
    for (var k in purposes) {
      if (PURPOSES.indexOf(k) < 0) return Promise.reject(new TypeError('consentgate.set: unknown purpose "' + k + '"; expected ' + PURPOSES.join(', ')));
      if (typeof purposes[k] !== 'boolean') return Promise.reject(new TypeError('consentgate.set: purpose "' + k + '" must be true or false'));
      c.purposes[k] = purposes[k];
    }
    return post(c, 'api');
  }

  function withdraw() {
    wanted = fromState(null);
    var p = send('DELETE', null, 'api');
    pushConsentMode('update', {});
    return p;
  }

  function get() {
    return fetch(endpoint, { credentials: 'include', headers: { Accept: 'application/json' } }).then(function (r) {
      if (r.status === 404) return null;
      if (!r.ok) throw new Error('consentgate: GET /consent answered ' + r.status);
      return r.json();
    });
  }

  // ---- Google Consent Mode defaults (data-consent-mode-defaults) -------------------
  // gtag('consent', 'default' | 'update', {...}) as Google documents it
  // (developers.google.com/tag-platform/security/guides/consent): gtag pushes its
  // arguments object onto window.dataLayer, which the Google tag reads when it loads.
  var CM_PURPOSE = { ad_storage: 'marketing', ad_user_data: 'marketing', ad_personalization: 'marketing', analytics_storage: 'statistics' };
  var cmOn = !!(script && script.hasAttribute('data-consent-mode-defaults'));

  function gtag() {
    w.dataLayer = w.dataLayer || [];
    own.add(arguments);
    w.dataLayer.push(arguments);
  }

  function cmValues(purposes, fallback) {
    var v = {};
    for (var type in CM_PURPOSE) {
      var p = purposes[CM_PURPOSE[type]];
      v[type] = p === true ? 'granted' : p === false ? 'denied' : fallback;
    }
    return v;
  }

  // The defaults per regime: opt_in denies until the visitor chooses; opt_out and none
  // grant, but a Global Privacy Control signal refuses the ad types where the
  // jurisdiction honours it.
  function cmDefaults() {
    var open = cfg.regime !== 'opt_in';
    var v = cmValues({}, open ? 'granted' : 'denied');
    if (open && cfg.gpc && navigator.globalPrivacyControl === true) {
      v.ad_storage = v.ad_user_data = v.ad_personalization = 'denied';
    }
    return v;
  }

  function pushConsentMode(command, purposes) {
    if (!cmOn) return;
    var v = command === 'default' ? cmDefaults() : cmValues(purposes, null);
    if (command === 'update') {
      var d = cmDefaults();
      for (var t in v) if (v[t] === null) v[t] = d[t];
    }
    var wait = script && parseInt(script.getAttribute('data-consent-mode-wait'), 10);
    if (command === 'default' && wait > 0) v.wait_for_update = wait;
    gtag('consent', command, v);
  }

  // ---- bridges --------------------------------------------------------------------
  var bridges = [];
  function bridge(name) { if (bridges.indexOf(name) < 0) bridges.push(name); }

  // Cookiebot (www.cookiebot.com/en/developer/): window.Cookiebot.consent.{necessary,
  // preferences,statistics,marketing} (read only), hasResponse once the visitor answered,
  // consent.method 'implied' when consent was given automatically; the window events
  // CookiebotOnConsentReady (consent submitted or read from the visitor's cookie),
  // CookiebotOnAccept and CookiebotOnDecline. As the proxy reads Cookiebot's
  // CookieConsent cookie (consent/cmp), each category maps to the purpose of its name.
  function cookiebot() {
    var cb = w.Cookiebot;
    if (!cb || !cb.consent) return;
    bridge('cookiebot');
    // No answer yet, or consent implied rather than given: not the visitor's choice.
    if (!cb.hasResponse || cb.consent.method === 'implied') return;
    var p = {};
    PURPOSES.forEach(function (k) { p[k] = cb.consent[k] === true; });
    p.necessary = true;
    choose('cookiebot', p);
  }
  ['CookiebotOnConsentReady', 'CookiebotOnAccept', 'CookiebotOnDecline'].forEach(function (e) {
    w.addEventListener(e, cookiebot);
  });

  // OneTrust (developer.onetrust.com, "Web CMP Events Guide" and "OnetrustActiveGroups"):
  // the OneTrustGroupsUpdated window event, raised when the script loads and on every
  // change, carries the active group IDs in event.detail; window.OnetrustActiveGroups
  // holds them as ",C0001,C0003,". OneTrust.IsAlertBoxClosed() tells whether the
  // visitor has answered the banner; OneTrust.GetDomainData().Groups lists the site's
  // categories. Groups map to purposes by the proxy's signals.cmp.onetrust_groups, a
  // purpose reached by several groups granted only when all are active, as the proxy
  // reads the OptanonConsent cookie.
  function onetrust(active) {
    var ot = w.OneTrust;
    if (!active) {
      if (typeof w.OnetrustActiveGroups !== 'string') return;
      active = w.OnetrustActiveGroups.split(',');
    }
    bridge('onetrust');
    if (ot && typeof ot.IsAlertBoxClosed === 'function' && !ot.IsAlertBoxClosed()) return;
    var known = null;
    try {
      var groups = ot && typeof ot.GetDomainData === 'function' && ot.GetDomainData().Groups;
      if (groups && groups.length) known = groups.map(function (g) { return g.OptanonGroupId || g.CustomGroupId; });
    } catch (e) { /* categories unknown: every mapped group counts */ }
    var p = {};
    for (var g in cfg.onetrust) {
      if (known && known.indexOf(g) < 0) continue;
      var purpose = cfg.onetrust[g];
      var on = active.indexOf(g) >= 0;
      p[purpose] = purpose in p ? p[purpose] && on : on;
    }
    choose('onetrust', p);
  }
  w.addEventListener('OneTrustGroupsUpdated', function (e) {
    onetrust(e && Array.isArray(e.detail) ? e.detail : null);
  });

  // IAB TCF v2.2 (IAB Tech Lab "CMP API v2"): __tcfapi('addEventListener', 2, cb) calls
  // cb(tcData, success) at once and on every change; tcData.eventStatus is 'tcloaded'
  // when the CMP has a TC string (a choice from an earlier visit) and
  // 'useractioncomplete' after the visitor confirms; 'cmpuishown' means no choice yet.
  // The TC string is posted for the proxy to decode per vendor, and the purpose
  // consents map to our purposes by the proxy's signals.tcf.purposes: a purpose is
  // granted when every mapped TCF purpose has consent, or legitimate interest where the
  // policy allows it (never purpose 1, nor 3-6 under policy version 4).
  var tcfOn = false;
  function tcf() {
    if (tcfOn || typeof w.__tcfapi !== 'function') return;
    tcfOn = true;
    bridge('tcf');
    w.__tcfapi('addEventListener', 2, function (d, ok) {
      if (!ok || !d || !d.tcString) return;
      if (d.eventStatus !== 'tcloaded' && d.eventStatus !== 'useractioncomplete') return;
      var cons = (d.purpose && d.purpose.consents) || {};
      var li = (d.purpose && d.purpose.legitimateInterests) || {};
      var noLI = d.tcfPolicyVersion >= 4 ? [1, 3, 4, 5, 6] : [1];
      var p = {};
      for (var name in cfg.tcf) {
        var ids = cfg.tcf[name];
        if (!ids || !ids.length) continue;
        p[name] = ids.every(function (id) { return cons[id] === true || (li[id] === true && noLI.indexOf(id) < 0); });
      }
      choose('tcf', p, d.tcString);
    });
  }

  // IAB GPP (IAB Tech Lab "GPP CMP API" v1.1): __gpp('addEventListener', cb) calls
  // cb(event, success) at once and on every change; event.pingData carries signalStatus
  // ('ready' once the CMP is done), gppString, sectionList and applicableSections. The
  // US sections are read with __gpp('getSection', cb, prefix): a sale, sharing or
  // targeted-advertising opt-out (1) refuses marketing, as the proxy reads GPP strings
  // (consent/gpp); not opting out (2) grants it only outside opt_in jurisdictions, where
  // it is not consent. uspv1 OptOutSale 'Y' refuses too. The tcfeuv2 section's TC string
  // is posted when there is no __tcfapi (which the TCF bridge reads, with purposes).
  var GPP_US = { 6: 'uspv1', 7: 'usnat', 8: 'usca', 9: 'usva', 10: 'usco', 11: 'usut', 12: 'usct' };
  var gppOn = false;
  function gpp() {
    if (gppOn || typeof w.__gpp !== 'function') return;
    gppOn = true;
    bridge('gpp');
    w.__gpp('addEventListener', function (ev, ok) {
      var pd = ok && ev && ev.pingData;
      if (!pd || pd.signalStatus !== 'ready' || !pd.gppString) return;
      var list = pd.sectionList || [];
      var ids = (pd.applicableSections || []).filter(function (id) { return id > 0; });
      if (!ids.length) ids = list;
      var tc = '';
      var parts = pd.gppString.split('~');
      if (ids.indexOf(2) >= 0 && typeof w.__tcfapi !== 'function' && list.indexOf(2) >= 0) tc = parts[list.indexOf(2) + 1] || '';
      var us = ids.filter(function (id) { return id in GPP_US; });
      var left = us.length, out = false, notOut = false;
      var done = function () {
        var p = {};
        if (out) p.marketing = false;
        else if (notOut && cfg.regime !== 'opt_in') p.marketing = true;
        if ('marketing' in p || tc) choose('gpp', p, tc);
      };
      if (!left) return done();
      us.forEach(function (id) {
        w.__gpp('getSection', function (data, ok2) {
          var core = ok2 && data && (Array.isArray(data) ? data[0] : data);
          if (core) {
            if (id === 6) {
              var s = core.OptOutSale || core.OptOut;
              if (s === 'Y') out = true; else if (s === 'N') notOut = true;
            } else {
              var f = [core.SaleOptOut, core.SharingOptOut, core.TargetedAdvertisingOptOut];
              if (f.indexOf(1) >= 0) out = true; else if (f.indexOf(2) >= 0) notOut = true;
            }
          }
          if (--left === 0) done();
        }, GPP_US[id]);
      });
    });
  }

  // Google Consent Mode: gtag('consent', 'update', {...}) commands in window.dataLayer,
  // those pushed before this script ran and those after (dataLayer.push is wrapped, and
  // the Google tag wraps it again when it loads). analytics_storage maps to statistics
  // and the ad types to marketing, as the proxy reads gcs/gcd: marketing is granted
  // only when every ad type set is granted. Defaults count towards the state but post
  // nothing: only an update is the visitor's choice.
  var cmState = {}, cmUpdated = {};
  function cmCommand(e) {
    if (!e || typeof e !== 'object' || e[0] !== 'consent' || !e[2] || typeof e[2] !== 'object') return false;
    var update = e[1] === 'update';
    if (!update && e[1] !== 'default') return false;
    if (!update && e[2].region) return false; // for other regions than ours, perhaps
    for (var t in CM_PURPOSE) {
      var v = e[2][t];
      if (v !== 'granted' && v !== 'denied') continue;
      // A default never overrides an update, whatever the order they were pushed in.
      if (update || !cmUpdated[t]) cmState[t] = v;
      if (update) cmUpdated[t] = true;
    }
    return update && !own.has(e);
  }
  function cmChoice() {
    bridge('consent_mode');
    var p = {};
    for (var t in cmState) {
      var purpose = CM_PURPOSE[t], g = cmState[t] === 'granted';
      p[purpose] = purpose in p ? p[purpose] && g : g;
    }
    choose('consent_mode', p);
  }
  function consentMode() {
    var dl = w.dataLayer = w.dataLayer || [];
    if (!Array.isArray(dl) || dl.__consentgate) return;
    var updated = false;
    for (var i = 0; i < dl.length; i++) if (cmCommand(dl[i])) updated = true;
    var push = dl.push;
    dl.push = function () {
      var r = push.apply(dl, arguments);
      var any = false;
      for (var j = 0; j < arguments.length; j++) if (cmCommand(arguments[j])) any = true;
      if (any) cmChoice();
      return r;
    };
    Object.defineProperty(dl, '__consentgate', { value: true });
    if (updated) cmChoice();
  }

  w.consentgate = {
    version: 1,
    regime: cfg.regime,
    jurisdiction: cfg.jurisdiction,
    endpoint: endpoint,
    bridges: bridges,
    set: set,
    withdraw: withdraw,
    get: get,
  };

  if (cmOn) {
    pushConsentMode('default', {});
    if (cfg.stored) pushConsentMode('update', confirmed.purposes);
  }
  consentMode();
  cookiebot();
  onetrust(null);
  tcf();
  gpp();
  // A CMP whose API appears only later (no stub in the page head) is looked for again.
  var again = function () { cookiebot(); tcf(); gpp(); };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', again);
  w.addEventListener('load', again);
  // ready settles once the choices found at load have been posted (or failed).
  w.consentgate.ready = queue.then(function () {});
})();
