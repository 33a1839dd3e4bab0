// Package corpus loads the leak corpus (rules/testdata/hits): real-world-shaped hits of
// every catalogue endpoint, each with the identifying values it carries and the values
// anonymisation must keep. It is test support: the rules leak test and the proxy's
// every-vendor-every-action test send these hits and check that no identifier survives.
package corpus
