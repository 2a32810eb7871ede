package repocheck

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ucli "github.com/urfave/cli/v3"
	"go.yaml.in/yaml/v4"
	corev1 "k8s.io/api/core/v1"

	"github.com/pathupdate/pathupdate/internal/cli"
	"github.com/pathupdate/pathupdate/internal/health"
	"github.com/pathupdate/pathupdate/internal/metrics"
	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/pathupdate/pathupdate/worker"
)

// runtimeEnv are environment variables the Go runtime reads, not
// pathupdate: allowed in a container next to the settings, as are the
// OpenTelemetry SDK's OTEL_* (docs/contract.md, Tracing).
var runtimeEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC"}

// Margins the grace periods must leave. The worker: after
// --shutdown-timeout it Naks what it held, unpins its partitions and
// writes its last history records (docs/scaling.md). The gateway gives
// requests in progress 15 s (gatewayShutdownTimeout in internal/cli).
const (
	workerHandOverMargin   = 15 * time.Second
	gatewayShutdownTimeout = 15 * time.Second
)

// natsValues is the part of the NATS Helm chart's values the check reads.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `yaml:"enabled"`
			Replicas int  `yaml:"replicas"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"fileStore"`
		} `yaml:"jetstream"`
		Nats struct {
			Port int `yaml:"port"`
		} `yaml:"nats"`
		Merge struct {
			Authorization struct {
				Users []struct {
					User     string `yaml:"user"`
					Password string `yaml:"password"`
				} `yaml:"users"`
			} `yaml:"authorization"`
		} `yaml:"merge"`
	} `yaml:"config"`
	Container struct {
		Env map[string]struct {
			ValueFrom struct {
				SecretKeyRef struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
	} `yaml:"container"`
}

func readNATSValues(t *testing.T) natsValues {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root(t), kubeDir, "nats", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v natsValues
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatalf("nats/values.yaml does not parse: %v", err)
	}
	return v
}

// commandSettings are the flags of `pathupdate <name>` (its own and the
// global ones) by flag name, and their environment variables.
type commandSettings struct {
	flags map[string]ucli.Flag
	envs  map[string]string // env -> flag name
}

func settingsOfCommand(name string) (commandSettings, bool) {
	root := cli.New(strings.NewReader(""), io.Discard, io.Discard)
	s := commandSettings{flags: map[string]ucli.Flag{}, envs: map[string]string{}}
	add := func(fls []ucli.Flag) {
		for _, fl := range fls {
			n := fl.Names()[0]
			s.flags[n] = fl
			if d, ok := fl.(ucli.DocGenerationFlag); ok {
				for _, e := range d.GetEnvVars() {
					s.envs[e] = n
				}
			}
		}
	}
	for _, c := range root.Commands {
		if c.Name == name {
			add(root.Flags)
			add(c.Flags)
			return s, true
		}
	}
	return s, false
}

// container is one container's settings as the manifests give them.
type container struct {
	where    string // "Deployment/x container y", for messages
	command  string
	settings commandSettings
	set      map[string]string // flag name -> value
	spec     *corev1.Container
}

// value is a setting's value: as set, else the flag's default.
func (c container) value(name string) string {
	if v, ok := c.set[name]; ok {
		return v
	}
	if fl, ok := c.settings.flags[name]; ok {
		return fmt.Sprint(fl.Get())
	}
	return ""
}

// exportedMetrics are the names of the series a worker's /metrics has, by
// the labels each carries.
func exportedMetrics() (map[string][]string, error) {
	reg := prometheus.NewRegistry()
	lag := func(context.Context) (map[string]metrics.ConsumerLag, error) {
		return map[string]metrics.ConsumerLag{worker.ConsumerName(worker.ConsumerDefault, 0): {Pending: 1}}, nil
	}
	if _, err := metrics.New(metrics.Config{Registry: reg, ConsumerLag: lag, NoRuntimeCollectors: true}); err != nil {
		return nil, err
	}
	families, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, f := range families {
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		out[f.GetName()] = labels
	}
	return out, nil
}

var (
	metricName  = regexp.MustCompile(`pathupdate_[a-z_]+`)
	formulaName = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// checkManifests returns every way the manifests disagree with the binary
// or with each other.
func checkManifests(m manifests, values natsValues) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	byCommand := map[string][]container{}
	for name, d := range m.deployments {
		pod := &d.Spec.Template.Spec
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			bad("Deployment/%s: its selector does not select its own pods", name)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			bad("Deployment/%s: set automountServiceAccountToken: false (pathupdate never calls the Kubernetes API)", name)
		}
		if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			bad("Deployment/%s: set securityContext.runAsNonRoot: true", name)
		}
		for i := range pod.Containers {
			c := checkContainer(name, pod, &pod.Containers[i], m, bad)
			if c.command != "" {
				byCommand[c.command] = append(byCommand[c.command], c)
			}
		}
	}
	workers, gateways := byCommand["worker"], byCommand["gateway"]
	if len(workers) != 1 || len(gateways) != 1 {
		bad("want one Deployment running `pathupdate worker` and one running `pathupdate gateway`, have %d and %d", len(workers), len(gateways))
		return problems
	}
	w, g := workers[0], gateways[0]
	checkNATS(w, g, m, values, bad)
	checkServices(m, bad)
	checkScaling(w, m, bad)
	return problems
}

// checkContainer checks one container's command, settings, security,
// memory limit and secret files, and returns its settings.
func checkContainer(deployment string, pod *corev1.PodSpec, spec *corev1.Container, m manifests, bad func(string, ...any)) container {
	c := container{where: "Deployment/" + deployment + " container " + spec.Name, spec: spec, set: map[string]string{}}
	if len(spec.Args) == 0 {
		bad("%s: no args: the first names the pathupdate command", c.where)
		return container{}
	}
	var ok bool
	if c.settings, ok = settingsOfCommand(spec.Args[0]); !ok {
		bad("%s: `pathupdate %s` is not a command", c.where, spec.Args[0])
		return container{}
	}
	c.command = spec.Args[0]
	for _, e := range spec.Env {
		if slices.Contains(runtimeEnv, e.Name) || strings.HasPrefix(e.Name, "OTEL_") {
			continue
		}
		flag, ok := c.settings.envs[e.Name]
		if !ok {
			bad("%s: %s is not a setting of `pathupdate %s`", c.where, e.Name, c.command)
			continue
		}
		c.set[flag] = e.Value
	}
	for _, a := range spec.Args[1:] {
		name, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") {
			continue
		}
		if _, ok := c.settings.flags[name]; !ok {
			bad("%s: --%s is not a setting of `pathupdate %s`", c.where, name, c.command)
			continue
		}
		c.set[name] = v // flags win over the environment, as in the binary
	}
	if sc := spec.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("%s: set securityContext.readOnlyRootFilesystem: true and allowPrivilegeEscalation: false", c.where)
	}
	limit, hasLimit := spec.Resources.Limits[corev1.ResourceMemory]
	if _, hasRequest := spec.Resources.Requests[corev1.ResourceMemory]; !hasLimit || limit.IsZero() || !hasRequest {
		bad("%s: set a memory request and limit", c.where)
	}
	if !slices.ContainsFunc(spec.Env, func(e corev1.EnvVar) bool {
		return e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
			e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" && e.ValueFrom.ResourceFieldRef.ContainerName == spec.Name
	}) {
		bad("%s: set GOMEMLIMIT from its own limits.memory (downward API)", c.where)
	}
	// Every *-file setting names a file of a mounted secret that exists.
	for flag, p := range c.set {
		if strings.HasSuffix(flag, "-file") {
			if _, _, err := secretFileOf(pod, spec, p, m); err != nil {
				bad("%s: --%s %s: %v", c.where, flag, p, err)
			}
		}
	}
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		s, ok := m.secrets[v.Secret.SecretName]
		if !ok {
			bad("Deployment/%s: volume %s mounts Secret %s, which the manifests lack", deployment, v.Name, v.Secret.SecretName)
			continue
		}
		for _, it := range v.Secret.Items {
			if _, ok := s.Data[it.Key]; !ok {
				bad("Deployment/%s: Secret %s has no key %s", deployment, v.Secret.SecretName, it.Key)
			}
		}
	}
	return c
}

// secretFileOf finds the secret volume whose mount holds file p, and the
// Secret's key that becomes it.
func secretFileOf(pod *corev1.PodSpec, spec *corev1.Container, p string, m manifests) (secret, key string, err error) {
	for _, vm := range spec.VolumeMounts {
		if path.Dir(p) != vm.MountPath {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == path.Base(p) {
					if s, ok := m.secrets[v.Secret.SecretName]; !ok || s.Data[it.Key] == nil {
						return "", "", fmt.Errorf("Secret %s with key %s is not in the manifests", v.Secret.SecretName, it.Key)
					}
					return v.Secret.SecretName, it.Key, nil
				}
			}
		}
	}
	return "", "", fmt.Errorf("no mounted secret puts a file there")
}

// checkListener: the address setting listens beyond loopback on the
// container port named portName, and the probes ask that port.
func checkListener(c container, setting, portName string, bad func(string, ...any)) int32 {
	host, port, err := net.SplitHostPort(c.value(setting))
	if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
		bad("%s: --%s %q: listen on 0.0.0.0 so that the kubelet and Prometheus reach it", c.where, setting, c.value(setting))
	}
	var cp *corev1.ContainerPort
	for i := range c.spec.Ports {
		if c.spec.Ports[i].Name == portName {
			cp = &c.spec.Ports[i]
		}
	}
	if cp == nil || strconv.Itoa(int(cp.ContainerPort)) != port {
		bad("%s: container port %q must be --%s's port %s", c.where, portName, setting, port)
		return 0
	}
	for kind, p := range map[string]*corev1.Probe{"liveness": c.spec.LivenessProbe, "readiness": c.spec.ReadinessProbe, "startup": c.spec.StartupProbe} {
		if p == nil {
			continue
		}
		var target string
		switch {
		case p.HTTPGet != nil:
			target = p.HTTPGet.Port.String()
		case p.TCPSocket != nil:
			target = p.TCPSocket.Port.String()
		}
		if target != portName && target != port {
			bad("%s: the %s probe asks port %s, not %s (%s)", c.where, kind, target, portName, port)
		}
	}
	return cp.ContainerPort
}

func graceOf(pod *corev1.PodSpec) time.Duration {
	if pod.TerminationGracePeriodSeconds == nil {
		return 30 * time.Second // Kubernetes' default
	}
	return time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
}

// podOf finds the pod spec a container belongs to.
func podOf(c container, m manifests) *corev1.PodSpec {
	for _, d := range m.deployments {
		for i := range d.Spec.Template.Spec.Containers {
			if &d.Spec.Template.Spec.Containers[i] == c.spec {
				return &d.Spec.Template.Spec
			}
		}
	}
	return nil
}

// checkNATS: workers and gateway reach the NATS the chart installs, as the
// user whose password the chart takes from the same Secret, with stream
// replicas as many as its servers, on files.
func checkNATS(w, g container, m manifests, v natsValues, bad func(string, ...any)) {
	// The worker's probes, ports and grace period.
	checkListener(w, "http-addr", "metrics", bad)
	for kind, want := range map[string]string{"liveness": health.PathHealthz, "readiness": health.PathReadyz} {
		p := w.spec.LivenessProbe
		if kind == "readiness" {
			p = w.spec.ReadinessProbe
		}
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
			bad("%s: the %s probe must GET %s", w.where, kind, want)
		}
	}
	shutdown, err := time.ParseDuration(w.value("shutdown-timeout"))
	if err != nil {
		bad("%s: --shutdown-timeout %q: %v", w.where, w.value("shutdown-timeout"), err)
	}
	if grace := graceOf(podOf(w, m)); grace < shutdown+workerHandOverMargin {
		bad("%s: terminationGracePeriodSeconds %s leaves less than %s beyond --shutdown-timeout %s for the hand-over", w.where, grace, workerHandOverMargin, shutdown)
	}
	checkListener(g, "gateway-addr", "http", bad)
	pause := time.Duration(0)
	if l := g.spec.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		pause = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	if grace := graceOf(podOf(g, m)); grace <= gatewayShutdownTimeout+pause {
		bad("%s: terminationGracePeriodSeconds %s must exceed the gateway's %s for requests in progress plus the preStop pause %s", g.where, grace, gatewayShutdownTimeout, pause)
	}

	// The connection.
	if w.value("nats-url") != g.value("nats-url") || w.value("user") != g.value("user") {
		bad("the worker and the gateway connect to NATS differently: %q as %q, %q as %q", w.value("nats-url"), w.value("user"), g.value("nats-url"), g.value("user"))
	}
	port := v.Config.Nats.Port
	if port == 0 {
		port = 4222 // the chart's default
	}
	for _, u := range strings.Split(w.value("nats-url"), ",") {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "nats" || pu.Port() != strconv.Itoa(port) {
			bad("%s: NATS_URL %q: want nats://<the chart's service>:%d", w.where, u, port)
		}
	}
	if !v.Config.Cluster.Enabled || !v.Config.JetStream.Enabled || !v.Config.JetStream.FileStore.Enabled {
		bad("nats/values.yaml: enable config.cluster, config.jetstream and its fileStore")
	}
	if r := w.value("replicas"); r != strconv.Itoa(v.Config.Cluster.Replicas) || r != "3" {
		bad("%s: --replicas %s: want 3, as many as the chart's servers (%d)", w.where, r, v.Config.Cluster.Replicas)
	}
	users := v.Config.Merge.Authorization.Users
	if len(users) != 1 || users[0].User != w.value("user") {
		bad("nats/values.yaml: want one user, the workers' %q", w.value("user"))
		return
	}
	for _, c := range []container{w, g} {
		secret, key, err := secretFileOf(podOf(c, m), c.spec, c.value("password-file"), m)
		if err != nil {
			bad("%s: the NATS password file: %v", c.where, err)
			continue
		}
		env, ok := strings.CutPrefix(strings.Trim(users[0].Password, "<> "), "$")
		ref := v.Container.Env[env].ValueFrom.SecretKeyRef
		if !ok || ref.Name != secret || ref.Key != key {
			bad("nats/values.yaml: the user's password must come from Secret %s key %s, the file %s reads (have %q from %+v)", secret, key, c.where, users[0].Password, ref)
		}
	}
}

// selects: every label of selector is on labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkServices: Services, the ServiceMonitor and the PodDisruptionBudgets
// select what they are for, by ports that exist.
func checkServices(m manifests, bad func(string, ...any)) {
	for name, s := range m.services {
		found := false
		for _, d := range m.deployments {
			if !selects(s.Spec.Selector, d.Spec.Template.Labels) {
				continue
			}
			found = true
			for _, p := range s.Spec.Ports {
				if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool {
					return cp.Name == p.TargetPort.String() || strconv.Itoa(int(cp.ContainerPort)) == p.TargetPort.String()
				}) {
					bad("Service/%s: target port %s is not a port of Deployment/%s", name, p.TargetPort.String(), d.Name)
				}
			}
		}
		if !found {
			bad("Service/%s selects no Deployment's pods", name)
		}
	}
	if len(m.serviceMonitor) == 0 {
		bad("no ServiceMonitor: Prometheus would not scrape the workers")
	}
	for name, sm := range m.serviceMonitor {
		for _, e := range sm.Spec.Endpoints {
			ok := false
			for _, s := range m.services {
				ok = ok || selects(sm.Spec.Selector.MatchLabels, s.Labels) && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port })
			}
			if !ok || e.Path != health.PathMetrics {
				bad("ServiceMonitor/%s: endpoint port %q path %q: want a port of a Service it selects and path %s", name, e.Port, e.Path, health.PathMetrics)
			}
		}
	}
	for _, d := range m.deployments {
		if !slices.ContainsFunc(mapValues(m.pdbs), func(p string) bool {
			sel := m.pdbs[p].Spec.Selector
			return sel != nil && selects(sel.MatchLabels, d.Spec.Template.Labels)
		}) {
			bad("Deployment/%s has no PodDisruptionBudget", d.Name)
		}
	}
}

func mapValues[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// checkScaling: KEDA scales the worker Deployment up to one worker per
// partition, on the backlog of every partition.
func checkScaling(w container, m manifests, bad func(string, ...any)) {
	if len(m.scaledObjects) != 1 {
		bad("want one ScaledObject, have %d", len(m.scaledObjects))
		return
	}
	var so *scaledObject
	for _, s := range m.scaledObjects {
		so = s
	}
	if d, ok := m.deployments[so.Spec.ScaleTargetRef.Name]; !ok || podOf(w, m) != &d.Spec.Template.Spec {
		bad("ScaledObject/%s scales %q, not the worker Deployment", so.Metadata.Name, so.Spec.ScaleTargetRef.Name)
	}
	partitions, err := strconv.Atoi(w.value("partitions"))
	if err != nil {
		bad("%s: --partitions %q: %v", w.where, w.value("partitions"), err)
		return
	}
	if so.Spec.MaxReplicaCount != partitions {
		bad("ScaledObject/%s: maxReplicaCount %d: want --partitions (%d): a worker beyond the partitions holds none", so.Metadata.Name, so.Spec.MaxReplicaCount, partitions)
	}
	if so.Spec.MinReplicaCount < 1 {
		bad("ScaledObject/%s: minReplicaCount %d: keep at least one worker (the backlog figures come from the workers)", so.Metadata.Name, so.Spec.MinReplicaCount)
	}
	exported, err := exportedMetrics()
	if err != nil {
		bad("metrics: %v", err)
		return
	}
	prefix := w.value("consumer")
	want := map[string]bool{}
	for p := range partitions {
		want[worker.ConsumerName(prefix, p)] = true
	}
	var names []string
	for _, tr := range so.Spec.Triggers {
		switch tr.Type {
		case "prometheus":
			q := tr.Metadata["query"]
			for _, n := range metricName.FindAllString(q, -1) {
				if _, ok := exported[n]; !ok {
					bad("ScaledObject/%s: the query's %s is not a metric the worker exports", so.Metadata.Name, n)
				}
			}
			for _, n := range []string{"pathupdate_consumer_pending", "pathupdate_consumer_ack_pending", "max by (partition)"} {
				if !strings.Contains(q, n) {
					bad("ScaledObject/%s: the query %q lacks %s (one backlog figure per partition, from whichever worker reported it)", so.Metadata.Name, q, n)
				}
			}
			if !slices.Contains(exported["pathupdate_consumer_pending"], "partition") {
				bad("pathupdate_consumer_pending has no partition label")
			}
		case "nats-jetstream":
			c := tr.Metadata["consumer"]
			if !want[c] {
				bad("ScaledObject/%s: trigger %q reads consumer %q, which is not one of the %d partition consumers (or is read twice)", so.Metadata.Name, tr.Name, c, partitions)
			}
			delete(want, c)
			if tr.Metadata["stream"] != pathupdate.TraceStream {
				bad("ScaledObject/%s: trigger %q reads stream %q, not %s", so.Metadata.Name, tr.Name, tr.Metadata["stream"], pathupdate.TraceStream)
			}
			names = append(names, tr.Name)
		default:
			bad("ScaledObject/%s: a %s trigger: this check knows prometheus and nats-jetstream", so.Metadata.Name, tr.Type)
		}
	}
	if len(names) == 0 {
		return
	}
	for c := range want {
		bad("ScaledObject/%s: no trigger reads %s: its backlog would not count", so.Metadata.Name, c)
	}
	inFormula := formulaName.FindAllString(so.Spec.Advanced.ScalingModifiers.Formula, -1)
	slices.Sort(names)
	slices.Sort(inFormula)
	if !slices.Equal(names, inFormula) {
		bad("ScaledObject/%s: scalingModifiers.formula %q must add up every trigger %v", so.Metadata.Name, so.Spec.Advanced.ScalingModifiers.Formula, names)
	}
}
