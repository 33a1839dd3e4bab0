// A stand-in for an IAB TCF v2.2 CMP (IAB Tech Lab "Consent Management Platform API
// v2"): window.__tcfapi(command, version, callback, parameter) with ping,
// addEventListener (which calls back at once and on every change, eventStatus
// 'tcloaded' when a TC string is there, 'cmpuishown' when the visitor has not chosen,
// 'useractioncomplete' after a choice) and removeEventListener. The TC strings are real:
// ACCEPT consents to purposes 1-11 and the vendors 755 (Google), 804 (LinkedIn) and
// 1126 (Microsoft); REJECT to nothing. fakeCMP.accept() and .reject() are the banner's
// buttons. DEMO.prior is the choice of an earlier visit (the euconsent-v2 cookie).
(function () {
  'use strict';
  var ACCEPT = 'CQtB6GAQtB6GAAKACBENCWEgAP_gAAAAAAYgIzQAwF5gMkAjMAAEAAAA';
  var REJECT = 'CQtB6GAQtB6GAAKACBENCWEgAAAAAAAAAAYgAAQAAAAgAAAA';
  var prior = window.DEMO && window.DEMO.prior;
  var tc = prior === 'accept' ? ACCEPT : prior === 'reject' ? REJECT : '';
  var listeners = {};
  var next = 1;
  function tcData(status, id) {
    var yes = tc === ACCEPT;
    var purposes = {};
    for (var i = 1; i <= 11; i++) purposes[i] = yes;
    return {
      tcString: tc, tcfPolicyVersion: 4, cmpId: 10, cmpVersion: 2, gdprApplies: true,
      eventStatus: status, cmpStatus: 'loaded', listenerId: id,
      isServiceSpecific: true, useNonStandardTexts: false, publisherCC: 'DE', purposeOneTreatment: false,
      purpose: { consents: purposes, legitimateInterests: {} },
      vendor: { consents: { 755: yes, 804: yes, 1126: yes }, legitimateInterests: {} },
      specialFeatureOptins: {}, publisher: { consents: {}, legitimateInterests: {}, customPurpose: { consents: {}, legitimateInterests: {} }, restrictions: {} },
    };
  }
  window.__tcfapi = function (command, version, callback, parameter) {
    switch (command) {
      case 'ping':
        callback({ gdprApplies: true, cmpLoaded: true, cmpStatus: 'loaded', displayStatus: tc ? 'hidden' : 'visible', apiVersion: '2.2', cmpVersion: 2, cmpId: 10, gvlVersion: 150, tcfPolicyVersion: 4 }, true);
        return;
      case 'addEventListener':
        var id = next++;
        listeners[id] = callback;
        callback(tcData(tc ? 'tcloaded' : 'cmpuishown', id), true);
        return;
      case 'removeEventListener':
        var ok = parameter in listeners;
        delete listeners[parameter];
        callback(ok, true);
        return;
    }
    callback(null, false);
  };
  function decide(s) {
    tc = s;
    for (var id in listeners) listeners[id](tcData('useractioncomplete', Number(id)), true);
  }
  window.fakeCMP = { accept: function () { decide(ACCEPT); }, reject: function () { decide(REJECT); } };
})();
