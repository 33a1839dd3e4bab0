package consent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/consentgate/consentgate/consent/tcf"
)

// MaxWriteBody is the largest consent API body ParseWrite accepts. A real body is under
// 100 bytes; the limit only stops a client from making us parse megabytes.
const MaxWriteBody = 16 << 10

const writeExample = `{"purposes":{"statistics":true,"marketing":false}}`

// Write is a parsed consent API body.
type Write struct {
	Purposes Purposes
	// TCF is the IAB TC string the site's CMP produced, stored with the state and read
	// by hits like a euconsent-v2 cookie. It has been checked to decode.
	TCF string
}

// ParseWrite parses a consent API body such as
//
//	{"purposes":{"statistics":true,"marketing":false,"preferences":true}}
//	{"purposes":{"statistics":true},"tcf":"CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"}
//	{"tcf":"CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"}
//
// true is granted, false denied, and an absent purpose unset. It is strict, because a
// body we half-understand would store a consent the visitor did not give: every error
// is a sentence a web developer can act on, and it is returned before anything is
// written. A "tcf" string that does not decode is refused, not stored as no consent.
func ParseWrite(body []byte) (Write, error) {
	w, err := parseWrite(body)
	if err != nil {
		return Write{}, err // never half a consent
	}
	return w, nil
}

func parseWrite(body []byte) (Write, error) {
	var w Write
	var p Purposes
	if len(body) > MaxWriteBody {
		return w, fmt.Errorf("the body is %d bytes, over the limit of 16 KiB (%d bytes)", len(body), MaxWriteBody)
	}
	if len(skipJSONSpace(body)) == 0 {
		return w, fmt.Errorf("the body is empty: send a JSON object such as %s", writeExample)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a huge number is a wrong type to report, not a float overflow
	tok, err := dec.Token()
	if err != nil {
		return w, syntaxError(err)
	}
	if tok != json.Delim('{') {
		return w, fmt.Errorf("the body must be a JSON object such as %s, not %s", writeExample, describe(tok))
	}
	seen, seenTCF := false, false
	for dec.More() {
		tok, err = dec.Token()
		if err != nil {
			return w, syntaxError(err)
		}
		key, _ := tok.(string) // the decoder only yields strings in key position
		switch key {
		case "purposes":
			if seen {
				return w, errors.New(`"purposes" is given twice: send it once`)
			}
			seen = true
			if p, err = parsePurposes(dec); err != nil {
				return w, err
			}
		case "tcf":
			if seenTCF {
				return w, errors.New(`"tcf" is given twice: send it once`)
			}
			seenTCF = true
			if w.TCF, err = parseTCF(dec); err != nil {
				return w, err
			}
		default:
			return w, fmt.Errorf(`unknown key %s: the body has the keys "purposes" and "tcf", as in %s`, quoteShort(key), writeExample)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return w, syntaxError(err)
	}
	if !seen && !seenTCF {
		return w, fmt.Errorf(`missing "purposes": send a body such as %s`, writeExample)
	}
	if off := dec.InputOffset(); len(skipJSONSpace(body[off:])) > 0 {
		return w, fmt.Errorf("unexpected data after the JSON object, which ends at byte %d: send a single object", off)
	}
	w.Purposes = p
	return w, nil
}

// maxTCF bounds a stored TC string: tcf.MaxLength, which hits' strings are held to too.
// Real ones are well under 1 KB; a few KB allow a long vendor range list without letting
// a client park 16 KiB per visitor.
const maxTCF = tcf.MaxLength

// parseTCF reads the value of "tcf": a TC string that must decode.
func parseTCF(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", syntaxError(err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf(`"tcf" must be a TC string (the euconsent-v2 value), not %s`, describe(tok))
	}
	if len(s) > maxTCF {
		return "", fmt.Errorf(`"tcf" is %d bytes, over the limit of %d`, len(s), maxTCF)
	}
	if _, err := tcf.Parse(s); err != nil {
		return "", fmt.Errorf(`"tcf" is not a valid TC string: %w`, err)
	}
	return s, nil
}

// parsePurposes reads the value of "purposes", the decoder standing just before it.
func parsePurposes(dec *json.Decoder) (Purposes, error) {
	var p Purposes
	tok, err := dec.Token()
	if err != nil {
		return p, syntaxError(err)
	}
	if tok != json.Delim('{') {
		return p, fmt.Errorf(`"purposes" must be an object such as {"statistics":true}, not %s`, describe(tok))
	}
	var seen [NumPurposes]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return p, syntaxError(err)
		}
		name, _ := tok.(string)
		pu, ok := ParsePurpose(name)
		if !ok {
			return p, fmt.Errorf("unknown purpose %s: expected one of %s", quoteShort(name), strings.Join(PurposeNames(), ", "))
		}
		if seen[pu] {
			return p, fmt.Errorf("purpose %q is given twice: send it once", name)
		}
		seen[pu] = true
		if tok, err = dec.Token(); err != nil {
			return p, syntaxError(err)
		}
		switch tok {
		case true:
			p[pu] = Granted
		case false:
			p[pu] = Denied
		default:
			return p, fmt.Errorf("purpose %q must be true or false, not %s", name, describe(tok))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return p, syntaxError(err)
	}
	return p, nil
}

// syntaxError turns a decoder error into a sentence. It leaves out the decoder's offset,
// which Token counts from the start of the current value, not of the body; the message
// names the offending character instead.
func syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the body is not valid JSON: it ends before the object is closed")
	}
	return fmt.Errorf("the body is not valid JSON: %w", err)
}

// describe names the kind of a JSON token for an error message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%t", v)
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	}
	return fmt.Sprintf("%T", tok)
}

// quoteShort quotes a name from the body for an error message, cut short so that a
// 16 KiB key does not become a 16 KiB error.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// skipJSONSpace drops leading JSON whitespace (not Unicode spaces, which JSON rejects).
func skipJSONSpace(b []byte) []byte {
	return bytes.TrimLeft(b, " \t\r\n")
}

// stateJSON is the JSON view of a State, shared by the public and admin consent APIs.
type stateJSON struct {
	ID       string       `json:"id,omitempty"`
	Purposes purposesJSON `json:"purposes"`
	Source   string       `json:"source"`
	Version  int64        `json:"version"`
	TCF      string       `json:"tcf,omitempty"`
	Created  string       `json:"created"`
	Updated  string       `json:"updated"`
}

// purposesJSON is unexported so that Purposes itself keeps the default encoding that
// other code (a store's serialisation, say) may rely on.
type purposesJSON Purposes

func (p purposesJSON) MarshalJSON() ([]byte, error) {
	return appendStatuses(nil, p), nil
}

// MarshalState returns the JSON view of st:
//
//	{"id":"…","purposes":{"necessary":"unset",…},"source":"api","version":3,"created":"…","updated":"…"}
//
// with every purpose listed and times in RFC 3339, UTC. "id" is left out when id is "",
// so that the public API does not echo the cookie.
func MarshalState(id string, st State) []byte {
	b, err := json.Marshal(stateJSON{
		ID:       id,
		Purposes: purposesJSON(st.Purposes),
		Source:   st.Source,
		Version:  st.Version,
		TCF:      st.TCF,
		Created:  st.Created.UTC().Format(time.RFC3339),
		Updated:  st.Updated.UTC().Format(time.RFC3339),
	})
	if err != nil {
		// Only strings, an int and a marshaller that cannot fail: this is a bug.
		panic(fmt.Sprintf("consent: MarshalState: %v", err))
	}
	return b
}

// MarshalJSON returns the statuses of e as an object in purpose order, e.g.
// {"necessary":"granted","preferences":"unset",…}; the causes are left to the caller,
// which words them as reasons.
func (e Effective) MarshalJSON() ([]byte, error) {
	return appendStatuses(nil, e.Status), nil
}

// appendStatuses writes statuses as a JSON object. Names and statuses are fixed ASCII
// words, so nothing needs escaping.
func appendStatuses(dst []byte, s [NumPurposes]Status) []byte {
	dst = append(dst, '{')
	for p := Purpose(0); p < NumPurposes; p++ {
		if p > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, p.String()...)
		dst = append(dst, `":"`...)
		dst = append(dst, s[p].String()...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}
