package e2e

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// TestComposeFileDescribesTheCluster checks docker-compose.yml as far as a
// machine without a Docker engine can: three NATS nodes with JetStream,
// each routed to the other two; two or more workers with the same
// settings, R3 streams and every node in NATS_URL; the sandbox they
// deliver to; and a Dockerfile that builds the binary.
func TestComposeFileDescribesTheCluster(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   []string          `yaml:"depends_on"`
			Profiles    []string          `yaml:"profiles"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	var nodes, workers []string
	for name, s := range f.Services {
		switch {
		case strings.HasPrefix(s.Image, "nats:"):
			nodes = append(nodes, name)
		case slices.Equal(s.Command, []string{"worker"}):
			workers = append(workers, name)
		}
	}
	slices.Sort(nodes)
	if len(nodes) != 3 {
		t.Fatalf("NATS nodes %v, want 3", nodes)
	}
	for _, n := range nodes {
		cmd := strings.Join(f.Services[n].Command, " ")
		if !strings.Contains(cmd, "--jetstream") || !strings.Contains(cmd, "--cluster_name pathupdate") {
			t.Errorf("%s: %q lacks JetStream or the cluster name", n, cmd)
		}
		for _, other := range nodes {
			if other != n && !strings.Contains(cmd, "nats://"+other+":6222") {
				t.Errorf("%s does not route to %s: %q", n, other, cmd)
			}
		}
	}
	if len(workers) < 2 {
		t.Fatalf("workers %v, want two or more", workers)
	}
	first := f.Services[workers[0]].Environment
	for _, w := range workers {
		env := f.Services[w].Environment
		if !maps.Equal(env, first) {
			t.Errorf("worker %s's settings differ from %s's: workers share the work only with the same settings", w, workers[0])
		}
		if env["PATHUPDATE_REPLICAS"] != "3" {
			t.Errorf("worker %s: PATHUPDATE_REPLICAS %q, want 3 on a 3-node cluster", w, env["PATHUPDATE_REPLICAS"])
		}
		for _, n := range nodes {
			if !strings.Contains(env["NATS_URL"], "nats://"+n+":4222") {
				t.Errorf("worker %s: NATS_URL %q lacks %s", w, env["NATS_URL"], n)
			}
		}
		if f.Services[w].Build == nil {
			t.Errorf("worker %s is not built from the Dockerfile", w)
		}
	}
	sb, ok := f.Services["sandbox"]
	if !ok || len(sb.Command) == 0 || sb.Command[0] != "sandbox" {
		t.Fatal("no sandbox service running `pathupdate sandbox`")
	}
	if !strings.Contains(first["WECHAT_API_BASE"], "http://sandbox:") {
		t.Errorf("workers deliver to %q, not the sandbox", first["WECHAT_API_BASE"])
	}
	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docker), "./cmd/pathupdate") || !strings.Contains(string(docker), "ENTRYPOINT") {
		t.Error("Dockerfile does not build ./cmd/pathupdate into the entrypoint")
	}
}
