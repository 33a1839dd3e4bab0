package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/rules"
)

// testGeoDB stands in for the database geoipupdate would download.
const testGeoDB = "../testdata/geoip/GeoLite2-City-Test.mmdb"

// pod is the consentgate container of a rendering, as the kubelet would start it: its
// environment (the image's, then the pod spec's, with Secrets resolved), its volumes laid
// out in a temporary directory, and the config the binary would load from there.
type pod struct {
	m    *manifests
	dep  *object
	spec *podSpec
	c    *container

	sub   string            // the subcommand
	flags map[string]string // its flags' values
	env   map[string]string
	fs    *podFS

	configPath     string // in the pod
	hostConfigPath string // where the test laid it out
	geoPath        string // geo.database in the pod, if any
	cfg            *config.Config
}

// podFS lays out a container's volume mounts under a temporary root.
type podFS struct {
	root   string
	mounts []fsMount // longest path first
}

type fsMount struct {
	path, host string
	volume     *volume
}

func (fs *podFS) host(p string) (string, *fsMount) {
	for i := range fs.mounts {
		mt := &fs.mounts[i]
		if rel, ok := strings.CutPrefix(p, mt.path); ok && (rel == "" || strings.HasPrefix(rel, "/")) {
			return filepath.Join(mt.host, rel), mt
		}
	}
	return "", nil
}

// newPod resolves the consentgate container of dep. Errors about the pod are reported
// on t; a pod that cannot be resolved far enough to load its config is fatal.
func newPod(t testing.TB, m *manifests, dep *object, o checkOpts) *pod {
	t.Helper()
	var d deployment
	dep.as(t, &d)
	p := &pod{m: m, dep: dep, spec: &d.Spec.Template.Spec}
	p.c = p.spec.container("consentgate")
	where := fmt.Sprintf("%s: %s", m.label, dep)
	if p.c == nil {
		t.Fatalf("%s: no container named consentgate", where)
	}
	df := readDockerfile(t)
	if len(p.c.Command) > 0 {
		t.Errorf("%s: command %v replaces the image's entrypoint %v: give args only", where, p.c.Command, df.entrypoint)
	}
	var errs []string
	p.sub, p.flags, errs = binFacts(t).parseArgs(p.c.Args)
	for _, e := range errs {
		t.Errorf("%s: args %v: %s", where, p.c.Args, e)
	}
	if p.sub != "serve" {
		t.Fatalf("%s: args %v: the proxy runs `serve`", where, p.c.Args)
	}
	p.configPath = p.flags["config"]
	if p.configPath == "" {
		t.Fatalf("%s: args %v: no --config: the pod would run on the embedded defaults (memory store, admin listener on loopback)", where, p.c.Args)
	}
	p.env = p.environment(t, df, o)
	p.layOut(t)
	p.loadConfig(t)
	return p
}

// environment is the container's environment: the image's ENV, then envFrom, then env.
func (p *pod) environment(t testing.TB, df dockerfile, o checkOpts) map[string]string {
	t.Helper()
	where := fmt.Sprintf("%s: %s: container consentgate", p.m.label, p.dep)
	env := map[string]string{}
	for k, v := range df.env {
		env[k] = v
	}
	secretValue := func(ref *keyRef) (string, bool) {
		data, ok := p.m.data(t, "Secret", ref.Name)
		if !ok {
			if !o.externalSecrets[ref.Name] {
				t.Errorf("%s: Secret %q is not in the manifests", where, ref.Name)
			}
			return "", false
		}
		v, ok := data[ref.Key]
		if !ok && (ref.Optional == nil || !*ref.Optional) {
			t.Errorf("%s: Secret %q has no key %q", where, ref.Name, ref.Key)
		}
		return v, ok
	}
	for _, ef := range p.c.EnvFrom {
		switch {
		case ef.SecretRef != nil:
			if ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
				t.Errorf("%s: envFrom Secret %q is optional: a missing Secret would start the pod without its admin token and keys", where, ef.SecretRef.Name)
			}
			data, ok := p.m.data(t, "Secret", ef.SecretRef.Name)
			if !ok {
				if !o.externalSecrets[ef.SecretRef.Name] {
					t.Errorf("%s: envFrom Secret %q is not in the manifests", where, ef.SecretRef.Name)
				}
				continue
			}
			for k, v := range data {
				env[ef.Prefix+k] = v
			}
		case ef.ConfigMapRef != nil:
			data, ok := p.m.data(t, "ConfigMap", ef.ConfigMapRef.Name)
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not in the manifests", where, ef.ConfigMapRef.Name)
			}
			for k, v := range data {
				env[ef.Prefix+k] = v
			}
		}
	}
	for _, e := range p.c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			if v, ok := secretValue(e.ValueFrom.SecretKeyRef); ok {
				env[e.Name] = v
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			data, _ := p.m.data(t, "ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name)
			env[e.Name] = data[e.ValueFrom.ConfigMapKeyRef.Key]
		default:
			if strings.HasPrefix(e.Name, "CONSENTGATE_") {
				t.Errorf("%s: env %s from the downward API: the tests cannot check its value", where, e.Name)
			}
		}
	}
	return env
}

// layOut materialises the container's volume mounts.
func (p *pod) layOut(t testing.TB) {
	t.Helper()
	where := fmt.Sprintf("%s: %s: container consentgate", p.m.label, p.dep)
	p.fs = &podFS{root: t.TempDir()}
	for _, vm := range p.c.VolumeMounts {
		v := p.spec.volume(vm.Name)
		if v == nil {
			t.Errorf("%s: volumeMount %q names no volume", where, vm.Name)
			continue
		}
		if vm.SubPath != "" {
			// A subPath mount of a ConfigMap is never updated in place.
			t.Errorf("%s: volumeMount %q uses subPath: the kubelet never updates it", where, vm.Name)
		}
		host := filepath.Join(p.fs.root, filepath.FromSlash(vm.MountPath))
		if err := os.MkdirAll(host, 0o755); err != nil {
			t.Fatal(err)
		}
		p.fs.mounts = append(p.fs.mounts, fsMount{path: vm.MountPath, host: host, volume: v})
		switch {
		case v.ConfigMap != nil, v.Secret != nil:
			kind, name := "ConfigMap", ""
			if v.ConfigMap != nil {
				name = v.ConfigMap.Name
			} else {
				kind, name = "Secret", v.Secret.SecretName
			}
			data, ok := p.m.data(t, kind, name)
			if !ok {
				t.Errorf("%s: volume %q: %s %q is not in the manifests", where, v.Name, kind, name)
				continue
			}
			files := map[string]string{}
			for k := range data {
				files[k] = k
			}
			if v.ConfigMap != nil && len(v.ConfigMap.Items) > 0 {
				files = map[string]string{}
				for _, it := range v.ConfigMap.Items {
					files[it.Key] = it.Path
				}
			}
			for k, rel := range files {
				if err := os.WriteFile(filepath.Join(host, rel), []byte(data[k]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if !vm.ReadOnly {
				t.Errorf("%s: volumeMount %q of a %s is not readOnly", where, vm.Name, kind)
			}
		case v.EmptyDir != nil, v.PersistentVolumeClaim != nil:
		default:
			t.Errorf("%s: volume %q: the proxy's volumes are a ConfigMap, a Secret, an emptyDir or a PVC", where, v.Name)
		}
	}
	sort.Slice(p.fs.mounts, func(i, j int) bool { return len(p.fs.mounts[i].path) > len(p.fs.mounts[j].path) })
}

// loadConfig loads the config file from the pod's ConfigMap with the product's loader, in
// the container's environment, the GeoIP database standing in for the downloaded one.
func (p *pod) loadConfig(t testing.TB) {
	t.Helper()
	where := fmt.Sprintf("%s: %s: container consentgate", p.m.label, p.dep)
	hostCfg, mt := p.fs.host(p.configPath)
	if mt == nil || mt.volume.ConfigMap == nil && mt.volume.Secret == nil {
		t.Fatalf("%s: --config %s is not in a ConfigMap or Secret volume the container mounts", where, p.configPath)
	}
	text, err := os.ReadFile(hostCfg)
	if err != nil {
		t.Fatalf("%s: --config %s: the mounted ConfigMap has no such key: %v", where, p.configPath, err)
	}
	var file struct {
		Geo struct {
			Database string `yaml:"database"`
		} `yaml:"geo"`
	}
	if err := yaml.Unmarshal(text, &file); err != nil {
		t.Fatalf("%s: %s: %v", where, p.configPath, err)
	}
	p.geoPath = cmpOr(p.env["CONSENTGATE_GEO_DATABASE"], file.Geo.Database)
	if p.geoPath != "" {
		hostGeo, gm := p.fs.host(p.geoPath)
		switch {
		case gm == nil:
			t.Errorf("%s: geo.database %s is on no volume the container mounts", where, p.geoPath)
		case gm.volume.EmptyDir == nil && gm.volume.PersistentVolumeClaim == nil:
			t.Errorf("%s: geo.database %s is on volume %q, which nothing updates: want an emptyDir or a PVC that geoipupdate writes", where, p.geoPath, gm.volume.Name)
		default:
			db, err := os.ReadFile(testGeoDB)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(hostGeo), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hostGeo, db, 0o644); err != nil {
				t.Fatal(err)
			}
			text = []byte(strings.ReplaceAll(string(text), p.geoPath, hostGeo))
			for k, v := range p.env {
				p.env[k] = strings.ReplaceAll(v, p.geoPath, hostGeo)
			}
		}
	}
	if err := os.WriteFile(hostCfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	p.hostConfigPath = hostCfg
	ld := &load.Loader{Vocabulary: rules.Vocabulary(), Getenv: func(k string) string { return p.env[k] }}
	cfg, err := ld.Load(hostCfg)
	if err != nil {
		t.Fatalf("%s: the config (%s, from the ConfigMap) in the pod's environment does not load:\n%v", where, p.configPath, err)
	}
	p.cfg = cfg
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
