// A stand-in for Cookiebot's public JavaScript API, as Cookiebot documents it
// (www.cookiebot.com/en/developer/): window.Cookiebot with consent.{necessary,
// preferences,statistics,marketing,method}, consented, declined, hasResponse;
// submitCustomConsent(preferences, statistics, marketing) and withdraw(); the window
// events CookiebotOnAccept / CookiebotOnDecline and CookiebotOnConsentReady, which fire
// on a choice and, for a returning visitor, when the script loads. DEMO.prior is the
// choice of an earlier visit, as Cookiebot reads it from its CookieConsent cookie.
(function () {
  'use strict';
  var fire = function (name) { window.dispatchEvent(new Event(name)); };
  var cb = window.Cookiebot = {
    consent: { necessary: true, preferences: false, statistics: false, marketing: false, method: null, stamp: '0' },
    consented: false, declined: false, hasResponse: false,
    submitCustomConsent: function (preferences, statistics, marketing) { choose(preferences, statistics, marketing); },
    withdraw: function () { choose(false, false, false); },
    show: function () {}, hide: function () {}, renew: function () {},
  };
  function apply(p, s, m) {
    cb.consent.preferences = !!p; cb.consent.statistics = !!s; cb.consent.marketing = !!m;
    cb.consent.method = 'explicit';
    cb.hasResponse = true;
    cb.consented = !!(p || s || m);
    cb.declined = !cb.consented;
  }
  function choose(p, s, m) {
    apply(p, s, m);
    fire(cb.consented ? 'CookiebotOnAccept' : 'CookiebotOnDecline');
    fire('CookiebotOnConsentReady');
  }
  var prior = window.DEMO && window.DEMO.prior;
  if (prior) choose(prior === 'accept', prior === 'accept', prior === 'accept');
})();
