/* SPDX-License-Identifier: MIT */
/*
 * The monitor's devices and the registry that routes port and MMIO accesses to them.
 *
 * Each device lives in its own file of src/dev/ and owns one or more ranges of the port or MMIO
 * space, registered at VM creation (blvm_devices_create, devices.c) as kvmtool's devices register
 * their I/O traps. The exit loop never names a device: blvm_io/blvm_mmio (src/vmm/bus.c) look the
 * access up here. The device models themselves (struct uart16550, struct rtc, ...) are plain state
 * machines over their datasheet's registers, with no knowledge of the VM, so that the unit tests
 * (tests/unit/dev_*.c) drive them register by register.
 */
#ifndef BLVM_DEV_H
#define BLVM_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blvm_vm;
struct blvm_vcpu;

/* ---- the registry ------------------------------------------------------------------------ */

enum blvm_space { BLVM_SPACE_PIO, BLVM_SPACE_MMIO };

/*
 * One access of `size` bytes (1, 2, 4; 8 for MMIO) at `offset` into the region, wholly inside it
 * (the registry splits an access that is not into bytes, each going where its address goes).
 * data is little-endian as in struct kvm_run; a read fills all `size` bytes. Called with vm->lock
 * held; vcpu is the vCPU that made the access.
 */
typedef void blvm_access_fn(void *opaque, struct blvm_vcpu *vcpu, uint64_t offset, bool is_write,
			    uint8_t *data, unsigned size);

struct blvm_region {
	const char *name;
	enum blvm_space space;
	uint64_t base, len;
	blvm_access_fn *access;
	void *opaque;
};

#define BLVM_BUS_MAX_REGIONS 32
#define BLVM_BUS_MAX_DEVICES 16

struct blvm_bus {
	struct blvm_region regions[BLVM_BUS_MAX_REGIONS];
	unsigned nr_regions;
	/* Devices in creation order; destroyed in the reverse order. */
	struct { void *opaque; void (*destroy)(void *opaque); } devices[BLVM_BUS_MAX_DEVICES];
	unsigned nr_devices;
};

/* Claims [base, base + len) of a space. -1 when it overlaps a claimed range or the table is full
 * (a programming error: the device set is fixed). */
int blvm_bus_register(struct blvm_bus *bus, const struct blvm_region *r);
/* The device whose state is opaque goes away with the VM: destroy(opaque) in blvm_bus_destroy. */
int blvm_bus_add_device(struct blvm_bus *bus, void *opaque, void (*destroy)(void *opaque));
void blvm_bus_destroy(struct blvm_bus *bus);
/* The region holding address a of the space, or NULL. */
const struct blvm_region *blvm_bus_find(const struct blvm_bus *bus, enum blvm_space space, uint64_t a);
/* Routes one access; returns true when every byte was claimed (false: counted as unclaimed by
 * the caller; unclaimed bytes of a read are all ones). */
bool blvm_bus_access(const struct blvm_bus *bus, enum blvm_space space, struct blvm_vcpu *vcpu, uint64_t a,
		     bool is_write, uint8_t *data, unsigned size);

/* devices.c: every device of the PC platform, registered on vm->bus; the ACPI tables in guest RAM. */
int blvm_devices_create(struct blvm_vm *vm, char *err, size_t errlen);

/* ---- the PC's port map (QEMU's pc machine, where blvm follows it) -------------------------- */

#define DEV_COM1_BASE 0x3f8
#define DEV_COM1_IRQ 4
#define DEV_DEBUG_EXIT_BASE 0xf4     /* QEMU -device isa-debug-exit,iobase=0xf4,iosize=4 */
#define DEV_DEBUG_EXIT_LEN 4
#define DEV_RTC_BASE 0x70            /* index, data */
#define DEV_RTC_IRQ 8
#define DEV_I8042_DATA 0x60
#define DEV_I8042_CMD 0x64           /* command (write) / status (read) */
#define DEV_I8042_IRQ_KBD 1
#define DEV_I8042_IRQ_AUX 12
#define DEV_FW_CFG_BASE 0x510        /* selector (16-bit), data at +1 (8-bit): QEMU docs/specs/fw_cfg.rst */
#define DEV_RESET_CONTROL 0xcf9      /* the PIIX3/PIIX4 reset control register, QEMU's RESET_REG */
#define DEV_RESET_VALUE 0x06         /* SYS_RST | RST_CPU */
#define DEV_PCI_CONFIG_ADDRESS 0xcf8 /* the host bridge's CONFIG_ADDRESS: dword accesses only */
/* The ACPI PM I/O block of QEMU's PIIX4 PM function, at the base SeaBIOS programs (0x600):
 * PM1a_EVT_BLK (PM1_STS, PM1_EN) at +0, PM1a_CNT_BLK at +4, PM_TMR_BLK at +8. */
#define DEV_PM_BASE 0x600
#define DEV_PM_LEN 0x0c
#define DEV_PM1A_EVT_BLK (DEV_PM_BASE + 0)
#define DEV_PM1A_CNT_BLK (DEV_PM_BASE + 4)
#define DEV_PM_TMR_BLK (DEV_PM_BASE + 8)
#define DEV_PM_SCI_IRQ 9
#define DEV_PM_S5_SLP_TYP 0          /* QEMU's PIIX4 DSDT: Name (_S5, Package (4) { 0, 0, 0, 0 }) */
#define DEV_IOAPIC_GPA 0xfec00000ull
#define DEV_LAPIC_GPA 0xfee00000ull

/* ---- the host side of the console (console.c) --------------------------------------------- */

struct blvm_console;
/* The console of a VM: bytes from in_fd (-1: none) to the guest, bytes from the guest to out_fd.
 * Nothing runs until blvm_console_start. notify(opaque) is called, without any lock held, when
 * input arrives or output space frees up (the UART glue takes vm->lock and calls
 * uart16550_line_event). NULL when out of memory. */
struct blvm_console *blvm_console_create(struct blvm_vm *vm, int in_fd, int out_fd,
					 void (*notify)(void *opaque), void *opaque);
/* Starts the writer thread and, when in_fd is given, the reader; when in_fd is the terminal of
 * the foreground job, puts it in raw mode (and restores it in blvm_console_stop, at exit, and in
 * blvm_console_restore). 0 or -errno. */
int blvm_console_start(struct blvm_console *c);
/* Writes out what the guest wrote, waiting at most until `deadline` (CLOCK_MONOTONIC seconds;
 * what is left then is abandoned), then stops the threads and restores the terminal. */
void blvm_console_stop(struct blvm_console *c, double deadline);
/* Makes a blvm_console_stop in progress (or to come) give up on what stdout has not taken: for a
 * signal that ends blvm while stdout is blocked. Async-signal-safe (one atomic store). */
void blvm_console_abandon(struct blvm_console *c);
void blvm_console_destroy(struct blvm_console *c);
/* Puts the terminal back as it was before raw mode. Async-signal-safe and idempotent: for the
 * signal handlers and every exit path. */
void blvm_console_restore(void);
/* A console output error (EPIPE, ENOSPC, EIO) goes to blvm_console_failed() (vmm.h): the one place
 * that records it and ends the VM (status 122, a line naming the error). */
/* The UART's view of the console: bytes out (never blocking), bytes in (flow-controlled). */
/* Free space in the output buffer, in bytes. */
size_t blvm_console_tx_room(struct blvm_console *c);
/* Queues one byte for the writer thread; false when the buffer is full (the byte is not taken). */
bool blvm_console_tx_put(struct blvm_console *c, uint8_t b);
/* The next byte typed or piped in, or -1 when none is waiting. */
int blvm_console_rx_get(struct blvm_console *c);

/* ---- 16550A UART (uart.c), National Semiconductor PC16550D data sheet ---------------------- */

#define UART_FIFO_SIZE 16

struct uart16550 {
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	uint8_t rx_fifo[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	bool thre_pending;   /* the THR-empty interrupt (cleared by an IIR read that reports it or a THR write) */
	bool tx_waiting;     /* THRE was reported clear: the THRE interrupt fires when it sets again */
	bool irq_level;      /* last level driven on the IRQ line */
	uint64_t tx_bytes;   /* bytes the guest wrote to THR and the console took */
	uint64_t tx_dropped; /* bytes written to THR while it was not empty (LSR.THRE clear): lost, as on hardware */
	/* The serial line: tx_room/tx_put/rx_get as the console's above; irq drives the INTR pin as
	 * gated by MCR.OUT2 (the PC wiring). */
	void *line;
	size_t (*tx_room)(void *line);
	bool (*tx_put)(void *line, uint8_t b);
	int (*rx_get)(void *line);
	void *irq_opaque;
	void (*irq)(void *irq_opaque, int level);
};

/* Registers at offsets 0-7 from the base (data sheet, table 2). */
enum { UART_RBR = 0, UART_THR = 0, UART_DLL = 0, UART_IER = 1, UART_DLM = 1, UART_IIR = 2, UART_FCR = 2,
       UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7 };

void uart16550_reset(struct uart16550 *u);
uint8_t uart16550_read(struct uart16550 *u, unsigned reg);
void uart16550_write(struct uart16550 *u, unsigned reg, uint8_t v);
/* The line has something new: bytes to receive, or room to transmit again. */
void uart16550_line_event(struct uart16550 *u);

/* ---- MC146818 CMOS RTC (rtc.c) -------------------------------------------------------------- */

struct rtc {
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset_s;        /* guest time = host UTC + offset_s (the guest set the clock) */
	double last_c_read;      /* host time when register C was last read (flags accrue from here) */
	double irq_checked;      /* host time up to which no enabled flag was found (rtc_irq_pending) */
	bool af;                 /* AF latched: an update since the last read of C matched the alarm */
	double af_checked;       /* host time up to which the updates were compared with the alarm */
	double (*clock)(void);   /* host UTC in seconds; replaceable by tests */
};
void rtc_init(struct rtc *r, uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned nr_vcpus);
uint8_t rtc_read(struct rtc *r, unsigned port_offset);
void rtc_write(struct rtc *r, unsigned port_offset, uint8_t v);
/* Interrupts (IRQF; the IRQ output follows it until register C is read): whether register B
 * enables one (PIE with a rate, AIE, UIE); the host time at which IRQF may next become 1 (the next
 * periodic edge or second update after the last read of C or the last check), 0 when none is
 * enabled; whether IRQF is 1 at host time now (if not, the check moves past now). */
bool rtc_irq_enabled(const struct rtc *r);
double rtc_irq_deadline(const struct rtc *r);
bool rtc_irq_pending(struct rtc *r, double now);

/* ---- fw_cfg (fw_cfg.c), QEMU docs/specs/fw_cfg.rst, traditional interface ----------------- */

#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_FILE_DIR 0x19

struct fw_cfg {
	uint16_t selector;
	uint32_t offset;
	uint8_t id[4], ram_size[8], nb_cpus[2], max_cpus[2], file_dir[4];
};
void fw_cfg_init(struct fw_cfg *f, uint64_t ram_size, unsigned nr_vcpus);
void fw_cfg_select(struct fw_cfg *f, uint16_t key);
uint8_t fw_cfg_read_data(struct fw_cfg *f);

/* ---- ACPI PM registers (pm.c), ACPI 6.5 chapter 4.8 ---------------------------------------- */

enum pm_event { PM_EVENT_NONE, PM_EVENT_POWEROFF, PM_EVENT_RESET };

struct acpi_pm {
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint32_t tmr_epoch;      /* PM_TMR value >> 23 when TMR_STS was last cleared */
	double (*clock)(void);   /* host monotonic seconds; replaceable by tests */
	double t0;
};
#define PM_TIMER_HZ 3579545.0
void acpi_pm_init(struct acpi_pm *p);
/* offset from DEV_PM_BASE; size 1, 2 or 4. */
uint32_t acpi_pm_read(struct acpi_pm *p, unsigned offset, unsigned size);
enum pm_event acpi_pm_write(struct acpi_pm *p, unsigned offset, unsigned size, uint32_t v);
uint32_t acpi_pm_timer(struct acpi_pm *p);

/* devices.c: a power-off or reset from the guest ends the VM (status 0), saying how. */
void dev_platform_event(struct blvm_vm *vm, struct blvm_vcpu *vcpu, enum pm_event ev, const char *how);

/* ---- i8042 (i8042.c): the controller with nothing plugged in, and its reset line ------------- */

struct i8042 {
	uint8_t status, ccb, out_port, obuf;
	uint8_t pending_cmd;     /* a command waiting for its data byte (0x60, 0xd1-0xd4), else 0 */
};
void i8042_init(struct i8042 *k);
uint8_t i8042_read(struct i8042 *k, unsigned port);
/* Returns PM_EVENT_RESET when the write pulses the CPU reset line. */
enum pm_event i8042_write(struct i8042 *k, unsigned port, uint8_t v);
#define I8042_IRQ_KBD 1u /* IRQ 1 is high */
#define I8042_IRQ_AUX 2u /* IRQ 12 is high */
/* The interrupt outputs after the last access: I8042_IRQ_* bits. */
unsigned i8042_irq_levels(const struct i8042 *k);

/* Ports 0xcf8-0xcfb: the PCI host bridge's CONFIG_ADDRESS takes dword accesses at 0xcf8 only;
 * byte and word accesses pass through to the I/O devices there, the PIIX reset control register
 * at 0xcf9 (PCI Local Bus Specification 3.0, 3.2.2.3.2). No PCI device is modelled: CONFIG_DATA
 * (0xcfc) is left unclaimed and reads all ones, "no device" to a configuration scan. */
struct pci_cf8 { uint32_t config_address; };
/* One access of size bytes at 0xcf8 + offset; returns PM_EVENT_RESET when it resets the machine. */
enum pm_event pci_cf8_access(struct pci_cf8 *s, unsigned offset, bool is_write, uint8_t *data, unsigned size);

/* ---- ACPI tables (acpi.c) -------------------------------------------------------------------- */

/* Builds RSDP, XSDT, RSDT, FADT, FACS, DSDT and MADT for nr_vcpus (1..64) in guest memory at
 * [BLVM_BIOS_AREA_GPA, BLVM_BIOS_AREA_END) of ram (mem_size bytes). Returns the RSDP's
 * guest-physical address, or 0 (err says why) when RAM does not reach the BIOS area. */
uint64_t acpi_build_tables(uint8_t *ram, uint64_t mem_size, unsigned nr_vcpus, char *err, size_t errlen);
uint8_t acpi_checksum(const void *p, size_t len);

#endif
