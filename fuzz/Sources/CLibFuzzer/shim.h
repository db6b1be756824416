// libFuzzer's entry for a program with its own main (compiler-rt's FuzzerInterface.h). Only the
// fuzz build calls it, and only that build links libFuzzer; declaring it costs nothing elsewhere.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
