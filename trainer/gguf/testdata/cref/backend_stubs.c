/* ggml-backend symbols ggml.c and gguf.cpp link against; never called when reading or writing files from host memory. */
#include <stdlib.h>
#include <stddef.h>
void ggml_backend_tensor_memset(void *t, int v, size_t o, size_t s) { abort(); }
void ggml_backend_tensor_set(void *t, const void *d, size_t o, size_t s) { abort(); }
void ggml_backend_tensor_get(const void *t, void *d, size_t o, size_t s) { abort(); }
int ggml_backend_buffer_get_usage(void *b) { return 0; }
