// How a state and a receipt are written in Redis: hash and stream fields (REDIS.md).

package consent

import (
	"fmt"
	"strconv"
	"time"
)

// Hash fields of a state and stream fields of a receipt (REDIS.md).
const (
	fieldSource  = "source"
	fieldVersion = "version"
	fieldCreated = "created"
	fieldUpdated = "updated"
	fieldAction  = "action"
	fieldUAHash  = "ua_hash"
	fieldTime    = "time"
	fieldTCF     = "tcf"
)

func parseState(m map[string]string) (State, error) {
	var st State
	for p := Purpose(0); p < NumPurposes; p++ {
		v, ok := m[p.String()]
		if !ok {
			continue
		}
		s, ok := ParseStatus(v)
		if !ok {
			return State{}, fmt.Errorf("state field %q is not granted, denied or unset", p.String())
		}
		st.Purposes[p] = s
	}
	st.Source, st.TCF = m[fieldSource], m[fieldTCF]
	var err error
	if st.Version, err = intField(m, fieldVersion); err != nil {
		return State{}, err
	}
	if st.Created, err = timeField(m, fieldCreated); err != nil {
		return State{}, err
	}
	if st.Updated, err = timeField(m, fieldUpdated); err != nil {
		return State{}, err
	}
	return st, nil
}

func parseReceipt(v map[string]any) (Receipt, error) {
	m := make(map[string]string, len(v))
	for k, x := range v {
		s, ok := x.(string)
		if !ok {
			return Receipt{}, fmt.Errorf("field %q is not a string", k)
		}
		m[k] = s
	}
	var rc Receipt
	switch a := m[fieldAction]; a {
	case ActionConsent, ActionWithdraw:
		rc.Action = a
	default:
		return Receipt{}, fmt.Errorf("field %q is not %q or %q", fieldAction, ActionConsent, ActionWithdraw)
	}
	for p := Purpose(0); p < NumPurposes; p++ {
		if v, ok := m[p.String()]; ok {
			s, ok := ParseStatus(v)
			if !ok {
				return Receipt{}, fmt.Errorf("field %q is not granted, denied or unset", p.String())
			}
			rc.Purposes[p] = s
		}
	}
	rc.Source, rc.UAHash, rc.TCF = m[fieldSource], m[fieldUAHash], m[fieldTCF]
	var err error
	if rc.Version, err = intField(m, fieldVersion); err != nil {
		return Receipt{}, err
	}
	if rc.Time, err = timeField(m, fieldTime); err != nil {
		return Receipt{}, err
	}
	return rc, nil
}

func intField(m map[string]string, name string) (int64, error) {
	v, ok := m[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %q is not an integer", name)
	}
	return n, nil
}

// timeField reads Unix milliseconds; absent is the zero time.
func timeField(m map[string]string, name string) (time.Time, error) {
	if _, ok := m[name]; !ok {
		return time.Time{}, nil
	}
	ms, err := intField(m, name)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}

func appendTime(dst []any, name string, t time.Time) []any {
	if t.IsZero() {
		return dst
	}
	return append(dst, name, t.UnixMilli())
}

func stateFields(st *State) []any {
	f := make([]any, 0, 2*(int(NumPurposes)+4))
	for p, s := range st.Purposes {
		if s != Unset { // absent is unset: a reader need not know a third word
			f = append(f, Purpose(p).String(), s.String())
		}
	}
	f = append(f, fieldSource, st.Source, fieldVersion, st.Version)
	if st.TCF != "" {
		f = append(f, fieldTCF, st.TCF)
	}
	f = appendTime(f, fieldCreated, st.Created)
	return appendTime(f, fieldUpdated, st.Updated)
}

func receiptFields(rc *Receipt) []any {
	f := make([]any, 0, 2*(int(NumPurposes)+5))
	f = append(f, fieldAction, rc.Action)
	for p, s := range rc.Purposes {
		if s != Unset {
			f = append(f, Purpose(p).String(), s.String())
		}
	}
	if rc.TCF != "" {
		f = append(f, fieldTCF, rc.TCF)
	}
	return append(f, fieldSource, rc.Source, fieldVersion, rc.Version,
		fieldUAHash, rc.UAHash, fieldTime, rc.Time.UnixMilli())
}
