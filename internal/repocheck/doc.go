// Package repocheck holds tests of the repository as a whole: that every
// relative link in its Markdown files resolves inside it, and that
// `make fuzz` runs every fuzz target the code defines.
//
// It has no code of its own and must not grow any: a check that needs a
// package's internals belongs in that package's tests.
package repocheck
