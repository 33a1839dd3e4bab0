package corpus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Hit is one real-world-shaped hit of the leak corpus (rules/testdata/hits): the
// unit leak test and the proxy's end-to-end leak test send it and check that none of
// its Identifiers values reaches the upstream when the hit is anonymised.
type Hit struct {
	Name        string // file name without extension
	Endpoint    string // catalogue endpoint name
	Method      string
	Path        string // proxy path to send it to, e.g. "/g/collect"
	Query       string // raw query, without '?'
	Body        string
	ContentType string
	// Identifiers are the identifying values the hit carries (client ID, user ID, IP,
	// click IDs, hashed email, fbp, ...). None may survive anonymisation, raw or encoded.
	Identifiers []string
	// Kept are values that anonymisation must keep (event name, tag ID, campaign), so a
	// leak test cannot pass by a rewrite that drops everything.
	Kept []string
	// Source names the public documentation the hit's shape comes from.
	Source string
}

// corpusFile is the on-disk form: JSON, with the body either as a string or, for JSON
// endpoints, as a JSON value in body_json (compacted into Body).
type corpusFile struct {
	Endpoint    string          `json:"endpoint"`
	Method      string          `json:"method"`
	Path        string          `json:"path"`
	Query       string          `json:"query"`
	Body        string          `json:"body"`
	BodyJSON    json.RawMessage `json:"body_json"`
	ContentType string          `json:"content_type"`
	Identifiers []string        `json:"identifiers"`
	Kept        []string        `json:"kept"`
	Source      string          `json:"source"`
}

// Load reads every *.json hit in dir, in file name order.
func Load(dir string) ([]Hit, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("rules: corpus %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("rules: corpus %s: no *.json hits", dir)
	}
	sort.Strings(files)
	hits := make([]Hit, 0, len(files))
	for _, f := range files {
		h, err := loadHit(f)
		if err != nil {
			return nil, fmt.Errorf("rules: corpus %s: %w", f, err)
		}
		hits = append(hits, h)
	}
	return hits, nil
}

func loadHit(file string) (Hit, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Hit{}, err
	}
	var cf corpusFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return Hit{}, err
	}
	h := Hit{
		Name:     strings.TrimSuffix(filepath.Base(file), ".json"),
		Endpoint: cf.Endpoint, Method: cf.Method, Path: cf.Path, Query: cf.Query, Body: cf.Body,
		ContentType: cf.ContentType, Identifiers: cf.Identifiers, Kept: cf.Kept, Source: cf.Source,
	}
	if len(cf.BodyJSON) > 0 {
		if h.Body != "" {
			return h, errors.New("both body and body_json")
		}
		var b bytes.Buffer
		if err := json.Compact(&b, cf.BodyJSON); err != nil {
			return h, fmt.Errorf("body_json: %w", err)
		}
		h.Body = b.String()
	}
	switch {
	case h.Endpoint == "" || h.Method == "" || h.Path == "":
		return h, errors.New("endpoint, method and path are required")
	case len(h.Identifiers) == 0:
		return h, errors.New("no identifiers: a corpus hit exists to prove they do not leak")
	case h.Source == "":
		return h, errors.New("no source")
	}
	for _, id := range h.Identifiers {
		if len(id) < 6 {
			// Short values would match by chance inside hashes and kept text.
			return h, fmt.Errorf("identifier %q is too short to test for", id)
		}
	}
	return h, nil
}
