package e2e

import (
	"testing"

	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
