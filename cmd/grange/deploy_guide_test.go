package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// docs/deploy-three-sites.md, run by scripts/check-deploy-guide.sh on three
// local processes: its configuration files and commands must work as
// written and print what the script expects.
func TestDeployGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grange and runs three server processes")
	}
	for _, tool := range []string{"bash", "curl", "openssl", "awk", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: %v", tool, err)
		}
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, p := range freePorts(t, 9) {
		ports = append(ports, strconv.Itoa(p))
	}
	cmd := exec.Command("bash", "../../scripts/check-deploy-guide.sh")
	cmd.Env = append(os.Environ(), "GRANGE_BIN="+bin, "PORTS="+strings.Join(ports, " "), "KEEP=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/check-deploy-guide.sh: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
