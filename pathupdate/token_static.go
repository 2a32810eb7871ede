package pathupdate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// staticSource always hands out the same token.
type staticSource struct{ tok Secret }

// NewStaticTokenSource returns a TokenSource that always hands out tok,
// for deployments where a central token service owns the token. Invalidate
// does nothing: there is no other token to be had, and UpdatePath reports
// TokenInvalid when WeChat refuses it. An empty tok gives a TokenError of
// Kind ConfigBroken.
func NewStaticTokenSource(tok Secret) TokenSource { return &staticSource{tok: tok} }

func (s *staticSource) Token(ctx context.Context) (Secret, error) {
	if s.tok == "" {
		return "", &TokenError{Op: "static_token", Err: errors.New("the static access_token is empty"), kind: ConfigBroken}
	}
	return s.tok, nil
}

func (s *staticSource) Invalidate(context.Context, Secret) {}

// Format keeps fmt away from the token.
func (s *staticSource) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "pathupdate.staticTokenSource")
}

// fileSource reads the token a central token service writes to a file.
type fileSource struct {
	path string
	cfg  TokenConfig

	mu      sync.Mutex
	tok     Secret
	modTime time.Time
	size    int64
	stale   bool   // re-read on the next Token even if the file looks unchanged
	refused Secret // invalidated and not yet replaced in the file
}

// NewFileTokenSource returns a TokenSource that reads the token from the
// file at path (surrounding white space trimmed), for a central token
// service that writes it there. The file is re-read when its modification
// time or size changed, and after Invalidate. Writers should replace the
// file atomically (write a temporary file, rename it over). Of cfg only
// Now and Logger are used.
//
// Token errors have Kind ConfigBroken when the file is missing, unreadable
// or empty (nothing gets through until it is fixed), and TokenInvalid while
// the file still holds a token WeChat refused (the worker pauses until the
// token service writes a new one).
func NewFileTokenSource(path string, cfg TokenConfig) (TokenSource, error) {
	if path == "" {
		return nil, errors.New("pathupdate: token file path is empty: give the file a central token service writes the access_token to")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &fileSource{path: path, cfg: cfg}, nil
}

// Format keeps fmt away from the token.
func (s *fileSource) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "pathupdate.fileTokenSource{path: %s}", s.path)
}

func (s *fileSource) Token(ctx context.Context) (Secret, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("pathupdate: waiting for access_token: %w", err)
	}
	// Holding the lock through the read makes concurrent callers of a
	// changed file share one read.
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		return "", s.fileError(err)
	}
	if s.tok != "" && !s.stale && fi.ModTime().Equal(s.modTime) && fi.Size() == s.size {
		return s.tok, nil
	}
	tok, fi, err := s.read()
	if s.cfg.OnFetch != nil {
		s.cfg.OnFetch("file", err)
	}
	if err != nil {
		return "", err
	}
	if s.refused != "" && tok == s.refused {
		s.tok, s.stale = tok, true
		return "", &TokenError{Op: "token_file", Err: fmt.Errorf("%s still holds the access_token WeChat refused; waiting for the token service to replace it", s.path), kind: TokenInvalid}
	}
	if tok != s.tok {
		s.cfg.Logger.Debug().Str("path", s.path).Msg("access_token read from file")
	}
	s.tok, s.modTime, s.size, s.stale, s.refused = tok, fi.ModTime(), fi.Size(), false, ""
	return tok, nil
}

// read reads and trims the file; fi describes what was read (taken from
// the open file, so a rename between stat and read cannot mix them up).
func (s *fileSource) read() (Secret, os.FileInfo, error) {
	tok, fi, err := readSecretFile(s.path)
	if err != nil {
		return "", nil, s.fileError(err)
	}
	if tok == "" {
		return "", nil, s.fileError(errors.New("file is empty"))
	}
	return tok, fi, nil
}

func (s *fileSource) fileError(err error) error {
	return &TokenError{Op: "token_file", Err: fmt.Errorf("reading the access_token from %s: %w", s.path, err), kind: ConfigBroken}
}

func (s *fileSource) Invalidate(_ context.Context, tok Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok != "" && s.tok == tok {
		s.stale = true
		s.refused = tok
	}
}
