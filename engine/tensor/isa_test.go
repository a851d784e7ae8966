package tensor

import (
	"slices"
	"strings"
	"testing"
)

func TestChooseISA(t *testing.T) {
	zen4 := []string{ISAGeneric, ISAAVX2, ISAAVX512, ISAAVX512BF16}
	spr := []string{ISAGeneric, ISAAVX2, ISAAVX512, ISAAVX512BF16, ISAAMX}
	core := []string{ISAGeneric, ISAAVX2}
	cases := []struct {
		name      string
		env       map[string]string
		arch      string
		cpu       []string
		want      string
		warnHas   string // "" = no warning
		warnHasTo string
	}{
		{"default is the best", nil, "amd64", zen4, ISAAVX512BF16, "", ""},
		{"default on SPR", nil, "amd64", spr, ISAAMX, "", ""},
		{"force avx2", map[string]string{"ORCHMIND_ISA": "avx2"}, "amd64", zen4, ISAAVX2, "", ""},
		{"force generic", map[string]string{"ORCHMIND_ISA": "generic"}, "amd64", zen4, ISAGeneric, "", ""},
		{"case and spaces", map[string]string{"ORCHMIND_ISA": " AVX512 "}, "amd64", zen4, ISAAVX512, "", ""},
		{"above the CPU", map[string]string{"ORCHMIND_ISA": "amx"}, "amd64", zen4, ISAAVX512BF16, "asks for more than this CPU has (generic, avx2, avx512, avx512bf16)", "using avx512bf16"},
		{"above an AVX2 CPU", map[string]string{"ORCHMIND_ISA": "avx512bf16"}, "amd64", core, ISAAVX2, "more than this CPU has (generic, avx2)", "using avx2"},
		{"unknown", map[string]string{"ORCHMIND_ISA": "sse4"}, "amd64", zen4, ISAAVX512BF16, "not a kernel set on amd64", "this CPU has generic, avx2, avx512, avx512bf16"},
		{"other arch's set", map[string]string{"ORCHMIND_ISA": "neon"}, "amd64", core, ISAAVX2, "not a kernel set on amd64", "using avx2"},
		{"NOSIMD alias", map[string]string{"ORCHMIND_NOSIMD": "1"}, "amd64", spr, ISAGeneric, "", ""},
		{"NOAMX alias", map[string]string{"ORCHMIND_NOAMX": "1"}, "amd64", spr, ISAAVX512BF16, "", ""},
		{"NOAMX below the ISA asked", map[string]string{"ORCHMIND_NOAMX": "1", "ORCHMIND_ISA": "avx2"}, "amd64", spr, ISAAVX2, "", ""},
		{"NOSIMD wins over ISA", map[string]string{"ORCHMIND_NOSIMD": "1", "ORCHMIND_ISA": "avx512"}, "amd64", spr, ISAGeneric, "", ""},
		{"arm64 neon", nil, "arm64", []string{ISAGeneric, ISANEON}, ISANEON, "", ""},
		{"arm64 generic", map[string]string{"ORCHMIND_ISA": "generic"}, "arm64", []string{ISAGeneric, ISANEON}, ISAGeneric, "", ""},
		{"arm64 avx2", map[string]string{"ORCHMIND_ISA": "avx2"}, "arm64", []string{ISAGeneric, ISANEON}, ISANEON, "not a kernel set on arm64", ""},
		{"arm64 dotprod", nil, "arm64", []string{ISAGeneric, ISANEON, ISADotProd}, ISADotProd, "", ""},
		{"arm64 neon on a dotprod CPU", map[string]string{"ORCHMIND_ISA": "neon"}, "arm64", []string{ISAGeneric, ISANEON, ISADotProd}, ISANEON, "", ""},
		{"arm64 dotprod without it", map[string]string{"ORCHMIND_ISA": "dotprod"}, "arm64", []string{ISAGeneric, ISANEON}, ISANEON, "more than this CPU has (generic, neon)", "using neon"},
		{"other arch", map[string]string{"ORCHMIND_ISA": "avx2"}, "riscv64", []string{ISAGeneric}, ISAGeneric, "not a kernel set on riscv64", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := chooseISA(func(k string) string { return c.env[k] }, c.arch, c.cpu)
			if got.level != c.want {
				t.Errorf("level %q, want %q", got.level, c.want)
			}
			if c.warnHas == "" && got.warn != "" {
				t.Errorf("unexpected warning %q", got.warn)
			}
			for _, w := range []string{c.warnHas, c.warnHasTo} {
				if w != "" && !strings.Contains(got.warn, w) {
					t.Errorf("warning %q does not say %q", got.warn, w)
				}
			}
		})
	}
}

// TestISAOfThisCPU checks the choice made at start against the CPU's sets
// and the float32 kernels it runs.
func TestISAOfThisCPU(t *testing.T) {
	sets := ISAs()
	if sets[0] != ISAGeneric || !slices.Contains(sets, ISA()) {
		t.Fatalf("ISA %q, CPU sets %v", ISA(), sets)
	}
	want := map[string]string{ISAGeneric: "generic", ISAAVX2: "avx2", ISAAVX512: "avx512",
		ISAAVX512BF16: "avx512", ISAAMX: "avx512", ISANEON: "neon", ISADotProd: "neon"}[ISA()]
	if SIMD() != want {
		t.Fatalf("ISA %q runs float32 kernels %q, want %q", ISA(), SIMD(), want)
	}
	// Every set the CPU has must have its float32 kernels among those the
	// kernel tests run, and its bfloat16 kernels among availableBF16.
	var names []string
	for _, k := range availableKernels() {
		names = append(names, k.name)
	}
	var bf []string
	for _, b := range availableBF16() {
		bf = append(bf, b.name)
	}
	for _, s := range sets {
		if !slices.Contains(names, kernelsFor(s).name) {
			t.Errorf("set %q's float32 kernels %q are not tested (%v)", s, kernelsFor(s).name, names)
		}
		if (s == ISAAMX || s == ISAAVX512BF16) && !slices.Contains(bf, s) {
			t.Errorf("set %q has no bfloat16 kernels among %v", s, bf)
		}
	}
	if (ISA() == ISAAMX || ISA() == ISAAVX512BF16) != BF16Tiles() {
		t.Errorf("ISA %q but BF16Tiles() = %v", ISA(), BF16Tiles())
	}
	t.Log(ISASummary())
}
