package clock

import (
	"strings"
	"testing"
	"time"
)

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-90s", -90 * time.Second},
		{"+2h", 2 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{" -1ms ", -time.Millisecond},
	} {
		got, err := ParseOffset(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseOffset(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"90", "two hours", "-", "1d"} {
		if _, err := ParseOffset(in); err == nil {
			t.Errorf("ParseOffset(%q): no error", in)
		}
	}
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnv(t *testing.T) {
	now, d, err := FromEnv(env(nil))
	if err != nil || d != 0 {
		t.Fatalf("FromEnv(unset) = %v, %v", d, err)
	}
	if skew := time.Since(now()); skew < 0 || skew > time.Minute {
		t.Errorf("FromEnv(unset) clock is %v off", skew)
	}

	now, d, err = FromEnv(env(map[string]string{EnvOffset: "-2h"}))
	if err != nil || d != -2*time.Hour {
		t.Fatalf("FromEnv(-2h) = %v, %v", d, err)
	}
	if skew := time.Since(now()); skew < 2*time.Hour || skew > 2*time.Hour+time.Minute {
		t.Errorf("FromEnv(-2h) clock is %v behind, want 2h", skew)
	}

	_, _, err = FromEnv(env(map[string]string{EnvOffset: "soon"}))
	if err == nil || !strings.Contains(err.Error(), EnvOffset) {
		t.Errorf("FromEnv(soon) error = %v, want one naming %s", err, EnvOffset)
	}
}

func TestWithOffsetKeepsMonotonicDurations(t *testing.T) {
	now := WithOffset(time.Hour)
	a := now()
	if d := a.Sub(time.Now()); d < 59*time.Minute || d > time.Hour {
		t.Errorf("WithOffset(1h) is %v ahead", d)
	}
	b := now()
	if b.Before(a) {
		t.Errorf("WithOffset clock went backwards: %v then %v", a, b)
	}
	if !strings.Contains(a.String(), "m=") {
		t.Errorf("WithOffset time lost its monotonic reading: %v", a)
	}
}
