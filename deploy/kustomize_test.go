package deploy

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const kubeDir = "kubernetes"

type kustomization struct {
	Resources          []string `yaml:"resources"`
	Components         []string `yaml:"components"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
		Envs  []string `yaml:"envs"`
	} `yaml:"configMapGenerator"`
	SecretGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
		Envs  []string `yaml:"envs"`
	} `yaml:"secretGenerator"`
	Patches []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
}

// kubeCopy copies deploy/kubernetes into a temporary directory, with each env file the
// generators need written from its .example with generated values, as an operator would.
func kubeCopy(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	base := filepath.Join(root, "base")
	if err := os.CopyFS(base, os.DirFS(kubeDir)); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".env.example") {
			return err
		}
		example, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		for line := range strings.SplitSeq(string(example), "\n") {
			name, _, ok := strings.Cut(line, "=")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			out.WriteString(name + "=" + fakeSecret(name) + "\n")
		}
		return os.WriteFile(strings.TrimSuffix(p, ".example"), out.Bytes(), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// fakeSecret is a value of the right shape for a variable of the examples.
func fakeSecret(name string) string {
	switch name {
	case "GEOIPUPDATE_ACCOUNT_ID":
		return "123456"
	case "GEOIPUPDATE_LICENSE_KEY":
		return "abcdefABCDEF0123_mmk"
	}
	return "Vq3Lx8Rz2NwT7bKc5YhP9mJd4sFg6A1u" // what `openssl rand -base64 24` looks like
}

func kustomizeBuild(t testing.TB, dir string) []byte {
	t.Helper()
	cmd := exec.Command(needTools(t).kustomize, "build", dir)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, ee.Stderr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKustomize builds the plain manifests with the real kustomize, alone and with each
// component, and holds each build to the binary (checkManifests), running it on the base.
func TestKustomize(t *testing.T) {
	for _, tc := range []struct {
		name       string
		components []string
		live       bool
	}{
		{"base", nil, true},
		{"geoip", []string{"geoip"}, true},
		{"monitoring", []string{"monitoring"}, false},
		{"all", []string{"geoip", "monitoring"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := kubeCopy(t)
			dir := filepath.Join(root, "base")
			if len(tc.components) > 0 {
				// An overlay of the operator's, as kustomization.yaml describes.
				dir = filepath.Join(root, "overlay")
				var k strings.Builder
				k.WriteString("resources: [../base]\ncomponents:\n")
				for _, c := range tc.components {
					k.WriteString("  - ../base/components/" + c + "\n")
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k.String()), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m := parseManifests(t, "kustomize "+tc.name, kustomizeBuild(t, dir))
			checkManifests(t, m, checkOpts{live: tc.live, redis: wantStore("single")})
		})
	}
}

// TestKustomizeFiles: every manifest in deploy/kubernetes is parsed and listed by its
// kustomization (a file left out would silently not be applied), every file a
// kustomization names exists, and the secrets' env files are git-ignored.
func TestKustomizeFiles(t *testing.T) {
	err := filepath.WalkDir(kubeDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() == "components" {
			return err // components/ only holds the components, each with its own
		}
		kf := filepath.Join(p, "kustomization.yaml")
		b, err := os.ReadFile(kf)
		if err != nil {
			t.Errorf("%s: no kustomization.yaml: %v", p, err)
			return nil
		}
		var k kustomization
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(false)
		if err := dec.Decode(&k); err != nil {
			t.Errorf("%s: %v", kf, err)
			return nil
		}
		named := map[string]bool{}
		for _, r := range append(slices.Clone(k.Resources), k.Components...) {
			named[r] = true
		}
		for _, g := range k.ConfigMapGenerator {
			for _, f := range append(slices.Clone(g.Files), g.Envs...) {
				named[f] = true
			}
		}
		for _, g := range k.SecretGenerator {
			for _, f := range g.Envs {
				// Operators write these; the repository has the example.
				if _, err := os.Stat(filepath.Join(p, f+".example")); err != nil {
					t.Errorf("%s: secretGenerator reads %s, which has no %s.example", kf, f, f)
				}
				named[f+".example"] = true
				checkIgnored(t, filepath.Join(p, f))
			}
		}
		for _, pt := range k.Patches {
			named[pt.Path] = true
		}
		for n := range named {
			if strings.HasSuffix(n, ".env") {
				continue
			}
			if _, err := os.Stat(filepath.Join(p, n)); err != nil {
				t.Errorf("%s names %s: %v", kf, n, err)
			}
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			n := e.Name()
			if n == "kustomization.yaml" || named[n] {
				continue
			}
			if e.IsDir() {
				if n == "components" {
					continue // each is used by an overlay, not by the base
				}
				if !named[n] {
					t.Errorf("%s: directory %s is not a resource or component of %s", p, n, kf)
				}
				continue
			}
			if strings.HasSuffix(n, ".env") {
				continue // an operator's secrets, git-ignored
			}
			t.Errorf("%s: %s is not named by %s: kubectl apply -k would leave it out", p, n, kf)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkIgnored: git would not commit an operator's secrets file.
func checkIgnored(t testing.TB, p string) {
	t.Helper()
	rel := filepath.Join("deploy", p)
	cmd := exec.Command("git", "check-ignore", "-q", rel)
	cmd.Dir = repoRoot
	if err := cmd.Run(); err != nil {
		t.Errorf("%s is not git-ignored: an operator's secrets would be committed", rel)
	}
}
