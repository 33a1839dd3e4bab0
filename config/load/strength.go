package load

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Secrets (admin_token, anonymise.secret) must be unguessable: a guessed admin token
// reads and erases visitors' consent records, and a guessed anonymise.secret, with a
// day's salt read out of Redis, lets anyone test client IDs against that day's
// pseudonyms. Length alone does not say that: "change-me-to-a-long-random-string" is
// long. So a value is refused when it is a placeholder from this repository's docs or
// carries a placeholder's words, or when an estimate of its entropy is below
// minSecretBits. The estimate is the cheapest way to write the value as a sequence of
// guessable pieces (a minimal-entropy parse, the method of Dropbox's zxcvbn, with a
// much smaller dictionary): a dictionary word (also in l33t) costs about 11 bits, any
// other whole word of 3 to 15 letters between non-letters costs 13 (a pick from 8,000
// words: "correct-horse-battery-staple" is four picks and a separator, about 60 bits;
// not the letters of a hex string), a
// separator used before costs 1 bit, a year about 8, a run of one character or an ascending or descending sequence ("0123", "fedc") costs
// little more than its first character, a repeat of an earlier piece costs where it
// starts and its length, and any other character costs log2 of the alphabet the value
// draws from. Random values pass by a wide margin: `openssl rand -base64 32` estimates
// at about 200 bits and `openssl rand -hex 16` (the least a 16-character minimum
// allows with 64 bits) at about 80.

// minSecretBits is the least estimated entropy of a secret: beyond reach of an offline
// search (2^64 guesses) by anyone who learns a pseudonym or a request.
const minSecretBits = 64

// maxEstimated bounds the runes estimated: a value longer than this is judged on its
// start, which for a random value is already far above the bar.
const maxEstimated = 256

// knownPlaceholders are example values this repository's docs published, then and now.
var knownPlaceholders = []string{
	"change-me-to-a-long-random-string",
	"another-long-random-string",
	"replace-me-with-32-random-characters",
	"replace-me-with-another-32-chars",
	"REPLACE-ME-run-openssl-rand-base64-32",
	"REPLACE-ME-with-openssl-rand-base64-32",
}

// placeholderMarks are words that only a value meant to be replaced contains, compared
// on letters and digits only, lower-cased. Each has at least 5 letters, so a random
// base64 value holds one by chance with a probability below 1e-7.
var placeholderMarks = []string{
	"changeme", "replaceme", "replacethis", "placeholder", "yoursecret", "yourtoken",
	"mysecret", "example", "openssl", "generate", "insertsecret", "inserttoken", "fixme",
}

// commonWords are the words that make up guessable secrets: the vocabulary of
// placeholders and defaults, this product's names, and the most common passwords.
// Each costs wordBits however long it is.
var commonWords = []string{
	"change", "replace", "secret", "secrets", "token", "tokens", "admin", "administrator",
	"password", "passwd", "pass", "passphrase", "default", "test", "testing", "demo", "sample",
	"dev", "develop", "development", "prod", "production", "staging", "local", "localhost",
	"random", "string", "strings", "long", "short", "another", "other", "some", "value",
	"characters", "character", "chars", "char", "letters", "here", "this", "that", "with",
	"your", "mine", "key", "keys", "salt", "hash", "hmac", "api", "auth", "bearer", "access",
	"private", "public", "super", "very", "strong", "secure", "insecure", "safe", "unsafe",
	"consent", "consentgate", "gate", "anonymise", "anonymize", "anonymous", "tracking",
	"proxy", "analytics", "cookie", "redis", "server", "service", "config", "settings",
	"company", "site", "website", "web", "app", "application", "user", "users", "root", "guest",
	"login", "welcome", "hello", "world", "qwerty", "qwertz", "azerty", "asdf", "asdfgh",
	"zxcv", "letmein", "iloveyou", "love", "dragon", "monkey", "master", "shadow", "sunshine",
	"princess", "football", "baseball", "soccer", "superman", "batman", "trustno", "abc",
	"foo", "bar", "baz", "foobar", "lorem", "ipsum", "dolor", "todo", "temp", "tmp", "new",
	"old", "one", "two", "three", "four", "five", "the", "and", "for", "not", "use", "set",
	"get", "put", "make", "made", "real", "true", "false", "null", "none", "empty", "blank",
	"please", "must", "should", "min", "max", "minimum", "maximum", "openssl", "rand",
	"base", "hex", "uuid", "guid", "january", "february", "march", "april", "june", "july",
	"august", "september", "october", "november", "december", "monday", "friday", "summer",
	"winter", "spring", "autumn", "google", "facebook", "meta", "matomo", "plausible",
}

// wordBits is the cost of one dictionary word: a pick from about 2,000 common words,
// more than commonWords holds, since an attacker's list is longer. chunkBits is that of
// any other word standing alone between non-letters, which a passphrase is made of: a
// pick from about 8,000 words. A longer run of letters is not taken for a word.
const (
	wordBits     = 11
	chunkBits    = 13
	maxChunkWord = 15
)

var wordSet = func() map[string]bool {
	m := make(map[string]bool, len(commonWords))
	for _, w := range commonWords {
		m[w] = true
	}
	return m
}()

// longestWord bounds the dictionary lookups per position.
var longestWord = func() int {
	n := 0
	for _, w := range commonWords {
		n = max(n, len(w))
	}
	return n
}()

// unleet maps the usual character substitutions back to letters.
func unleet(r rune) rune {
	switch r {
	case '0':
		return 'o'
	case '1', '!':
		return 'i'
	case '3':
		return 'e'
	case '4', '@':
		return 'a'
	case '5', '$':
		return 's'
	case '7':
		return 't'
	}
	return unicode.ToLower(r)
}

// charClass sizes: the alphabets a value may draw from.
func charClass(r rune) (class, size int) {
	switch {
	case 'a' <= r && r <= 'z':
		return 0, 26
	case 'A' <= r && r <= 'Z':
		return 1, 26
	case '0' <= r && r <= '9':
		return 2, 10
	case r < utf8.RuneSelf:
		return 3, 33
	}
	return 4, 100
}

// estimateBits estimates the entropy of s in bits (see the comment at the top).
func estimateBits(s string) float64 {
	rs := []rune(s)
	if len(rs) > maxEstimated {
		rs = rs[:maxEstimated]
	}
	n := len(rs)
	if n == 0 {
		return 0
	}
	var seen [5]bool
	alphabet := 0
	for _, r := range rs {
		c, size := charClass(r)
		if !seen[c] {
			seen[c], alphabet = true, alphabet+size
		}
	}
	perChar := math.Log2(float64(alphabet))
	lower := make([]rune, n)
	for i, r := range rs {
		lower[i] = unleet(r)
	}
	// best[i] is the cheapest parse of rs[:i].
	best := make([]float64, n+1)
	for i := 1; i <= n; i++ {
		best[i] = math.Inf(1)
	}
	for i := range n {
		if math.IsInf(best[i], 1) {
			continue
		}
		relax := func(end int, cost float64) {
			if c := best[i] + cost; c < best[end] {
				best[end] = c
			}
		}
		relax(i+1, perChar)
		// A separator used before ("-" between the words of a passphrase).
		if c, _ := charClass(rs[i]); c == 3 && strings.ContainsRune(string(rs[:i]), rs[i]) {
			relax(i+1, 1)
		}
		// A run of one character.
		j := i + 1
		for j < n && rs[j] == rs[i] {
			j++
		}
		for end := i + 3; end <= j; end++ {
			relax(end, perChar+math.Log2(float64(end-i)))
		}
		// An ascending or descending sequence.
		for _, step := range []rune{1, -1} {
			j := i + 1
			for j < n && rs[j]-rs[j-1] == step {
				j++
			}
			for end := i + 3; end <= j; end++ {
				relax(end, perChar+math.Log2(float64(end-i))+1)
			}
		}
		// A dictionary word, plain, capitalised or in l33t.
		for end := i + 3; end <= min(n, i+longestWord); end++ {
			if wordSet[string(lower[i:end])] {
				cost := float64(wordBits)
				if string(lower[i:end]) != strings.ToLower(string(rs[i:end])) {
					cost++ // l33t
				}
				if string(rs[i:end]) != strings.ToLower(string(rs[i:end])) {
					cost++ // capitals
				}
				relax(end, cost)
			}
		}
		// A year, 1900 to 2099.
		if i+4 <= n && (string(rs[i:i+2]) == "19" || string(rs[i:i+2]) == "20") && isDigits(rs[i+2:i+4]) {
			relax(i+4, math.Log2(200))
		}
		// A whole word between non-letters, lower case, Capitalised or in capitals.
		if unicode.IsLetter(rs[i]) && (i == 0 || !unicode.IsLetter(rs[i-1])) {
			j := i
			for j < n && unicode.IsLetter(rs[j]) {
				j++
			}
			if w := string(rs[i:j]); j-i >= 3 && j-i <= maxChunkWord && wordLike(w) {
				switch low := strings.ToLower(w); {
				case w == low:
					relax(j, chunkBits)
				case w == strings.ToUpper(w) || w[1:] == low[1:]:
					relax(j, chunkBits+1)
				}
			}
		}
		// A repeat of an earlier piece: where it starts and how long it is.
		for from := 0; from < i; from++ {
			l := 0
			for i+l < n && rs[from+l] == rs[i+l] {
				l++
			}
			for end := i + 3; end <= i+l; end++ {
				relax(end, math.Log2(float64(i))+math.Log2(float64(end-i)))
			}
		}
	}
	return best[n]
}

func isDigits(rs []rune) bool {
	for _, r := range rs {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// wordLike reports whether a run of letters could be a word: it has a vowel, and a
// letter past 'f', so that the letters of a hex string ("dfcd", "bead") are not taken
// for words.
func wordLike(w string) bool {
	w = strings.ToLower(w)
	return strings.ContainsAny(w, "aeiouy") && strings.IndexFunc(w, func(r rune) bool { return r > 'f' }) >= 0
}

// checkSecretStrength refuses a placeholder or a guessable value. The message never
// repeats the value.
func checkSecretStrength(s, why string) error {
	for _, p := range knownPlaceholders {
		if strings.EqualFold(s, p) {
			return errors.New("is the example value from the documentation: replace it with a random one, e.g. `openssl rand -base64 32`")
		}
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	for _, m := range placeholderMarks {
		if strings.Contains(b.String(), m) {
			return errors.New("looks like a placeholder (words such as \"change me\", \"example\" or \"openssl\"): replace it with a random value, e.g. `openssl rand -base64 32`")
		}
	}
	if n := utf8.RuneCountInString(s); n < 16 {
		return fmt.Errorf("too short (%d characters): use at least 16, since %s", n, why)
	}
	if bits := estimateBits(s); bits < minSecretBits {
		return fmt.Errorf("too guessable: an estimated %.0f bits of entropy (words, repeats and sequences count little), want at least %d, since %s; use a random value, e.g. `openssl rand -base64 32`", bits, minSecretBits, why)
	}
	return nil
}
