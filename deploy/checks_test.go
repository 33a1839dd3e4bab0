package deploy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config"
)

// checkOpts says what a rendering is expected to hold beyond the common rules.
type checkOpts struct {
	live            bool                       // start the binary on the pod's args, config and environment
	externalSecrets map[string]bool            // Secrets named but managed outside the manifests
	externalGeoIP   bool                       // the GeoIP claim is kept up to date from outside
	redis           func(*config.Config) error // the consent store the rendering must configure
}

// checkManifests holds one rendering to the binary and to the rules every deployment of
// it follows. It returns the consentgate pod, for tests that look further.
func checkManifests(t testing.TB, m *manifests, o checkOpts) *pod {
	t.Helper()
	var deps []*object
	for _, d := range m.all("Deployment") {
		var dd deployment
		d.as(t, &dd)
		if dd.Spec.Template.Spec.container("consentgate") != nil {
			deps = append(deps, d)
		}
	}
	if len(deps) != 1 {
		t.Fatalf("%s: want one Deployment with a consentgate container, got %d", m.label, len(deps))
	}
	p := newPod(t, m, deps[0], o)
	p.check(t, o)
	checkWorkloads(t, m)
	checkServices(t, m, p)
	checkScaling(t, m, p)
	if o.live {
		checkLive(t, m, p)
	}
	return p
}

// workload is a pod template and where it came from.
type workload struct {
	where string
	obj   *object
	tmpl  podTemplate
}

func workloads(t testing.TB, m *manifests) []workload {
	t.Helper()
	var out []workload
	for _, o := range m.objects {
		w := workload{where: m.label + ": " + o.String(), obj: o}
		switch o.Kind {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
			var d deployment
			o.as(t, &d)
			w.tmpl = d.Spec.Template
		case "Job":
			var j job
			o.as(t, &j)
			w.tmpl = j.Spec.Template
		case "CronJob":
			var cj cronJob
			o.as(t, &cj)
			w.tmpl = cj.Spec.JobTemplate.Spec.Template
		case "Pod":
			t.Errorf("%s: a bare Pod", w.where)
			continue
		default:
			continue
		}
		out = append(out, w)
	}
	return out
}

// checkWorkloads: every container of every workload runs as a numbered non-root user,
// with a read-only root filesystem, no privilege escalation, no capabilities and the
// runtime's seccomp profile; with memory bounded and CPU requested; from a pinned image;
// no pod mounts a service account token it does not use, and none shares its process
// namespace or the node's.
func checkWorkloads(t testing.TB, m *manifests) {
	t.Helper()
	for _, w := range workloads(t, m) {
		spec := &w.tmpl.Spec
		psc := spec.SecurityContext
		if psc == nil {
			psc = &securityContext{}
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false: no container here talks to the Kubernetes API", w.where)
		}
		if spec.HostNetwork || spec.HostPID {
			t.Errorf("%s: hostNetwork or hostPID", w.where)
		}
		if spec.ShareProcessNamespace {
			t.Errorf("%s: shares its process namespace: each container could read the others' environment (consentgate's secrets) and memory", w.where)
		}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: hostPath volume %q", w.where, v.Name)
			}
		}
		for _, c := range spec.allContainers() {
			where := w.where + ": container " + c.Name
			sc := c.SecurityContext
			if sc == nil {
				sc = &securityContext{}
			}
			pick := func(a, b *bool) *bool {
				if a != nil {
					return a
				}
				return b
			}
			if nr := pick(sc.RunAsNonRoot, psc.RunAsNonRoot); nr == nil || !*nr {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			// distroless's user is a name, which runAsNonRoot cannot verify: the kubelet
			// refuses to start such a container without a numeric runAsUser.
			if u := effectiveUser(spec, c); u == nil || *u == 0 {
				t.Errorf("%s: no numeric non-zero runAsUser", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: capabilities do not drop ALL", where)
			} else if len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: adds capabilities %v", where, sc.Capabilities.Add)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != "RuntimeDefault" {
				t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
			}
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
				t.Errorf("%s: no cpu and memory requests", where)
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: no memory limit", where)
			}
			if _, tag, ok := strings.Cut(lastSegment(c.Image), ":"); !ok || tag == "" || tag == "latest" {
				t.Errorf("%s: image %q is not pinned to a tag", where, c.Image)
			}
		}
	}
}

func effectiveUser(spec *podSpec, c *container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if spec.SecurityContext != nil {
		return spec.SecurityContext.RunAsUser
	}
	return nil
}

func lastSegment(image string) string {
	return image[strings.LastIndex(image, "/")+1:]
}

// checkServices: every Service selects pods that have its target ports; the admin port
// is only ever behind a ClusterIP Service of its own; a ServiceMonitor scrapes /metrics
// on it, an Ingress routes to the public port, a NetworkPolicy keeps the admin port shut.
func checkServices(t testing.TB, m *manifests, p *pod) {
	t.Helper()
	wls := workloads(t, m)
	adminPort := 0
	if port, ok := p.c.port("admin"); ok {
		adminPort = port
	}
	type svcInfo struct {
		obj      *object
		s        service
		admin    bool // targets the proxy's admin port
		public   bool // targets the proxy's public port
		portName map[string]string
	}
	svcs := map[string]*svcInfo{}
	for _, so := range m.all("Service") {
		si := &svcInfo{obj: so, portName: map[string]string{}}
		so.as(t, &si.s)
		svcs[so.Metadata.Name] = si
		where := m.label + ": " + so.String()
		sel := labelSelector{MatchLabels: si.s.Spec.Selector}
		var matched []workload
		for _, w := range wls {
			if sel.selects(w.tmpl.Metadata.Labels) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			t.Errorf("%s: selector %v matches no pod template", where, si.s.Spec.Selector)
		}
		for _, sp := range si.s.Spec.Ports {
			si.portName[sp.Name] = sp.TargetPort
			for _, w := range matched {
				c, ok := podPort(&w.tmpl.Spec, sp.TargetPort)
				if !ok {
					t.Errorf("%s: port %s targets %q, which %s does not have", where, sp.Name, sp.TargetPort, w.obj)
					continue
				}
				if w.obj == p.dep && c == adminPort {
					si.admin = true
				} else if w.obj == p.dep {
					si.public = true
				}
			}
		}
		if si.admin {
			if si.public {
				t.Errorf("%s: the admin port is in the same Service as the public one", where)
			}
			if typ := cmpOr(si.s.Spec.Type, "ClusterIP"); typ != "ClusterIP" {
				t.Errorf("%s: type %s exposes the admin listener (/metrics, /api/stats and the dashboard need no token)", where, typ)
			}
		}
	}
	for _, smo := range m.all("ServiceMonitor") {
		var sm serviceMonitor
		smo.as(t, &sm)
		where := m.label + ": " + smo.String()
		n := 0
		for _, si := range svcs {
			if !sm.Spec.Selector.selects(si.obj.Metadata.Labels) {
				continue
			}
			n++
			for _, ep := range sm.Spec.Endpoints {
				if !si.admin {
					t.Errorf("%s: selects %s, which does not serve the admin port", where, si.obj)
				}
				if _, ok := si.portName[ep.Port]; !ok {
					t.Errorf("%s: endpoint port %q is not a port of %s", where, ep.Port, si.obj)
				}
				if ep.Path != "/metrics" {
					t.Errorf("%s: endpoint path %q, want /metrics", where, ep.Path)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: selects %d Services, want the admin one", where, n)
		}
	}
	for _, io := range m.all("Ingress") {
		var ing ingress
		io.as(t, &ing)
		where := m.label + ": " + io.String()
		for _, r := range ing.Spec.Rules {
			for _, hp := range r.HTTP.Paths {
				b := hp.Backend.Service
				si := svcs[b.Name]
				switch {
				case si == nil:
					t.Errorf("%s: backend Service %q is not in the manifests", where, b.Name)
				case si.admin:
					t.Errorf("%s: routes to %s, the admin listener", where, si.obj)
				case b.Port.Name != "":
					if _, ok := si.portName[b.Port.Name]; !ok {
						t.Errorf("%s: backend port %q is not a port of %s", where, b.Port.Name, si.obj)
					}
				}
			}
		}
	}
	for _, npo := range m.all("NetworkPolicy") {
		var np networkPolicy
		npo.as(t, &np)
		if !np.Spec.PodSelector.selects(p.dep.podLabels(t)) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			for _, pp := range rule.Ports {
				if port, ok := p.c.port(pp.Port); ok && port == adminPort && len(rule.From) == 0 {
					t.Errorf("%s: %s opens the admin port to every peer", m.label, npo)
				}
			}
		}
	}
}

func (o *object) podLabels(t testing.TB) map[string]string {
	var d deployment
	o.as(t, &d)
	return d.Spec.Template.Metadata.Labels
}

// podPort resolves a Service's targetPort in a pod: a named port, or a number.
func podPort(spec *podSpec, target string) (int, bool) {
	for _, c := range spec.Containers {
		if port, ok := c.port(target); ok {
			return port, true
		}
	}
	return 0, false
}

// checkScaling: the HPA scales the Deployment on CPU it requests; the PDB selects only
// the proxy's pods and lets a node drain.
func checkScaling(t testing.TB, m *manifests, p *pod) {
	t.Helper()
	labels := p.dep.podLabels(t)
	var d deployment
	p.dep.as(t, &d)
	if !d.Spec.Selector.selects(labels) || len(d.Spec.Selector.MatchExpressions) > 0 {
		t.Errorf("%s: %s: selector %v does not select its own pods %v", m.label, p.dep, d.Spec.Selector.MatchLabels, labels)
	}
	// Nothing else the manifests run may carry the proxy's selector: a Service or the
	// PDB would count it as one of the proxy's pods.
	for _, w := range workloads(t, m) {
		if w.obj != p.dep && d.Spec.Selector.selects(w.tmpl.Metadata.Labels) {
			t.Errorf("%s: its pods carry %s's selector labels %v", w.where, p.dep, d.Spec.Selector.MatchLabels)
		}
	}
	minReplicas := 1
	if d.Spec.Replicas != nil {
		minReplicas = *d.Spec.Replicas
	}
	for _, ho := range m.all("HorizontalPodAutoscaler") {
		var h hpa
		ho.as(t, &h)
		where := m.label + ": " + ho.String()
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != p.dep.Metadata.Name {
			t.Errorf("%s: scales %s/%s, not %s", where, ref.Kind, ref.Name, p.dep)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("%s: %s sets replicas too: every apply would reset what the HPA chose", where, p.dep)
		}
		if h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < h.Spec.MinReplicas {
			t.Errorf("%s: minReplicas %d, maxReplicas %d: want at least 2 (one instance is an outage at every rollout)", where, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		minReplicas = h.Spec.MinReplicas
		for _, mt := range h.Spec.Metrics {
			if mt.Type == "Resource" && mt.Resource.Name == "cpu" && p.c.Resources.Requests["cpu"] == "" {
				t.Errorf("%s: scales on CPU utilisation, but the proxy requests no CPU", where)
			}
		}
	}
	for _, po := range m.all("PodDisruptionBudget") {
		var b pdb
		po.as(t, &b)
		where := m.label + ": " + po.String()
		if !b.Spec.Selector.selects(labels) {
			t.Errorf("%s: selector %v does not select the proxy's pods", where, b.Spec.Selector.MatchLabels)
		}
		if b.Spec.MinAvailable != nil {
			if n, err := strconv.Atoi(*b.Spec.MinAvailable); err == nil && n >= minReplicas {
				t.Errorf("%s: minAvailable %d with %d replicas: no node could ever be drained", where, n, minReplicas)
			}
		}
		if b.Spec.MaxUnavailable != nil && *b.Spec.MaxUnavailable == "0" {
			t.Errorf("%s: maxUnavailable 0: no node could ever be drained", where)
		}
	}
}

// checkLive starts the real binary on the pod's args, config and environment, and asks
// each listener for what the manifests expect of it: the probes' paths, and /metrics.
func checkLive(t testing.TB, m *manifests, p *pod) {
	t.Helper()
	args := slices.Clone(p.c.Args)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, p.configPath, p.hostConfigPath)
	}
	r := startBinary(t, args, p.env)
	adminPort, _ := p.c.port("admin")
	listener := func(port string) string {
		if n, ok := p.c.port(port); ok && n == adminPort {
			return r.admin
		}
		return r.public
	}
	for _, pr := range []*probe{p.c.ReadinessProbe, p.c.LivenessProbe, p.c.StartupProbe} {
		if pr == nil || pr.HTTPGet == nil {
			continue
		}
		if code, body := get(t, listener(pr.HTTPGet.Port), pr.HTTPGet.Path); code != 200 {
			t.Errorf("%s: probe GET %s on port %s: %d %s", m.label, pr.HTTPGet.Path, pr.HTTPGet.Port, code, body)
		}
	}
	if code, body := get(t, r.admin, "/metrics"); code != 200 || !strings.Contains(body, "consentgate_build_info") {
		t.Errorf("%s: GET /metrics on the admin listener: %d, want 200 with consentgate_build_info", m.label, code)
	}
	if code, _ := get(t, r.public, "/metrics"); code == 200 {
		t.Errorf("%s: the public listener serves /metrics", m.label)
	}
	t.Logf("%s: the binary served the probes and /metrics on the pod's config and environment", m.label)
}
