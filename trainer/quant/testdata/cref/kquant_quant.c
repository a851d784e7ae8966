/* Prints testdata/kquant_quant_ref.json: five input patterns of 512 floats
 * and the bytes ggml's quantize_row_q4_K_ref / _q5_K_ref / _q6_K_ref give for
 * them. Not part of the build. Recipe (ggml-org/ggml d99724f2):
 *   git clone https://github.com/ggml-org/ggml && cd ggml
 *   mkdir -p src/ggml-cpu && touch src/ggml-cpu/ggml-cpu-impl.h   # header not needed by the ref functions
 *   gcc -O0 -Iinclude -Isrc -c src/ggml-quants.c -o q.o
 *   gcc -O0 -Iinclude -Isrc PATH/kquant_quant.c PATH/stubs.c q.o -lm -o kq && ./kq > kquant_quant_ref.json
 * (-O2 gives the same bytes.) */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "ggml.h"
#include "ggml-common.h"
#include "ggml-quants.h"

static uint64_t s = 0x9E3779B97F4A7C15ull;
static double urand(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (double)(s >> 11) / 9007199254740992.0; }
static float gauss(void) { double a = 0; for (int i = 0; i < 12; i++) a += urand(); return (float)(a - 6); }

#define N 512
static void fill(int c, float *x) {
    for (int i = 0; i < N; i++) {
        switch (c) {
        case 0: x[i] = 0.02f * gauss(); break;
        case 1: x[i] = (float)(2*urand() - 1); if (urand() < 0.02) x[i] *= 20; break;
        case 2: x[i] = (float)urand() + 0.5f; if (i/32 == 3) x[i] = 0; if (i/32 == 5) x[i] = 0.75f; if (i/16 == 20) x[i] = -0.25f; break;
        case 3: x[i] = i < 256 ? 0 : (float)(1e-20 * gauss()); break;
        case 4: x[i] = gauss() * powf(10.f, (float)((i/32)%8 - 4)); break;
        }
    }
}

static void emit(const char *name, const float *x, const void *blk, size_t nb, int last) {
    printf("  {\"type\": \"%s\", \"input\": \"", name);
    for (int i = 0; i < N; i++) { uint32_t u; memcpy(&u, &x[i], 4); printf(i ? " %08x" : "%08x", u); }
    printf("\", \"blocks\": \"");
    for (size_t i = 0; i < nb; i++) printf("%02x", ((const uint8_t*)blk)[i]);
    printf("\"}%s\n", last ? "" : ",");
}

int main(void) {
    float x[N];
    block_q4_K q4[N/QK_K]; block_q5_K q5[N/QK_K]; block_q6_K q6[N/QK_K];
    printf("[\n");
    for (int c = 0; c < 5; c++) {
        fill(c, x);
        quantize_row_q4_K_ref(x, q4, N); emit("Q4_K", x, q4, sizeof q4, 0);
        quantize_row_q5_K_ref(x, q5, N); emit("Q5_K", x, q5, sizeof q5, 0);
        quantize_row_q6_K_ref(x, q6, N); emit("Q6_K", x, q6, sizeof q6, c == 4);
    }
    printf("]\n");
    return 0;
}
