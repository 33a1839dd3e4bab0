// JSON bodies: the allow-list applied to a JSON object by dotted path, then SetJSON
// and the IP field. Kept separate from the pair filtering because JSON values are
// typed and nested: rules apply to scalars only, and an object or array survives only
// through allowed children.
//
// The body is walked in place with internal/jsonscan and the output built straight
// into the caller's buffer, with no decoded tree in between, so a JSON hit allocates
// nothing. The output is what encoding/json wrote when this path decoded into
// map[string]any and encoded that back (and the goldens hold it to that): members
// sorted by name, strings re-escaped as encoding/json does, numbers verbatim, no
// whitespace, a repeated name keeping its last value. Because only allow-listed and
// set names can appear, the sorted order of each object is computed at load.

package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/consentgate/consentgate/internal/jsonscan"
)

// Limits on JSON bodies: the proxy caps bodies too (max_body_size), but the anonymiser
// must stay safe on its own, e.g. when fuzzed.
const (
	maxJSONBody  = 1 << 20
	maxJSONDepth = 32
)

var (
	errBadJSON   = errors.New("body is not a JSON object")
	errJSONDepth = fmt.Errorf("JSON body nested deeper than %d", maxJSONDepth)
	errJSONSize  = fmt.Errorf("JSON body larger than %d bytes", maxJSONBody)
)

// jsonField is one allowed member of an object, in output order.
type jsonField struct {
	name string
	key  []byte // `"name":` as encoding/json writes it
	node *jsonNode
}

// setKind says what the rewrite puts at a SetJSON path.
type setKind uint8

const (
	setObject setKind = iota // an object holding set members
	setValue                 // a SetJSON scalar
	setIP                    // the IP field: the hit's IP, or nothing
)

// setNode is the tree of what SetJSON and the IP field write over the filtered body.
type setNode struct {
	kind  setKind
	value []byte // setValue: the literal as encoding/json writes it
	// keepInput (setObject): the object is the hit's filtered object at this path, if
	// it has one, with the set members over it; otherwise it starts empty. It is false
	// where a set scalar was replaced by an object, as assigning into a map did.
	keepInput bool
	children  map[string]*setNode
	order     []setField // children sorted by name
}

type setField struct {
	name string
	key  []byte
	node *setNode
}

// add records that path is set to the JSON literal lit. Paths apply in order, as map
// assignments did: a later path through a set scalar replaces it by an object, a later
// scalar replaces whatever was at its path.
func (s *setNode) add(path []string, lit []byte) {
	for _, k := range path[:len(path)-1] {
		c := s.children[k]
		if c == nil || c.kind != setObject {
			c = &setNode{kind: setObject, keepInput: c == nil && s.keepInput}
			s.child(k, c)
		}
		s = c
	}
	s.child(path[len(path)-1], &setNode{kind: setValue, value: lit})
}

func (s *setNode) child(name string, c *setNode) {
	if s.children == nil {
		s.children = map[string]*setNode{}
	}
	s.children[name] = c
}

// finish sorts the set tree for output.
func (s *setNode) finish() error {
	s.order = s.order[:0]
	for name, c := range s.children {
		key, err := encodeJSONKey(name)
		if err != nil {
			return err
		}
		s.order = append(s.order, setField{name, key, c})
		if err := c.finish(); err != nil {
			return err
		}
	}
	sort.Slice(s.order, func(i, j int) bool { return s.order[i].name < s.order[j].name })
	return nil
}

// finish sorts each object's allowed members for output and counts, in slots, the most
// members that one chain of nested objects can hold: the writer's working space.
func (n *jsonNode) finish() (slots int, err error) {
	n.order, n.index = n.order[:0], make(map[string]int, len(n.fields))
	deepest := 0
	for name, c := range n.fields {
		key, err := encodeJSONKey(name)
		if err != nil {
			return 0, err
		}
		n.order = append(n.order, jsonField{name, key, c})
		d, err := c.finish()
		if err != nil {
			return 0, err
		}
		deepest = max(deepest, d)
	}
	sort.Slice(n.order, func(i, j int) bool { return n.order[i].name < n.order[j].name })
	n.pages = n.pages[:0]
	for i, f := range n.order {
		n.index[f.name] = i
		if v := f.node.value; v != nil && v.Kind == KindURL && v.Role == RolePage {
			n.pages = append(n.pages, i)
		}
	}
	if n.elem != nil {
		d, err := n.elem.finish()
		if err != nil {
			return 0, err
		}
		deepest = max(deepest, d)
	}
	return len(n.order) + deepest, nil
}

// encodeJSONLiteral writes v as the anonymiser's output has always written it:
// encoding/json without HTML escaping.
func encodeJSONLiteral(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode %v: %w", v, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

func encodeJSONKey(name string) ([]byte, error) {
	k, err := encodeJSONLiteral(name)
	return append(k, ':'), err
}

// jsonSlot holds, while an object is written, the last value the hit gave one of its
// allowed members.
type jsonSlot struct {
	val  []byte // nil: the hit has no such member
	kind jsonscan.Kind
}

// jsonSlotsOnStack covers every built-in allow-list (GA4 MP needs 22); a config that
// allows more spills to the heap for that hit.
const jsonSlotsOnStack = 64

// jsonWriter carries one hit's state through the walk. Its buffers live on
// anonymiseJSON's stack, which holds only while nothing is ever stored back through a
// pointer to it (escape analysis sends such stores to the heap): so scratch is only
// read, a value longer than it grows onto the heap for that value alone, and the slot
// space is handed down as a parameter. It holds no pointer to the Anonymiser either:
// escape analysis does not tell fields apart.
type jsonWriter struct {
	ip      string
	scratch []byte    // decoded strings, cleaned URLs, hashes
	st      *hitState // what was removed; the page host a referrer is judged against
	keyBuf  [maxNameLen]byte
}

// count records what became of a value of kind v and reports whether it was kept.
func (w *jsonWriter) count(v *Value, verd verdict) bool {
	if verd == misfit {
		w.st.removed[v.Kind]++
	}
	return verd == keep
}

// anonymiseJSON appends to dst the JSON body reduced to the allow-listed paths, with
// SetJSON and the IP field applied. An empty body stays empty. scratch is working
// space, as in filterPairs.
func (a *Anonymiser) anonymiseJSON(dst, body []byte, ip string, scratch []byte, st *hitState) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return dst, nil
	}
	if len(body) > maxJSONBody {
		return dst, errJSONSize
	}
	i := jsonscan.SkipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return dst, errBadJSON
	}
	var stack [jsonSlotsOnStack]jsonSlot
	slots := stack[:]
	if a.jsonSlots > len(slots) {
		slots = make([]jsonSlot, a.jsonSlots)
	}
	w := jsonWriter{ip: ip, scratch: scratch, st: st}
	base := len(dst)
	// The root walk validates the whole body before anything is written.
	out, _, end, err := a.jsonObject(&w, slots, dst, a.json, body[i:], a.set)
	switch {
	case errors.Is(err, jsonscan.ErrDepth):
		return dst[:base], errJSONDepth
	case err != nil:
		return dst[:base], fmt.Errorf("%w: %w", errBadJSON, err)
	case jsonscan.SkipSpace(body, i+end) != len(body):
		return dst[:base], fmt.Errorf("%w: data after the object", errBadJSON)
	}
	return out, nil
}

// jsonObject writes the object obj (nil: the hit has none here) filtered by n (nil:
// nothing of the hit's is kept) with the set members of s (nil: none) over it. It
// reports whether it wrote any member and where obj ended. Before writing, it walks
// all of obj, which validates it. free is slot space for this object and those inside
// it.
func (a *Anonymiser) jsonObject(w *jsonWriter, free []jsonSlot, dst []byte, n *jsonNode, obj []byte, s *setNode) ([]byte, bool, int, error) {
	var order []jsonField
	if n != nil {
		order = n.order
	}
	if len(free) < len(order) { // only if jsonSlots was miscounted
		free = make([]jsonSlot, len(order))
	}
	slots, free := free[:len(order)], free[len(order):]
	clear(slots)
	end := 0
	if obj != nil {
		it := jsonscan.Members(obj, 0, maxJSONDepth)
		for it.Next() {
			if len(order) == 0 {
				continue
			}
			if i, ok := w.lookup(n, it.Key()); ok {
				slots[i] = jsonSlot{it.Value(), it.Kind()}
			}
		}
		if err := it.Err(); err != nil {
			return dst, false, 0, err
		}
		end = it.End()
	}
	var sorder []setField
	if s != nil {
		sorder = s.order
	}
	dst = append(dst, '{')
	start := len(dst)
	for i, j := 0, 0; i < len(order) || j < len(sorder); {
		var f *jsonField
		var sf *setField
		var slot jsonSlot
		switch {
		case j == len(sorder) || i < len(order) && order[i].name < sorder[j].name:
			f, slot = &order[i], slots[i]
			i++
		case i == len(order) || sorder[j].name < order[i].name:
			sf = &sorder[j]
			j++
		default: // set over a member the hit may have: the set decides
			f, slot, sf = &order[i], slots[i], &sorder[j]
			i, j = i+1, j+1
		}
		if sf == nil && slot.val == nil {
			continue
		}
		mark := len(dst)
		if len(dst) > start {
			dst = append(dst, ',')
		}
		var ok bool
		var err error
		if sf != nil {
			dst = append(dst, sf.key...)
			dst, ok, err = a.jsonSet(w, free, dst, sf.node, f, slot)
		} else {
			dst = append(dst, f.key...)
			if v := f.node.value; v != nil && v.Kind == KindURL && v.Role == RoleReferrer {
				jsonPageHost(w, n, slots)
			}
			dst, ok, err = a.jsonValue(w, free, dst, f.node, slot.val, slot.kind)
		}
		if err != nil {
			return dst, false, 0, err
		}
		if !ok {
			dst = dst[:mark]
		}
	}
	wrote := len(dst) > start
	return append(dst, '}'), wrote, end, nil
}

// lookup finds the allowed member that the raw (escaped) name decodes to.
func (w *jsonWriter) lookup(n *jsonNode, raw []byte) (int, bool) {
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	name := raw
	if !plain {
		// A decoded name longer than keyBuf grows onto the heap: no allowed name is
		// that long, but it must still be compared right.
		name = jsonscan.Unescape(w.keyBuf[:0], raw)
	}
	i, ok := n.index[string(name)]
	return i, ok
}

// jsonSet writes what s puts at a member; f and slot are the hit's member of that name,
// if it is allowed.
func (a *Anonymiser) jsonSet(w *jsonWriter, free []jsonSlot, dst []byte, s *setNode, f *jsonField, slot jsonSlot) ([]byte, bool, error) {
	switch s.kind {
	case setValue:
		return append(dst, s.value...), true, nil
	case setIP:
		if w.ip == "" {
			return dst, false, nil
		}
		return jsonscan.AppendString(dst, w.ip), true, nil
	}
	var n *jsonNode
	var in []byte
	if s.keepInput && f != nil && slot.kind == jsonscan.Object {
		n, in = f.node, slot.val
	}
	dst, _, _, err := a.jsonObject(w, free, dst, n, in, s)
	return dst, true, err
}

// jsonPageHost records, for a referrer about to be written, the host of the page URL
// among its siblings (MP's page_location next to page_referrer, TikTok's page.url next
// to page.referrer); none, if the object has none.
func jsonPageHost(w *jsonWriter, n *jsonNode, slots []jsonSlot) {
	w.st.pageKnown, w.st.pageLen = true, 0
	for _, i := range n.pages {
		sl := slots[i]
		if sl.val == nil || sl.kind != jsonscan.String {
			continue
		}
		// Only the host is needed: decode the start of the URL.
		var ub [512]byte
		u, raw := ub[:0], sl.val[1:len(sl.val)-1]
		for len(raw) > 0 && len(u) < len(ub)-utf8.UTFMax {
			r, size := jsonscan.NextRune(raw)
			u, raw = utf8.AppendRune(u, r), raw[size:]
		}
		w.st.setPageHost(u)
		return
	}
}

// jsonValue writes the hit's value v of kind k filtered by n, and reports whether anything
// is left of it. Kinds apply to scalars only: an object or array survives only through
// allowed children, so allowing a path never keeps an unreviewed subtree wholesale (a
// container where a scalar is declared is a misfit).
func (a *Anonymiser) jsonValue(w *jsonWriter, free []jsonSlot, dst []byte, n *jsonNode, v []byte, k jsonscan.Kind) ([]byte, bool, error) {
	switch k {
	case jsonscan.Object:
		if len(n.order) == 0 {
			if n.value != nil {
				w.count(n.value, misfit)
			}
			return dst, false, nil
		}
		dst, ok, _, err := a.jsonObject(w, free, dst, n, v, nil)
		return dst, ok, err
	case jsonscan.Array:
		if n.elem == nil {
			if n.value != nil {
				w.count(n.value, misfit)
			}
			return dst, false, nil
		}
		dst = append(dst, '[')
		start := len(dst)
		it := jsonscan.Elements(v, 0, maxJSONDepth)
		for it.Next() {
			mark := len(dst)
			if len(dst) > start {
				dst = append(dst, ',')
			}
			var ok bool
			var err error
			if dst, ok, err = a.jsonValue(w, free, dst, n.elem, it.Value(), it.Kind()); err != nil {
				return dst, false, err
			}
			if !ok {
				dst = dst[:mark]
			}
		}
		if err := it.Err(); err != nil {
			return dst, false, err
		}
		if len(dst) == start {
			return dst[:start-1], false, nil
		}
		return append(dst, ']'), true, nil
	}
	spec := n.value
	if spec == nil {
		return dst, false, nil
	}
	var verd verdict
	switch k {
	case jsonscan.String:
		dst, verd = a.jsonString(w, dst, spec, v[1:len(v)-1])
	case jsonscan.Number:
		dst, verd = a.jsonNumber(w, dst, spec, v)
	case jsonscan.Bool:
		switch {
		case spec.Kind == KindEnum && checkEnum(v, spec.Enum):
			dst, verd = append(dst, v...), keep
		case spec.Kind == KindText && a.dropText:
			verd = omit
		case spec.Kind == KindText: // one bit of an operator's extension
			dst, verd = append(dst, v...), keep
		default:
			verd = misfit
		}
	case jsonscan.Null: // says nothing; an ID or a URL that is null has nothing to keep
		if spec.Kind == KindID || spec.Kind == KindURL {
			verd = omit
		} else {
			dst, verd = append(dst, v...), keep
		}
	}
	return dst, w.count(spec, verd), nil
}

// jsonString applies spec to the string whose raw (escaped) contents are raw. The
// value is decoded into w.scratch, whatever spec builds from it is appended after it,
// and the result is written as a JSON string.
func (a *Anonymiser) jsonString(w *jsonWriter, dst []byte, spec *Value, raw []byte) ([]byte, verdict) {
	s := jsonscan.Unescape(w.scratch[:0], raw)
	mid := len(s)
	var buf []byte
	verd := keep
	switch spec.Kind {
	case KindID:
		var ok bool
		if buf, ok = a.appendID(s, spec, s, w.st.key); !ok {
			return dst, misfit
		}
	case KindURL:
		buf, verd = a.appendCleanURL(s, s, spec.Role, w.st)
	case KindText:
		if a.dropText {
			return dst, omit
		}
		_, text, ok := a.appendText(s, s, spec.Max)
		if !ok {
			return dst, misfit
		}
		return jsonscan.AppendString(dst, text), keep
	default:
		buf, verd = a.appendSmall(s, s, spec)
	}
	if verd != keep {
		return dst, verd
	}
	return jsonscan.AppendString(dst, buf[mid:]), keep
}

// jsonNumber applies spec to a JSON number, kept as a number where its kind allows.
func (a *Anonymiser) jsonNumber(w *jsonWriter, dst []byte, spec *Value, v []byte) ([]byte, verdict) {
	ok := false
	switch spec.Kind {
	case KindEnum:
		ok = checkEnum(v, spec.Enum)
	case KindNumber:
		ok = checkNumber(v, spec.Max, spec.Decimal)
	case KindToken:
		ok = tokenOK(spec, v)
	case KindID: // hashed as its text, written as a string, as a string ID would be
		s := append(w.scratch[:0], v...)
		h, ok := a.appendID(s, spec, s, w.st.key)
		if !ok {
			return dst, misfit
		}
		return jsonscan.AppendString(dst, h[len(s):]), keep
	case KindScreen:
		n, ok := parseDim(v)
		if !ok {
			return dst, misfit
		}
		return strconv.AppendInt(dst, int64(bucketScreen(n)), 10), keep
	case KindText:
		if a.dropText {
			return dst, omit
		}
		ok = !looksIdentifying(v) // a phone number or customer number sent as a number
	}
	if !ok {
		return dst, misfit
	}
	return append(dst, v...), keep
}

// checkSetPath refuses a SetJSON path that is not dotted object fields.
func checkSetPath(name string) ([]string, error) {
	path := strings.Split(name, ".")
	for _, s := range path {
		if s == "" || strings.Contains(s, "[]") {
			return nil, fmt.Errorf("set_json: bad path %q: want dotted object fields", name)
		}
	}
	return path, nil
}
