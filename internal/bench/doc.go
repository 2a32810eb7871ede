// Package bench is pathupdate's benchmark harness: seven scenarios, each
// measured next to its reference in the same run on the same machine, so
// the figures that matter are ratios that survive a noisy, shared machine.
//
//  1. publish: Publisher.PublishLines vs raw jetstream PublishAsync of the
//     same bytes to a fresh trace stream of the same config;
//  2. pipeline overhead: a worker with an in-process API that answers at
//     once vs raw explicit-ack Consume of the same backlog, one consumer
//     per partition;
//  3. latency-bound: the sandbox over HTTP with a fixed latency, the
//     worker's delivered events/s vs Little's law (concurrency / latency),
//     per-waybill order checked from the sandbox's record;
//  4. the same with Zipf-skewed waybills, against the bound that also
//     counts the hottest waybill's events going one at a time;
//  5. end-to-end latency at a fixed offered load well under capacity, vs
//     a minimal pipeline (raw consume, call, ack) at the same load;
//  6. peak RSS of the real `pathupdate worker` binary draining a large
//     backlog, vs the 100 MiB budget;
//  7. the peer: the latency-bound job done with watermill and its NATS
//     JetStream subscriber plus Retry middleware (bench/peer, a separate
//     Go module), vs scenario 3.
//
// cmd/pathupdate-bench is the command (`make bench`, `make bench-quick`);
// docs/benchmarks.md explains the method and holds the latest table.
//
// The package only measures: it must not change how the product behaves,
// and nothing in the product may import it. It keeps no package-level
// state.
package bench
