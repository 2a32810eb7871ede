// Package pause pauses and resumes delivery for a whole deployment: every
// partition consumer of the trace stream and the consumer of unpartitioned
// messages, with JetStream's consumer pause (nats-server 2.11 or later,
// pathupdate.MinServerVersion). While a consumer is paused the server
// hands its messages to no worker: they stay in the stream, pending, and
// are delivered in stream order once the pause ends.
//
// A pause is recorded in the key-value bucket Bucket under the workers'
// consumer name prefix, and that record is the truth: Pause writes it and
// then pauses every consumer that exists; Resume deletes it and resumes
// them. Workers follow the record (Watch) and make every consumer agree
// with it (Apply): a consumer they create while a pause stands is created
// paused, and a consumer a crashed Pause or Resume left behind is put
// right within seconds. A pause therefore survives worker restarts and
// partitions created later, and ends only by Resume or at its time.
//
// Without a time a pause lasts until resumed: JetStream needs a time, so
// the consumers are paused until FarFuture, which State shows as "until
// resumed".
//
// The package must not deliver, ack or hold messages, decide anything
// about one event, or pause a consumer on its own initiative: it carries
// out an operator's pause. Read only reads.
package pause
