#include <stdio.h>
#include "emu/alu.h"
int main(void) { uint64_t f = 0; printf("%llx\n", (unsigned long long)emu_alu(EMU_ALU_ADD, 1, 1, 2, &f)); return 0; }
