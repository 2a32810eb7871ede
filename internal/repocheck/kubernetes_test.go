package repocheck

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	k8syaml "sigs.k8s.io/yaml"
)

// kubeDir is deploy/kubernetes, relative to the repository's top folder.
const kubeDir = "deploy/kubernetes"

// manifests is what one kustomize build gives, decoded: the objects of
// the kinds pathupdate ships, each decoded strictly into the Kubernetes
// API's own Go types (an unknown or misspelt field, a wrong type is an
// error: the offline stand-in for a schema validator), and the two
// custom resources into the fields we use.
type manifests struct {
	deployments    map[string]*appsv1.Deployment
	services       map[string]*corev1.Service
	secrets        map[string]*corev1.Secret
	pdbs           map[string]*policyv1.PodDisruptionBudget
	scaledObjects  map[string]*scaledObject
	serviceMonitor map[string]*serviceMonitor
}

// customHead is the head of a custom resource: what every object has.
type customHead struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
}

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// manifests set.
type scaledObject struct {
	customHead
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		PollingInterval int `json:"pollingInterval"`
		CooldownPeriod  int `json:"cooldownPeriod"`
		Advanced        struct {
			HorizontalPodAutoscalerConfig struct {
				Behavior map[string]any `json:"behavior"`
			} `json:"horizontalPodAutoscalerConfig"`
			ScalingModifiers struct {
				Formula    string `json:"formula"`
				Target     string `json:"target"`
				MetricType string `json:"metricType"`
			} `json:"scalingModifiers"`
		} `json:"advanced"`
		Triggers []struct {
			Type     string            `json:"type"`
			Name     string            `json:"name"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the manifests set.
type serviceMonitor struct {
	customHead
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kustomizeBuild runs `kustomize build` (kustomize's own library) on
// path, a folder under deploy/kubernetes given relative to it, over an
// in-memory copy of deploy/kubernetes. The example overlay's secret
// files are never committed, so the copy gets made-up ones; extra adds
// or replaces files (relative to deploy/kubernetes) before the build.
func kustomizeBuild(t *testing.T, path string, extra map[string]string) []byte {
	t.Helper()
	top := root(t)
	mem := filesys.MakeFsInMemory()
	put := func(rel string, data []byte) {
		p := filepath.Join("/", kubeDir, rel)
		if err := mem.MkdirAll(filepath.Dir(p)); err != nil {
			t.Fatal(err)
		}
		if err := mem.WriteFile(p, data); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(filepath.Join(top, kubeDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(top, kubeDir), p)
		put(rel, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"wechat-appsecret", "gateway-token", "nats-password"} {
		put("overlays/example/secrets/"+f, []byte("made-up-"+f+"-0123456789abcdef0123456789abcdef\n"))
	}
	for rel, data := range extra {
		put(rel, []byte(data))
	}
	// kustomize keeps its OpenAPI schema in package-level variables that it
	// fills lazily without a lock, so two builds at once race; the parallel
	// tests take turns here.
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/", kubeDir, path))
	if err != nil {
		t.Fatalf("kustomize build %s/%s: %v", kubeDir, path, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kustomizeMu serialises kustomize builds; see kustomizeBuild.
var kustomizeMu sync.Mutex

// decodeManifests splits a build's output into its documents and decodes
// each strictly by kind. A kind the repository does not ship is an error.
func decodeManifests(t *testing.T, out []byte) manifests {
	t.Helper()
	m := manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		secrets: map[string]*corev1.Secret{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		scaledObjects: map[string]*scaledObject{}, serviceMonitor: map[string]*serviceMonitor{},
	}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var head struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("a built document does not parse: %v", err)
		}
		var obj any
		switch head.Kind {
		case "Deployment":
			d := &appsv1.Deployment{}
			m.deployments[head.Metadata.Name], obj = d, d
		case "Service":
			s := &corev1.Service{}
			m.services[head.Metadata.Name], obj = s, s
		case "Secret":
			s := &corev1.Secret{}
			m.secrets[head.Metadata.Name], obj = s, s
		case "PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			m.pdbs[head.Metadata.Name], obj = p, p
		case "ScaledObject":
			s := &scaledObject{}
			m.scaledObjects[head.Metadata.Name], obj = s, s
		case "ServiceMonitor":
			s := &serviceMonitor{}
			m.serviceMonitor[head.Metadata.Name], obj = s, s
		default:
			t.Fatalf("%s %q: a kind this test does not check; teach it", head.Kind, head.Metadata.Name)
		}
		if err := k8syaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s %q does not match its schema: %v", head.Kind, head.Metadata.Name, err)
		}
	}
	return m
}

// TestKubernetesManifests builds the example overlay, alone and with the
// nats-jetstream KEDA component, and checks what it deploys against the
// binary: settings, ports, probe paths, secrets, the NATS chart's values
// and the autoscaler's view of the partitions.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	values := readNATSValues(t)
	for _, tt := range []struct {
		name  string
		extra map[string]string
	}{
		{"prometheus trigger", nil},
		{"nats-jetstream triggers", map[string]string{"overlays/with-jetstream/kustomization.yaml": "resources: [../example]\ncomponents: [../../components/keda-nats-jetstream]\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := "overlays/example"
			if tt.extra != nil {
				path = "overlays/with-jetstream"
			}
			m := decodeManifests(t, kustomizeBuild(t, path, tt.extra))
			for _, p := range checkManifests(m, values) {
				t.Error(p)
			}
		})
	}
}

// TestKubernetesCheckFails: each mistake the check is there for is
// found, so that a passing TestKubernetesManifests means something.
func TestKubernetesCheckFails(t *testing.T) {
	t.Parallel()
	values := readNATSValues(t)
	good := decodeManifests(t, kustomizeBuild(t, "overlays/example", nil))
	if p := checkManifests(good, values); len(p) > 0 {
		t.Fatalf("the unchanged example has problems: %v", p)
	}
	tests := []struct {
		name   string
		mutate func(m manifests)
		want   string
	}{
		{"unknown environment variable", func(m manifests) {
			c := &m.deployments["pathupdate-worker"].Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "PATHUPDATE_PARTITION", Value: "8"})
		}, "PATHUPDATE_PARTITION is not a setting"},
		{"unknown flag", func(m manifests) {
			c := &m.deployments["pathupdate-gateway"].Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "--partitions=8")
		}, "--partitions is not a setting of `pathupdate gateway`"},
		{"readiness path", func(m manifests) {
			m.deployments["pathupdate-worker"].Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/ready"
		}, "readiness probe"},
		{"grace period", func(m manifests) {
			g := int64(20)
			m.deployments["pathupdate-worker"].Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds"},
		{"missing secret", func(m manifests) { delete(m.secrets, "pathupdate-nats") }, "pathupdate-nats"},
		{"more workers than partitions", func(m manifests) { m.scaledObjects["pathupdate-worker"].Spec.MaxReplicaCount = 12 }, "maxReplicaCount"},
		{"writable root", func(m manifests) {
			f := false
			m.deployments["pathupdate-gateway"].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem"},
	}
	for _, tt := range tests {
		m := decodeManifests(t, kustomizeBuild(t, "overlays/example", nil))
		tt.mutate(m)
		problems := strings.Join(checkManifests(m, values), "\n")
		if !strings.Contains(problems, tt.want) {
			t.Errorf("%s: problems %q lack %q", tt.name, problems, tt.want)
		}
	}
	// A misspelt field is refused by the strict decoding.
	if err := k8syaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"), &appsv1.Deployment{}); err == nil {
		t.Error("a Deployment with spec.replica (for replicas) decodes without error")
	}
	// A consumer missing from the nats-jetstream triggers.
	m := decodeManifests(t, kustomizeBuild(t, "overlays/with-jetstream", map[string]string{
		"overlays/with-jetstream/kustomization.yaml": "resources: [../example]\ncomponents: [../../components/keda-nats-jetstream]\n"}))
	so := m.scaledObjects["pathupdate-worker"]
	so.Spec.Triggers = so.Spec.Triggers[:len(so.Spec.Triggers)-1]
	if problems := strings.Join(checkManifests(m, values), "\n"); !strings.Contains(problems, "pathupdate-p7") {
		t.Errorf("a partition without a trigger: problems %q do not name pathupdate-p7", problems)
	}
}
