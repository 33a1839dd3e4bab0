// Package dashboard serves the marketers' dashboard: one page, embedded in the binary,
// that reads GET /api/stats (package telemetry/stats) from the same origin and shows what
// share of tracking hits was forwarded, anonymised or dropped, by vendor, by jurisdiction
// and by reason, in words a non-engineer can read.
//
// The page is static: index.html, app.css and app.js are compiled in with go:embed and
// served as they are. Everything it shows is drawn by app.js from the JSON, so the page
// works under a strict Content-Security-Policy with no inline script or style and no
// request to any other origin.
//
// Served paths (GET and HEAD only):
//
//	/dashboard, /dashboard/   the page
//	/dashboard/app.js         the script
//	/dashboard/app.css        the style sheet
//	/dashboard/favicon.svg    the tab icon
package dashboard
