package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

// The peers are plain reverse proxies of the same routes to the same sink: what an
// SRE would otherwise put in front of the vendors. Each runs with one worker on the
// proxy's core, as consentgate runs with GOMAXPROCS=1 there, so the comparison is of
// one core's work per hit.

// peerRoutes are consentgate's catalogue routes as the peers match them: exact paths,
// and the two vendors whose path carries an ID by prefix. Anything else is a 404, so
// neither peer is an open proxy.
var (
	peerExactPaths  = []string{"/g/collect", "/mp/collect", "/tr", "/li/collect", "/api/v2/pixel", "/matomo.php", "/api/event"}
	peerPrefixPaths = []string{"/pagead/", "/action/"}
)

type peerConfig struct {
	Dir      string // all of the peer's files: config, pid, logs, temp
	Listen   string // 127.0.0.1:PORT
	SinkAddr string
	Exact    []string
	Prefix   []string
}

func newPeerConfig(dir, listen, sink string) peerConfig {
	return peerConfig{Dir: dir, Listen: listen, SinkAddr: sink, Exact: peerExactPaths, Prefix: peerPrefixPaths}
}

// nginxTemplate is bench/compare.md's config with one worker. keepalive_requests is
// raised on both sides: nginx's default of 1000 would close the generator's and the
// sink's connections every 1000 requests, which consentgate does not do, and the
// reconnects would be charged to nginx.
var nginxTemplate = template.Must(template.New("nginx").Parse(`# written by loadgen compare
worker_processes 1;
daemon off;
master_process on;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;

events { worker_connections 4096; }

http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path       {{.Dir}}/proxy;
    fastcgi_temp_path     {{.Dir}}/fastcgi;
    uwsgi_temp_path       {{.Dir}}/uwsgi;
    scgi_temp_path        {{.Dir}}/scgi;
    keepalive_timeout  120s;
    keepalive_requests 1000000;

    upstream sink {
        server {{.SinkAddr}};
        keepalive 128;
        keepalive_requests 1000000;
        keepalive_timeout  120s;
    }

    server {
        listen {{.Listen}} backlog=4096;

        # What consentgate also does on a forward: HTTP/1.1 keep-alive upstream, the
        # site's cookies removed, the client IP passed on, no cookie coming back.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Cookie "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_hide_header Set-Cookie;
{{range .Exact}}
        location = {{.}} { proxy_pass http://sink; }{{end}}{{range .Prefix}}
        location ^~ {{.}} { proxy_pass http://sink; }{{end}}
        location / { return 404; }
    }
}
`))

// haproxyTemplate: the same routes, keep-alive on both sides (http-reuse always is
// the closest to nginx's upstream keepalive pool), no logging, one thread.
var haproxyTemplate = template.Must(template.New("haproxy").Parse(`# written by loadgen compare
global
    nbthread 1
    maxconn 8192

defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 120s
    timeout server 30s
    timeout http-keep-alive 120s
    timeout http-request 10s

frontend tracking
    bind {{.Listen}}
    acl route path{{range .Exact}} {{.}}{{end}}
    acl route path_beg{{range .Prefix}} {{.}}{{end}}
    http-request return status 404 unless route
    http-request del-header Cookie
    http-response del-header Set-Cookie
    default_backend sink

backend sink
    server sink {{.SinkAddr}}
`))

func (c peerConfig) nginx() ([]byte, error) {
	var b bytes.Buffer
	if err := nginxTemplate.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("nginx config: %w", err)
	}
	return b.Bytes(), nil
}

func (c peerConfig) haproxy() ([]byte, error) {
	var b bytes.Buffer
	if err := haproxyTemplate.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("haproxy config: %w", err)
	}
	return b.Bytes(), nil
}

// writePeerConfig writes the peer's config into c.Dir and returns the argv that runs
// it in the foreground, and the argv that checks it without running it.
func writePeerConfig(name, bin string, c peerConfig) (run, check []string, err error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("%s dir: %w", name, err)
	}
	var text []byte
	switch name {
	case "nginx":
		text, err = c.nginx()
	case "haproxy":
		text, err = c.haproxy()
	default:
		return nil, nil, fmt.Errorf("unknown peer %q", name)
	}
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(c.Dir, name+".conf")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		return nil, nil, fmt.Errorf("write %s config: %w", name, err)
	}
	switch name {
	case "nginx":
		// -p: the prefix for relative paths; -e: the log nginx opens before reading
		// the config, which is otherwise /var/log/nginx.
		base := []string{bin, "-p", c.Dir + "/", "-c", path, "-e", filepath.Join(c.Dir, "startup.log")}
		return base, append(append([]string{}, base...), "-t", "-q"), nil
	default:
		// -db: stay in the foreground, no master process.
		return []string{bin, "-db", "-f", path}, []string{bin, "-c", "-q", "-f", path}, nil
	}
}

// peerPackages are the Debian packages of the peers; nginx-light is nginx without
// the modules a plain reverse proxy does not use.
var peerPackages = map[string]string{"nginx": "nginx-light", "haproxy": "haproxy"}

// findPeer looks for a peer's binary in PATH and in /usr/sbin, which is where
// Debian puts both and which a non-root PATH often lacks.
func findPeer(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	p := filepath.Join("/usr/sbin", name)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p, true
	}
	return "", false
}

// ensurePeers returns the binary of every named peer, installing the missing ones
// from Debian's packages when it may (root, install allowed). Otherwise it says which
// command would.
func ensurePeers(names []string, install bool, log func(string, ...any)) (map[string]string, error) {
	bins := map[string]string{}
	var missing []string
	for _, n := range names {
		if b, ok := findPeer(n); ok {
			bins[n] = b
		} else {
			missing = append(missing, peerPackages[n])
		}
	}
	if len(missing) == 0 {
		return bins, nil
	}
	cmd := "apt-get install -y " + strings.Join(missing, " ")
	if !install || os.Geteuid() != 0 {
		why := "not root"
		if !install {
			why = "-install=false"
		}
		return nil, fmt.Errorf("peers missing: %s (%s). Install them with:\n    sudo %s\nor leave them out with -peers", strings.Join(missing, ", "), why, cmd)
	}
	log("installing the peers from Debian's packages: %s\n", cmd)
	if err := aptInstall(missing); err != nil {
		return nil, err
	}
	for _, n := range names {
		b, ok := findPeer(n)
		if !ok {
			return nil, fmt.Errorf("%s still not found after %s", n, cmd)
		}
		bins[n] = b
	}
	return bins, nil
}

// aptInstall installs packages without letting their install scripts start a
// service: a packaged nginx would take port 80 and stay running after the benchmark.
func aptInstall(pkgs []string) error {
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", policy, err)
		}
		defer os.Remove(policy)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	run := func(args ...string) error {
		c := exec.Command("apt-get", args...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail(out, 20))
		}
		return nil
	}
	if err := run(append([]string{"install", "-y", "-q"}, pkgs...)...); err != nil {
		// A machine whose package lists were never fetched knows no candidates.
		if err := run("update", "-q"); err != nil {
			return err
		}
		return run(append([]string{"install", "-y", "-q"}, pkgs...)...)
	}
	return nil
}

func tail(b []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// peerVersion asks a binary for its version, first line only.
func peerVersion(name, bin string) string {
	var args []string
	switch name {
	case "nginx":
		args = []string{"-v"}
	case "haproxy":
		args = []string{"-v"}
	default:
		args = []string{"version"}
	}
	out, _ := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}
