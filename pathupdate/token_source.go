package pathupdate

import "fmt"

// Token source kinds, as settings name them (WECHAT_TOKEN_SOURCE /
// --token-source).
const (
	// TokenSourceStable is NewStableTokenSource: safe for many workers
	// sharing an app. The default.
	TokenSourceStable = "stable"
	// TokenSourceClassic is NewClassicTokenSource.
	TokenSourceClassic = "classic"
	// TokenSourceFile is NewFileTokenSource: a central token service keeps
	// the token in a file.
	TokenSourceFile = "file"
	// TokenSourceNone is NewNoTokenSource: no token at all, for a container
	// in WeChat Cloud Hosting calling through its open-interface service
	// (openinterface.go). No credentials.
	TokenSourceNone = "none"
)

// ParseTokenSource returns the token source kind v names
// (TokenSourceStable for ""), or an error saying which kinds there are.
// Every reader of a token-source setting uses it.
func ParseTokenSource(v string) (string, error) {
	switch v {
	case TokenSourceStable, "":
		return TokenSourceStable, nil
	case TokenSourceClassic, TokenSourceFile, TokenSourceNone:
		return v, nil
	}
	return "", fmt.Errorf("%q: use %s (safe for many workers), %s, %s, or %s (WeChat Cloud Hosting's open-interface service)",
		v, TokenSourceStable, TokenSourceClassic, TokenSourceFile, TokenSourceNone)
}

// TokenSourceConfig chooses a TokenSource by kind and configures it, for
// callers that take the kind as a setting.
type TokenSourceConfig struct {
	// Kind is TokenSourceStable (default), TokenSourceClassic,
	// TokenSourceFile or TokenSourceNone.
	Kind string
	// File is the token file of TokenSourceFile. Required for that kind,
	// ignored otherwise.
	File string
	// TokenConfig configures the stable and classic sources (AppID and
	// AppSecret required for them) and gives the file source its clock,
	// logger and OnFetch.
	TokenConfig
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c TokenSourceConfig) WithDefaults() TokenSourceConfig {
	if k, err := ParseTokenSource(c.Kind); err == nil {
		c.Kind = k
	}
	c.TokenConfig = c.TokenConfig.WithDefaults()
	return c
}

// Validate reports, as FieldErrors, what the chosen source cannot work
// without: the credentials for stable and classic, the file for file,
// nothing for none (which takes no credentials: Unused names those given).
func (c TokenSourceConfig) Validate() error {
	errs := FieldErrors{Prefix: "pathupdate: TokenSourceConfig."}
	kind, err := ParseTokenSource(c.Kind)
	switch {
	case err != nil:
		errs.Add("Kind", "%v", err)
	case kind == TokenSourceNone:
	case kind == TokenSourceFile:
		if c.File == "" {
			errs.Add("File", "empty: the %s token source reads the access_token from a file a central token service keeps current", TokenSourceFile)
		}
		if c.RefreshBefore < 0 {
			errs.Add("RefreshBefore", "%v: use a positive duration or 0 for the default %v", c.RefreshBefore, DefaultRefreshBefore)
		}
	default:
		c.TokenConfig.validate(&errs)
	}
	return errs.Err()
}

// New returns the TokenSource c describes (defaults filled in), or the
// error of Validate.
func (c TokenSourceConfig) New() (TokenSource, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Kind {
	case TokenSourceClassic:
		return NewClassicTokenSource(c.TokenConfig)
	case TokenSourceFile:
		return NewFileTokenSource(c.File, c.TokenConfig)
	case TokenSourceNone:
		return NewNoTokenSource(), nil
	}
	return NewStableTokenSource(c.TokenConfig)
}

// Unused names the settings c has that its kind does not use: the
// credentials and the token file with TokenSourceNone; nil when there
// are none. A caller warns with it: they are harmless, but a team that set them
// may believe the app secret is in use.
func (c TokenSourceConfig) Unused() []string {
	if k, _ := ParseTokenSource(c.Kind); k != TokenSourceNone {
		return nil
	}
	var unused []string
	if c.AppID != "" {
		unused = append(unused, "AppID")
	}
	if c.AppSecret != "" {
		unused = append(unused, "AppSecret")
	}
	if c.File != "" {
		unused = append(unused, "File")
	}
	return unused
}
