/* SPDX-License-Identifier: MIT */
/*
 * --bus-lock= parsing (docs/DESIGN.md, "Command line"): every valid form with the configuration it gives and
 * its canonical spelling, and the invalid ones with their exact one-line messages.
 */
#include <stdio.h>
#include <string.h>

#include "blvm/policy.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static void valid(const char *spec, enum blvm_policy_mode mode, uint64_t rate, uint64_t slice_ns, uint64_t pause_ns,
		  uint64_t kill_at, const char *canonical)
{
	struct blvm_policy_config c;
	char err[256] = "untouched", buf[64];
	memset(&c, 0xa5, sizeof c);
	if (blvm_policy_parse(spec, &c, err, sizeof err) != 0) {
		fprintf(stderr, "'%s' refused: %s\n", spec, err);
		failures++;
		return;
	}
	if (err[0] != '\0') {
		fprintf(stderr, "'%s': err not cleared\n", spec);
		failures++;
	}
	if (c.mode != mode || c.rate != rate || c.slice_ns != slice_ns || c.pause_ns != pause_ns || c.kill_at != kill_at) {
		fprintf(stderr, "'%s': mode %d rate %llu slice %llu pause %llu kill %llu\n", spec, c.mode,
			(unsigned long long)c.rate, (unsigned long long)c.slice_ns, (unsigned long long)c.pause_ns,
			(unsigned long long)c.kill_at);
		failures++;
	}
	blvm_policy_format(&c, buf, sizeof buf);
	if (strcmp(buf, canonical) != 0) {
		fprintf(stderr, "'%s' formats as '%s', expected '%s'\n", spec, buf, canonical);
		failures++;
	}
	/* The canonical form reads back to the same configuration. */
	struct blvm_policy_config d;
	memset(&d, 0x5a, sizeof d);
	CHECK(blvm_policy_parse(buf, &d, err, sizeof err) == 0);
	CHECK(d.mode == c.mode && d.rate == c.rate && d.slice_ns == c.slice_ns && d.pause_ns == c.pause_ns &&
	      d.kill_at == c.kill_at);
}

static void invalid(const char *spec, const char *message)
{
	struct blvm_policy_config c = { .mode = BLVM_POLICY_LOG, .rate = 7 };
	char err[256] = "";
	if (blvm_policy_parse(spec, &c, err, sizeof err) != -1) {
		fprintf(stderr, "'%s' accepted\n", spec ? spec : "(null)");
		failures++;
		return;
	}
	if (strcmp(err, message) != 0) {
		fprintf(stderr, "'%s':\n  got      \"%s\"\n  expected \"%s\"\n", spec ? spec : "(null)", err, message);
		failures++;
	}
	if (strchr(err, '\n')) {
		fprintf(stderr, "'%s': message is not one line\n", spec);
		failures++;
	}
	CHECK(c.mode == BLVM_POLICY_LOG && c.rate == 7); /* untouched on error */
}

int main(void)
{
	const uint64_t MS = 1000000, S = 1000000000;
	valid("off", BLVM_POLICY_OFF, 0, 0, 0, 0, "off");
	valid("log", BLVM_POLICY_LOG, 0, 0, 0, 0, "log");
	valid("contain", BLVM_POLICY_CONTAIN, 0, 0, 0, 0, "contain");
	valid("ratelimit=1", BLVM_POLICY_RATELIMIT, 1, S, 0, 0, "ratelimit=1");
	valid("ratelimit=1000", BLVM_POLICY_RATELIMIT, 1000, S, 0, 0, "ratelimit=1000");
	valid("ratelimit=0010", BLVM_POLICY_RATELIMIT, 10, S, 0, 0, "ratelimit=10");
	valid("ratelimit=1000000000", BLVM_POLICY_RATELIMIT, 1000000000, S, 0, 0, "ratelimit=1000000000");
	valid("ratelimit=10/100ms", BLVM_POLICY_RATELIMIT, 10, 100 * MS, 0, 0, "ratelimit=10/100ms");
	valid("ratelimit=1/100ms", BLVM_POLICY_RATELIMIT, 1, 100 * MS, 0, 0, "ratelimit=1/100ms");
	valid("ratelimit=1000/1s", BLVM_POLICY_RATELIMIT, 1000, S, 0, 0, "ratelimit=1000");
	valid("ratelimit=1000/1000ms", BLVM_POLICY_RATELIMIT, 1000, S, 0, 0, "ratelimit=1000");
	valid("ratelimit=5/2s", BLVM_POLICY_RATELIMIT, 5, 2 * S, 0, 0, "ratelimit=5/2s");
	valid("ratelimit=5/2000ms", BLVM_POLICY_RATELIMIT, 5, 2 * S, 0, 0, "ratelimit=5/2s");
	valid("ratelimit=100/250us", BLVM_POLICY_RATELIMIT, 100, 250000, 0, 0, "ratelimit=100/250us");
	valid("ratelimit=100/1500ns", BLVM_POLICY_RATELIMIT, 100, 1500, 0, 0, "ratelimit=100/1500ns");
	valid("ratelimit=100/3600s", BLVM_POLICY_RATELIMIT, 100, 3600 * S, 0, 0, "ratelimit=100/3600s");
	valid("pause=1", BLVM_POLICY_PAUSE, 0, 0, 1 * MS, 0, "pause=1");
	valid("pause=10", BLVM_POLICY_PAUSE, 0, 0, 10 * MS, 0, "pause=10");
	valid("pause=60000", BLVM_POLICY_PAUSE, 0, 0, 60000 * MS, 0, "pause=60000");
	valid("kill", BLVM_POLICY_KILL, 0, 0, 0, 1, "kill=1");
	valid("kill=1", BLVM_POLICY_KILL, 0, 0, 0, 1, "kill=1");
	valid("kill=3", BLVM_POLICY_KILL, 0, 0, 0, 3, "kill=3");
	valid("kill=1000000000000", BLVM_POLICY_KILL, 0, 0, 0, 1000000000000ull, "kill=1000000000000");

	invalid("ratelimit=", "--bus-lock=ratelimit=: missing the rate; write ratelimit=N with N bus locks per second, "
			      "e.g. ratelimit=1000");
	invalid("ratelimit", "--bus-lock=ratelimit: missing the rate; write ratelimit=N with N bus locks per second, "
			     "e.g. ratelimit=1000");
	invalid("ratelimit=0", "--bus-lock=ratelimit=0: the rate must be at least 1 per second");
	invalid("ratelimit=abc", "--bus-lock=ratelimit=abc: the rate must be a whole number of bus locks per second, "
				 "e.g. ratelimit=1000");
	invalid("ratelimit=-5", "--bus-lock=ratelimit=-5: the rate must be a whole number of bus locks per second, "
				"e.g. ratelimit=1000");
	invalid("ratelimit=1.5", "--bus-lock=ratelimit=1.5: the rate must be a whole number of bus locks per second, "
				 "e.g. ratelimit=1000");
	invalid("ratelimit=1000000001", "--bus-lock=ratelimit=1000000001: the rate must be at most 1000000000 per second");
	invalid("ratelimit=99999999999999999999999",
		"--bus-lock=ratelimit=99999999999999999999999: the rate must be at most 1000000000 per second");
	invalid("ratelimit=10/0s", "--bus-lock=ratelimit=10/0s: the slice must be longer than 0, e.g. ratelimit=10/100ms");
	invalid("ratelimit=10/", "--bus-lock=ratelimit=10/: missing the slice after '/'; write e.g. ratelimit=1000/100ms");
	invalid("ratelimit=10/100", "--bus-lock=ratelimit=10/100: the slice needs a unit ns, us, ms or s, e.g. 100ms");
	invalid("ratelimit=10/1min", "--bus-lock=ratelimit=10/1min: unknown slice unit \"min\"; use ns, us, ms or s, "
				     "e.g. 100ms");
	invalid("ratelimit=10/ms", "--bus-lock=ratelimit=10/ms: the slice must be a whole number with a unit ns, us, ms "
				   "or s, e.g. 100ms");
	invalid("ratelimit=10/3601s", "--bus-lock=ratelimit=10/3601s: the slice must be at most 3600s");
	invalid("pause=0", "--bus-lock=pause=0: the pause must be at least 1 ms (Linux's split-lock \"warn\" uses 10)");
	invalid("pause=", "--bus-lock=pause=: missing the pause; write pause=MS with MS milliseconds per bus lock, "
			  "e.g. pause=10");
	invalid("pause", "--bus-lock=pause: missing the pause; write pause=MS with MS milliseconds per bus lock, "
			 "e.g. pause=10");
	invalid("pause=10ms", "--bus-lock=pause=10ms: the pause must be a whole number of milliseconds, e.g. pause=10");
	invalid("pause=60001", "--bus-lock=pause=60001: the pause must be at most 60000 ms");
	invalid("kill=0", "--bus-lock=kill=0: N must be at least 1 (kill=1 ends the VM at its first bus lock)");
	invalid("kill=-1", "--bus-lock=kill=-1: N must be a whole number of bus locks, e.g. kill=3");
	invalid("kill=", "--bus-lock=kill=: missing N; write kill to end the VM at its first bus lock or kill=N at its "
			 "N-th");
	invalid("kill=1000000000000000001", "--bus-lock=kill=1000000000000000001: N must be at most 1000000000000000000");
	invalid("bogus", "--bus-lock=bogus: unknown policy; use off, log, ratelimit=N[/SLICE], pause=MS, kill[=N] or "
			 "contain");
	invalid("Log", "--bus-lock=Log: unknown policy; use off, log, ratelimit=N[/SLICE], pause=MS, kill[=N] or "
		       "contain");
	invalid("=5", "--bus-lock==5: unknown policy; use off, log, ratelimit=N[/SLICE], pause=MS, kill[=N] or "
		      "contain");
	invalid("", "--bus-lock=: missing the policy; use off, log, ratelimit=N[/SLICE], pause=MS, kill[=N] or contain");
	invalid(NULL, "--bus-lock=: missing the policy; use off, log, ratelimit=N[/SLICE], pause=MS, kill[=N] or "
		      "contain");
	invalid("log=1", "--bus-lock=log=1: log takes no value; write --bus-lock=log");
	invalid("off=", "--bus-lock=off=: off takes no value; write --bus-lock=off");
	invalid("contain=yes", "--bus-lock=contain=yes: contain takes no value; write --bus-lock=contain");

	/* A short buffer truncates the message but stays a string; no buffer at all is allowed. */
	struct blvm_policy_config c;
	char small[12];
	CHECK(blvm_policy_parse("bogus", &c, small, sizeof small) == -1 && strlen(small) == sizeof small - 1);
	CHECK(blvm_policy_parse("bogus", &c, NULL, 0) == -1);
	CHECK(blvm_policy_parse("log", NULL, NULL, 0) == 0);

	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("policy_parse: ok\n");
	return 0;
}
