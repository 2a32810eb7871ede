package pathupdate

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// redactedText is what a Secret prints as, whatever asks.
const redactedText = "[redacted]"

// Secret holds a credential (app secret, access_token). It prints as
// "[redacted]" in every fmt verb (%v %s %q %x %d %#v ...), in JSON, as text
// and in zerolog and slog, so a Secret that ends up in a log call or an
// error by mistake does not leak. Only Reveal gives the value, and only the
// code that puts it on the wire calls it. It unmarshals from a plain JSON
// string, so config files can hold one.
//
// Gaps no method can close: fmt prints an unexported struct field of a
// string type without calling its methods (so types here that hold a Secret
// in an unexported field implement fmt.Formatter themselves), and
// encoding/json writes map keys of a string type as they are (never use a
// Secret as a map key).
type Secret string

// Reveal returns the credential itself. Call it only to put it on the wire.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (Secret) String() string { return redactedText }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return redactedText }

// Format implements fmt.Formatter so that no verb, %x and %d included,
// reaches the underlying string.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedText) }

// MarshalJSON implements json.Marshaler; zerolog's Interface/Any use it.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redactedText + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Secret) MarshalText() ([]byte, error) { return []byte(redactedText), nil }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redactedText) }

// MaxSecretFileSize bounds what ReadSecretFile takes in: an app secret or
// a bearer token is a short line; a bigger file is not one (a device such
// as /dev/zero, a log, the wrong path) and reading it whole could exhaust
// memory.
const MaxSecretFileSize = 4 << 10

// ErrSecretFileTooLarge is wrapped by ReadSecretFile's error for a file
// over MaxSecretFileSize.
var ErrSecretFileTooLarge = fmt.Errorf("more than %d bytes: a secret file holds just the secret", MaxSecretFileSize)

// ReadSecretFile reads a secret kept in the file at path, white space
// around it trimmed, reading no more than MaxSecretFileSize bytes (and one
// to tell). exposed reports that group or others may read the file, which
// a caller should warn about; a group that is how this process reads a
// file someone else owns (a Kubernetes secret volume: root's file, the
// pod's fsGroup) does not count. Errors name the path, never the content.
// The file token source reads its file the same way.
func ReadSecretFile(path string) (s Secret, exposed bool, err error) {
	s, fi, err := readSecretFile(path)
	if err != nil {
		return "", false, err
	}
	perm := fi.Mode().Perm()
	return s, perm&0o004 != 0 || perm&0o040 != 0 && !readsThroughGroup(fi), nil
}

// readSecretFile is ReadSecretFile, giving what the open file's Stat said
// (so a rename between a stat and the read cannot mix two files up).
func readSecretFile(path string) (Secret, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > MaxSecretFileSize {
		return "", nil, fmt.Errorf("%s: %w", path, ErrSecretFileTooLarge)
	}
	return Secret(strings.TrimSpace(string(b))), fi, nil
}
