// A stand-in for OneTrust's public JavaScript API, as OneTrust documents it
// (developer.onetrust.com, "Web CMP Events Guide", "OnetrustActiveGroups"):
// window.OnetrustActiveGroups (",C0001,C0003,"), the OneTrustGroupsUpdated window event
// with the active group IDs in event.detail, raised when the script loads and on every
// change; OneTrust.AllowAll(), RejectAll(), IsAlertBoxClosed() and GetDomainData().
// The categories are OneTrust's defaults: C0001 strictly necessary, C0002 performance,
// C0003 functional, C0004 targeting. DEMO.prior is the choice of an earlier visit, as
// OneTrust reads it from its OptanonConsent and OptanonAlertBoxClosed cookies.
(function () {
  'use strict';
  var groups = ['C0001', 'C0002', 'C0003', 'C0004'];
  var active = ['C0001'];
  var closed = false;
  function publish() {
    window.OnetrustActiveGroups = ',' + active.join(',') + ',';
    window.dispatchEvent(new CustomEvent('OneTrustGroupsUpdated', { detail: active.slice() }));
  }
  window.OneTrust = {
    IsAlertBoxClosed: function () { return closed; },
    AllowAll: function () { active = groups.slice(); closed = true; publish(); },
    RejectAll: function () { active = ['C0001']; closed = true; publish(); },
    GetDomainData: function () {
      return { Groups: groups.map(function (g) { return { OptanonGroupId: g, GroupName: g }; }) };
    },
    ToggleInfoDisplay: function () {},
  };
  var prior = window.DEMO && window.DEMO.prior;
  if (prior) { closed = true; active = prior === 'accept' ? groups.slice() : ['C0001']; }
  publish();
})();
