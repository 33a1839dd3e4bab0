// Package jsonscan reads JSON text where it lies: it validates a value, walks the
// members of an object or the elements of an array as raw spans of the input, and
// decodes or encodes strings into buffers the caller owns. It allocates nothing, so
// the per-hit paths that read JSON (the anonymiser's JSON bodies and forward rewrite in
// rules, the Measurement Protocol consent object in consent/consentmode) stay free of
// garbage.
//
// It accepts exactly what encoding/json accepts (RFC 8259; bytes that are not UTF-8
// are allowed inside strings and decode to U+FFFD; containers nest at most MaxDepth
// deep) and decodes and encodes strings byte for byte as encoding/json does, so that a
// body rewritten through it matches one that went through json.Decoder and
// json.Encoder (with SetEscapeHTML(false)). The fuzz targets hold it to that.
//
// Why not a library. Three well-kept JSON readers were measured on a GA4 Measurement
// Protocol body and on a Cookiebot cookie (Go 1.26, versions as the module proxy
// serves them in late 2026):
//
//   - valyala/fastjson v1.6.10 (fasthttp's author): 0 allocs per call only with a
//     reused Parser, which is not safe for concurrent use and so needs a ParserPool
//     on the hit path (518 ns/op pooled, 466 ns/op for Validate alone); it builds a
//     tree with no byte spans of the input, so "copy every other member verbatim"
//     is out of reach; it keeps a lone "\ud800" escape as text where encoding/json
//     gives U+FFFD, and Validate took 100,000 levels of nesting.
//   - tidwall/gjson v1.20.4: allocates per call (GetBytes 1 alloc / 64 B; ParseBytes
//     with ForEach 1 alloc / 352 B), returns decoded strings as new strings rather than
//     into a caller's buffer, and ValidBytes took 100,000 levels of nesting.
//   - buger/jsonparser v1.6.1: 0 allocs, raw spans and Unescape into a caller's
//     buffer (705 ns/op), but it does not validate: ObjectEach accepted trailing
//     commas, leading zeros, raw control bytes, bad escapes and trailing garbage, so
//     a second pass with json.Valid (1,140 ns/op) would be needed; and after no
//     release from 2021 to 2026 it had seven in four days in July 2026.
//
// None of them reads the Cookiebot cookie, which is not JSON (see consent/cmp). What
// the callers need is small: a validating skip with a depth limit, an iterator giving
// raw spans, and encoding/json's string rules. Owning it keeps acceptance and string
// handling equal to encoding/json's, on which the anonymiser's byte-identical output
// depends, and the fuzz targets check exactly that.
package jsonscan
