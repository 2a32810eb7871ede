// Package keyorder runs tasks in order per key and concurrently across
// keys: the fan-out deadletter purge uses to delete records several at
// once, a synchronous call per task. (Publishing events, `pathupdate
// publish`, the gateway and deadletter replay, uses pathupdate's own
// pipeline instead, which needs no goroutine per event.)
//
// A Runner starts a task only after every earlier task of its key has
// finished, runs at most Config.Concurrency keys at once and holds at most
// Config.Queue tasks that are not finished, so a producer feeding it
// blocks instead of piling up work. A task that fails holds back every
// later task of its key (a later event must not overtake an earlier one
// that was refused), or, with Config.HaltOnFailure, every task not yet
// begun.
//
// It must not know what a task does: it publishes nothing, retries
// nothing and never cancels a running task. What a held-back task means
// (counted, answered, left in place) is the caller's decision.
package keyorder
