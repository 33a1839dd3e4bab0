package enum

import "strconv"

// Names is the name table of enumeration T.
type Names[T ~uint8] struct {
	kind  string // what a value is called, for values out of range: "regime(7)"
	names []string
}

// New declares the names of T's values 0..num-1, in value order.
func New[T ~uint8](kind string, num T, names ...string) Names[T] {
	if len(names) != int(num) {
		panic("enum: " + kind + ": " + strconv.Itoa(len(names)) + " names for " + strconv.Itoa(int(num)) + " values")
	}
	return Names[T]{kind: kind, names: names}
}

// String is the name of v, or kind(v) for a value out of range.
func (n Names[T]) String(v T) string {
	if int(v) < len(n.names) {
		return n.names[v]
	}
	return n.kind + "(" + strconv.Itoa(int(v)) + ")"
}

// Parse maps a name to its value.
func (n Names[T]) Parse(s string) (T, bool) {
	for i, name := range n.names {
		if name == s {
			return T(i), true
		}
	}
	return 0, false
}

// List is the names in value order. It is shared: callers must not modify it.
func (n Names[T]) List() []string { return n.names }
