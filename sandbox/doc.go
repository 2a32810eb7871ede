// Package sandbox is a local stand-in for the parts of the WeChat server API
// that pathupdate talks to, in the spirit of net/http/httptest: a real HTTP
// server (NewServer starts one on 127.0.0.1:0) that issues access tokens,
// answers logistics.updatePath the way WeChat documents it, injects faults on
// demand and records every call so a test can check order, duplicates and
// retries. `pathupdate sandbox`, `pathupdate demo`, and every test and
// benchmark of the project use it.
//
// # What it emulates
//
//   - GET /cgi-bin/token (classic access token): every call issues a new
//     token; the one it replaces stays valid for Config.ClassicGrace
//     (5 min, as WeChat guarantees), then answers 40001.
//   - POST /cgi-bin/stable_token: the same token while it is valid, renewed
//     by a plain call in its last Config.StableRenewWindow (WeChat renews
//     5 min early), separate from the classic token. force_refresh:true
//     issues a new token at most 20 times a (Beijing) day, beyond that 45009
//     (checked first). A force refresh less than 30 s after the previous one
//     does not refresh and is answered like a plain call, not counted: WeChat
//     documents "请保证调用时间隔至少为30s，否则不会刷新" (keep 30 s between
//     calls, otherwise it does not refresh) and no errcode for it. The
//     replaced stable token stays valid for ClassicGrace (WeChat's documents
//     only say it "becomes invalid"; the grace is this sandbox's assumption).
//   - POST /cgi-bin/express/delivery/path/update (another method: 43002):
//     access_token checks (41001, 40001, 42001), then faults (outage, HTTP 5xx, latency, minute
//     quota 45011, system error -1), then the body (44002 empty, 47001 data
//     format, 40199 waybill not found, 9300507 incorrect token), else
//     {"errcode":0,"errmsg":"ok"}. Error answers carry a " rid: ..." suffix
//     in errmsg like WeChat's, so nobody compares errmsg strings. Every
//     call that passes the access_token check is recorded as a Call with
//     its answer, whatever that was.
//   - POST /tcb/invokecloudfunction?access_token=..&env=..&name=.. (the
//     Cloud Call): the invoke API and the repo's cloud function
//     (cloudfunctions/updatePath) in one. The invoke API checks the
//     method (43002), the access_token (as path/update), env and name
//     (40101 missing, Config.CloudBaseDisabled 85088, an env other than
//     Config.CloudEnv -501005, a name other than Config.CloudFunction
//     -501009); then the same faults, body checks (on the camelCase
//     spelling token, waybillId, actionTime, actionType, actionMsg) and
//     order checks as path/update run, and the answer is
//     {"errcode":0,"errmsg":"ok","resp_data":"{\"errCode\":N,\"errMsg\":\"...\"}"}.
//     An empty body is the invoke API's 44002; Faults.InvokeErrorRate
//     injects an invoke-level errcode (-1 by default, or
//     Faults.InvokeErrcode), while Faults.SystemErrorRate and MinuteQuota
//     come back as the function's errCode. Calls are recorded in the same
//     record as path/update's, with Call.Via "cloudcall", so order and
//     duplicate checks see either transport.
//   - With Config.OpenInterface (`pathupdate sandbox --open-interface`),
//     path/update plays WeChat Cloud Hosting's open-interface service
//     instead: it takes calls without access_token, refuses those with one
//     (40001), and answers on demand what the service answers when it is
//     not set up or not ready (41001, 85107, 85112, 85113, 48001, HTTP 502,
//     an error_type): SetOpenInterfaceAnswer, PUT /sandbox/open-interface
//     (openinterface.go). Calls it passes on are recorded with Call.Via
//     "open_interface".
//
// The request body is checked by this package's own code, never by package
// pathupdate's validation: a bug there must show up as a rejected call here.
// The sandbox is stricter than WeChat documents where WeChat is silent: an
// action_type outside the documented set, an action_time <= 0, or an empty
// token, waybill_id or action_msg are answered 47001.
//
// # What it does not emulate
//
// It is not WeChat. No TLS, IP whitelist (40164), API authorisation
// (48001), daily quota of path/update or of the classic token endpoint,
// the 10,000/min limit of stable_token, Cloud Base itself (the cloud call
// is answered as if the repo's function were deployed; the 5 s limit of
// HTTP-triggered functions is not enforced), the Order Placement Event push, or anything of the order's life (an order is
// just a waybill id and its token). Outage and HTTP 5xx faults hit
// path/update only, never the token endpoints. The admin endpoints under
// /sandbox/ have no authentication: run it on a trusted address only.
//
// # Admin endpoints
//
// Tests in other processes, the demo and users drive it over HTTP:
//
//	POST /sandbox/orders          [{"waybill_id":"W","token":"T"},...] or JSON lines; registers
//	GET  /sandbox/orders          lists the orders
//	GET  /sandbox/faults          the current Faults
//	PUT  /sandbox/faults          replaces them; "outage_seconds":N sets outage_until = now+N s
//	POST /sandbox/revoke-tokens   every issued access token becomes invalid now
//	GET  /sandbox/received        {"waybills":{"W":[Call,...]}}; ?waybill=W, ?delivered=1
//	GET  /sandbox/stats           Stats
//	POST /sandbox/reset           forgets the record and the counts (not orders, not tokens)
//
// The package keeps no package-level mutable state; the clock is Config.Now and the
// logger Config.Logger.
package sandbox
