package deploy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The parts of the Kubernetes API the checks read, decoded leniently: k8scheck (tools/k8s)
// has already decoded every object strictly against the real API types, so these views
// only pick out fields.

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	doc        []byte // the YAML document
}

func (o *object) String() string { return o.Kind + "/" + o.Metadata.Name }

// as decodes the document into a typed view.
func (o *object) as(t testing.TB, v any) {
	t.Helper()
	if err := yaml.Unmarshal(o.doc, v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

type meta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []any             `yaml:"matchExpressions"`
}

// selects reports whether the selector picks a pod with these labels (matchLabels only;
// the manifests use no expressions, and a selector with them is reported by the caller).
func (s labelSelector) selects(labels map[string]string) bool {
	return len(s.MatchLabels) > 0 && subset(s.MatchLabels, labels)
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

type podTemplate struct {
	Metadata meta    `yaml:"metadata"`
	Spec     podSpec `yaml:"spec"`
}

type podSpec struct {
	ShareProcessNamespace         bool                `yaml:"shareProcessNamespace"`
	AutomountServiceAccountToken  *bool               `yaml:"automountServiceAccountToken"`
	SecurityContext               *securityContext    `yaml:"securityContext"`
	TerminationGracePeriodSeconds *int                `yaml:"terminationGracePeriodSeconds"`
	InitContainers                []container         `yaml:"initContainers"`
	Containers                    []container         `yaml:"containers"`
	Volumes                       []volume            `yaml:"volumes"`
	HostNetwork                   bool                `yaml:"hostNetwork"`
	HostPID                       bool                `yaml:"hostPID"`
	TopologySpreadConstraints     []map[string]any    `yaml:"topologySpreadConstraints"`
	Affinity                      map[string]any      `yaml:"affinity"`
	NodeSelector                  map[string]string   `yaml:"nodeSelector"`
	Tolerations                   []map[string]any    `yaml:"tolerations"`
	ImagePullSecrets              []map[string]string `yaml:"imagePullSecrets"`
}

func (p *podSpec) container(name string) *container {
	for i := range p.Containers {
		if p.Containers[i].Name == name {
			return &p.Containers[i]
		}
	}
	return nil
}

func (p *podSpec) volume(name string) *volume {
	for i := range p.Volumes {
		if p.Volumes[i].Name == name {
			return &p.Volumes[i]
		}
	}
	return nil
}

// allContainers are the containers and the init containers.
func (p *podSpec) allContainers() []*container {
	var out []*container
	for i := range p.InitContainers {
		out = append(out, &p.InitContainers[i])
	}
	for i := range p.Containers {
		out = append(out, &p.Containers[i])
	}
	return out
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	Privileged               *bool  `yaml:"privileged"`
	Capabilities             *struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name            string           `yaml:"name"`
	Image           string           `yaml:"image"`
	Command         []string         `yaml:"command"`
	Args            []string         `yaml:"args"`
	Ports           []containerPort  `yaml:"ports"`
	Env             []envVar         `yaml:"env"`
	EnvFrom         []envFromSource  `yaml:"envFrom"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	StartupProbe    *probe           `yaml:"startupProbe"`
	Lifecycle       *lifecycle       `yaml:"lifecycle"`
	Resources       resources        `yaml:"resources"`
	SecurityContext *securityContext `yaml:"securityContext"`
	VolumeMounts    []volumeMount    `yaml:"volumeMounts"`
}

// port resolves a probe's or a Service's port (a name or a number) to a container port.
func (c *container) port(p string) (int, bool) {
	for _, cp := range c.Ports {
		if cp.Name == p || strconv.Itoa(cp.ContainerPort) == p {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// script is the container's command and args as one string, for the shell ones.
func (c *container) script() string {
	return strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type keyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional *bool  `yaml:"optional"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef     *keyRef        `yaml:"secretKeyRef"`
		ConfigMapKeyRef  *keyRef        `yaml:"configMapKeyRef"`
		FieldRef         map[string]any `yaml:"fieldRef"`
		ResourceFieldRef map[string]any `yaml:"resourceFieldRef"`
	} `yaml:"valueFrom"`
}

type envFromSource struct {
	Prefix       string  `yaml:"prefix"`
	SecretRef    *keyRef `yaml:"secretRef"`
	ConfigMapRef *keyRef `yaml:"configMapRef"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type lifecycle struct {
	PreStop *struct {
		Sleep *struct {
			Seconds int `yaml:"seconds"`
		} `yaml:"sleep"`
		Exec    map[string]any `yaml:"exec"`
		HTTPGet map[string]any `yaml:"httpGet"`
	} `yaml:"preStop"`
}

type resources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string `yaml:"name"`
		Items []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
	EmptyDir              map[string]any `yaml:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"persistentVolumeClaim"`
	HostPath map[string]any `yaml:"hostPath"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

// Workloads, each with its pod template.
type deployment struct {
	Spec struct {
		Replicas *int          `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Template podTemplate   `yaml:"template"`
	} `yaml:"spec"`
}

type statefulSet = deployment

type job struct {
	Spec struct {
		Template podTemplate `yaml:"template"`
	} `yaml:"spec"`
}

type cronJob struct {
	Spec struct {
		JobTemplate job `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
			NodePort   int    `yaml:"nodePort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string `yaml:"type"`
			Resource struct {
				Name string `yaml:"name"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

type pdb struct {
	Spec struct {
		MinAvailable   *string       `yaml:"minAvailable"`
		MaxUnavailable *string       `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type serviceMonitor struct {
	Spec struct {
		Selector  labelSelector `yaml:"selector"`
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type ingress struct {
	Spec struct {
		Rules []struct {
			HTTP struct {
				Paths []struct {
					Backend struct {
						Service struct {
							Name string `yaml:"name"`
							Port struct {
								Name   string `yaml:"name"`
								Number int    `yaml:"number"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type networkPolicy struct {
	Spec struct {
		PodSelector labelSelector `yaml:"podSelector"`
		Ingress     []struct {
			From  []any `yaml:"from"`
			Ports []struct {
				Port string `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

type pvc struct {
	Spec struct {
		AccessModes []string `yaml:"accessModes"`
	} `yaml:"spec"`
}

type dataObject struct { // ConfigMap and Secret
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

// manifests is one rendering: every object, by kind and name.
type manifests struct {
	label   string // "helm default", "kustomize base", ... for messages
	objects []*object
}

func (m *manifests) get(kind, name string) *object {
	for _, o := range m.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

func (m *manifests) all(kind string) []*object {
	var out []*object
	for _, o := range m.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// data returns a ConfigMap's or Secret's values, decoded.
func (m *manifests) data(t testing.TB, kind, name string) (map[string]string, bool) {
	t.Helper()
	o := m.get(kind, name)
	if o == nil {
		return nil, false
	}
	var d dataObject
	o.as(t, &d)
	out := map[string]string{}
	for k, v := range d.Data {
		if kind == "Secret" {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Errorf("%s: %s: %v", o, k, err)
			}
			v = string(b)
		}
		out[k] = v
	}
	for k, v := range d.StringData {
		out[k] = v
	}
	return out, true
}

// parseManifests splits a multi-document YAML stream into objects, and runs k8scheck on
// it: every object must decode strictly against the Kubernetes API types.
func parseManifests(t testing.TB, label string, stream []byte) *manifests {
	t.Helper()
	m := &manifests{label: label}
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: YAML: %v", label, err)
		}
		doc, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		o := &object{doc: doc}
		if err := node.Decode(o); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if o.Kind == "" && o.APIVersion == "" && o.Metadata.Name == "" {
			continue // an empty document
		}
		if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
			t.Errorf("%s: an object without apiVersion, kind or name:\n%s", label, doc)
			continue
		}
		m.objects = append(m.objects, o)
	}
	if len(m.objects) == 0 {
		t.Fatalf("%s: no objects", label)
	}
	cmd := exec.Command(needTools(t).k8scheck)
	cmd.Stdin = bytes.NewReader(stream)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: k8scheck (strict decoding against the Kubernetes API types): %v\n%s", label, err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, "unchecked") && !strings.Contains(line, `"ServiceMonitor"`) {
			t.Errorf("%s: k8scheck has no types for an object: %s", label, line)
		}
	}
	return m
}
