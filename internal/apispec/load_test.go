package apispec

import (
	"testing"
	"time"
)

func TestLoadDigitalOcean(t *testing.T) {
	start := time.Now()
	s := DigitalOcean(t)
	t.Logf("loaded %d operations in %v", s.Operations(), time.Since(start))
}
