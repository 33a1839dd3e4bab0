// Package otlpurl turns the endpoint an operator configures into the full URL an
// OTLP/HTTP exporter posts to. Metrics and traces share it so the two accept exactly the
// same spellings.
package otlpurl
