#!/usr/bin/env python3
"""Run one Go benchmark under every kernel set (ORCHMIND_ISA), interleaved.

usage: scripts/isa_compare.py PKG BENCH [BENCHTIME] [REPS] [ISAS...]
  e.g. scripts/isa_compare.py ./engine/model 'Inference/stories15M/Q8_0' 3x 5
       scripts/isa_compare.py ./trainer/lora 'TrainStep/stories15M/Q8_0/f32$' 1x 3 avx2 avx512

The test binary is built once; then for each repetition every set runs in
turn (generic, avx2, avx512, ... as this CPU has them, or those named), so
all sets see the same load on a shared machine. Prints, per benchmark and
metric, the median over the repetitions for each set, with the lowest and
highest value, and the ratio of each set's median to the first set's.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    pkg, bench = sys.argv[1], sys.argv[2]
    benchtime = sys.argv[3] if len(sys.argv) > 3 else "1x"
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    isas = sys.argv[5:] or subprocess.run(
        ["go", "run", "./engine/tensor/internal/isas"], check=True, capture_output=True, text=True
    ).stdout.split()
    binary = os.path.join(tempfile.mkdtemp(), "bench.test")
    subprocess.run(["go", "test", "-c", "-o", binary, pkg], check=True)
    results = {}  # (bench, unit) -> isa -> [values]
    for rep in range(reps):
        for isa in isas:
            env = dict(os.environ, ORCHMIND_ISA=isa)
            out = subprocess.run(
                [binary, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime],
                cwd=pkg, env=env, capture_output=True, text=True,
            ).stdout
            for line in out.splitlines():
                if not line.startswith("Benchmark"):
                    continue
                f = line.split()
                name = re.sub(r"-\d+$", "", f[0])
                for v, unit in zip(f[2::2], f[3::2]):
                    try:
                        results.setdefault((name, unit), {}).setdefault(isa, []).append(float(v))
                    except ValueError:
                        pass
            print(f"rep {rep + 1}/{reps} {isa} done", file=sys.stderr)
    print(f"# {pkg} -bench '{bench}' -benchtime {benchtime}, {reps} interleaved repetitions; median [min–max]")
    for (name, unit), by in sorted(results.items()):
        if unit == "ns/op":
            continue
        base = statistics.median(by[isas[0]]) if isas[0] in by else None
        cells = []
        for isa in isas:
            vs = by.get(isa)
            if not vs:
                cells.append(f"{isa}: –")
                continue
            m = statistics.median(vs)
            ratio = f" ({m / base:.2f}×)" if base else ""
            cells.append(f"{isa}: {m:.4g} [{min(vs):.4g}–{max(vs):.4g}]{ratio}")
        print(f"{name} {unit}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
