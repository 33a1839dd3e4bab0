package load

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/consentgate/consentgate/config"
	"go.yaml.in/yaml/v3"
)

// markSecret records node as the value of path when path is a secret, so that problems
// about the same node reached by an alias do not quote it; it reports whether it was.
func (d *decoder) markSecret(path string, node *yaml.Node) bool {
	if !config.IsSecret(path) {
		return false
	}
	if d.secrets == nil {
		d.secrets = map[*yaml.Node]string{}
	}
	d.secrets[node] = path
	return true
}

// redactSecrets rewrites the problems about a node that is also a secret's value: with
// "password: &p ..." and "db: *p", the db error would quote the password.
func (d *decoder) redactSecrets() {
	for i, n := range d.about {
		if key, ok := d.secrets[n]; ok {
			d.problems[i].Msg = fmt.Sprintf("bad value, not repeated because it is also %s (through a YAML anchor and alias); give %s a value of its own", key, key)
		}
	}
}

// sortProblems orders by line and column (then message), environment problems last by
// variable, and drops repeats (a value reached through several aliases is reported once).
func sortProblems(ps []config.Problem) []config.Problem {
	slices.SortFunc(ps, func(a, b config.Problem) int {
		if (a.Pos.Line == 0) != (b.Pos.Line == 0) {
			if a.Pos.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.Compact(ps)
}
