// Package otlptest is a minimal OTLP/HTTP collector for tests: a real HTTP server on
// 127.0.0.1 that decodes what the exporters send (protobuf, gzip or not) the way a real
// collector must, so a test sees the bytes that would leave the process.
package otlptest
