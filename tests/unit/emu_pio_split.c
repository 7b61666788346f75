/* SPDX-License-Identifier: MIT */
/*
 * A port access wider than the byte-wide devices it touches, on the emu engine with its in-engine
 * 8259 and 8254 (src/emu/irqchip.c emu_irq_pio). On the ISA bus a wide access is one byte cycle
 * per port, each reaching the device that decodes that port; so here each byte reaches its owner
 * and a read assembles the bytes of both:
 *   - `outl` to 0x61: the PIT's port 0x61 takes byte 0 (gate 2 on), and the monitor still gets the
 *     whole access (KVM_EXIT_IO, port 0x61, size 4), whose byte 3 is for the i8042's port 0x64;
 *   - `inl` from 0x61: the monitor's bytes 1..3, byte 0 from port 0x61;
 *   - `outw`/`inw` at 0x60, starting below the PIT's port: byte 1 reaches port 0x61 / comes from it;
 *   - `outl` to 0x1e reaches the 8259's 0x20/0x21 with its bytes 2 and 3 (IMR read back);
 *   - `outw` to 0x20 is wholly the 8259's: no exit, as before.
 * Before the fix the engine claimed every access starting at one of its ports whole (no exit for
 * `outl 0x61`, all ones in `inl 0x61`'s upper bytes) and none starting below.
 * The string forms go the same way, element by element (guest s): `rep outsb` of three bytes to
 * 0x21 sets the 8259's IMR three times without an exit (the last, 0xfb, reads back), `outsb` to
 * 0x61 gates PIT counter 2, `rep insb` of two bytes from 0x21 stores the IMR twice, `outsw` to 0x60
 * exits once for the monitor (port 0x60, size 2) with its byte 1 already at port 0x61, and a
 * `rep outsb` of two bytes to 0x80 (the monitor's) exits once per element. Before, every element
 * exited to the monitor (the 8259 and 8254 never saw them).
 */
#include "emu_harness.h"

#define DATA 0x100000

GUEST(g, ".code64",
      "mov $0xab000001, %eax\n"
      "out %eax, $0x61\n"            /* exit: OUT 0x61, 4 bytes */
      "in $0x61, %al\n"              /* the engine's: gate 2 = 1 */
      "mov %al, 0x100000\n"
      "in $0x61, %eax\n"             /* exit: IN 0x61, 4 bytes */
      "mov %eax, 0x100004\n"
      "mov $0x0077, %ax\n"
      "out %ax, $0x60\n"             /* exit: OUT 0x60, 2 bytes; 0x61 <- 0 (gate 2 off) */
      "in $0x61, %al\n"
      "mov %al, 0x100008\n"
      "in $0x60, %ax\n"              /* exit: IN 0x60, 2 bytes */
      "mov %eax, 0x10000c\n"
      "mov $0xfb0b5566, %eax\n"
      "out %eax, $0x1e\n"            /* exit: OUT 0x1e, 4 bytes; 0x20 <- 0x0b (OCW3), 0x21 <- 0xfb (IMR) */
      "in $0x21, %al\n"
      "mov %al, 0x100010\n"
      "mov $0xfe0b, %ax\n"
      "out %ax, $0x20\n"             /* the 8259's alone: no exit */
      "in $0x21, %al\n"
      "mov %al, 0x100011\n"
      "cli\n"
      "hlt\n");

GUEST(s, ".code64",
      "lea src(%rip), %rsi\n"
      "mov $0x21, %edx\n"
      "mov $3, %ecx\n"
      "rep outsb\n"                /* IMR <- 0x11, 0x22, 0xfb: the engine's, no exit */
      "in $0x21, %al\n"
      "mov %al, 0x100000\n"
      "mov $0x61, %edx\n"
      "outsb\n"                    /* 0x61 <- 0x03: gate 2 and speaker data */
      "in $0x61, %al\n"
      "mov %al, 0x100001\n"
      "mov $0x21, %edx\n"
      "mov $0x100002, %edi\n"
      "mov $2, %ecx\n"
      "rep insb\n"                 /* the IMR twice, no exit */
      "mov $0x60, %edx\n"
      "outsw\n"                    /* exit: OUT 0x60, 2 bytes (0x00, 0x55); 0x61 <- 0x55 */
      "in $0x61, %al\n"
      "mov %al, 0x100004\n"
      "mov $0x80, %edx\n"
      "mov $2, %ecx\n"
      "rep outsb\n"                /* the monitor's: two exits */
      "mov %ecx, 0x100008\n"
      "cli\n"
      "hlt\n"
      "src: .byte 0x11, 0x22, 0xfb, 0x03, 0x00, 0x55, 0x66, 0x77\n");

static uint32_t io_data(const struct t_vm *t)
{
	uint32_t v = 0;
	memcpy(&v, (const uint8_t *)t->run + t->run->io.data_offset, t->run->io.size);
	return v;
}

static void io_reply(struct t_vm *t, uint32_t v)
{
	memcpy((uint8_t *)t->run + t->run->io.data_offset, &v, t->run->io.size);
}

static void expect_io(struct t_vm *t, int dir, uint16_t port, unsigned size)
{
	CHECK_EQ(t_run(t), KVM_EXIT_IO);
	CHECK_EQ(t->run->io.direction, dir);
	CHECK_EQ(t->run->io.port, port);
	CHECK_EQ(t->run->io.size, size);
	CHECK_EQ(t->run->io.count, 1);
}

int main(void)
{
	struct t_vm t;
	char err[256];
	t.ops = &blvm_engine_emu;
	uint8_t *m = mmap(NULL, T_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	t.ram = m;
	struct blvm_engine_config cfg = { .nr_vcpus = 1 };
	if (t.ops->vm_create(&cfg, &t.vm, err, sizeof err))
		return 1;
	struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = T_RAM,
						  .userspace_addr = (uintptr_t)t.ram };
	CHECK_EQ(t.ops->set_user_memory_region(t.vm, &r), 0);
	CHECK_EQ(t.ops->create_irqchip(t.vm), 0);
	CHECK_EQ(t.ops->create_pit2(t.vm, &(struct kvm_pit_config){ .flags = KVM_PIT_SPEAKER_DUMMY }), 0);
	CHECK_EQ(t.ops->vcpu_create(t.vm, 0, &t.cpu, &t.run), 0);
	t_long_mode(&t);
	t_load(&t, T_CODE, g_start, g_end);

	expect_io(&t, KVM_EXIT_IO_OUT, 0x61, 4);
	CHECK_EQ(io_data(&t), 0xab000001); /* the monitor's registry sends byte 3 to port 0x64 */
	expect_io(&t, KVM_EXIT_IO_IN, 0x61, 4);
	io_reply(&t, 0x443322ff);          /* as the registry reads: 0x61 unclaimed there */
	expect_io(&t, KVM_EXIT_IO_OUT, 0x60, 2);
	CHECK_EQ(io_data(&t), 0x0077);
	expect_io(&t, KVM_EXIT_IO_IN, 0x60, 2);
	io_reply(&t, 0xff99);
	expect_io(&t, KVM_EXIT_IO_OUT, 0x1e, 4);
	CHECK_EQ(io_data(&t), 0xfb0b5566);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);

	/* port 0x61 (pit.c): bit 0 gate 2, bit 1 speaker data; bit 4 toggles with time, bit 5 is OUT2 */
	CHECK_EQ(m[DATA] & 3, 1);                        /* outl 0x61's byte 0 reached the PIT */
	uint32_t w = t_r32(&t, DATA + 4);
	CHECK_EQ(w >> 8, 0x443322);                      /* the monitor's bytes */
	CHECK_EQ(w & 3, 1);                              /* port 0x61's byte, not the monitor's 0xff */
	CHECK_EQ(m[DATA + 8] & 3, 0);                    /* outw 0x60's byte 1 reached 0x61 */
	uint32_t h = t_r32(&t, DATA + 12) & 0xffff;
	CHECK_EQ(h & 0xff, 0x99);
	CHECK_EQ((h >> 8) & 3, 0);                       /* inw 0x60's byte 1 from port 0x61 */
	CHECK_EQ(m[DATA + 16], 0xfb);                    /* outl 0x1e's byte 3 is the IMR */
	CHECK_EQ(m[DATA + 17], 0xfe);                    /* outw 0x20: the IMR again, no exit */

	t.ops->vcpu_destroy(t.cpu);
	t.ops->vm_destroy(t.vm);

	/* the string forms */
	memset(m, 0, T_RAM);
	if (t.ops->vm_create(&cfg, &t.vm, err, sizeof err))
		return 1;
	CHECK_EQ(t.ops->set_user_memory_region(t.vm, &r), 0);
	CHECK_EQ(t.ops->create_irqchip(t.vm), 0);
	CHECK_EQ(t.ops->create_pit2(t.vm, &(struct kvm_pit_config){ .flags = KVM_PIT_SPEAKER_DUMMY }), 0);
	CHECK_EQ(t.ops->vcpu_create(t.vm, 0, &t.cpu, &t.run), 0);
	t_long_mode(&t);
	t_load(&t, T_CODE, s_start, s_end);
	expect_io(&t, KVM_EXIT_IO_OUT, 0x60, 2);
	CHECK_EQ(io_data(&t), 0x5500);
	expect_io(&t, KVM_EXIT_IO_OUT, 0x80, 1);
	CHECK_EQ(io_data(&t), 0x66);
	expect_io(&t, KVM_EXIT_IO_OUT, 0x80, 1);
	CHECK_EQ(io_data(&t), 0x77);
	CHECK_EQ(t_run(&t), KVM_EXIT_HLT);
	CHECK_EQ(m[DATA], 0xfb);                         /* rep outsb reached the IMR */
	CHECK_EQ(m[DATA + 1] & 3, 3);                    /* outsb reached port 0x61 */
	CHECK_EQ(m[DATA + 2], 0xfb);                     /* rep insb read the IMR */
	CHECK_EQ(m[DATA + 3], 0xfb);
	CHECK_EQ(m[DATA + 4] & 3, 1);                    /* outsw 0x60's byte 1 (0x55) reached 0x61 */
	CHECK_EQ(t_r32(&t, DATA + 8), 0);                /* RCX counted down */
	t.ops->vcpu_destroy(t.cpu);
	t.ops->vm_destroy(t.vm);
	munmap(m, T_RAM);
	return t_result("emu_pio_split");
}
