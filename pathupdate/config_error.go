package pathupdate

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// FieldError is one setting of a config that cannot work. Every Validate
// of this module's configs returns FieldErrors (wrapped with the package's
// name, joined when there are several), so that a caller that took the
// value from somewhere else (a flag, an environment variable, a file) can
// find each with errors.As or FieldErrorsOf and name its own source
// instead of the Go field. Problem never holds a secret's value.
type FieldError struct {
	// Field is the field's name from the config that was validated; a
	// field of a nested config is dotted ("Retry.MaxAttempts",
	// "Breaker.OpenMax").
	Field string
	// Problem is the value (never a secret's), what is wrong with it and
	// the fix, e.g. `0s is too short: use at least 1s (default 20s)`.
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// FieldErrors gathers the problems of one Validate call. The zero value
// with Prefix set is ready to use.
type FieldErrors struct {
	// Prefix is put before each error: the package and the config's type,
	// e.g. "worker: Config." gives "worker: Config.AckWait: 0s is too
	// short: ...".
	Prefix string
	errs   []error
}

// Add records that field has the problem format describes.
func (f *FieldErrors) Add(field, format string, args ...any) {
	f.AddError(&FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// AddError records err, a *FieldError or an error wrapping one (a
// sentinel can be wrapped with it: fmt.Errorf("%w: %w", ErrX, fe)).
func (f *FieldErrors) AddError(err error) {
	if f.Prefix != "" {
		err = fmt.Errorf("%s%w", f.Prefix, err)
	}
	f.errs = append(f.errs, err)
}

// Nest records the errors of a nested config's Validate under parent: a
// FieldError "MaxAttempts" of retry.Policy becomes "Retry.MaxAttempts" of
// the config that holds the policy in its field Retry. Errors that hold no
// FieldError are kept as they are.
func (f *FieldErrors) Nest(parent string, err error) {
	for _, e := range leaves(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			f.errs = append(f.errs, e)
			continue
		}
		f.AddError(&FieldError{Field: parent + "." + fe.Field, Problem: fe.Problem})
	}
}

// Err returns the recorded errors joined, nil when there are none.
func (f *FieldErrors) Err() error { return errors.Join(f.errs...) }

// FieldErrorsOf returns every FieldError in err (joined errors included),
// in order.
func FieldErrorsOf(err error) []*FieldError {
	var out []*FieldError
	for _, e := range leaves(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe)
		}
	}
	return out
}

// leaves splits err at every errors.Join (or other multi-error) into the
// errors that are not such a list.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// ListenAddrProblem says what is wrong with addr as an address to listen
// on (host:port, the host may be empty, port 0 picks a free one); "" when
// nothing is. The servers of this module (gateway, health) share it.
func ListenAddrProblem(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr == nil && n >= 0 && n <= 65535 {
			return ""
		}
	}
	return fmt.Sprintf("%q: use host:port, e.g. 127.0.0.1:9090 (port 0 picks a free one)", addr)
}
