package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The tests of deploy/ render the Helm chart and the kustomize manifests with the real
// tools and check every object against the real binary. The tools are built from the Go
// module proxy in their own module (tools/k8s), so Kubernetes' dependencies never reach
// the product's go.mod; `make k8s-tools` (run by `make test`) builds them into bin/
// before the tests, and the tests build them again, which is a no-op when they are up to
// date. A tool that cannot be built fails the tests: nothing here is skipped.

const (
	repoRoot = ".."
	toolsDir = "../tools/k8s"
)

// toolSet holds the paths of the binaries the tests run.
type toolSet struct {
	helm, kustomize, k8scheck, composecheck string
	consentgate                             string // built into a temporary directory
}

var (
	toolsOnce sync.Once
	tools     toolSet
	toolsErr  error
	buildDir  string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// needTools builds what is missing or stale, once per process, and fails the test
// loudly if anything cannot be built.
func needTools(t testing.TB) toolSet {
	t.Helper()
	toolsOnce.Do(func() { tools, toolsErr = buildTools() })
	if toolsErr != nil {
		t.Fatalf("building the deploy tools (only the Go module proxy is needed; `make k8s-tools` shows the same error): %v", toolsErr)
	}
	return tools
}

func buildTools() (toolSet, error) {
	bin, err := filepath.Abs(filepath.Join(repoRoot, "bin"))
	if err != nil {
		return toolSet{}, err
	}
	helmVersion, err := moduleVersion(filepath.Join(toolsDir, "go.mod"), "helm.sh/helm/v4")
	if err != nil {
		return toolSet{}, err
	}
	ts := toolSet{
		helm:         filepath.Join(bin, "helm"),
		kustomize:    filepath.Join(bin, "kustomize"),
		k8scheck:     filepath.Join(bin, "k8scheck"),
		composecheck: filepath.Join(bin, "composecheck"),
	}
	builds := []struct {
		dir  string
		args []string
	}{
		// Helm's own release builds set its version by ldflags; without it `helm
		// version` would say only "v4.3".
		{toolsDir, []string{"-ldflags", "-X helm.sh/helm/v4/internal/version.version=" + helmVersion, "-o", ts.helm, "helm.sh/helm/v4/cmd/helm"}},
		{toolsDir, []string{"-o", ts.kustomize, "sigs.k8s.io/kustomize/kustomize/v5"}},
		{toolsDir, []string{"-o", ts.k8scheck, "./k8scheck"}},
		{toolsDir, []string{"-o", ts.composecheck, "./composecheck"}},
	}
	if buildDir, err = os.MkdirTemp("", "consentgate-deploy-test"); err != nil {
		return toolSet{}, err
	}
	ts.consentgate = filepath.Join(buildDir, "consentgate")
	builds = append(builds, struct {
		dir  string
		args []string
	}{repoRoot, []string{"-tags", "grpcnotrace", "-o", ts.consentgate, "./cmd/consentgate"}})
	for _, b := range builds {
		cmd := exec.Command("go", append([]string{"build", "-trimpath"}, b.args...)...)
		cmd.Dir = b.dir
		// The tools module is not part of a workspace, and must not pick one up.
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return toolSet{}, fmt.Errorf("go build %s (in %s): %v\n%s", strings.Join(b.args, " "), b.dir, err, out)
		}
	}
	return ts, nil
}

// moduleVersion reads the version of module in a go.mod's require lines.
func moduleVersion(gomod, module string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	re := regexp.MustCompile(`^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+(v\S+)`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}

// TestK8sTools builds the tools (`make k8s-tools` runs only this) and checks that each
// is the version tools/k8s/go.mod pins.
func TestK8sTools(t *testing.T) {
	ts := needTools(t)
	want, err := moduleVersion(filepath.Join(toolsDir, "go.mod"), "helm.sh/helm/v4")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ts.helm, "version", "--template", "{{.Version}}").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("helm version: %q (%v), want %s", out, err, want)
	}
	wantK, err := moduleVersion(filepath.Join(toolsDir, "go.mod"), "sigs.k8s.io/kustomize/kustomize/v5")
	if err != nil {
		t.Fatal(err)
	}
	// kustomize reports its version from the build info only for release builds; that
	// it runs is what counts, the version is go.mod's.
	if out, err := exec.Command(ts.kustomize, "version").CombinedOutput(); err != nil {
		t.Errorf("kustomize %s: version: %v\n%s", wantK, err, out)
	}
}
