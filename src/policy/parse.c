/* SPDX-License-Identifier: MIT */
/*
 * --bus-lock= values (docs/DESIGN.md, "Command line"): off | log | ratelimit=N[/SLICE] | pause=MS | kill[=N] |
 * contain. Errors are one line: the spec as given, the problem, and how to write it instead.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "blvm/policy.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

/* Upper bounds keep every product in the limiter and the reports far from overflow. */
#define MAX_RATE 1000000000ull      /* no CPU takes more than 1e9 bus locks a second */
#define MAX_SLICE_NS (3600 * NS_PER_S)
#define MAX_PAUSE_MS 60000ull
#define MAX_KILL 1000000000000000000ull

static int fail(char *err, size_t errlen, const char *spec, const char *fmt, ...)
{
	if (err && errlen) {
		int n = snprintf(err, errlen, "--bus-lock=%s: ", spec);
		if (n >= 0 && (size_t)n < errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -1;
}

enum num { NUM_OK, NUM_EMPTY, NUM_NAN, NUM_BIG };

/* A plain decimal integer of len bytes: digits only (no sign, space or base prefix), at most max. */
static enum num parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	if (len == 0)
		return NUM_EMPTY;
	uint64_t v = 0;
	bool big = false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return NUM_NAN;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	if (big)
		return NUM_BIG;
	*out = v;
	return NUM_OK;
}

/* SLICE: an integer and a unit, e.g. 100ms, 1s. */
static int parse_slice(const char *s, const char *spec, uint64_t *ns, char *err, size_t errlen)
{
	static const struct { const char *unit; uint64_t ns; } units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "ms", NS_PER_MS }, { "s", NS_PER_S },
	};
	size_t digits = strspn(s, "0123456789");
	if (*s == '\0')
		return fail(err, errlen, spec, "missing the slice after '/'; write e.g. ratelimit=1000/100ms");
	if (digits == 0)
		return fail(err, errlen, spec, "the slice must be a whole number with a unit ns, us, ms or s, e.g. 100ms");
	const char *unit = s + digits;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(unit, units[i].unit) != 0)
			continue;
		uint64_t v;
		if (parse_u64(s, digits, MAX_SLICE_NS / units[i].ns, &v) != NUM_OK)
			return fail(err, errlen, spec, "the slice must be at most 3600s");
		if (v == 0)
			return fail(err, errlen, spec, "the slice must be longer than 0, e.g. ratelimit=10/100ms");
		*ns = v * units[i].ns;
		return 0;
	}
	if (*unit == '\0')
		return fail(err, errlen, spec, "the slice needs a unit ns, us, ms or s, e.g. %sms", s);
	return fail(err, errlen, spec, "unknown slice unit \"%s\"; use ns, us, ms or s, e.g. 100ms", unit);
}

static int parse_rate(const char *v, const char *spec, struct blvm_policy_config *c, char *err, size_t errlen)
{
	const char *slash = strchr(v, '/');
	size_t len = slash ? (size_t)(slash - v) : strlen(v);
	uint64_t rate = 0;
	switch (parse_u64(v, len, MAX_RATE, &rate)) {
	case NUM_EMPTY:
		return fail(err, errlen, spec,
			    "missing the rate; write ratelimit=N with N bus locks per second, e.g. ratelimit=1000");
	case NUM_NAN:
		return fail(err, errlen, spec,
			    "the rate must be a whole number of bus locks per second, e.g. ratelimit=1000");
	case NUM_BIG:
		return fail(err, errlen, spec, "the rate must be at most %llu per second",
			    (unsigned long long)MAX_RATE);
	case NUM_OK:
		break;
	}
	if (rate == 0)
		return fail(err, errlen, spec, "the rate must be at least 1 per second");
	uint64_t slice = NS_PER_S; /* QEMU's BUS_LOCK_SLICE_TIME */
	if (slash && parse_slice(slash + 1, spec, &slice, err, errlen) != 0)
		return -1;
	c->mode = BLVM_POLICY_RATELIMIT;
	c->rate = rate;
	c->slice_ns = slice;
	return 0;
}

int blvm_policy_parse(const char *spec, struct blvm_policy_config *cfg, char *err, size_t errlen)
{
	struct blvm_policy_config c = BLVM_POLICY_CONFIG_DEFAULT;
	if (!spec)
		spec = "";
	if (err && errlen)
		err[0] = '\0';
	const char *eq = strchr(spec, '=');
	size_t nlen = eq ? (size_t)(eq - spec) : strlen(spec);
	const char *v = eq ? eq + 1 : NULL;
#define IS(word) (nlen == sizeof(word) - 1 && memcmp(spec, word, nlen) == 0)

	if (nlen == 0 && !eq)
		return fail(err, errlen, spec,
			    "missing the policy; use off, log, ratelimit=N[/SLICE], pause=MS, kill[=N] or contain");
	if (IS("off") || IS("log") || IS("contain")) {
		if (v)
			return fail(err, errlen, spec, "%.*s takes no value; write --bus-lock=%.*s", (int)nlen, spec,
				    (int)nlen, spec);
		c.mode = IS("off") ? BLVM_POLICY_OFF : IS("log") ? BLVM_POLICY_LOG : BLVM_POLICY_CONTAIN;
	} else if (IS("ratelimit")) {
		if (parse_rate(v ? v : "", spec, &c, err, errlen) != 0)
			return -1;
	} else if (IS("pause")) {
		uint64_t ms = 0;
		switch (parse_u64(v ? v : "", v ? strlen(v) : 0, MAX_PAUSE_MS, &ms)) {
		case NUM_EMPTY:
			return fail(err, errlen, spec,
				    "missing the pause; write pause=MS with MS milliseconds per bus lock, e.g. pause=10");
		case NUM_NAN:
			return fail(err, errlen, spec, "the pause must be a whole number of milliseconds, e.g. pause=10");
		case NUM_BIG:
			return fail(err, errlen, spec, "the pause must be at most %llu ms", (unsigned long long)MAX_PAUSE_MS);
		case NUM_OK:
			break;
		}
		if (ms == 0)
			return fail(err, errlen, spec, "the pause must be at least 1 ms (Linux's split-lock \"warn\" uses 10)");
		c.mode = BLVM_POLICY_PAUSE;
		c.pause_ns = ms * NS_PER_MS;
	} else if (IS("kill")) {
		uint64_t n = 1;
		if (v) {
			switch (parse_u64(v, strlen(v), MAX_KILL, &n)) {
			case NUM_EMPTY:
				return fail(err, errlen, spec,
					    "missing N; write kill to end the VM at its first bus lock or kill=N at its N-th");
			case NUM_NAN:
				return fail(err, errlen, spec, "N must be a whole number of bus locks, e.g. kill=3");
			case NUM_BIG:
				return fail(err, errlen, spec, "N must be at most %llu", (unsigned long long)MAX_KILL);
			case NUM_OK:
				break;
			}
			if (n == 0)
				return fail(err, errlen, spec, "N must be at least 1 (kill=1 ends the VM at its first bus lock)");
		}
		c.mode = BLVM_POLICY_KILL;
		c.kill_at = n;
	} else {
		return fail(err, errlen, spec,
			    "unknown policy; use off, log, ratelimit=N[/SLICE], pause=MS, kill[=N] or contain");
	}
#undef IS
	if (cfg)
		*cfg = c;
	return 0;
}

int blvm_policy_format(const struct blvm_policy_config *cfg, char *buf, size_t len)
{
	switch (cfg->mode) {
	case BLVM_POLICY_OFF:
		return snprintf(buf, len, "off");
	case BLVM_POLICY_LOG:
		return snprintf(buf, len, "log");
	case BLVM_POLICY_CONTAIN:
		return snprintf(buf, len, "contain");
	case BLVM_POLICY_PAUSE:
		if (cfg->pause_ns % NS_PER_MS == 0)
			return snprintf(buf, len, "pause=%llu", (unsigned long long)(cfg->pause_ns / NS_PER_MS));
		return snprintf(buf, len, "pause=%.6f", cfg->pause_ns / 1e6); /* only from a hand-made cfg */
	case BLVM_POLICY_KILL:
		return snprintf(buf, len, "kill=%llu", (unsigned long long)cfg->kill_at);
	case BLVM_POLICY_RATELIMIT: {
		uint64_t s = cfg->slice_ns;
		if (s == NS_PER_S)
			return snprintf(buf, len, "ratelimit=%llu", (unsigned long long)cfg->rate);
		const char *unit = "ns";
		if (s % NS_PER_S == 0)
			s /= NS_PER_S, unit = "s";
		else if (s % NS_PER_MS == 0)
			s /= NS_PER_MS, unit = "ms";
		else if (s % 1000 == 0)
			s /= 1000, unit = "us";
		return snprintf(buf, len, "ratelimit=%llu/%llu%s", (unsigned long long)cfg->rate, (unsigned long long)s,
				unit);
	}
	}
	return snprintf(buf, len, "?");
}
