/* Stubs for the ggml symbols ggml-quants.c links against but the _ref quantizers never call. */
#include <stdlib.h>
#include <stddef.h>
#include <stdio.h>
void ggml_abort(const char *f, int l, const char *fmt, ...) { fprintf(stderr, "abort %s:%d\n", f, l); abort(); }
size_t ggml_row_size(int t, long long n) { abort(); }
const char *ggml_type_name(int t) { return "?"; }
size_t ggml_type_size(int t) { abort(); }
