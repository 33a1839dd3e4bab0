package enum

import (
	"slices"
	"testing"
)

type color uint8

const (
	red color = iota
	green
	numColors
)

func TestNames(t *testing.T) {
	n := New("color", numColors, "red", "green")
	for _, c := range []struct {
		v    color
		name string
	}{{red, "red"}, {green, "green"}, {numColors, "color(2)"}, {200, "color(200)"}} {
		if got := n.String(c.v); got != c.name {
			t.Errorf("String(%d) = %q, want %q", c.v, got, c.name)
		}
	}
	if v, ok := n.Parse("green"); !ok || v != green {
		t.Errorf("Parse(green) = %d, %v", v, ok)
	}
	if _, ok := n.Parse("blue"); ok {
		t.Error("Parse(blue) ok")
	}
	if !slices.Equal(n.List(), []string{"red", "green"}) {
		t.Errorf("List = %q", n.List())
	}
	defer func() {
		if recover() == nil {
			t.Error("New with too few names did not panic")
		}
	}()
	New("color", numColors, "red")
}

func BenchmarkString(b *testing.B) {
	b.ReportAllocs()
	n := New("color", numColors, "red", "green")
	for i := 0; i < b.N; i++ {
		_ = n.String(green)
	}
}
