/* SPDX-License-Identifier: MIT */
/*
 * Attribution and reports: counts per instruction, the top list's order, the bounded table (100000
 * distinct rips: at most BLVM_POLICY_MAX_RIPS kept, memory capped, totals exact), the JSON members
 * (parsed by python3 with every value checked), the human summary and the once-a-second progress line;
 * with a task source (issue 13), rows keyed by (rip, task), the tasks list, and the named kill.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blvm/policy.h"

/* One vCPU's bus locks, through the per-vCPU statistics. */
static unsigned long long vcpu_locks(const struct blvm_policy *p, unsigned vcpu)
{
	struct blvm_policy_vcpu_stats v;
	blvm_policy_get_vcpu_stats(p, vcpu, &v);
	return v.bus_locks;
}

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)
#define CHECK_EQ(a, b) do { unsigned long long a_ = (a), b_ = (b); if (a_ != b_) { \
	fprintf(stderr, "%s:%d: %s = %llu, expected %llu\n", __FILE__, __LINE__, #a, a_, b_); failures++; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); if (!a_ || strcmp(a_, b_) != 0) { \
	fprintf(stderr, "%s:%d: %s =\n  \"%s\", expected\n  \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_); \
	failures++; } } while (0)

#define S 1000000000ull

static uint64_t fake_now;
static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static struct blvm_policy *make(const char *spec, unsigned nr_vcpus)
{
	struct blvm_policy_config cfg;
	char err[200];
	if (blvm_policy_parse(spec, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	fake_now = 1000 * S;
	return blvm_policy_create(&cfg, nr_vcpus, fake_clock, NULL);
}

static struct kvm_run bl = { .exit_reason = KVM_EXIT_X86_BUS_LOCK, .flags = KVM_RUN_X86_BUS_LOCK };

static void feed(struct blvm_policy *p, unsigned vcpu, uint64_t rip, uint32_t reason, uint32_t size, const char *disasm,
		 int times)
{
	struct blvm_bus_lock_info info = { .rip = rip, .linear = rip + 0x1000, .phys = rip + 0x2000,
					   .size = (uint8_t)size, .reason = (uint8_t)reason };
	snprintf(info.disasm, sizeof info.disasm, "%s", disasm);
	for (int i = 0; i < times; i++)
		blvm_policy_after_run(p, vcpu, &bl, &info);
}

static char *capture_json(const struct blvm_policy *p, int indent)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fputs("{\n  \"engine\": \"emu\",\n", f); /* as the monitor splices it */
	blvm_policy_write_json(p, f, indent);
	fputs(",\n  \"exit_code\": 0\n}\n", f);
	fclose(f);
	return buf;
}

/* The summary blvm prints on stderr at the end, after a run of the given length in seconds. */
static char *capture_summary(const struct blvm_policy *p, double seconds)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	blvm_policy_write_summary(p, f, seconds);
	fclose(f);
	return buf;
}

/* JSON checks are queued (each document in its own file, with its assertions) and run by one python3
 * process at the end: python3 parses every document and checks every value. */
static FILE *py_script;
static char *py_text;
static size_t py_len;
static char py_files[8][40];
static int py_nfiles;

static void json_check(const char *json, const char *asserts)
{
	if (py_nfiles == 8) {
		fprintf(stderr, "too many JSON checks\n");
		failures++;
		return;
	}
	char *path = py_files[py_nfiles];
	strcpy(path, "/tmp/blvm-policy-json-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		failures++;
		return;
	}
	py_nfiles++;
	FILE *f = fdopen(fd, "w");
	fputs(json, f);
	fclose(f);
	if (!py_script) {
		py_script = open_memstream(&py_text, &py_len);
		fputs("import json\n", py_script);
	}
	fprintf(py_script, "d = json.load(open(\"%s\"))\n%s", path, asserts);
}

/* 0: every check held; 77: no python3. */
static int json_run_checks(void)
{
	int rc = 0;
	if (!py_script)
		return 0;
	fclose(py_script);
	if (system("command -v python3 >/dev/null 2>&1") != 0) {
		rc = 77;
	} else {
		char path[] = "/tmp/blvm-policy-check-XXXXXX";
		int fd = mkstemp(path);
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f)
			return 1;
		fputs(py_text, f);
		fclose(f);
		char cmd[80];
		snprintf(cmd, sizeof cmd, "python3 %s", path);
		rc = system(cmd) == 0 ? 0 : 1;
		if (rc)
			fprintf(stderr, "JSON checks failed; the script was:\n%s", py_text);
		unlink(path);
	}
	for (int i = 0; i < py_nfiles; i++)
		unlink(py_files[i]);
	free(py_text);
	return rc;
}

static void counts_top_json(void)
{
	struct blvm_policy *p = make("ratelimit=1000000", 2);
	feed(p, 0, 0x401000, BLVM_BUS_LOCK_SPLIT, 4, "lock add dword ptr [rax+0x3e], ecx", 5);
	feed(p, 1, 0x401100, BLVM_BUS_LOCK_UC, 8, "lock xadd qword ptr [rdi], rax", 7);
	feed(p, 0, 0x400f00, BLVM_BUS_LOCK_SPLIT, 2, "xchg word ptr [rsi+0x3f], ax", 7); /* ties 0x401100: lower rip first */
	feed(p, 1, 0x402000, BLVM_BUS_LOCK_SPLIT, 16, "lock cmpxchg16b xmmword ptr [\"x\\y\"]", 9); /* escaping */
	for (int i = 0; i < 12; i++) /* 12 more with 1..12: only the biggest make the top 10 */
		feed(p, i % 2, 0x500000 + 0x10 * (uint64_t)i, BLVM_BUS_LOCK_SPLIT, 4, "lock inc dword ptr [rbx]", i + 1);
	for (int i = 0; i < 3; i++)
		blvm_policy_after_run(p, 1, &bl, NULL); /* the kvm engine: no attribution */
	blvm_policy_slept(p, 0, 1500);
	blvm_policy_slept(p, 1, 2500);

	struct blvm_policy_stats st;
	fake_now = 1004 * S; /* 4 s after create */
	blvm_policy_get_stats(p, &st);
	const uint64_t total = 5 + 7 + 7 + 9 + 78 + 3;
	CHECK_EQ(st.total, total);
	CHECK_EQ(st.split, 5 + 7 + 9 + 78);
	CHECK_EQ(st.uc, 7);
	CHECK_EQ(st.unattributed, 3);
	CHECK_EQ(st.throttled_ns, 4000);
	CHECK_EQ(st.distinct_rips, 16);
	CHECK_EQ(st.rips_overflow, 0);
	CHECK(st.elapsed_s == 4.0);

	struct blvm_policy_insn top[BLVM_POLICY_TOP + 5];
	unsigned n = blvm_policy_top(p, top, BLVM_POLICY_TOP + 5);
	CHECK_EQ(n, 15);
	n = blvm_policy_top(p, top, BLVM_POLICY_TOP);
	CHECK_EQ(n, 10);
	/* 12 (0x5000b0), 11, 10, 9 (0x402000 < 0x500080), 9, 8, 7 (0x400f00, 0x401100, 0x500060), ... */
	static const struct { uint64_t rip, count; } want[10] = {
		{ 0x5000b0, 12 }, { 0x5000a0, 11 }, { 0x500090, 10 }, { 0x402000, 9 }, { 0x500080, 9 },
		{ 0x500070, 8 }, { 0x400f00, 7 }, { 0x401100, 7 }, { 0x500060, 7 }, { 0x500050, 6 },
	};
	for (unsigned i = 0; i < 10 && i < n; i++) {
		if (top[i].rip != want[i].rip || top[i].count != want[i].count) {
			fprintf(stderr, "top[%u] = 0x%llx x%llu, expected 0x%llx x%llu\n", i, (unsigned long long)top[i].rip,
				(unsigned long long)top[i].count, (unsigned long long)want[i].rip,
				(unsigned long long)want[i].count);
			failures++;
		}
	}
	CHECK_STR(top[7].disasm, "lock xadd qword ptr [rdi], rax");
	CHECK(top[7].reason == BLVM_BUS_LOCK_UC && top[7].size == 8);
	CHECK(top[6].reason == BLVM_BUS_LOCK_SPLIT && top[6].size == 2);
	CHECK_EQ(vcpu_locks(p, 0), 5 + 7 + (1 + 3 + 5 + 7 + 9 + 11));
	CHECK_EQ(vcpu_locks(p, 1), 7 + 9 + (2 + 4 + 6 + 8 + 10 + 12) + 3);
	/* Per vCPU and per reason; each field sums over the vCPUs to the VM's. */
	struct blvm_policy_vcpu_stats v0, v1, vx;
	blvm_policy_get_vcpu_stats(p, 0, &v0);
	blvm_policy_get_vcpu_stats(p, 1, &v1);
	blvm_policy_get_vcpu_stats(p, 2, &vx); /* no such vCPU */
	CHECK_EQ(v0.split, 5 + 7 + 36);
	CHECK_EQ(v0.uc, 0);
	CHECK_EQ(v0.unattributed, 0);
	CHECK_EQ(v0.throttled_ns, 1500);
	CHECK_EQ(v1.split, 9 + 42);
	CHECK_EQ(v1.uc, 7);
	CHECK_EQ(v1.unattributed, 3);
	CHECK_EQ(v1.throttled_ns, 2500);
	CHECK_EQ(v0.sleeps + v1.sleeps, st.sleeps);
	CHECK_EQ(vx.bus_locks + vx.split + vx.throttled_ns, 0);

	char *json = capture_json(p, 2);
	/* The splice contract: members at the given indent, no trailing comma or newline of our own. */
	CHECK(strstr(json, "\"engine\": \"emu\",\n  \"bus_locks\": {\"policy\": \"ratelimit=1000000\", ") != NULL);
	CHECK(strstr(json, "\n  ],\n  \"tasks\": [],\n  \"exit_code\"") != NULL);
	json_check(json,
		"b=d[\"bus_locks\"]; t=d[\"top\"]\n"
		"assert b == {\"policy\": \"ratelimit=1000000\", \"total\": 109, \"split\": 99, \"uc\": 7, "
		"\"unattributed\": 3, \"throttled_ns\": 4000, \"per_second\": 27.25, \"distinct_rips\": 16, "
		"\"rips_overflow\": 0, \"task_unknown\": 109, \"tasks_overflow\": 0}, b\n"
		"assert len(t) == 10, t\n"
		"assert [e[\"count\"] for e in t] == [12, 11, 10, 9, 9, 8, 7, 7, 7, 6], t\n"
		"assert t[0][\"rip\"] == \"0x5000b0\", t[0]\n"
		"assert t[3] == {\"rip\": \"0x402000\", \"count\": 9, "
		"\"insn\": \"lock cmpxchg16b xmmword ptr [\\\"x\\\\y\\\"]\", \"reason\": \"split\", \"size\": 16, \"symbol\": None, "
		"\"mode\": None, \"task\": None, \"cr3\": None}, t[3]\n"
		"assert t[7] == {\"rip\": \"0x401100\", \"count\": 7, \"insn\": \"lock xadd qword ptr [rdi], rax\", "
		"\"reason\": \"uc\", \"size\": 8, \"symbol\": None, \"mode\": None, \"task\": None, \"cr3\": None}, t[7]\n"
		"assert d[\"engine\"] == \"emu\" and d[\"exit_code\"] == 0\n");
	free(json);

	/* The human summary names the instructions. */
	char *buf = capture_summary(p, 2.0);
	fputs(buf, stdout);
	CHECK(strstr(buf, "blvm: --bus-lock=ratelimit=1000000: 109 bus locks in 2.00 s (54.5/s); split 99, uc 7, "
			  "unattributed 3\n") != NULL);
	CHECK(strstr(buf, "blvm: vCPUs throttled 4000 ns in 0 sleeps") != NULL);
	CHECK(strstr(buf, "           7  0x0000000000401100  uc        8  lock xadd qword ptr [rdi], rax\n") != NULL);
	CHECK(strstr(buf, "(16 distinct instructions in all)") != NULL);
	CHECK(strstr(buf, "blvm: by vCPU: 1: 61, 0: 48\n") != NULL);
	free(buf);
	blvm_policy_destroy(p);

	/* 14 vCPUs, 12 with bus locks (vCPU k takes k, but 3 and 9 none): the busiest 10, ties by index. */
	p = make("log", 14);
	for (unsigned k = 0; k < 14; k++)
		if (k != 3 && k != 9)
			feed(p, k, 0x401000, BLVM_BUS_LOCK_SPLIT, 4, "lock inc dword ptr [rbx]", k == 0 ? 12 : k);
	buf = capture_summary(p, 1.0);
	CHECK(strstr(buf, "blvm: by vCPU: 13: 13, 0: 12, 12: 12, 11: 11, 10: 10, 8: 8, 7: 7, 6: 6, 5: 5, 4: 4 "
			  "(and 2 more vCPUs); the others none\n") != NULL);
	free(buf);
	blvm_policy_destroy(p);
}

static void empty_and_off_json(void)
{
	/* No bus locks, and the kvm engine's unattributed ones: valid JSON with an empty top. */
	struct blvm_policy *p = make("log", 1);
	char *json = capture_json(p, 2);
	CHECK(strstr(json, "\"top\": []") != NULL);
	json_check(json, "assert d[\"bus_locks\"][\"total\"] == 0 and d[\"top\"] == [] and "
				    "d[\"bus_locks\"][\"per_second\"] == 0\n");
	free(json);
	blvm_policy_after_run(p, 0, &bl, NULL);
	char *buf = capture_summary(p, 1.0);
	CHECK(strstr(buf, "no instruction attribution") != NULL);
	free(buf);
	blvm_policy_destroy(p);

	json = capture_json(NULL, 4); /* no policy: OFF's zeros */
	CHECK(strstr(json, "    \"bus_locks\": {\"policy\": \"off\", \"total\": 0,") != NULL);
	json_check(json, "assert d[\"bus_locks\"][\"policy\"] == \"off\" and d[\"top\"] == []\n");
	free(json);
}

static void bounded_table(void)
{
	struct blvm_policy *p = make("log", 1);
	struct blvm_policy_stats st;
	uint64_t bytes_at_10000 = 0;
	for (uint64_t i = 0; i < 100000; i++) {
		feed(p, 0, 0x1000000 + i * 3, BLVM_BUS_LOCK_SPLIT, 4, "lock or byte ptr [rcx], 1", 1);
		if (i == 9999) {
			blvm_policy_get_stats(p, &st);
			bytes_at_10000 = st.table_bytes;
		}
	}
	feed(p, 0, 0x1000000, BLVM_BUS_LOCK_SPLIT, 4, "lock or byte ptr [rcx], 1", 41); /* the first rip: tracked */
	blvm_policy_get_stats(p, &st);
	CHECK_EQ(st.total, 100041);
	CHECK_EQ(st.split, 100041);
	CHECK_EQ(st.distinct_rips, BLVM_POLICY_MAX_RIPS);
	CHECK_EQ(st.rips_overflow, 100000 - BLVM_POLICY_MAX_RIPS);
	CHECK(st.table_bytes == bytes_at_10000);  /* stopped growing once full */
	CHECK(st.table_bytes <= 2 * 1024 * 1024);   /* and stays small: 8192 slots of < 256 bytes */
	struct blvm_policy_insn top[2];
	CHECK_EQ(blvm_policy_top(p, top, 2), 2);
	CHECK(top[0].rip == 0x1000000 && top[0].count == 42);
	CHECK(top[1].rip == 0x1000003 && top[1].count == 1);
	char *json = capture_json(p, 2);
	json_check(json, "b=d[\"bus_locks\"]\n"
				    "assert b[\"total\"] == 100041 and b[\"distinct_rips\"] == 4096 and "
				    "b[\"rips_overflow\"] == 95904 and len(d[\"top\"]) == 10, b\n");
	free(json);
	blvm_policy_destroy(p);
}

static void progress(void)
{
	struct blvm_policy *p = make("pause=1", 1);
	char line[160];
	CHECK(!blvm_policy_progress_due(p, line, sizeof line)); /* no time, no bus locks */
	feed(p, 0, 0x10, BLVM_BUS_LOCK_SPLIT, 4, "lock inc", 1000);
	fake_now += S / 2;
	CHECK(!blvm_policy_progress_due(p, line, sizeof line)); /* half a second: not yet */
	feed(p, 0, 0x10, BLVM_BUS_LOCK_SPLIT, 4, "lock inc", 1000);
	fake_now += S / 2;
	CHECK(blvm_policy_progress_due(p, line, sizeof line));
	CHECK_STR(line, "bus locks: 2000/s over the last 1.0 s, 2000 in all");
	CHECK(!blvm_policy_progress_due(p, line, sizeof line)); /* once */
	fake_now += 3 * S / 2;
	CHECK(!blvm_policy_progress_due(p, line, sizeof line)); /* 1.5 s without bus locks: silent */
	feed(p, 0, 0x10, BLVM_BUS_LOCK_SPLIT, 4, "lock inc", 10);
	fake_now += S / 2;
	CHECK(blvm_policy_progress_due(p, line, sizeof line));
	CHECK_STR(line, "bus locks: 5/s over the last 2.0 s, 2010 in all");
	blvm_policy_destroy(p);
}

/* A symbolizer as a monitor supplies one: functions f0 at 0x401000 and f1 at 0x402000 (0x100 bytes
 * each), nothing elsewhere. It counts its calls, which must come from the reports, not the hot path. */
static int sym_calls;
static int fake_symbolize(void *arg, uint64_t rip, char *buf, size_t len)
{
	sym_calls++;
	CHECK(arg == (void *)&sym_calls);
	uint64_t base = rip & ~0xfffull;
	if ((base == 0x401000 || base == 0x402000) && rip - base < 0x100)
		return rip == base ? snprintf(buf, len, "f%d", base == 0x402000)
				   : snprintf(buf, len, "f%d+0x%x", base == 0x402000, (unsigned)(rip - base));
	buf[0] = '\0';
	return 0;
}

static void symbols(void)
{
	struct blvm_policy *p = make("kill=4", 1);
	blvm_policy_set_symbolizer(p, fake_symbolize, &sym_calls);
	feed(p, 0, 0x401010, BLVM_BUS_LOCK_SPLIT, 4, "lock inc dword ptr [rbx]", 2);
	feed(p, 0, 0x402000, BLVM_BUS_LOCK_UC, 8, "lock xadd qword ptr [rdi], rax", 1);
	CHECK_EQ(sym_calls, 0); /* counting a bus lock never names it */
	struct blvm_bus_lock_info info = { .rip = 0x403000, .linear = 0x1003e, .phys = 0x1003e, .size = 4,
					   .reason = BLVM_BUS_LOCK_SPLIT, .disasm = "lock or dword ptr [rax], 1" };
	struct blvm_policy_action a = blvm_policy_after_run(p, 0, &bl, &info);
	CHECK(a.what == BLVM_POLICY_STOP);
	CHECK_STR(a.reason, "--bus-lock=kill=4: bus lock 4 of 4 allowed, ending the VM: vCPU 0 rip 0x403000 "
			    "lock or dword ptr [rax], 1 (split, 4 bytes at 0x1003e, physical 0x1003e)"); /* no name */
	struct blvm_policy_insn top[BLVM_POLICY_TOP];
	CHECK_EQ(blvm_policy_top(p, top, BLVM_POLICY_TOP), 3);
	CHECK_STR(top[0].symbol, "f0+0x10");
	CHECK_STR(top[1].symbol, "f1");
	CHECK_STR(top[2].symbol, "");
	char *json = capture_json(p, 2);
	json_check(json, "t=d[\"top\"]\n"
			 "assert [e[\"symbol\"] for e in t] == [\"f0+0x10\", \"f1\", None], t\n");
	free(json);
	char *buf = capture_summary(p, 1.0);
	CHECK(strstr(buf, "  lock inc dword ptr [rbx]  <f0+0x10>\n") != NULL);
	CHECK(strstr(buf, "  lock xadd qword ptr [rdi], rax  <f1>\n") != NULL);
	CHECK(strstr(buf, "  lock or dword ptr [rax], 1\n") != NULL);
	free(buf);
	blvm_policy_destroy(p);

	/* A named kill message. */
	p = make("kill", 1);
	blvm_policy_set_symbolizer(p, fake_symbolize, &sym_calls);
	info.rip = 0x4010ff;
	a = blvm_policy_after_run(p, 0, &bl, &info);
	CHECK_STR(a.reason, "--bus-lock=kill=1: bus lock 1 of 1 allowed, ending the VM: vCPU 0 rip 0x4010ff <f0+0xff> "
			    "lock or dword ptr [rax], 1 (split, 4 bytes at 0x1003e, physical 0x1003e)");
	blvm_policy_destroy(p);
}

/* The task source: what the monitor's introspection would say for each vCPU, set by the test. */
static struct blvm_policy_task cur_task[2];
static int task_calls;
static void fake_task_source(void *arg, unsigned vcpu, struct blvm_policy_task *t)
{
	(void)arg;
	task_calls++;
	*t = cur_task[vcpu];
}

static void tasks(void)
{
	struct blvm_policy *p = make("log", 2);
	blvm_policy_set_task_source(p, fake_task_source, NULL);
	struct blvm_policy_task a = { .mode = BLVM_MODE_USER, .known = true, .pid = 57, .tgid = 57,
				      .comm = "splitlock-a", .cr3 = 0x1234000 };
	struct blvm_policy_task b = { .mode = BLVM_MODE_USER, .known = true, .pid = 58, .tgid = 58,
				      .comm = "splitlock-b", .cr3 = 0x5678000 };
	struct blvm_policy_task k = { .mode = BLVM_MODE_KERNEL, .known = true, .pid = 12, .tgid = 12,
				      .comm = "kworker/0:1\x1b", .cr3 = 0x1000 };
	struct blvm_policy_task u = { .mode = BLVM_MODE_USER, .cr3 = 0x9000 }; /* unknown: by CR3 */
	/* Two programs at the same rip are two rows; their counts stay apart. */
	cur_task[0] = a, cur_task[1] = b;
	feed(p, 0, 0x401000, BLVM_BUS_LOCK_SPLIT, 4, "lock add dword ptr [rax], 1", 30);
	feed(p, 1, 0x401000, BLVM_BUS_LOCK_SPLIT, 4, "lock add dword ptr [rax], 1", 20);
	cur_task[0] = k;
	feed(p, 0, 0xffffffff81000000, BLVM_BUS_LOCK_UC, 8, "lock or qword ptr [rdi], 1", 5);
	cur_task[0] = u;
	feed(p, 0, 0x401000, BLVM_BUS_LOCK_SPLIT, 4, "lock add dword ptr [rax], 1", 3);
	CHECK_EQ(task_calls, 58); /* once per bus lock */
	/* A pid reused by another program is another task. */
	struct blvm_policy_task a2 = a;
	strcpy(a2.comm, "other");
	cur_task[1] = a2;
	feed(p, 1, 0x401000, BLVM_BUS_LOCK_SPLIT, 4, "lock add dword ptr [rax], 1", 1);

	struct blvm_policy_task_stats ts[BLVM_POLICY_TOP];
	CHECK_EQ(blvm_policy_tasks(p, ts, BLVM_POLICY_TOP), 4);
	CHECK_STR(ts[0].task.comm, "splitlock-a");
	CHECK_EQ(ts[0].bus_locks, 30);
	CHECK_EQ(ts[0].split, 30);
	CHECK_STR(ts[1].task.comm, "splitlock-b");
	CHECK_EQ(ts[2].task.pid, 12);
	CHECK_EQ(ts[2].uc, 5);
	CHECK_STR(ts[3].task.comm, "other");
	struct blvm_policy_stats st;
	blvm_policy_get_stats(p, &st);
	CHECK_EQ(st.task_unknown, 3);
	CHECK_EQ(st.tasks, 4);
	struct blvm_policy_insn top[BLVM_POLICY_TOP];
	CHECK_EQ(blvm_policy_top(p, top, BLVM_POLICY_TOP), 5);
	CHECK_EQ(top[0].task.pid, 57);
	CHECK_EQ(top[1].task.pid, 58);
	CHECK_EQ(top[1].rip, top[0].rip);

	char *json = capture_json(p, 2);
	json_check(json,
		"t=d[\"top\"]; k=d[\"tasks\"]; b=d[\"bus_locks\"]\n"
		"assert b[\"task_unknown\"] == 3 and b[\"tasks_overflow\"] == 0, b\n"
		"assert k[0] == {\"comm\": \"splitlock-a\", \"pid\": 57, \"tgid\": 57, \"bus_locks\": 30, \"split\": 30, \"uc\": 0}, k\n"
		"assert k[1] == {\"comm\": \"splitlock-b\", \"pid\": 58, \"tgid\": 58, \"bus_locks\": 20, \"split\": 20, \"uc\": 0}, k\n"
		"assert k[2][\"comm\"] == \"kworker/0:1\\x1b\" and k[2][\"uc\"] == 5, k\n"
		"assert [(e[\"rip\"], e[\"count\"], e[\"mode\"], e[\"task\"] and e[\"task\"][\"pid\"], e[\"cr3\"]) for e in t] == ["
		"(\"0x401000\", 30, \"user\", 57, \"0x1234000\"), (\"0x401000\", 20, \"user\", 58, \"0x5678000\"), "
		"(\"0xffffffff81000000\", 5, \"kernel\", 12, \"0x1000\"), (\"0x401000\", 3, \"user\", None, \"0x9000\"), "
		"(\"0x401000\", 1, \"user\", 57, \"0x1234000\")], t\n"
		"assert t[0][\"task\"] == {\"comm\": \"splitlock-a\", \"pid\": 57, \"tgid\": 57}, t\n");
	free(json);
	char *buf = capture_summary(p, 1.0);
	CHECK(strstr(buf, "blvm: by guest process: splitlock-a/57: 30, splitlock-b/58: 20, kworker/0:1\\x1b/12: 5, "
			  "other/57: 1; 3 in no known process\n") != NULL);
	CHECK(strstr(buf, "  lock add dword ptr [rax], 1  [splitlock-a/57 user]\n") != NULL);
	if (failures)
		fputs(buf, stderr);
	free(buf);
	blvm_policy_destroy(p);

	/* kill names the process. */
	p = make("kill=2", 1);
	blvm_policy_set_task_source(p, fake_task_source, NULL);
	cur_task[0] = a;
	feed(p, 0, 0x401000, BLVM_BUS_LOCK_SPLIT, 4, "lock add dword ptr [rax], 1", 1);
	struct blvm_bus_lock_info info = { .rip = 0x401000, .linear = 0x1003e, .phys = 0x2003e, .size = 4,
					   .reason = BLVM_BUS_LOCK_SPLIT, .disasm = "lock add dword ptr [rax], 1" };
	struct blvm_policy_action act = blvm_policy_after_run(p, 0, &bl, &info);
	CHECK_STR(act.reason, "--bus-lock=kill=2: bus lock 2 of 2 allowed, ending the VM: vCPU 0 rip 0x401000 "
			      "lock add dword ptr [rax], 1 (split, 4 bytes at 0x1003e, physical 0x2003e) in guest process "
			      "splitlock-a/57 (tgid 57, user mode)");
	blvm_policy_destroy(p);
}

/* The kvm engine on an Intel host knows only the RIP after the locking instruction (blvm_bus_lock_info
 * rip_next, api.rst: the exit is trap-like): the row says so ("rip" null, "next_rip", "next_symbol"),
 * with nothing about the instruction itself, in the JSON, the summary and the kill message. */
static void next_rip_rows(void)
{
	struct blvm_policy *p = make("kill=3", 1);
	blvm_policy_set_symbolizer(p, fake_symbolize, &sym_calls);
	struct blvm_bus_lock_info info = { .rip = 0x401004, .rip_next = 1 };
	for (int i = 0; i < 2; i++)
		blvm_policy_after_run(p, 0, &bl, &info);
	struct blvm_policy_action act = blvm_policy_after_run(p, 0, &bl, &info);
	CHECK_STR(act.reason, "--bus-lock=kill=3: bus lock 3 of 3 allowed, ending the VM: vCPU 0 (exit reason 33 at rip "
			      "0x401004 <f0+0x4>, the instruction after the locking one: the exit is trap-like)");
	struct blvm_policy_stats st;
	blvm_policy_get_stats(p, &st);
	CHECK_EQ(st.unattributed, 3);
	CHECK_EQ(st.distinct_rips, 1);
	char *json = capture_json(p, 2);
	json_check(json,
		"t=d[\"top\"]\n"
		"assert t == [{\"rip\": None, \"next_rip\": \"0x401004\", \"count\": 3, \"insn\": None, \"reason\": \"unknown\", "
		"\"size\": None, \"symbol\": None, \"next_symbol\": \"f0+0x4\", \"mode\": None, \"task\": None, \"cr3\": None}], t\n");
	free(json);
	char *buf = capture_summary(p, 1.0);
	CHECK(strstr(buf, "blvm:            3  0x0000000000401004  unknown    ?  (the instruction before this rip: the exit "
			  "is trap-like)  <next: f0+0x4>\n") != NULL);
	if (failures)
		fputs(buf, stderr);
	free(buf);
	blvm_policy_destroy(p);
}

int main(void)
{
	tasks();
	counts_top_json();
	symbols();
	next_rip_rows();
	empty_and_off_json();
	bounded_table();
	progress();
	int rc = json_run_checks();
	if (rc == 1)
		failures++;
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	if (rc == 77)
		printf("policy_attrib: ok, except the JSON parse checks: python3 is not installed\n");
	else
		printf("policy_attrib: ok\n");
	return 0;
}
