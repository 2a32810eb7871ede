package pause_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pathupdate/pathupdate/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}
