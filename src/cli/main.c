/* SPDX-License-Identifier: MIT */
/* The blvm command. Contract: DESIGN.md "Command line" — scripts depend on these names. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blvm/vm.h"

#include "blvm/version.h"

static const char usage_text[] =
	"usage: blvm run [OPTIONS] [--initrd=FILE] KERNEL [-- CMDLINE...]\n"
	"\n"
	"Boots KERNEL as qemu-system-x86_64 -kernel KERNEL -initrd FILE -append CMDLINE does and runs\n"
	"it until it writes its exit status to port 0xf4. COM1 output goes to stdout, byte for byte;\n"
	"blvm's own messages go to stderr. KERNEL is recognised by its contents, in QEMU's order:\n"
	"  bzImage    a Linux kernel with the \"HdrS\" setup header, boot protocol 2.12 or later with\n"
	"             the 64-bit entry (XLF_KERNEL_64): started in 64-bit mode with a zero page (e820\n"
	"             map, command line, ramdisk); the 16-bit setup code does not run\n"
	"  Multiboot  a Multiboot v1 kernel (32-bit ELF, or the a.out kludge): EAX=0x2BADB002, EBX=\n"
	"             the multiboot information; its command line is \"KERNEL CMDLINE\", as QEMU's\n"
	"  PVH        an ELF kernel with the XEN_ELFNOTE_PHYS32_ENTRY note (a vmlinux): hvm_start_info\n"
	"The guest's command line is exactly CMDLINE (the words after --, joined by spaces); blvm adds\n"
	"nothing (a Multiboot kernel gets the kernel's path first, as under QEMU).\n"
	"COM1 input comes from stdin: piped bytes are the guest's input (EOF: no more input); a\n"
	"terminal is put in raw mode for the run (restored at the end), and Ctrl-A x ends the VM\n"
	"(status 0), Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h lists the keys.\n"
	"\n"
	"options:\n"
	"  --engine=emu|kvm|auto  execution engine (default emu: the software CPU, works on any host;\n"
	"                         kvm: /dev/kvm; auto: kvm where /dev/kvm works, else emu)\n"
	"  --mem=SIZE             guest RAM, e.g. 128M, 1G; a plain number is MiB (default 128M); as\n"
	"                         QEMU's pc machine, RAM from 3.5G up is split: 3G below the 32-bit\n"
	"                         MMIO hole, the rest from 4G\n"
	"  --vcpus=N              number of vCPUs, 1 to 64 (default 1); every vCPU starts at the kernel's\n"
	"                         entry (guests/README.md, \"SMP\")\n"
	"  --cpu=intel|amd        CPU vendor the guest sees and bus-lock exit flavour (default intel:\n"
	"                         trap-like exit after the instruction; amd: fault-like, before it)\n"
	"  --bus-lock=POLICY      what to do when the guest takes a bus lock (default off):\n"
	"                           off           detection disabled, as in KVM\n"
	"                           log           count and attribute (see --stats and the report)\n"
	"                           ratelimit=N   at most N bus locks per second per VM, as QEMU's\n"
	"                                         bus-lock-ratelimit (vCPUs sleep); N/SLICE sets the\n"
	"                                         accounting slice, e.g. ratelimit=100/100ms\n"
	"                           pause=MS      the vCPU sleeps MS milliseconds per bus lock\n"
	"                           kill[=N]      end the VM at its N-th bus lock (default 1), status 123\n"
	"                           contain       (emu) run split and UC locked operations without a\n"
	"                                         host bus lock; count and attribute as log\n"
	"  --initrd=FILE          initial ramdisk: the bzImage's ramdisk (ramdisk_image/size), the PVH\n"
	"                         module (hvm_start_info.modlist), or the Multiboot module; placed\n"
	"                         where QEMU places it (an empty file: no PVH module, a size-0\n"
	"                         ramdisk or module, as QEMU does)\n"
	"  --quiet                no progress lines on stderr while bus locks occur\n"
	"  --stats=FILE.json      write statistics as JSON to FILE at exit\n"
	"  --timeout=SECONDS      end the VM after SECONDS (exit status 124)\n"
	"  -h, --help             this text\n"
	"  --version              blvm's version\n"
	"\n"
	"exit status: the guest's value V written to port 0xf4 (V & 0xff); 0 when the guest powers\n"
	"off (ACPI S5) or reboots (ACPI reset register, i8042; the VM ends as with qemu -no-reboot)\n"
	"or on Ctrl-A x; 2 for a bad option or kernel (nothing started); 124 on --timeout; 125 when\n"
	"the VM fails (halt with interrupts off, triple fault, engine error, console output error).\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "blvm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see blvm run --help)\n");
	return 2;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static char *join_args(int argc, char **argv)
{
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (int i = 0; i < argc; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, argv[i]);
	}
	return s;
}

static int cmd_run(int argc, char **argv)
{
	struct blvm_vm_config cfg = BLVM_VM_CONFIG_DEFAULT;
	cfg.console_in = STDIN_FILENO;
	const char *stats_path = NULL;
	enum { OPT_ENGINE = 256, OPT_MEM, OPT_VCPUS, OPT_CPU, OPT_STATS, OPT_TIMEOUT, OPT_VERSION, OPT_BUS_LOCK,
	       OPT_QUIET, OPT_INITRD };
	static const struct option opts[] = {
		{ "engine", required_argument, NULL, OPT_ENGINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "vcpus", required_argument, NULL, OPT_VCPUS },
		{ "cpu", required_argument, NULL, OPT_CPU },
		{ "stats", required_argument, NULL, OPT_STATS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "bus-lock", required_argument, NULL, OPT_BUS_LOCK },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0, 0, 0, 0 },
	};
	opterr = 0;
	optind = 1;
	int c;
	/* "+": stop at the first non-option, so the guest's command line after KERNEL is its own. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		unsigned long v;
		switch (c) {
		case OPT_ENGINE:
			if (strcmp(optarg, "emu") && strcmp(optarg, "kvm") && strcmp(optarg, "auto"))
				return usage_error("unknown engine '%s': choose --engine=emu, kvm or auto", optarg);
			cfg.engine = optarg;
			break;
		case OPT_MEM:
			if (blvm_parse_size(optarg, &cfg.mem_size) != 0)
				return usage_error("--mem=%s is not a size: use e.g. --mem=128M or --mem=1G", optarg);
			if (cfg.mem_size == 0)
				return usage_error("--mem=%s: guest RAM cannot be empty; use e.g. --mem=128M", optarg);
			break;
		case OPT_VCPUS:
			if (!parse_uint(optarg, 64, &v) || v == 0)
				return usage_error("--vcpus=%s: give a number from 1 to 64", optarg);
			cfg.nr_vcpus = (unsigned)v;
			break;
		case OPT_CPU:
			if (strcmp(optarg, "intel") == 0)
				cfg.cpu_vendor_amd = 0;
			else if (strcmp(optarg, "amd") == 0)
				cfg.cpu_vendor_amd = 1;
			else
				return usage_error("--cpu=%s: choose intel or amd", optarg);
			break;
		case OPT_STATS:
			if (!*optarg)
				return usage_error("--stats=%s: give a file name", optarg);
			stats_path = optarg;
			break;
		case OPT_TIMEOUT: {
			char *end;
			errno = 0;
			double t = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(t > 0) || !isfinite(t) || t > 1e7)
				return usage_error("--timeout=%s: give a positive number of seconds", optarg);
			cfg.timeout_s = t;
			break;
		}
		case OPT_BUS_LOCK: {
			char perr[256];
			if (blvm_policy_parse(optarg, &cfg.bus_lock, perr, sizeof perr) != 0) {
				fprintf(stderr, "blvm: %s\n", perr);
				return 2;
			}
			if (cfg.bus_lock.mode == BLVM_POLICY_RATELIMIT) {
				/* QEMU's ratelimit_set_speed() keeps a whole quota per slice, at least 1
				 * (util/throttle's MAX(speed * slice / 1 s, 1) stored in a uint64_t): say so
				 * when that is not the rate asked for, rather than enforce another silently. */
				double slice = (double)cfg.bus_lock.slice_ns;
				double q = (double)cfg.bus_lock.rate * slice / 1e9;
				uint64_t quota = q > 1 ? (uint64_t)q : 1;
				double eff = (double)quota * 1e9 / slice;
				if (eff != (double)cfg.bus_lock.rate)
					fprintf(stderr,
						"blvm: note: --bus-lock=%s: the limiter allows a whole number of bus locks "
						"per slice (%llu), that is %.6g per second, not %llu (QEMU's rounding)\n",
						optarg, (unsigned long long)quota, eff,
						(unsigned long long)cfg.bus_lock.rate);
			}
			break;
		}
		case OPT_QUIET:
			cfg.quiet = true;
			break;
		case OPT_INITRD:
			if (!*optarg)
				return usage_error("--initrd=%s: give a file name", optarg);
			cfg.initrd_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("blvm %s\n", BLVM_VERSION);
			return 0;
		case '?':
		default:
			if (optopt && optopt < 256)
				return usage_error("unknown option '-%c'", (char[]){ (char)optopt, 0 });
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("%s", "no kernel given: blvm run [OPTIONS] KERNEL [-- CMDLINE...]");
	cfg.kernel_path = argv[optind++];
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	else if (optind < argc)
		return usage_error("unexpected argument '%s' after the kernel; put the guest's command line after --",
				   argv[optind]);
	char *cmdline = join_args(argc - optind, argv + optind);
	if (!cmdline) {
		fprintf(stderr, "blvm: out of memory\n");
		return 2;
	}
	cfg.cmdline = cmdline;

	/* Open the stats file before starting, so a bad path costs nothing. */
	FILE *stats = NULL;
	if (stats_path) {
		stats = fopen(stats_path, "w");
		if (!stats) {
			fprintf(stderr, "blvm: cannot write --stats=%s: %s\n", stats_path, strerror(errno));
			free(cmdline);
			return 2;
		}
	}

	char err[512];
	struct blvm_vm *vm = NULL;
	if (strcmp(cfg.engine, "auto") == 0) {
		/* kvm where the host gives it to us and it can enforce the policy (the bus-lock
		 * capability), the software CPU elsewhere; say which. */
		cfg.engine = "kvm";
		if (blvm_vm_create(&cfg, &vm, err, sizeof err) != 0) {
			fprintf(stderr, "blvm: --engine=auto: using emu (%s)\n", err);
			cfg.engine = "emu";
		}
	}
	if (!vm && blvm_vm_create(&cfg, &vm, err, sizeof err) != 0) {
		fprintf(stderr, "blvm: %s\n", err);
		if (stats)
			fclose(stats);
		if (stats_path)
			unlink(stats_path);
		free(cmdline);
		return 2;
	}

	struct blvm_vm_result res;
	int status = blvm_vm_run(vm, &res);
	if (res.message[0])
		fprintf(stderr, "blvm: %s\n", res.message);
	blvm_vm_write_report(vm, stderr);
	if (stats) {
		blvm_vm_write_stats(vm, &res, stats);
		if (fclose(stats) != 0) {
			fprintf(stderr, "blvm: writing --stats=%s failed: %s\n", stats_path, strerror(errno));
			if (status == 0)
				status = 1;
		}
	}
	blvm_vm_destroy(vm);
	free(cmdline);
	if (fflush(stdout) != 0 && status == 0)
		status = 1;
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("blvm %s\n", BLVM_VERSION);
		return 0;
	}
	fprintf(stderr, "blvm: unknown command '%s' (see blvm --help)\n", argv[1]);
	return 2;
}
