package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// binaryFacts is what the real binary says about itself: its subcommands (from its usage)
// and each one's flags with their types (from `consentgate SUB -h`), so that a manifest
// naming a flag the binary does not have, or a value of the wrong type, fails here.
type binaryFacts struct {
	subcommands map[string]bool
	flags       map[string]map[string]string // subcommand → flag → type ("duration", "string", "" for bool)
}

var (
	factsOnce sync.Once
	facts     binaryFacts
	factsErr  error
)

func binFacts(t testing.TB) binaryFacts {
	t.Helper()
	bin := needTools(t).consentgate
	factsOnce.Do(func() { facts, factsErr = readFacts(bin) })
	if factsErr != nil {
		t.Fatal(factsErr)
	}
	return facts
}

var (
	usageLineRE = regexp.MustCompile(`^\s+consentgate ([a-z]+)\b`)
	flagLineRE  = regexp.MustCompile(`^\s+-([a-z0-9-]+)(?:\s+([a-z]+))?`)
)

func readFacts(bin string) (binaryFacts, error) {
	out, err := exec.Command(bin, "help").Output()
	if err != nil {
		return binaryFacts{}, fmt.Errorf("consentgate help: %v", err)
	}
	f := binaryFacts{subcommands: map[string]bool{}, flags: map[string]map[string]string{}}
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := usageLineRE.FindStringSubmatch(line); m != nil {
			f.subcommands[m[1]] = true
		}
	}
	if !f.subcommands["serve"] {
		return f, fmt.Errorf("consentgate help names no serve subcommand:\n%s", out)
	}
	for sub := range f.subcommands {
		cmd := exec.Command(bin, sub, "-h")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run() // -h exits 2 (flag.ErrHelp), or 0 for subcommands without flags
		flags := map[string]string{}
		for line := range strings.SplitSeq(stderr.String(), "\n") {
			if m := flagLineRE.FindStringSubmatch(line); m != nil {
				flags[m[1]] = m[2]
			}
		}
		f.flags[sub] = flags
	}
	if _, ok := f.flags["serve"]["config"]; !ok {
		return f, fmt.Errorf("consentgate serve -h lists no -config flag: %v", f.flags["serve"])
	}
	return f, nil
}

// parseArgs checks a container's args against the binary: the first is a subcommand, the
// rest its flags, each with a value of the flag's type. It returns the flags' values.
func (f binaryFacts) parseArgs(args []string) (sub string, values map[string]string, errs []string) {
	if len(args) == 0 {
		return "", nil, []string{"no args: the image's CMD would run, not a subcommand the manifests chose"}
	}
	sub = args[0]
	if !f.subcommands[sub] {
		return sub, nil, []string{fmt.Sprintf("args[0] %q is not a subcommand of the binary (%v)", sub, keys(f.subcommands))}
	}
	flags := f.flags[sub]
	values = map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			errs = append(errs, fmt.Sprintf("argument %q: consentgate %s takes flags only", a, sub))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		typ, ok := flags[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("flag %q: consentgate %s has no such flag (it has %v)", a, sub, keys(flags)))
			continue
		}
		if !hasValue && typ != "" {
			if i+1 >= len(args) {
				errs = append(errs, fmt.Sprintf("flag %q: no value", a))
				continue
			}
			i++
			value = args[i]
		}
		if typ == "duration" {
			if _, err := time.ParseDuration(value); err != nil {
				errs = append(errs, fmt.Sprintf("flag %q: %v", a, err))
			}
		}
		values[name] = value
	}
	return sub, values, errs
}

// running is the real binary started on a rendered pod's args, config and environment.
type running struct {
	cmd           *exec.Cmd
	public, admin string // host:port
}

// startBinary runs the binary as the pod would, on loopback ports of its own (the
// static checks compare the pod's ports with the config's), and waits for both
// listeners.
func startBinary(t testing.TB, args []string, env map[string]string) *running {
	t.Helper()
	cmd := exec.Command(needTools(t).consentgate, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "CONSENTGATE_LISTEN=127.0.0.1:0", "CONSENTGATE_ADMIN_LISTEN=127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	r := &running{cmd: cmd}
	lines := make(chan map[string]any, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	// A hang guard, not a timing: the binary logs both listeners as soon as they are
	// bound, or exits with its reason.
	deadline := time.After(60 * time.Second)
	for r.public == "" || r.admin == "" {
		select {
		case m, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("consentgate %v exited before listening:\n%s", args, stderr.String())
			}
			if m["msg"] == "listening" {
				if m["listener"] == "public" {
					r.public, _ = m["addr"].(string)
				} else {
					r.admin, _ = m["addr"].(string)
				}
			}
		case <-deadline:
			t.Fatalf("consentgate %v: no listening lines after 60s:\n%s", args, stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return r
}

// get fetches a path on one listener and returns the status and body.
func get(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Errorf("GET %s%s: %v", addr, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dockerfile is the final stage of deploy/Dockerfile: what a container of the image
// starts with before the pod spec adds to it.
type dockerfile struct {
	env        map[string]string
	entrypoint []string
	user       string
	expose     []string
}

func readDockerfile(t testing.TB) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	for line := range strings.SplitSeq(string(b), "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d = dockerfile{env: map[string]string{}} // a new stage
		case "ENV":
			k, v, ok := strings.Cut(rest, "=")
			if !ok {
				t.Fatalf("Dockerfile: ENV %q: write ENV KEY=value", rest)
			}
			d.env[k] = strings.Trim(v, `"`)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT %s: want the exec form: %v", rest, err)
			}
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = append(d.expose, strings.Fields(rest)...)
		}
	}
	return d
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
