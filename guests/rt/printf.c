/* SPDX-License-Identifier: MIT */
/*
 * rt_printf: the subset of printf a test guest needs, straight to COM1.
 * Conversions d i u x X p s c %; flags '-' and '0'; width (digits or '*'); precision for s;
 * length modifiers hh h l ll z j t. %p prints 0x and lower-case hex. Anything else is printed
 * as written.
 */
#include "rt.h"

struct out {
	int n;
};

static void emit(struct out *o, char c)
{
	rt_putc(c);
	o->n++;
}

static void pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		emit(o, c);
}

/* Formats v in base 10 or 16 into the end of buf; returns the first digit. */
static char *utoa(uint64_t v, unsigned base, bool upper, char *end)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;
	do {
		*--p = digits[v % base];
		v /= base;
	} while (v);
	return p;
}

static void field(struct out *o, const char *prefix, const char *s, int len, int width, bool left, bool zero)
{
	int plen = (int)strlen(prefix);
	int fill = width - plen - len;
	if (!left && !zero)
		pad(o, ' ', fill);
	for (const char *p = prefix; *p; p++)
		emit(o, *p);
	if (!left && zero)
		pad(o, '0', fill);
	for (int i = 0; i < len; i++)
		emit(o, s[i]);
	if (left)
		pad(o, ' ', fill);
}

static int vprintf_unlocked(const char *fmt, va_list ap)
{
	struct out o = { 0 };
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			emit(&o, *f);
			continue;
		}
		const char *start = f++;
		bool left = false, zero = false;
		for (;; f++) {
			if (*f == '-')
				left = true;
			else if (*f == '0')
				zero = true;
			else
				break;
		}
		int width = 0, prec = -1;
		if (*f == '*') {
			width = va_arg(ap, int);
			if (width < 0)
				left = true, width = -width;
			f++;
		} else {
			while (*f >= '0' && *f <= '9')
				width = width * 10 + (*f++ - '0');
		}
		if (*f == '.') {
			f++;
			prec = 0;
			if (*f == '*') {
				prec = va_arg(ap, int);
				f++;
			} else {
				while (*f >= '0' && *f <= '9')
					prec = prec * 10 + (*f++ - '0');
			}
		}
		int size = 0; /* -2 hh, -1 h, 0 int, 1 long/long long/size_t/intmax_t/ptrdiff_t */
		if (*f == 'h') {
			size = -1;
			if (*++f == 'h')
				size = -2, f++;
		} else if (*f == 'l') {
			size = 1;
			if (*++f == 'l')
				f++;
		} else if (*f == 'z' || *f == 'j' || *f == 't') {
			size = 1;
			f++;
		}
		char buf[24], *end = buf + sizeof buf, *s;
		uint64_t u;
		int64_t d;
		switch (*f) {
		case 'd':
		case 'i':
			d = size == 1 ? va_arg(ap, long) : va_arg(ap, int);
			if (size == -1)
				d = (short)d;
			else if (size == -2)
				d = (signed char)d;
			u = d < 0 ? -(uint64_t)d : (uint64_t)d;
			s = utoa(u, 10, false, end);
			field(&o, d < 0 ? "-" : "", s, (int)(end - s), width, left, zero);
			break;
		case 'u':
		case 'x':
		case 'X':
			u = size == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			if (size == -1)
				u = (unsigned short)u;
			else if (size == -2)
				u = (unsigned char)u;
			s = utoa(u, *f == 'u' ? 10 : 16, *f == 'X', end);
			field(&o, "", s, (int)(end - s), width, left, zero);
			break;
		case 'p':
			u = (uint64_t)(uintptr_t)va_arg(ap, void *);
			s = utoa(u, 16, false, end);
			field(&o, "0x", s, (int)(end - s), width, left, zero);
			break;
		case 'c':
			buf[0] = (char)va_arg(ap, int);
			field(&o, "", buf, 1, width, left, false);
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			int len = 0;
			while (str[len] && (prec < 0 || len < prec))
				len++;
			field(&o, "", str, len, width, left, false);
			break;
		}
		case '%':
			emit(&o, '%');
			break;
		default: /* unknown: print the directive as written */
			for (const char *p = start; p <= f && *p; p++)
				emit(&o, *p);
			if (!*f)
				return o.n;
			break;
		}
	}
	return o.n;
}

/* One call's output is never interleaved with another vCPU's (rt_console_lock, rt.c). */
int rt_vprintf(const char *fmt, va_list ap)
{
	rt_console_lock();
	int n = vprintf_unlocked(fmt, ap);
	rt_console_unlock();
	return n;
}

int rt_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = rt_vprintf(fmt, ap);
	va_end(ap);
	return n;
}
