// Package assemble wires a worker from settings: the WeChat client and
// its token source (or a given Deliverer), the worker's config with its
// breaker and observer, and the dead-letter writer. `pathupdate worker`,
// the demo and the benchmarks build their workers here, so that what the
// demo shows and the benchmarks measure is what the command runs.
//
// Settings has WithDefaults and Validate like every config of the module;
// Validate reports pathupdate.FieldErrors named after Settings' fields
// ("Tokens.AppID", "Worker.Retry.MaxAttempts"), so that a caller that read
// them from flags can name the flag.
//
// It must not connect to anything, start the worker, read flags, files or
// the environment, or hold rules of its own: every check is the owning
// package's Validate.
package assemble
