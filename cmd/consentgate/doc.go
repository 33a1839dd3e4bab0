// Command consentgate is the consent-aware tracking proxy. It holds no logic: it parses
// flags, loads the config, wires the proxy and handles signals.
package main
