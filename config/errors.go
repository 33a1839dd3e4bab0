package config

import (
	"strings"
)

// Problem is one thing wrong with a configuration. Pos is the key or value at fault; for a
// CONSENTGATE_* environment variable it is Pos{File: "$CONSENTGATE_X"} with no line.
type Problem struct {
	Pos Pos
	Msg string
}

func (p Problem) String() string {
	switch {
	case p.Pos.Line > 0:
		return p.Pos.File + ":" + itoa(p.Pos.Line) + ":" + itoa(p.Pos.Col) + ": " + p.Msg
	case p.Pos.File != "":
		return p.Pos.File + ": " + p.Msg
	}
	return p.Msg
}

// Error lists every problem of a configuration, so an operator fixes them in one
// round instead of one restart per mistake.
type Error struct{ Problems []Problem }

// Error has one line per problem, "FILE:LINE:COL: message", by line and column; problems
// from the environment follow, as "$CONSENTGATE_X: message".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}
