package pathupdate_test

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"testing"

	"github.com/pathupdate/pathupdate/pathupdate"
)

func TestMaskPhones(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"no digits", "快递员已揽件", "快递员已揽件"},
		{"alone", "13800138000", "138****8000"},
		{"in Chinese text", "派件员张三13800138000正在派送", "派件员张三138****8000正在派送"},
		{"after a label", "tel:19912345678.", "tel:199****5678."},
		{"two numbers", "13800138000 / 15912345678", "138****8000 / 159****5678"},
		{"every second digit 3-9", "13000000000 14000000000 15000000000 16000000000 17000000000 18000000000 19000000000",
			"130****0000 140****0000 150****0000 160****0000 170****0000 180****0000 190****0000"},
		{"second digit 2 is no mobile", "12800138000", "12800138000"},
		{"second digit 0 is no mobile", "10086 10000000000", "10086 10000000000"},
		{"first digit not 1", "23800138000", "23800138000"},
		{"ten digits", "1380013800", "1380013800"},
		{"twelve digits: part of a longer number", "138001380001", "138001380001"},
		{"order number containing a mobile", "单号 9913800138000123", "单号 9913800138000123"},
		{"country code +86", "+8613800138000", "+86138****8000"},
		{"country code 0086", "008613800138000", "0086138****8000"},
		{"country code with a space", "+86 13800138000", "+86 138****8000"},
		{"86 before another long run is not a country code", "8612800138000", "8612800138000"},
		{"grouped by spaces", "电话 138 0013 8000 请联系", "电话 138 **** 8000 请联系"},
		{"grouped by hyphens", "138-0013-8000", "138-****-8000"},
		{"grouped with +86", "+86 138-0013-8000", "+86 138-****-8000"},
		{"mixed separators are not grouped", "138-0013 8000", "138-0013 8000"},
		{"two spaces are not grouped", "138  0013  8000", "138  0013  8000"},
		{"grouped followed by a digit", "138 0013 80001", "138 0013 80001"},
		{"grouped, wrong group sizes", "1380 013 8000", "1380 013 8000"},
		{"grouped, not a mobile", "128 0013 8000", "128 0013 8000"},
		{"grouped at the very end, short", "138 0013 800", "138 0013 800"},
		{"letters around", "SF13800138000x", "SF138****8000x"},
		{"full-width digits are not recognised", "１３８００１３８０００", "１３８００１３８０００"},
		{"invalid UTF-8 kept", "\xff13800138000\xfe", "\xff138****8000\xfe"},
		{"already masked", "138****8000", "138****8000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := pathupdate.MaskPhones(tt.in)
			if got != tt.want {
				t.Errorf("MaskPhones(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := pathupdate.MaskPhones(got); again != got {
				t.Errorf("not idempotent: MaskPhones(%q) = %q", got, again)
			}
		})
	}
}

func TestMaskPhonesAllocatesNothingWithoutAPhone(t *testing.T) {
	s := "快递员已揽件, waybill SF1234567890, errcode 40199, 2026-01-02T15:04:05Z"
	if n := testing.AllocsPerRun(100, func() { _ = pathupdate.MaskPhones(s) }); n != 0 {
		t.Fatalf("%v allocations for text without a phone number, want 0", n)
	}
}

func TestMaskPhonesError(t *testing.T) {
	t.Parallel()
	if pathupdate.MaskPhonesError(nil) != nil {
		t.Fatal("MaskPhonesError(nil) is not nil")
	}
	base := fmt.Errorf("cloud function says: bad action_msg 13800138000: %w", fs.ErrInvalid)
	err := pathupdate.MaskPhonesError(base)
	if want := "cloud function says: bad action_msg 138****8000: invalid argument"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, fs.ErrInvalid) {
		t.Fatal("the chain is lost: errors.Is does not find the cause")
	}
}

// unmaskedPhone finds a mobile number with no digit on either side: what
// MaskPhones must leave none of.
var unmaskedPhone = regexp.MustCompile(`(^|[^0-9])1[3-9][0-9]{9}($|[^0-9])`)

func FuzzMaskPhones(f *testing.F) {
	for _, s := range []string{"", "13800138000", "+86 138-0013-8000", "x13800138000y13912345678", "138 0013 8000", "0086139123456789", "\xff1\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := pathupdate.MaskPhones(s)
		if len(got) != len(s) {
			t.Fatalf("length %d, want %d", len(got), len(s))
		}
		for i := range len(s) {
			if got[i] != s[i] && !(got[i] == '*' && s[i] >= '0' && s[i] <= '9') {
				t.Fatalf("byte %d changed from %q to %q", i, s[i], got[i])
			}
		}
		if m := unmaskedPhone.FindString(got); m != "" {
			t.Fatalf("MaskPhones(%q) = %q still holds %q", s, got, m)
		}
		if again := pathupdate.MaskPhones(got); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
	})
}
