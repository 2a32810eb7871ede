package cli

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
)

// The settings of the packages whose Validate returns FieldErrors are
// mapped to flags by packageChecks (config_fields.go). The errors of the
// rest — a dead-letter Filter, the sandbox's Config — name Go fields
// (Filter.Waybill) in their text: each command maps the names its errors
// can carry to its flags here.
var (
	filterGoNames = map[string]string{
		"Filter.Waybill": "--waybill", "Filter.Reason": "--reason", "Filter.ErrCode": "--errcode", "Filter.Since": "--since",
	}
	// sandbox.Config.Faults reports its fields by their JSON names.
	sandboxGoNames = map[string]string{
		"Config.TokenTTL":                    "--token-ttl",
		"Config.Faults: system_error_rate":   "--system-error-rate",
		"Config.Faults: http_5xx_rate":       "--http-5xx-rate",
		"Config.Faults: latency":             "--latency",
		"Config.Faults: minute_quota":        "--minute-quota",
		"Config.Faults: daily_quota":         "--daily-quota",
		"Config.Faults: second_quota":        "--second-quota",
		"Config.Orders has an empty waybill": "--orders-file has an empty waybill",
	}
)

// goName matches a qualified Go field name in an error text.
var goName = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*\b`)

// flagNamed returns err with the Go field names of names replaced by their
// flags; errors.Is and errors.As still see err. An error that carries its
// field in a Field string (a typed field error) is mapped by that field
// too, so a package may move from text to typed errors without the command
// line noticing.
func flagNamed(err error, names map[string]string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	for phrase, flag := range names { // phrases first: "Config.Faults: latency"
		if strings.Contains(phrase, " ") {
			text = strings.ReplaceAll(text, phrase, flag)
		}
	}
	text = goName.ReplaceAllStringFunc(text, func(n string) string {
		if flag, ok := names[n]; ok {
			return flag
		}
		return n
	})
	if text == err.Error() {
		if flag, problem, ok := typedField(err, names); ok {
			text = flag + " " + problem
		}
	}
	if text == err.Error() {
		return err
	}
	return &flagNamedError{text: text, err: err}
}

// typedField finds, in err's chain, a struct with a string field Field
// that names one of names (qualified, or its last part), and returns the
// flag and the struct's Problem (or the error's own text).
func typedField(err error, names map[string]string) (flag, problem string, ok bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			continue
		}
		f := v.FieldByName("Field")
		if !f.IsValid() || f.Kind() != reflect.String {
			continue
		}
		for goName, fl := range names {
			if f.String() == goName || strings.HasSuffix(goName, "."+f.String()) {
				problem = e.Error()
				if p := v.FieldByName("Problem"); p.IsValid() && p.Kind() == reflect.String {
					problem = p.String()
				}
				return fl, problem, true
			}
		}
	}
	return "", "", false
}

type flagNamedError struct {
	text string
	err  error
}

func (e *flagNamedError) Error() string { return e.text }
func (e *flagNamedError) Unwrap() error { return e.err }
