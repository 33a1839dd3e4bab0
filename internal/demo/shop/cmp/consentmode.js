// Google Consent Mode as a banner uses it (developers.google.com/tag-platform/security/
// guides/consent): gtag('consent', 'update', {...}) pushed to window.dataLayer when the
// visitor chooses. There is no banner script to stand in for: the demo's buttons push the
// updates. DEMO.prior is a choice of an earlier visit that the banner pushes before
// consentgate.js loads.
(function () {
  'use strict';
  window.dataLayer = window.dataLayer || [];
  window.gtag = window.gtag || function () { window.dataLayer.push(arguments); };
  var prior = window.DEMO && window.DEMO.prior;
  if (prior) {
    var v = prior === 'accept' ? 'granted' : 'denied';
    window.gtag('consent', 'update', { ad_storage: v, ad_user_data: v, ad_personalization: v, analytics_storage: v });
  }
})();
