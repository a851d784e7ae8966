// Command isas prints the kernel sets this CPU can run, lowest first and
// space-separated: the values ORCHMIND_ISA accepts here, for the Makefile's
// per-set benchmark loops (make bench, make bench-train).
package main
