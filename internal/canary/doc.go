// Package canary makes the identifiers the generative leak test plants in hits (e-mail,
// phone, tokens, UUIDs, names, IPv4/IPv6 in their embedded forms, click IDs), writes them
// in the encodings a hit can carry them in, and finds them again in what an upstream
// received, in any of those encodings or in base64. It is test support.
package canary
