package sandbox_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/pathupdate/pathupdate/sandbox"
)

func TestLoadOrders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      string // a substring of the error, "" for none
	}{
		{"empty", "", map[string]string{}, ""},
		{"blank", " \n\n", map[string]string{}, ""},
		{"lines", "{\"waybill_id\":\"A\",\"token\":\"ta\"}\n\n  {\"waybill_id\":\"B\",\"token\":\"tb\",\"extra\":1}\n", map[string]string{"A": "ta", "B": "tb"}, ""},
		{"lines no final newline", `{"waybill_id":"A","token":"ta"}`, map[string]string{"A": "ta"}, ""},
		{"array", "[\n {\"waybill_id\":\"A\",\"token\":\"ta\"},\n {\"waybill_id\":\"B\",\"token\":\"tb\"}\n]\n", map[string]string{"A": "ta", "B": "tb"}, ""},
		{"empty array", "[]", map[string]string{}, ""},
		{"same twice", "{\"waybill_id\":\"A\",\"token\":\"t\"}\n{\"waybill_id\":\"A\",\"token\":\"t\"}", map[string]string{"A": "t"}, ""},
		{"line not JSON", "{\"waybill_id\":\"A\",\"token\":\"ta\"}\nA,ta\n", nil, "line 2"},
		{"line waybill missing", "{\"waybill_id\":\"A\",\"token\":\"ta\"}\n\n{\"token\":\"t\"}", nil, "line 3: waybill_id"},
		{"line token empty", "{\"waybill_id\":\"A\",\"token\":\"\"}", nil, "line 1: token"},
		{"line wrong type", "{\"waybill_id\":5,\"token\":\"t\"}", nil, "line 1"},
		{"conflict", "{\"waybill_id\":\"A\",\"token\":\"t1\"}\n{\"waybill_id\":\"A\",\"token\":\"t2\"}", nil, "line 2: waybill \"A\" already given on line 1"},
		{"array element bad", "[\n {\"waybill_id\":\"A\",\"token\":\"ta\"},\n\n {\"waybill_id\":\"B\"}\n]", nil, "line 4: token"},
		{"array element not object", "[\n {\"waybill_id\":\"A\",\"token\":\"ta\"},\n \"B\"\n]", nil, "line 3"},
		{"array syntax", "[\n {\"waybill_id\":\"A\",\"token\":\"ta\"},\n {\"waybill_id\":}\n]", nil, "line 3"},
		{"array unclosed", "[\n {\"waybill_id\":\"A\",\"token\":\"ta\"}\n", nil, "line"},
		{"array trailing", "[]\nx", nil, "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sandbox.LoadOrders(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestLoadOrdersReadError(t *testing.T) {
	t.Parallel()
	if _, err := sandbox.LoadOrders(iotest.ErrReader(fmt.Errorf("disk gone"))); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("error %v, want the read error", err)
	}
}
