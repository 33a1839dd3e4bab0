// A stand-in for an IAB GPP CMP (IAB Tech Lab "GPP CMP API" v1.1): window.__gpp(command,
// callback, parameter) with ping, addEventListener (calls back at once with an
// EventListener {eventName, listenerId, data, pingData}, then signalStatus 'not ready',
// sectionChange and signalStatus 'ready' on each choice), removeEventListener, hasSection
// and getSection (the parsed sub-sections: core, then GPC). One section applies: US
// national (7, usnat). The GPP strings are real: NO_OPT_OUT has SaleOptOut,
// SharingOptOut and TargetedAdvertisingOptOut 2 (did not opt out), OPT_OUT has them 1.
// fakeCMP.accept() and .reject() are the banner's buttons. DEMO.prior is the choice of an
// earlier visit.
(function () {
  'use strict';
  var NO_OPT_OUT = 'DBABL~BVVqAAAAAg';
  var OPT_OUT = 'DBABL~BVVVAAAAAg';
  var prior = window.DEMO && window.DEMO.prior;
  var gpp = prior === 'accept' ? NO_OPT_OUT : prior === 'reject' ? OPT_OUT : '';
  var status = 'ready';
  var listeners = {};
  var next = 1;
  function ping() {
    return {
      gppVersion: '1.1', cmpStatus: 'loaded', cmpDisplayStatus: gpp ? 'hidden' : 'visible', signalStatus: status,
      supportedAPIs: ['7:usnat'], cmpId: 10, sectionList: gpp ? [7] : [], applicableSections: [7], gppString: gpp,
    };
  }
  function usnat() {
    if (!gpp) return null;
    var v = gpp === OPT_OUT ? 1 : 2;
    return [{
      Version: 1, SharingNotice: 1, SaleOptOutNotice: 1, SharingOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1,
      SensitiveDataProcessingOptOutNotice: 1, SensitiveDataLimitUseNotice: 1,
      SaleOptOut: v, SharingOptOut: v, TargetedAdvertisingOptOut: v,
      SensitiveDataProcessing: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], KnownChildSensitiveDataConsents: [0, 0],
      PersonalDataConsents: 0, MspaCoveredTransaction: 2, MspaOptOutOptionMode: 0, MspaServiceProviderMode: 0,
    }];
  }
  function emit(name, data) {
    for (var id in listeners) listeners[id]({ eventName: name, listenerId: Number(id), data: data, pingData: ping() }, true);
  }
  window.__gpp = function (command, callback, parameter) {
    switch (command) {
      case 'ping': callback(ping(), true); return;
      case 'addEventListener':
        var id = next++;
        listeners[id] = callback;
        callback({ eventName: 'listenerRegistered', listenerId: id, data: true, pingData: ping() }, true);
        return;
      case 'removeEventListener':
        var ok = parameter in listeners;
        delete listeners[parameter];
        callback(ok, true);
        return;
      case 'hasSection': callback(parameter === 'usnat' && !!gpp, true); return;
      case 'getSection': callback(parameter === 'usnat' ? usnat() : null, true); return;
    }
    callback(null, false);
  };
  function decide(s) {
    status = 'not ready';
    emit('signalStatus', 'not ready');
    gpp = s;
    emit('sectionChange', 'usnat');
    status = 'ready';
    emit('signalStatus', 'ready');
  }
  window.fakeCMP = { accept: function () { decide(NO_OPT_OUT); }, reject: function () { decide(OPT_OUT); } };
})();
