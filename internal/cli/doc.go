// Package cli is the pathupdate command line: it parses flags and
// environment variables into the packages' Config structs, wires the
// packages together and writes to the io.Writers it is given, so tests run
// commands in-process and capture their output.
//
// It must not hold product logic: anything a Go caller could want (publish,
// deliver, dead-letter operations, the sandbox) lives in its own package and
// is only called from here.
package cli
