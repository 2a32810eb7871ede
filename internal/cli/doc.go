// Package cli is the pathupdate command line: it parses flags and
// environment variables into the packages' Config structs, wires the
// packages together and writes to the io.Writers it is given, so tests run
// commands in-process and capture their output.
//
// It must not hold product logic: anything a Go caller could want (publish,
// deliver, dead-letter operations, the sandbox) lives in its own package and
// is only called from here. Nor may it hold a copy of a package's rules: a
// setting is checked by the Validate of the package whose config it fills,
// and the CLI only maps each pathupdate.FieldError to its flag, environment
// variable and config file (config_fields.go).
package cli
