// The demo shop's own code: what a site writes. Its tags send a GA4-style beacon
// (navigator.sendBeacon to /g/collect) and a Meta-style pixel (an image from /tr)
// through the proxy; its banner tells consentgate.js the visitor's choice, itself
// (consentgate.set) or through a consent banner's API (?cmp=), which consentgate.js
// bridges. After every change of consent the page views itself again, so the panel shows
// what the vendors receive now.
(function () {
  'use strict';
  var D = window.DEMO;
  var $ = function (s) { return document.querySelector(s); };
  var testid = function (id) { return $('[data-testid="' + id + '"]'); };

  // A GA4-style client ID and a Meta-style browser ID, kept by the page as the vendors'
  // own scripts keep them in first-party cookies.
  function id(name, make) {
    var v = localStorage.getItem(name);
    if (!v) { v = make(); localStorage.setItem(name, v); }
    return v;
  }
  var now = Date.now();
  var rnd = function () { return String(Math.floor(Math.random() * 1e9) + 1e9); };
  var cid = id('demo_cid', function () { return rnd() + '.' + Math.floor(now / 1000); });
  var fbp = id('demo_fbp', function () { return 'fb.1.' + now + '.' + rnd(); });

  var tracked = [];
  var waiters = [];
  // track sends one view's tags and resolves once the pixel has its answer (by then a
  // forwarded pixel has reached the sink); the beacon goes on its own.
  function track(event) {
    var n = tracked.length + waiters.filter(function (w) { return w.pending; }).length + 1;
    var page = location.origin + '/product/mug?utm_campaign=spring&gclid=Cj0DemoClickId' + n;
    var title = 'Demo shop view ' + n;
    var ga = new URLSearchParams({ v: '2', tid: 'G-DEMO12345', cid: cid, en: event || 'page_view', dl: page, dt: title, ul: 'en-us', sr: screen.width + 'x' + screen.height });
    navigator.sendBeacon(D.proxy + '/g/collect?' + ga, '');
    var meta = new URLSearchParams({ id: '123456789012345', ev: event === 'add_to_cart' ? 'AddToCart' : 'PageView', dl: page, fbp: fbp, 'cd[view]': String(n) });
    var w = { pending: true };
    waiters.push(w);
    return new Promise(function (resolve) {
      var img = new Image();
      img.onload = img.onerror = function () {
        w.pending = false;
        var t = { n: n, cid: cid, fbp: fbp, title: title, event: event };
        tracked.push(t);
        resolve(t);
        refresh();
      };
      img.src = D.proxy + '/tr?' + meta;
    });
  }

  // waitTrack resolves with view n once it has been sent (for the browser tests).
  function waitTrack(n) {
    return new Promise(function (resolve) {
      (function check() {
        var t = tracked.filter(function (x) { return x.n === n; })[0];
        if (t) return resolve(t);
        setTimeout(check, 20);
      })();
    });
  }

  // ---- the banner ------------------------------------------------------------------
  var all = function (v) { return { preferences: v, statistics: v, marketing: v }; };
  function gtag() { window.dataLayer = window.dataLayer || []; window.dataLayer.push(arguments); }
  var cm = function (v) { var s = v ? 'granted' : 'denied'; return { ad_storage: s, ad_user_data: s, ad_personalization: s, analytics_storage: s }; };
  var banners = {
    own: {
      accept: function () { return consentgate.set(all(true)); },
      reject: function () { return consentgate.set(all(false)); },
      withdraw: function () { return consentgate.withdraw(); },
    },
    cookiebot: {
      accept: function () { Cookiebot.submitCustomConsent(true, true, true); },
      reject: function () { Cookiebot.submitCustomConsent(false, false, false); },
      withdraw: function () { Cookiebot.withdraw(); },
    },
    onetrust: {
      accept: function () { OneTrust.AllowAll(); },
      reject: function () { OneTrust.RejectAll(); },
      withdraw: function () { OneTrust.RejectAll(); },
    },
    tcf: { accept: function () { fakeCMP.accept(); }, reject: function () { fakeCMP.reject(); }, withdraw: function () { fakeCMP.reject(); } },
    gpp: { accept: function () { fakeCMP.accept(); }, reject: function () { fakeCMP.reject(); }, withdraw: function () { fakeCMP.reject(); } },
    consentmode: {
      accept: function () { gtag('consent', 'update', cm(true)); },
      reject: function () { gtag('consent', 'update', cm(false)); },
      withdraw: function () { gtag('consent', 'update', cm(false)); },
    },
  };
  function click(what) {
    testid('status').textContent = what + '…';
    try {
      var r = banners[D.cmp][what]();
      if (r && r.catch) r.catch(function (e) { testid('status').textContent = String(e.message || e); });
    } catch (e) {
      testid('status').textContent = String(e.message || e);
    }
  }

  // ---- the panels ------------------------------------------------------------------
  var rows = [];
  var lastSeq = D.since || 0;
  function identity(h) {
    var q = new URLSearchParams(h.query);
    var got = h.vendor === 'meta' ? q.get('fbp') : q.get('cid');
    var mine = h.vendor === 'meta' ? fbp : cid;
    if (!got) return 'none';
    return got === mine ? 'as sent' : 'replaced';
  }
  function refresh() {
    fetch('/demo/hits?after=' + lastSeq).then(function (r) { return r.json(); }).then(function (hits) {
      hits.forEach(function (h) {
        lastSeq = Math.max(lastSeq, h.seq);
        if (h.vendor !== 'ga4' && h.vendor !== 'meta') return;
        var q = new URLSearchParams(h.query);
        var view = h.vendor === 'meta' ? q.get('cd[view]') : ((q.get('dt') || '').match(/(\d+)$/) || [])[1];
        var page = (q.get('dl') || '').replace(/^https?:\/\/[^/]*/, '');
        rows.unshift({ view: view || '?', vendor: h.vendor, event: q.get('en') || q.get('ev') || '', who: identity(h), ip: q.get('_uip') || h.forwarded_for || '', page: page });
      });
      // A pixel the proxy dropped left no trace at the sink: say so.
      tracked.forEach(function (t) {
        if (t.shown) return;
        t.shown = true;
        var seen = rows.some(function (r) { return r.vendor === 'meta' && r.view === String(t.n); });
        if (!seen) rows.unshift({ view: String(t.n), vendor: 'meta', event: t.event === 'add_to_cart' ? 'AddToCart' : 'PageView', who: 'none', ip: '', page: 'dropped by the proxy' });
      });
      var body = testid('hits').tBodies[0];
      body.textContent = '';
      rows.slice(0, 14).forEach(function (r) {
        var tr = body.insertRow();
        tr.setAttribute('data-testid', 'hit-' + r.vendor + '-' + r.view);
        tr.className = r.who === 'as sent' ? 'sent' : r.who === 'none' ? 'none' : 'anon';
        [r.view, r.vendor, r.event, r.who, r.ip, r.page].forEach(function (v, i) {
          var td = tr.insertCell();
          td.textContent = v;
          if (i === 5) td.className = 'url';
        });
      });
    }).catch(function () {});
    fetch('/demo/receipts').then(function (r) { return r.json(); }).then(function (j) {
      var ol = testid('receipts');
      ol.textContent = '';
      (j.receipts || []).forEach(function (r) {
        var li = document.createElement('li');
        var p = r.purposes || {};
        li.textContent = r.action === 'withdraw' ? r.time + ' withdrawn'
          : r.time + ' statistics ' + p.statistics + ', marketing ' + p.marketing + (r.tcf ? ' (with a TC string)' : '');
        ol.appendChild(li);
      });
    }).catch(function () {});
    consentgate.get().then(function (st) {
      testid('state').textContent = st ? 'statistics ' + st.purposes.statistics + ', marketing ' + st.purposes.marketing : 'nothing';
    }).catch(function (e) { testid('state').textContent = String(e.message || e); });
  }

  // ---- start -----------------------------------------------------------------------
  function loadConsentgate() {
    if (window.consentgate) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var s = document.createElement('script');
      s.src = D.proxy + '/consentgate.js';
      s.setAttribute('data-consent-mode-defaults', '');
      s.onload = resolve;
      s.onerror = function () { reject(new Error('consentgate.js did not load from ' + D.proxy)); };
      document.head.appendChild(s);
    });
  }
  function start() {
    testid('regime').textContent = consentgate.regime;
    testid('jurisdiction').textContent = consentgate.jurisdiction;
    testid('bridges').textContent = consentgate.bridges.join(', ') || 'none';
    ['accept', 'reject', 'withdraw'].forEach(function (what) {
      testid(what).addEventListener('click', function () { click(what); });
    });
    document.querySelectorAll('[data-add]').forEach(function (b) {
      b.addEventListener('click', function () { track('add_to_cart'); });
    });
    window.addEventListener('consentgate:error', function (e) { testid('status').textContent = e.detail.error; });
    // The first view waits for the choice the banner already had to be posted; from
    // then on every change is viewed again.
    consentgate.ready.then(function () {
      window.addEventListener('consentgate:change', function (e) {
        testid('status').textContent = e.detail.action === 'withdraw' ? 'withdrawn' : 'saved (' + e.detail.source + ')';
        track('page_view');
      });
      track('page_view');
    });
  }
  window.demo = { track: track, waitTrack: waitTrack, tracked: tracked, cid: cid, fbp: fbp, refresh: refresh };
  var go = function () { loadConsentgate().then(start, function (e) { testid('status').textContent = e.message; }); };
  if (D.late) window.addEventListener('load', go); else go();
  setInterval(refresh, 2000);
})();
