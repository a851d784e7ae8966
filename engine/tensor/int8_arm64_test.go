package tensor

import (
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// On a CPU with FEAT_DotProd the SDOT kernels are among the sets every
// kernel test runs, and generation uses them for all four row types on
// dotprod; neon (ORCHMIND_ISA=neon) and ORCHMIND_INT8=off keep float32.
// Without it (qemu -cpu cortex-a72) dotprod is not offered at all.
func TestSDOTChosen(t *testing.T) {
	noEnv := func(string) string { return "" }
	if !hasDotProd() {
		if slices.Contains(ISAs(), ISADotProd) || int8For(ISADotProd) != nil || slices.Contains(availableInt8(), int8SDOT) {
			t.Fatalf("no FEAT_DotProd, yet dotprod is offered (sets %v)", ISAs())
		}
		t.Skip("this CPU has no FEAT_DotProd (asimddp): the SDOT kernels cannot run here")
	}
	if !slices.Contains(ISAs(), ISADotProd) || !slices.Contains(availableInt8(), int8SDOT) {
		t.Fatalf("FEAT_DotProd, but sets %v and integer sets without sdot", ISAs())
	}
	c := chooseInt8(noEnv, ISADotProd)
	if c.set != int8SDOT || len(c.wins) != 4 {
		t.Fatalf("dotprod: integer path %+v, want sdot for Q8_0, Q4_0, Q4_K, Q6_K", c)
	}
	if c := chooseInt8(noEnv, ISANEON); c.set != nil {
		t.Errorf("neon: integer set %s, want none", c.set.name)
	}
	if c := chooseInt8(func(k string) string { return map[string]string{"ORCHMIND_INT8": "off"}[k] }, ISADotProd); c.set != nil || !c.off {
		t.Errorf("ORCHMIND_INT8=off on dotprod: %+v", c)
	}
	if ISA() == ISADotProd && !strings.Contains(Int8Summary(), "SDOT") {
		t.Errorf("summary %q does not name SDOT", Int8Summary())
	}
}

// Every instruction the kernels emit with WORD (Go's assembler has no
// SDOT and none of the vector floating-point forms) decodes, in the
// running test binary, to the instruction its macro's comment names:
// checked with GNU objdump for aarch64 when one is installed
// (binutils-aarch64-linux-gnu off arm64 hosts), skipped otherwise. The
// kernels are found through the Go line table (go test strips the symbol
// table); no word of a kernel may be left undecoded (".inst", "udf").
func TestSDOTEncodingsDisassemble(t *testing.T) {
	objdump := ""
	for _, c := range []string{"aarch64-linux-gnu-objdump", "objdump"} {
		if p, err := exec.LookPath(c); err == nil {
			objdump = p
			break
		}
	}
	if objdump == "" {
		t.Skip("no objdump for aarch64 (Debian: binutils-aarch64-linux-gnu)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	ranges, err := funcRanges(exe, "orchmind/engine/tensor.")
	if err != nil {
		t.Skipf("no Go line table in %s: %v", exe, err)
	}
	want := map[string][]string{
		"quantActNEON": {"fabs\tv16.4s, v0.4s", "fmax\tv16.4s, v16.4s, v17.4s", "fmaxv\ts16, v16.4s",
			"fmul\tv0.4s, v0.4s, v25.s[0]", "fcvtns\tv7.4s, v7.4s"},
		"dotQ8_0Q8SDOT": {"sdot\tv16.4s, v0.16b, v4.16b", "sdot\tv17.4s, v3.16b, v7.16b", "eor\tv16.16b, v16.16b, v16.16b",
			"fcvtl\tv20.4s, v20.4h", "scvtf\tv16.4s, v16.4s", "fmul\tv20.4s, v20.4s, v22.4s", "fmul\tv20.4s, v20.4s, v22.s[0]",
			"fmla\tv30.4s, v16.4s, v20.4s", "fadd\tv30.4s, v30.4s, v31.4s", "faddp\tv30.4s, v30.4s, v30.4s", "faddp\ts30, v30.2s"},
		"dotQ4_0Q8SDOT": {"sdot\tv16.4s, v8.16b, v4.16b", "sdot\tv17.4s, v11.16b, v7.16b"},
		"dotQ4_KQ8SDOT": {"sdot\tv8.4s, v4.16b, v16.16b", "sdot\tv15.4s, v3.16b, v23.16b", "scvtf\tv22.4s, v22.4s, #3",
			"fmul\tv19.4s, v19.4s, v25.s[1]", "fmul\tv16.4s, v16.4s, v20.4s"},
		"dotQ6_KQ8SDOT": {"sdot\tv8.4s, v10.16b, v23.16b", "sxtl\tv0.8h, v0.8b", "sxtl\tv1.4s, v0.4h", "sxtl2\tv2.4s, v0.8h",
			"fmul\tv2.4s, v2.4s, v26.s[0]"},
	}
	for f, insns := range want {
		var dis string
		for _, r := range ranges[f] { // the assembly and its ABI wrapper
			out, err := exec.Command(objdump, "-d", "--no-show-raw-insn",
				fmt.Sprintf("--start-address=%#x", r[0]), fmt.Sprintf("--stop-address=%#x", r[1]), exe).Output()
			if err != nil {
				t.Fatalf("%s on %s: %v", objdump, f, err)
			}
			// up to the last return: what follows is alignment padding
			body := string(out)
			if k := strings.LastIndex(body, "\tret"); k >= 0 {
				body = body[:k]
			}
			dis += body
		}
		if dis == "" {
			t.Errorf("%s not found in %s", f, exe)
			continue
		}
		if strings.Contains(dis, ".inst") || strings.Contains(dis, "udf") || strings.Contains(dis, "undefined") {
			t.Errorf("%s has words %s does not decode:\n%s", f, objdump, dis)
		}
		for _, in := range insns {
			if !strings.Contains(dis, in) {
				t.Errorf("%s: no %q in its disassembly:\n%s", f, in, dis)
			}
		}
	}
}

// funcRanges returns the [entry, end) addresses of the functions of exe
// whose names start with prefix, by name without it, from the Go line
// table (present in stripped binaries too).
func funcRanges(exe, prefix string) (map[string][][2]uint64, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		return nil, fmt.Errorf("no .gopclntab or .text section")
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, err
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, err
	}
	r := map[string][][2]uint64{}
	for _, fn := range tab.Funcs {
		if name, ok := strings.CutPrefix(fn.Name, prefix); ok {
			r[name] = append(r[name], [2]uint64{fn.Entry, fn.End})
		}
	}
	return r, nil
}
