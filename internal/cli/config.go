package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/pathupdate/pathupdate/pathupdate"
	"github.com/urfave/cli/v3"
	"go.yaml.in/yaml/v4"
)

// The config file.
//
// Every setting that has an environment variable can also be written in an
// optional YAML file named by --config or PATHUPDATE_CONFIG, under its
// flag's long name:
//
//	nats-url: [nats://nats-1:4222, nats://nats-2:4222]
//	creds: /etc/pathupdate/worker.creds
//	ack-wait: 30s
//	replicas: 3
//
// A value is the text its flag would take (a list is joined with commas,
// for nats-url). Precedence is flag > environment > file > default: the
// file gives each flag one more value source after its environment
// variables, which is how urfave/cli chains sources. Per-invocation
// arguments (--waybill, --file, --yes, ...) have no environment variable
// and cannot be set in the file: a file shared by every command must not
// filter or confirm anything by itself. A key that is no setting of any
// command is an error (a typo would otherwise be ignored); a setting of
// another command is ignored, so one file serves the worker, the gateway,
// publish and the deadletter commands alike.

const (
	configFlagName = "config"
	configEnv      = "PATHUPDATE_CONFIG"
	// settingsKey holds the root command's *settingSources in its
	// Metadata, for --print-config.
	settingsKey = "pathupdate.settings"
)

// Where a setting's value came from.
const (
	originDefault = "default"
	originFlag    = "flag"
	originEnv     = "env"
	originFile    = "file"
)

// origin is where a setting's value came from: originFlag, originEnv (with
// the variable) or originFile (with the path); originDefault when unset.
type origin struct {
	kind   string
	detail string // env var name or file path
}

func (o origin) String() string {
	if o.detail == "" {
		return o.kind
	}
	return o.kind + " " + o.detail
}

// configFile is a loaded config file: keys (flag names) to values, as
// text.
type configFile struct {
	path   string
	values map[string]string
}

// loadConfigFile reads path. known tells which keys are settings.
func loadConfigFile(path string, known func(string) bool) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config (%s): %w", configEnv, err)
	}
	values, err := parseConfig(data, known)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return &configFile{path: path, values: values}, nil
}

// parseConfig reads a flat YAML mapping of scalars (or lists of scalars).
// Values are taken as written (the node's text), so YAML's own typing
// never changes one: "0755" stays "0755", "yes" stays "yes" and a flag
// refuses it by name.
func parseConfig(data []byte, known func(string) bool) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	values := map[string]string{}
	seen := map[string]bool{}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return values, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want one mapping of settings (key: value lines)", m.Line)
	}
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		switch {
		case k.Kind != yaml.ScalarNode:
			errs = append(errs, fmt.Errorf("line %d: a key must be a setting's name", k.Line))
			continue
		case !known(key):
			errs = append(errs, fmt.Errorf("line %d: %q is not a setting: keys are the long flag names of settings with an "+
				"environment variable (e.g. nats-url, ack-wait); see README, Configuration reference", k.Line, key))
			continue
		}
		if seen[key] {
			errs = append(errs, fmt.Errorf("line %d: %q is given twice", k.Line, key))
			continue
		}
		seen[key] = true
		val, err := nodeText(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %w", v.Line, key, err))
			continue
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue // "key:" with nothing after it: not set
		}
		values[key] = val
	}
	return values, errors.Join(errs...)
}

func nodeText(v *yaml.Node) (string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		return v.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				return "", errors.New("a list may hold plain values only")
			}
			parts = append(parts, e.Value)
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("give a plain value (or a list, for nats-url), not a mapping")
}

// configPathFromArgs finds --config in the command line before parsing.
// It has to: the global flags take their environment and file values when
// the root command is parsed, before a subcommand's arguments are, so
// `pathupdate worker --config F` would otherwise reach the file too late
// for them. The last --config wins, as in flag parsing; "--" ends the
// flags.
func configPathFromArgs(args []string) (path string, found bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != configFlagName {
			continue
		}
		if hasVal {
			path, found = val, true
		} else if i+1 < len(args) {
			path, found = args[i+1], true
			i++
		}
	}
	return path, found
}

// settingSources gives every setting of root its config file source and
// records where each value came from, for --print-config.
type settingSources struct {
	file *configFile // nil without a config file

	mu      sync.Mutex
	pending map[string]origin     // flag name -> source whose value is being set
	origins map[string]origin     // flag name -> where its value came from
	secrets map[string]secretRead // secret file path -> what reading it gave
}

// secretRead is what reading a secret file gave; first is true for the
// first caller only, which warns.
type secretRead struct {
	secret  pathupdate.Secret
	exposed bool
	err     error
	first   bool
}

// secretFile reads the secret file at path with read, once per run: the
// checks before a start and the start itself read the same file, and a
// warning about it is given once.
func (s *settingSources) secretFile(path string, read func(string) (pathupdate.Secret, bool, error)) secretRead {
	if s == nil {
		r := secretRead{first: true}
		r.secret, r.exposed, r.err = read(path)
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.secrets[path]; ok {
		r.first = false
		return r
	}
	r := secretRead{first: true}
	r.secret, r.exposed, r.err = read(path)
	if s.secrets == nil {
		s.secrets = map[string]secretRead{}
	}
	s.secrets[path] = r
	return r
}

// useSettings loads the config file (named in args, else by
// PATHUPDATE_CONFIG) and wires the value sources of every flag of root.
// args are the command line without the program name.
func useSettings(root *cli.Command, args []string) error {
	s := &settingSources{pending: map[string]origin{}, origins: map[string]origin{}}
	path, found := configPathFromArgs(args)
	if !found {
		path = os.Getenv(configEnv)
	}
	if path != "" {
		known := settingNames(root)
		f, err := loadConfigFile(path, func(k string) bool { return known[k] })
		if err != nil {
			return err
		}
		s.file = f
	}
	walkFlags(root, s.attach)
	checkBeforeAction(root)
	if root.Metadata == nil {
		root.Metadata = map[string]any{}
	}
	root.Metadata[settingsKey] = s
	return nil
}

// checkBeforeAction makes every command that runs something check its
// settings first (checkSettings), so that a wrong one fails before
// anything connects or listens. --print-config prints first and checks
// after.
func checkBeforeAction(cmd *cli.Command) {
	for _, sub := range cmd.Commands {
		checkBeforeAction(sub)
	}
	if cmd.Action == nil {
		return
	}
	prev := cmd.Before
	cmd.Before = func(ctx context.Context, c *cli.Command) (context.Context, error) {
		if prev != nil {
			var err error
			if ctx, err = prev(ctx, c); err != nil {
				return ctx, err
			}
		}
		if hasFlag(c, "print-config") && c.Bool("print-config") {
			return ctx, nil
		}
		return ctx, checkSettings(c)
	}
}

// settingsOf returns the sources useSettings wired, or nil.
func settingsOf(cmd *cli.Command) *settingSources {
	s, _ := cmd.Root().Metadata[settingsKey].(*settingSources)
	return s
}

// walkFlags calls fn for every flag of cmd and its subcommands.
func walkFlags(cmd *cli.Command, fn func(cli.Flag)) {
	for _, fl := range cmd.Flags {
		fn(fl)
	}
	for _, sub := range cmd.Commands {
		walkFlags(sub, fn)
	}
}

// isSetting: a flag with an environment variable is a setting; the
// others are arguments of one invocation.
func isSetting(fl cli.Flag) bool {
	d, ok := fl.(cli.DocGenerationFlag)
	return ok && len(d.GetEnvVars()) > 0 && fl.Names()[0] != configFlagName
}

// settingNames are the keys a config file may hold.
func settingNames(root *cli.Command) map[string]bool {
	names := map[string]bool{}
	walkFlags(root, func(fl cli.Flag) {
		if isSetting(fl) {
			names[fl.Names()[0]] = true
		}
	})
	return names
}

// attach wraps fl's sources so that the one whose value is used is
// recorded, adds the file source to a setting, and records every value set
// (a Validator runs after each Set: from the command line or a source).
func (s *settingSources) attach(fl cli.Flag) {
	switch f := fl.(type) {
	case *cli.StringFlag:
		attachTyped(s, f)
	case *cli.BoolFlag:
		attachTyped(s, f)
	case *cli.IntFlag:
		attachTyped(s, f)
	case *cli.Int64Flag:
		attachTyped(s, f)
	case *cli.Uint64Flag:
		attachTyped(s, f)
	case *cli.FloatFlag:
		attachTyped(s, f)
	case *cli.DurationFlag:
		attachTyped(s, f)
	}
	// Other flag types (help) are no settings and have no sources.
}

func attachTyped[T any, C any, VC cli.ValueCreator[T, C]](s *settingSources, f *cli.FlagBase[T, C, VC]) {
	name := f.Name
	// urfave/cli skips an empty value of a flag that is neither a string
	// nor a bool and tries the next source: such a lookup sets nothing.
	var zero T
	emptyIsValue := false
	switch any(zero).(type) {
	case string, bool:
		emptyIsValue = true
	}
	chain := make([]cli.ValueSource, 0, len(f.Sources.Chain)+1)
	for _, src := range f.Sources.Chain {
		o := origin{kind: originEnv}
		if e, ok := src.(cli.EnvValueSource); ok && e.IsFromEnv() {
			o.detail = e.Key()
		}
		chain = append(chain, &trackedSource{ValueSource: src, s: s, name: name, origin: o, emptyIsValue: emptyIsValue})
	}
	if s.file != nil && isSetting(f) {
		chain = append(chain, &trackedSource{ValueSource: fileSource{s.file, name}, s: s, name: name,
			origin: origin{kind: originFile, detail: s.file.path}, emptyIsValue: emptyIsValue})
	}
	f.Sources = cli.ValueSourceChain{Chain: chain}
	prev := f.Validator
	f.Validator = func(v T) error {
		s.settled(name)
		if prev != nil {
			return prev(v)
		}
		return nil
	}
}

// settled: a value of name was just set; from the source that was looked
// up right before, or else from the command line.
func (s *settingSources) settled(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.pending[name]
	if !ok {
		o = origin{kind: originFlag}
	}
	delete(s.pending, name)
	s.origins[name] = o
}

// originOf says where the value of cmd's flag name came from.
func (s *settingSources) originOf(cmd *cli.Command, name string) origin {
	if !cmd.IsSet(name) {
		return origin{kind: originDefault}
	}
	if s == nil {
		return origin{kind: originFlag}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.origins[name]; ok {
		return o
	}
	return origin{kind: originFlag}
}

// trackedSource is a value source that notes, when it has a value to
// give, that the flag's next value comes from it. It keeps the
// environment variable visible to help and docs.
type trackedSource struct {
	cli.ValueSource
	s            *settingSources
	name         string
	origin       origin
	emptyIsValue bool
}

func (t *trackedSource) Lookup() (string, bool) {
	v, ok := t.ValueSource.Lookup()
	if ok && (v != "" || t.emptyIsValue) {
		t.s.mu.Lock()
		t.s.pending[t.name] = t.origin
		t.s.mu.Unlock()
	}
	return v, ok
}

// IsFromEnv and Key keep cli.EnvValueSource: help lists the variables.
func (t *trackedSource) IsFromEnv() bool {
	e, ok := t.ValueSource.(cli.EnvValueSource)
	return ok && e.IsFromEnv()
}

func (t *trackedSource) Key() string {
	if e, ok := t.ValueSource.(cli.EnvValueSource); ok {
		return e.Key()
	}
	return ""
}

// fileSource is one key of the config file.
type fileSource struct {
	f   *configFile
	key string
}

func (s fileSource) Lookup() (string, bool) {
	v, ok := s.f.values[s.key]
	return v, ok
}

func (s fileSource) String() string { return fmt.Sprintf("config file %q key %q", s.f.path, s.key) }
func (s fileSource) GoString() string {
	return fmt.Sprintf("fileSource{path:%q,key:%q}", s.f.path, s.key)
}
