package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/pathupdate/pathupdate/sandbox"
)

// A test starts a sandbox with one order, fetches a stable access token,
// sends one trace event and checks what the sandbox received.
func Example() {
	srv := sandbox.NewServer(sandbox.Config{
		Orders: map[string]string{"SF1234567890": "order-token"},
	})
	defer srv.Close()
	c := srv.Client()

	resp, err := c.Post(srv.URL+"/cgi-bin/stable_token", "application/json", strings.NewReader(
		`{"grant_type":"client_credential","appid":"`+sandbox.DefaultAppID+`","secret":"`+sandbox.DefaultAppSecret+`"}`))
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	fmt.Println("expires_in:", tok.ExpiresIn)

	resp, err = c.Post(srv.URL+sandbox.PathUpdatePath+"?access_token="+url.QueryEscape(tok.AccessToken), "application/json",
		strings.NewReader(`{"token":"order-token","waybill_id":"SF1234567890","action_time":1700000000,"action_type":100001,"action_msg":"picked up"}`))
	if err != nil {
		panic(err)
	}
	var ans struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	fmt.Println("answer:", resp.StatusCode, ans.ErrCode, ans.ErrMsg)

	for _, call := range srv.Delivered("SF1234567890") {
		fmt.Println("delivered:", call.Seq, call.ActionType, call.ActionMsg)
	}
	// Output:
	// expires_in: 7200
	// answer: 200 0 ok
	// delivered: 1 100001 picked up
}

// Faults make the sandbox fail the way WeChat does; here every call is
// answered errcode -1 (system error).
func ExampleSandbox_SetFaults() {
	srv := sandbox.NewServer(sandbox.Config{AcceptAnyWaybill: true})
	defer srv.Close()
	srv.SetFaults(sandbox.Faults{SystemErrorRate: 1})

	q := url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DefaultAppID}, "secret": {sandbox.DefaultAppSecret}}
	resp, err := srv.Client().Get(srv.URL + "/cgi-bin/token?" + q.Encode())
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	resp, err = srv.Client().Post(srv.URL+sandbox.PathUpdatePath+"?access_token="+tok.AccessToken, "application/json",
		strings.NewReader(`{"token":"t","waybill_id":"W1","action_time":1700000000,"action_type":200001,"action_msg":"in transit"}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	calls := srv.Calls("W1")
	fmt.Println(len(calls), calls[0].HTTPStatus, calls[0].ErrCode, srv.Stats().ByErrcode[-1])
	// Output:
	// 1 200 -1 1
}
