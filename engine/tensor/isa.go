package tensor

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
)

// Kernel sets by level, lowest first. A level includes everything below it
// on its architecture: avx512bf16 is the avx512 float32 kernels plus
// bfloat16 products with VDPBF16PS, amx the avx512 kernels plus bfloat16
// products on AMX tiles, dotprod the neon kernels plus int8 dot products
// with SDOT (FEAT_DotProd) for generation.
const (
	ISAGeneric    = "generic"
	ISANEON       = "neon"
	ISAAVX2       = "avx2"
	ISAAVX512     = "avx512"
	ISAAVX512BF16 = "avx512bf16"
	ISAAMX        = "amx"
	ISADotProd    = "dotprod"
)

// isaLevels lists the kernel sets of each architecture, lowest first.
var isaLevels = map[string][]string{
	"amd64": {ISAGeneric, ISAAVX2, ISAAVX512, ISAAVX512BF16, ISAAMX},
	"arm64": {ISAGeneric, ISANEON, ISADotProd},
}

// isaChoice is the kernel set this process runs and why.
type isaChoice struct {
	level string   // the set in effect
	cpu   []string // the sets this CPU can run, lowest first
	warn  string   // why a request was not honoured ("" when it was)
}

// chosen is read once at start from the CPU and the environment.
var chosen = func() isaChoice {
	c := chooseISA(os.Getenv, runtime.GOARCH, cpuISAs())
	if c.warn != "" {
		slog.Warn(c.warn)
	}
	return c
}()

// chooseISA picks the kernel set from the sets the CPU has (cpu, lowest
// first) and the environment: ORCHMIND_ISA names a set; one above what
// the CPU has, or unknown here, gives the best set the CPU has at or
// below it (best overall when unknown) and a warning naming the CPU's
// sets. ORCHMIND_NOSIMD=1 caps the choice at generic and ORCHMIND_NOAMX=1
// below amx (older switches, kept as aliases).
func chooseISA(getenv func(string) string, arch string, cpu []string) isaChoice {
	levels := isaLevels[arch]
	rank := func(s string) int { return slices.Index(levels, s) }
	best := func(limit int) string { // highest CPU set of rank ≤ limit
		b := ISAGeneric
		for _, s := range cpu {
			if r := rank(s); r >= 0 && r <= limit && r > rank(b) {
				b = s
			}
		}
		return b
	}
	c := isaChoice{cpu: cpu}
	limit := len(levels) - 1
	if req := strings.ToLower(strings.TrimSpace(getenv("ORCHMIND_ISA"))); req != "" {
		switch r := rank(req); {
		case r < 0:
			c.warn = fmt.Sprintf("ORCHMIND_ISA=%s is not a kernel set on %s (sets: %s; this CPU has %s): using %s",
				req, arch, strings.Join(levels, ", "), strings.Join(cpu, ", "), best(limit))
		case !slices.Contains(cpu, req):
			limit = r
			c.warn = fmt.Sprintf("ORCHMIND_ISA=%s asks for more than this CPU has (%s): using %s",
				req, strings.Join(cpu, ", "), best(limit))
		default:
			limit = r
		}
	}
	if getenv("ORCHMIND_NOSIMD") == "1" {
		limit = 0
	}
	if getenv("ORCHMIND_NOAMX") == "1" {
		if r := rank(ISAAMX); r >= 0 && r <= limit {
			limit = r - 1
		}
	}
	c.level = best(limit)
	return c
}

// ISA names the kernel set in use: "generic", "avx2", "avx512",
// "avx512bf16", "amx" (amd64), "neon" or "dotprod" (arm64). ORCHMIND_ISA in the
// environment (read once at start) chooses a set no higher than the CPU
// has; see SIMD.md.
func ISA() string { return chosen.level }

// ISAs lists the kernel sets this CPU can run, lowest first: the values
// ORCHMIND_ISA accepts here.
func ISAs() []string { return slices.Clone(chosen.cpu) }

// ISASummary describes the kernel set in one line for the command line:
// its name, what its float32 and bfloat16 products run on, and the sets
// this CPU has, e.g. "avx512bf16 (float32 kernels avx512, bfloat16
// products with VDPBF16PS: --precision auto is bf16; this CPU has generic,
// avx2, avx512, avx512bf16; ORCHMIND_ISA chooses)".
func ISASummary() string {
	bf := "no bfloat16 products: --precision auto is f32"
	if BF16Tiles() {
		bf = map[string]string{ISAAMX: "bfloat16 products on AMX tiles", ISAAVX512BF16: "bfloat16 products with VDPBF16PS"}[chosen.level] +
			": --precision auto is bf16"
	}
	return fmt.Sprintf("%s (float32 kernels %s, %s; this CPU has %s; ORCHMIND_ISA chooses)",
		chosen.level, active.name, bf, strings.Join(chosen.cpu, ", "))
}
