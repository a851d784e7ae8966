package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/internal/testshared"
)

// TestSeparateProcesses runs the demo (scripts/demo.sh): two `orchmind node`
// OS processes of the real binary on loopback; one trains and publishes,
// the other searches, pulls, verifies, hot-plugs and answers as taught.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two node processes")
	}
	m := testshared.Path(t, "models/stories260K/stories260K.bin")
	for _, tool := range []string{"bash", "curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the demo script needs it", tool)
		}
	}
	bin := filepath.Join(t.TempDir(), "orchmind")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/orchmind").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "scripts/demo.sh", bin, m)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "adapted:  The kind girl helps the farmer.") {
		t.Fatalf("demo output:\n%s", out)
	}
}
