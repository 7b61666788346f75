/* SPDX-License-Identifier: MIT */
/* The blvm command. Contract: docs/DESIGN.md "Command line" — scripts depend on these names. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "blvm/file.h"
#include "blvm/vm.h"
#include "control/control.h"
#include "common/escape.h"
#include "dev/dev.h" /* blvm_console_restore */

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
	"  --mem=SIZE, -m SIZE    guest RAM as QEMU's -m takes it: a number with an optional fraction\n"
	"                         and a suffix B, K, M, G, T (1024-based, also KiB/MiB/GiB), e.g.\n"
	"                         128M, 1.5G; a plain number is MiB (default 128M); 2M to 64G, a\n"
	"                         multiple of 4K; more than the host's RAM and swap runs, with a\n"
	"                         warning (the memory is reserved as the guest touches it); as\n"
	"                         QEMU's pc machine, RAM from 3.5G up is split: 3G below the 32-bit\n"
	"                         MMIO hole, the rest from 4G\n"
	"  --vcpus=N              number of vCPUs, 1 to 64 (default 1); every vCPU starts at the kernel's\n"
	"                         entry (guests/README.md, \"SMP\")\n"
	"  --cpu=intel|amd        CPU the guest sees and bus-lock exit flavour (default intel: a\n"
	"                         Sapphire Rapids, family 6 model 8FH, trap-like exit after the\n"
	"                         instruction; amd: an EPYC Genoa (Zen 4), family 19H model 11H,\n"
	"                         fault-like, before it); emu: CPUID advertises the subset of the\n"
	"                         part's features the engine implements\n"
	"  --translate=on|off|all emu: run guest code through the binary translator (on, the default:\n"
	"                         the blocks that run often; all: every block from its first run, for\n"
	"                         testing it) or the interpreter alone (off; the environment variable\n"
	"                         BLVM_TRANSLATE=on|off|all sets the default)\n"
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
	"  --control=PATH         a Unix socket (mode 0600) speaking QMP's wire format: greeting,\n"
	"                         qmp_capabilities, then query-status, query-bus-locks (the --stats\n"
	"                         object now), set-bus-lock-policy {\"policy\": POLICY} (live; not\n"
	"                         to or from off, contain only on emu), stop, cont, quit (status 0),\n"
	"                         query-version, query-commands; events SHUTDOWN, STOP, RESUME,\n"
	"                         BUS_LOCK_RATE (each second while bus locks occur),\n"
	"                         BUS_LOCK_THROTTLE_START/STOP, BUS_LOCK_KILL, BUS_LOCK_POLICY;\n"
	"                         up to 16 clients at once; a stale socket there is replaced\n"
	"  --events=FILE.jsonl    the socket's events, one JSON object per line, appended\n"
	"  --metrics=FILE.prom    Prometheus text format, rewritten every second and at the end\n"
	"                         (temporary file renamed, as --stats): bus locks by reason and by\n"
	"                         vCPU, throttled seconds, exits by reason, instructions, blvm_info\n"
	"  --kernel-btf=FILE      the Linux guest kernel's BTF (its vmlinux, or the guest's\n"
	"                         /sys/kernel/btf/vmlinux): bus locks are attributed to the guest\n"
	"                         process (comm, pid) that took them; without it, the kernel's\n"
	"                         own .BTF (a vmlinux's, or a bzImage's LZ4/gzip/xz payload's)\n"
	"  --kernel-symbols=FILE  the Linux guest kernel's System.map (beside vmlinuz): reports name\n"
	"                         the kernel function of a bus lock, shifted by the KASLR offset\n"
	"                         learnt from IA32_LSTAR (entry_SYSCALL_64) at the first bus lock\n"
	"  --quiet                no progress lines on stderr while bus locks occur\n"
	"  --stats=FILE.json      write statistics as JSON to FILE at exit, also when a signal or a\n"
	"                         console error ends the VM; written to a temporary file beside FILE\n"
	"                         and renamed over it, so a failed run leaves FILE as it was; a\n"
	"                         symlink is followed (its target replaced, as cp does); a device or\n"
	"                         FIFO is written in place, never replaced (a FIFO needs a reader)\n"
	"  --timeout=SECONDS      end the VM after SECONDS (exit status 124)\n"
	"  -h, --help             this text\n"
	"  --version              blvm's version\n"
	"\n"
	"The kernel must be a regular file (a FIFO, device or directory is refused at once).\n"
	"SIGINT, SIGTERM, SIGHUP and SIGQUIT end the VM cleanly: the vCPUs stop, the summary and the\n"
	"statistics are written, and blvm exits 128+N. A second signal a second or more later exits\n"
	"at once (no summary; the statistics file left as it was). A signal blvm was started with\n"
	"ignored (nohup) stays ignored.\n"
	"\n"
	"exit status: the guest's value V written to port 0xf4 (V & 0xff); 0 when the guest powers\n"
	"off (ACPI S5) or reboots (ACPI reset register, i8042; the VM ends as with qemu -no-reboot)\n"
	"or on Ctrl-A x; 2 for a bad option or kernel (nothing started); 122 when the console output cannot be written (stdout full or\n"
	"closed, its reader gone): the VM ends, output was lost; 123 when --bus-lock=kill ends the\n"
	"VM; 124 on --timeout; 125 when the VM fails (halt with interrupts off, triple fault, engine\n"
	"error); 128+N when signal N ends it. A guest value equal to one of these is said on stderr;\n"
	"the \"end\" field of the statistics tells them apart.\n";

/* "blvm: MSG" + suffix as one line on stderr: MSG quotes the user's arguments and file names, whose
 * control bytes are escaped (blvm_escape_controls), so a newline in an argument cannot split it. */
static void error_line(const char *msg, const char *suffix)
{
	size_t n = 4 * strlen(msg) + 1;
	char *safe = malloc(n);
	fprintf(stderr, "blvm: %s%s\n", safe ? blvm_escape_controls(safe, n, msg) : "out of memory", suffix);
	free(safe);
}

/* One line on stderr and status 2. printf-style, so that -Wformat checks every call. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	error_line(msg, " (see blvm run --help)");
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

/* ---- stopping on a signal ------------------------------------------------------------------
 * SIGINT, SIGTERM, SIGHUP (and SIGQUIT, which would otherwise dump core and lose the record the
 * same way) end the VM cleanly: blvm_vm_signal() stops the vCPUs, then the summary and the stats
 * are written and blvm exits 128 + N. The signals are blocked in every thread (the vCPU threads
 * inherit the mask) and one thread takes them with sigwait(), so no code runs in a signal handler
 * at all. A second signal, a second or more after the first, exits at once (status 128 + N, no
 * summary; the temporary stats file is removed and the target left as it was): the way out when
 * stopping takes too long. One that follows within the second is the same request twice, not
 * impatience: timeout(1) sends its signal both to the command and to the command's process group.
 */
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static struct {
	pthread_mutex_t lock;
	struct blvm_vm *vm; /* the VM a signal ends: set from creation until blvm_vm_run returns */
	int first;          /* the first signal received, 0 while none */
	struct timespec first_at; /* when (CLOCK_MONOTONIC) */
	char tmp[PATH_MAX]; /* the temporary --stats file, removed by an immediate exit */
} stop = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The stop signals blvm takes: those it was not started with ignored. A signal the caller set to be
 * ignored stays ignored, as the convention goes (nohup(1) ignores SIGHUP; a shell starts background
 * jobs with SIGINT and SIGQUIT ignored, so that Ctrl-C reaches only the foreground). */
static sigset_t stop_set;

static void *stop_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int signo;
		if (sigwait(&stop_set, &signo) != 0)
			continue;
		pthread_mutex_lock(&stop.lock);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!stop.first) {
			stop.first = signo;
			stop.first_at = now;
			if (stop.vm)
				blvm_vm_signal(stop.vm, signo);
			pthread_mutex_unlock(&stop.lock);
			continue;
		}
		double since = (double)(now.tv_sec - stop.first_at.tv_sec) + (now.tv_nsec - stop.first_at.tv_nsec) / 1e9;
		if (since < 1.0) {
			pthread_mutex_unlock(&stop.lock);
			continue;
		}
		if (stop.tmp[0])
			unlink(stop.tmp);
		const char *name = sigabbrev_np(signo);
		char msg[160];
		int n = snprintf(msg, sizeof msg, "blvm: SIG%s again while stopping: exiting at once (no summary, "
				 "no --stats)\n", name ? name : "?");
		if (n > 0)
			(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
		blvm_console_restore(); /* the terminal out of raw mode: _exit runs no atexit handler */
		_exit(BLVM_STATUS_SIGNAL_BASE + signo);
	}
	return NULL;
}

/* Blocks the stop signals in this (the only) thread, so that every thread created later inherits
 * the mask, and starts the thread that takes them. */
static int stop_start(void)
{
	sigemptyset(&stop_set);
	for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++) {
		struct sigaction old;
		if (sigaction(stop_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaddset(&stop_set, stop_signals[i]);
	}
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
	pthread_t t;
	int r = pthread_create(&t, NULL, stop_thread, NULL);
	if (r != 0) {
		fprintf(stderr, "blvm: cannot start the signal thread: %s\n", strerror(r));
		return -1;
	}
	pthread_detach(t);
	return 0;
}

/* From creation to the end of blvm_vm_run, a signal ends vm; one that came before ends it now. */
static void stop_attach(struct blvm_vm *vm)
{
	pthread_mutex_lock(&stop.lock);
	stop.vm = vm;
	if (vm && stop.first)
		blvm_vm_signal(vm, stop.first);
	pthread_mutex_unlock(&stop.lock);
}

static void stop_register_tmp(const char *tmp)
{
	pthread_mutex_lock(&stop.lock);
	snprintf(stop.tmp, sizeof stop.tmp, "%s", tmp ? tmp : "");
	pthread_mutex_unlock(&stop.lock);
}

/* Descriptors 0-2 closed by whoever started blvm would be taken by the first files blvm opens, and
 * the guest's console would go into the --stats file. They are held with /dev/null; stdout read-only,
 * so that console writes fail (EBADF) and end the VM as any lost output does. */
static void hold_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		int nfd = open("/dev/null", fd == 2 ? O_WRONLY : O_RDONLY); /* the lowest free: fd itself */
		if (nfd >= 0 && nfd != fd) {
			dup2(nfd, fd);
			close(nfd);
		}
	}
}

/* MAP_NORESERVE lets --mem exceed the host's memory; a guest that touches it all would push the host
 * into the OOM killer, so say so (the VM still runs: a guest rarely touches all its RAM). */
static void warn_if_mem_exceeds_host(uint64_t mem)
{
	struct sysinfo si;
	if (sysinfo(&si) != 0)
		return;
	uint64_t host = ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
	if (mem > host)
		fprintf(stderr, "blvm: warning: --mem=%lluM is more than this host's memory (%lluM of RAM and "
			"swap); the guest runs, but if it touches that much the host may run out of memory\n",
			(unsigned long long)(mem >> 20), (unsigned long long)(host >> 20));
}

/* A guest's own exit value that equals one of blvm's statuses. */
static bool status_is_blvms(int s)
{
	if (s == BLVM_STATUS_USAGE || s == BLVM_STATUS_CONSOLE_FAILED || s == BLVM_STATUS_BUS_LOCK_KILL ||
	    s == BLVM_STATUS_TIMEOUT || s == BLVM_STATUS_VM_FAILED)
		return true;
	for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
		if (s == BLVM_STATUS_SIGNAL_BASE + stop_signals[i])
			return true;
	return false;
}

/* QEMU's ratelimit_set_speed() keeps a whole quota per slice, at least 1 (util/throttle's MAX(speed *
 * slice / 1 s, 1) stored in a uint64_t): say so when that is not the rate asked for, rather than
 * enforce another silently. Only once the VM exists: a run that does not start gets its one error
 * line and nothing else (issue 15; found by tests/fuzz/cli_options.c). */
static void note_ratelimit(const struct blvm_policy_config *pc)
{
	if (pc->mode != BLVM_POLICY_RATELIMIT)
		return;
	char spec[64];
	blvm_policy_format(pc, spec, sizeof spec);
	double slice = (double)pc->slice_ns;
	double q = (double)pc->rate * slice / 1e9;
	uint64_t quota = q > 1 ? (uint64_t)q : 1;
	double eff = (double)quota * 1e9 / slice;
	if (eff != (double)pc->rate)
		fprintf(stderr, "blvm: note: --bus-lock=%s: the limiter allows a whole number of bus locks per slice "
			"(%llu), that is %.6g per second, not %llu (QEMU's rounding)\n", spec,
			(unsigned long long)quota, eff, (unsigned long long)pc->rate);
}

/*
 * The options of `blvm run`, parsed without starting anything (tests/fuzz/cli_options.c calls it
 * directly). Returns -1 with *cfg complete (cfg->cmdline malloc'ed: the caller frees it) and
 * *stats_path set or NULL and *ctl_out the control socket's, events' and metrics' paths; otherwise the status to exit with: 0 after --help or --version (printed
 * on stdout), 2 after one line on stderr. Callable more than once: getopt is fully reset.
 */
/* --translate / BLVM_TRANSLATE: blvm_engine_config.translate, or -1 */
static int translate_mode(const char *v)
{
	return !strcmp(v, "off") ? 0 : !strcmp(v, "on") ? 1 : !strcmp(v, "all") ? 2 : -1;
}

static int parse_run_options(int argc, char **argv, struct blvm_vm_config *out, const char **stats_out,
			     struct blvm_control_config *ctl_out)
{
	struct blvm_vm_config cfg = BLVM_VM_CONFIG_DEFAULT;
	cfg.console_in = STDIN_FILENO;
	const char *stats_path = NULL;
	enum { OPT_ENGINE = 256, OPT_MEM, OPT_VCPUS, OPT_CPU, OPT_STATS, OPT_TIMEOUT, OPT_VERSION, OPT_BUS_LOCK,
	       OPT_QUIET, OPT_INITRD, OPT_CONTROL, OPT_EVENTS, OPT_METRICS, OPT_KERNEL_BTF,
	       OPT_KERNEL_SYMBOLS, OPT_TRANSLATE };
	struct blvm_control_config ctl_cfg = { 0 };
	static const struct option opts[] = {
		{ "engine", required_argument, NULL, OPT_ENGINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "vcpus", required_argument, NULL, OPT_VCPUS },
		{ "cpu", required_argument, NULL, OPT_CPU },
		{ "translate", required_argument, NULL, OPT_TRANSLATE },
		{ "stats", required_argument, NULL, OPT_STATS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "bus-lock", required_argument, NULL, OPT_BUS_LOCK },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "control", required_argument, NULL, OPT_CONTROL },
		{ "events", required_argument, NULL, OPT_EVENTS },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "kernel-btf", required_argument, NULL, OPT_KERNEL_BTF },
		{ "kernel-symbols", required_argument, NULL, OPT_KERNEL_SYMBOLS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0, 0, 0, 0 },
	};
	/* the default of --translate (the test suite runs every emu test on both back ends with it) */
	const char *tr = getenv("BLVM_TRANSLATE");
	if (tr && *tr) {
		if ((cfg.translate = translate_mode(tr)) < 0)
			return usage_error("BLVM_TRANSLATE=%s: choose on, off or all", tr);
	}
	opterr = 0;
	optind = 0; /* glibc: 0 re-initialises the scan, including a half-read "-abc" of an earlier one */
	int c;
	/* "+": stop at the first non-option, so the guest's command line after KERNEL is its own;
	 * ":": a missing value is told apart from an unknown option. */
	while ((c = getopt_long(argc, argv, "+:hm:", opts, NULL)) != -1) {
		unsigned long v;
		switch (c) {
		case OPT_ENGINE:
			if (strcmp(optarg, "emu") && strcmp(optarg, "kvm") && strcmp(optarg, "auto"))
				return usage_error("unknown engine '%s': choose --engine=emu, kvm or auto", optarg);
			cfg.engine = optarg;
			break;
		case 'm': /* QEMU's spelling */
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
		case OPT_TRANSLATE:
			if ((cfg.translate = translate_mode(optarg)) < 0)
				return usage_error("--translate=%s: choose on, off or all", optarg);
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
				error_line(perr, "");
				return 2;
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
		case OPT_CONTROL:
		case OPT_EVENTS:
		case OPT_METRICS: {
			const char *name = c == OPT_CONTROL ? "--control" : c == OPT_EVENTS ? "--events" : "--metrics";
			if (!*optarg)
				return usage_error("%s=%s: give a file name", name, optarg);
			*(c == OPT_CONTROL ? &ctl_cfg.socket_path : c == OPT_EVENTS ? &ctl_cfg.events_path
										: &ctl_cfg.metrics_path) = optarg;
			break;
		}
		case OPT_KERNEL_BTF:
			if (!*optarg)
				return usage_error("--kernel-btf=%s: give a file name", optarg);
			cfg.kernel_btf_path = optarg;
			break;
		case OPT_KERNEL_SYMBOLS:
			if (!*optarg)
				return usage_error("--kernel-symbols=%s: give a file name", optarg);
			cfg.kernel_symbols_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("blvm %s\n", BLVM_VERSION);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		case '?':
		default:
			if (optopt && optopt < 256)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no kernel given: blvm run [OPTIONS] KERNEL [-- CMDLINE...]");
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
	*out = cfg;
	*stats_out = stats_path;
	*ctl_out = ctl_cfg;
	return -1;
}

static int cmd_run(int argc, char **argv)
{
	struct blvm_vm_config cfg;
	const char *stats_path = NULL;
	struct blvm_control_config ctl_cfg = { 0 };
	int parsed = parse_run_options(argc, argv, &cfg, &stats_path, &ctl_cfg);
	if (parsed >= 0)
		return parsed;
	char *cmdline = (char *)cfg.cmdline;
	if (stop_start() != 0) {
		free(cmdline);
		return 2;
	}

	/* The stats file is prepared before starting, so a bad path costs nothing; it is written to a
	 * temporary name beside the target and renamed at the end (blvm/file.h). */
	struct blvm_output stats = { 0 };
	if (stats_path) {
		char ferr[PATH_MAX + 256];
		if (blvm_output_open(&stats, stats_path, "--stats", ferr, sizeof ferr) != 0) {
			error_line(ferr, "");
			free(cmdline);
			return 2;
		}
		stop_register_tmp(blvm_output_tmp_name(&stats));
	}
	/* The control socket and the event and metrics files, also before starting. */
	struct blvm_control *ctl = NULL;
	{
		char cerr[PATH_MAX + 256];
		if (blvm_control_open(&ctl_cfg, &ctl, cerr, sizeof cerr) != 0) {
			error_line(cerr, "");
			stop_register_tmp(NULL);
			if (stats_path)
				blvm_output_abort(&stats);
			free(cmdline);
			return 2;
		}
	}
	warn_if_mem_exceeds_host(cfg.mem_size);

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
		error_line(err, "");
		/* Only the temporary file is removed: what --stats names is left as it was. */
		stop_register_tmp(NULL);
		if (stats_path)
			blvm_output_abort(&stats);
		blvm_control_finish(ctl, NULL);
		free(cmdline);
		return 2;
	}
	note_ratelimit(&cfg.bus_lock);

	struct blvm_vm_result res;
	stop_attach(vm);
	if (blvm_control_start(ctl, vm, err, sizeof err) != 0) {
		fprintf(stderr, "blvm: %s\n", err);
		blvm_vm_signal(vm, SIGTERM); /* ends before the vCPUs start: status 128+15, the record kept */
	}
	int status = blvm_vm_run(vm, &res);
	stop_attach(NULL);
	/* The end events and the last metrics, while the counts are final and the VM still exists. */
	blvm_control_finish(ctl, &res);
	if (res.message[0])
		fprintf(stderr, "blvm: %s\n", res.message);
	if (res.console_errno && res.reason != BLVM_END_CONSOLE_ERROR)
		fprintf(stderr, "blvm: the guest's console output could not all be written to stdout: %s\n",
			strerror(res.console_errno));
	blvm_vm_write_report(vm, stderr);
	if (stats_path) {
		char ferr[PATH_MAX + 256];
		blvm_vm_write_stats(vm, &res, stats.f);
		if (blvm_output_commit(&stats, ferr, sizeof ferr) != 0) {
			error_line(ferr, "");
			if (status == 0)
				status = 1;
		}
		stop_register_tmp(NULL);
	}
	if (res.reason == BLVM_END_GUEST_EXIT && status_is_blvms(status))
		fprintf(stderr, "blvm: the guest exited with status %d (blvm's own statuses: 2 usage, 122 console "
			"output lost, 123 bus-lock kill, 124 timeout, 125 VM failure, 128+N signal N; --stats "
			"\"end\" tells them apart)\n", status);
	blvm_vm_destroy(vm);
	free(cmdline);
	if (fflush(stdout) != 0 && status == 0)
		status = 1;
	return status;
}

int main(int argc, char **argv)
{
	hold_std_fds();
	/* A console reader that goes away (`blvm run G | head`) must not kill blvm before it writes its
	 * record: writes fail with EPIPE instead, and the VM ends as for any lost console output. */
	signal(SIGPIPE, SIG_IGN);
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
