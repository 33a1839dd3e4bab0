// Package enum gives the product's enumerations one pattern. An enumeration is a uint8 type
// whose values run densely from 0 (they index fixed-size arrays on the hit path) up to a
// NumX count, with one table of names declared by New; its String, Parse and list of names
// all come from that table, so they cannot disagree, and a table of the wrong length fails
// at start-up instead of naming values wrongly.
package enum
