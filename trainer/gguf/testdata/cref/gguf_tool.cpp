// gguf_tool: reads a GGUF file with ggml's own reader (src/gguf.cpp) and
// prints what it sees; "gguf_tool write OUT" writes a small file with ggml's
// writer (testdata/ggml_written.gguf). Not part of the build. Recipe
// (ggml-org/ggml d99724f2, no cmake needed):
//   cd ggml && mkdir -p src/ggml-cpu && touch src/ggml-cpu/ggml-cpu-impl.h
//   gcc -c -O1 -Iinclude -Isrc -D_GNU_SOURCE -DGGML_VERSION='"x"' -DGGML_COMMIT='"x"' src/ggml.c -o ggml.o
//   gcc -c -O1 -Iinclude -Isrc src/ggml-quants.c -o q.o
//   g++ -c -O1 -std=c++17 -Iinclude -Isrc src/gguf.cpp -o gguf.o
//   g++ -c -O1 -std=c++17 -Iinclude -Isrc src/ggml-threading.cpp -o thr.o
//   gcc -c PATH/backend_stubs.c -o stubs.o
//   g++ -O1 -std=c++17 -Iinclude -Isrc PATH/gguf_tool.cpp gguf.o ggml.o thr.o q.o stubs.o -lm -lpthread -o gguf_tool
#include <cstdio>
#include <cstring>
#include <cstdint>
#include "ggml.h"
#include "gguf.h"
int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "write")) {
        gguf_context *g = gguf_init_empty();
        gguf_set_val_str(g, "general.architecture", "llama");
        gguf_set_val_u32(g, "llama.block_count", 2);
        gguf_set_val_f32(g, "llama.rope.freq_base", 10000.0f);
        gguf_set_val_i8(g, "i8", -5); gguf_set_val_u16(g, "u16", 65000); gguf_set_val_i64(g, "i64", -1234567890123LL);
        gguf_set_val_f64(g, "f64", 2.5); gguf_set_val_bool(g, "b", true);
        const char *toks[] = {"<unk>", "a", "b"};
        gguf_set_arr_str(g, "tokenizer.ggml.tokens", toks, 3);
        float sc[] = {0, -1, -2};
        gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, sc, 3);
        ggml_init_params ip = {16*1024*1024, NULL, false};
        ggml_context *ctx = ggml_init(ip);
        ggml_tensor *a = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 5, 3); ggml_set_name(a, "w");
        for (int i = 0; i < 15; i++) ((float*)a->data)[i] = (float)i;
        ggml_tensor *q = ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, 32, 2); ggml_set_name(q, "q");
        for (size_t i = 0; i < ggml_nbytes(q); i++) ((uint8_t*)q->data)[i] = (uint8_t)(i * 7);
        gguf_add_tensor(g, a); gguf_add_tensor(g, q);
        if (!gguf_write_to_file(g, argv[2], false)) { fprintf(stderr, "write failed\n"); return 1; }
        return 0;
    }
    gguf_init_params p = {true, NULL};
    gguf_context *g = gguf_init_from_file(argv[1], p);
    if (!g) { printf("REFUSED\n"); return 1; }
    printf("version %u alignment %zu data_offset %zu kv %lld tensors %lld\n", gguf_get_version(g), gguf_get_alignment(g),
           gguf_get_data_offset(g), (long long)gguf_get_n_kv(g), (long long)gguf_get_n_tensors(g));
    for (int64_t i = 0; i < gguf_get_n_kv(g); i++) printf("kv %s type %d\n", gguf_get_key(g, i), gguf_get_kv_type(g, i));
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++)
        printf("tensor %s type %d offset %zu size %zu\n", gguf_get_tensor_name(g, i), gguf_get_tensor_type(g, i), gguf_get_tensor_offset(g, i), gguf_get_tensor_size(g, i));
    return 0;
}
