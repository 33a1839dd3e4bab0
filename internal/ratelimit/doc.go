// Package ratelimit keeps token buckets for many clients in a table of fixed size, so
// that a flood from many addresses costs the limiter no memory beyond what it was given.
//
// Each bucket is one number, its theoretical arrival time (GCRA, the "generic cell rate
// algorithm" of ATM networks): a bucket whose time has passed is full and carries no
// information, so evicting it loses nothing. The table is sharded by a seeded hash of
// the key and each shard holds sets of four slots; a new key takes a free slot of its
// set, else a full bucket's, else the one closest to full. A client in debt is thus the
// last to be forgotten, and one that would reset its own bucket by flooding the table must
// push four bigger debtors out of its set, which the seed keeps it from aiming at.
//
// golang.org/x/time/rate keeps one Limiter per key, which needs a map that grows with the
// number of clients (or an LRU in front of it); this table is the bound.
package ratelimit
