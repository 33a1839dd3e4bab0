// Package load reads configuration files into a config.Config: YAML decoding with the
// position of every value, the documented defaults, CONSENTGATE_* environment overrides,
// and every value and cross check, reporting all problems at once with FILE:LINE:COL. It is
// the only package that imports a YAML library. Names owned elsewhere (catalogue vendors
// and endpoints, regimes, statuses, purposes, actions) come in a config.Vocabulary.
package load
