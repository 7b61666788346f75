/* SPDX-License-Identifier: MIT */
/*
 * The sse guest's kernels (see guests/sse.c), compiled WITHOUT -mgeneral-regs-only and with
 * -msse4.2 -mpclmul: gcc uses SSE registers for every float and double, vectorises the loops, and
 * the intrinsics name the rest. Inputs come through volatile objects: nothing is folded at compile
 * time. Every result is printed as its bit pattern, and a checksum of them all at the end.
 */
#include "rt.h"

#include <nmmintrin.h>
#include <wmmintrin.h>

static uint64_t sum = 0x9e3779b97f4a7c15ull;
static int printing;

static void out(const char *what, uint64_t v)
{
	sum = (sum ^ v) * 0x100000001b3ull;
	if (printing)
		rt_printf("%s %016lx\n", what, v);
}

static uint64_t dbits(double d) { uint64_t v; __builtin_memcpy(&v, &d, 8); return v; }
static uint32_t fbits(float f) { uint32_t v; __builtin_memcpy(&v, &f, 4); return v; }

static volatile double vd[16] = { 1.0, -2.5, 3.0e-310, 1e308, 0.1, 0.2, 0.3, 7.0, 1.0 / 3, -0.0,
				  2.2250738585072014e-308, 123456789.125, -1e-5, 4.5, 9.75, 65536.0 };
static volatile float vf[16] = { 1.0f, -2.5f, 1e-40f, 3e38f, 0.1f, 0.2f, 0.3f, 7.0f, 1.0f / 3, -0.0f,
				 1.17549435e-38f, 16777217.0f, -1e-5f, 4.5f, 9.75f, 65536.0f };

static void floats(void)
{
	double a[16], m[4][4], p[4][4];
	float f[16];
	for (int k = 0; k < 16; k++) {
		a[k] = vd[k];
		f[k] = vf[k];
	}
	double dot = 0;
	float fdot = 0;
	for (int k = 0; k < 16; k++) {
		dot += a[k] * a[15 - k];
		fdot += f[k] * f[(k + 3) & 15];
	}
	out("dot", dbits(dot));
	out("fdot", fbits(fdot));
	for (int r = 0; r < 4; r++)
		for (int c = 0; c < 4; c++)
			m[r][c] = a[(r * 4 + c + 1) & 15] / (a[(r + c) & 15] + 0.5);
	for (int r = 0; r < 4; r++)
		for (int c = 0; c < 4; c++) {
			double s = 0;
			for (int k = 0; k < 4; k++)
				s += m[r][k] * m[k][c];
			p[r][c] = s;
		}
	uint64_t h = 0;
	for (int r = 0; r < 4; r++)
		for (int c = 0; c < 4; c++)
			h = h * 31 + dbits(p[r][c]);
	out("matmul", h);
	out("sqrt", dbits(__builtin_sqrt(a[7])));
	out("sqrtf", fbits(__builtin_sqrtf(f[14])));
	out("div", dbits(a[0] / a[2]));           /* overflow -> inf */
	out("tiny", dbits(a[2] * a[4]));          /* denormal */
	out("min", dbits(a[1] < a[9] ? a[1] : a[9]));
	out("i2d", dbits((double)(int64_t)0x7fffffffffffffffll));
	out("d2i", (uint64_t)(int64_t)a[11]);
	out("d2i_big", (uint64_t)(int64_t)a[3]);  /* out of range: 0x8000000000000000 */
	out("f2i", (uint64_t)(int32_t)f[11]);
	out("u2f", fbits((float)(uint64_t)0xfffffffffffff800ull));
	out("d2f", fbits((float)a[4]));
	out("f2d", dbits((double)f[2]));
}

static void modes(void)
{
	unsigned saved = _mm_getcsr();
	for (unsigned rc = 0; rc < 4; rc++) {
		_mm_setcsr(0x1f80 | rc << 13);
		volatile double x = vd[8];
		double s = x * 3 + vd[4] + vd[5];
		float fs = (float)vd[6] + vf[4];
		out("rc_d", dbits(s));
		out("rc_f", fbits(fs));
		out("rc_cvt", (uint64_t)_mm_cvtsd_si64(_mm_set_sd(vd[13] + 0.0)));
		out("rc_mxcsr", _mm_getcsr());
	}
	_mm_setcsr(0x1f80 | 0x8040); /* FTZ and DAZ */
	out("ftz", dbits(vd[10] * vd[4]));
	out("daz", dbits(vd[2] + 0.0));
	out("daz_mxcsr", _mm_getcsr());
	_mm_setcsr(saved);
}

/* glibc-style SSE2 string routines (aligned 16-byte loads, PCMPEQB, PMOVMSKB) */
static size_t sse_strlen(const char *s)
{
	const __m128i z = _mm_setzero_si128();
	uintptr_t a = (uintptr_t)s & ~(uintptr_t)15;
	unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128((const __m128i *)a), z));
	mask >>= (uintptr_t)s & 15;
	if (mask)
		return (size_t)__builtin_ctz(mask);
	for (a += 16;; a += 16) {
		mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128((const __m128i *)a), z));
		if (mask)
			return a - (uintptr_t)s + (size_t)__builtin_ctz(mask);
	}
}

static void sse_memcpy(void *d, const void *s, size_t n)
{
	size_t k = 0;
	for (; k + 16 <= n; k += 16)
		_mm_storeu_si128((__m128i *)((char *)d + k), _mm_loadu_si128((const __m128i *)((const char *)s + k)));
	for (; k < n; k++)
		((char *)d)[k] = ((const char *)s)[k];
}

static char text[256] __attribute__((aligned(16)));
static char copy[256] __attribute__((aligned(16)));

static void strings(void)
{
	static const char src[] = "The quick brown fox jumps over the lazy dog; 0123456789 and more text here";
	for (unsigned k = 0; k < sizeof src; k++)
		text[k + 3] = src[k];
	size_t n = sse_strlen(text + 3);
	out("strlen", n);
	sse_memcpy(copy + 1, text + 3, n + 1);
	uint64_t h = 0;
	for (size_t k = 0; k <= n; k++)
		h = h * 131 + (uint8_t)copy[k + 1];
	out("memcpy", h);
	/* SSE4.2: find the first digit, and the length with PCMPISTRI */
	const __m128i digits = _mm_setr_epi8('0', '9', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	int at = -1;
	for (unsigned k = 0; k < 256 && at < 0; k += 16) {
		__m128i chunk = _mm_loadu_si128((const __m128i *)(text + 3 + k));
		int i = _mm_cmpistri(digits, chunk, _SIDD_UBYTE_OPS | _SIDD_CMP_RANGES | _SIDD_LEAST_SIGNIFICANT);
		if (i < 16)
			at = (int)k + i;
	}
	out("pcmpistri", (uint64_t)at);
	uint64_t crc = ~0ull;
	for (size_t k = 0; k + 8 <= n; k += 8) {
		uint64_t w;
		__builtin_memcpy(&w, text + 3 + k, 8);
		crc = _mm_crc32_u64(crc, w);
	}
	crc = _mm_crc32_u8((uint32_t)crc, (uint8_t)text[3]);
	out("crc32c", crc);
	out("popcnt", (uint64_t)_mm_popcnt_u64(h));
}

static void vectors(void)
{
	__m128i a = _mm_setr_epi32((int)0x80000001, 7, -3, 0x12345678);
	__m128i b = _mm_setr_epi32(5, (int)0xfffffff0, -3, 0x7fffffff);
	__m128i rev = _mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	__m128i r = _mm_shuffle_epi8(a, rev);
	out("pshufb", (uint64_t)_mm_extract_epi64(r, 0));
	out("pminud", (uint64_t)_mm_extract_epi64(_mm_min_epu32(a, b), 1));
	out("pmulld", (uint64_t)_mm_extract_epi64(_mm_mullo_epi32(a, b), 0));
	out("ptest", (uint64_t)_mm_testz_si128(a, _mm_setzero_si128()) << 1 | (uint64_t)_mm_testc_si128(a, a));
	__m128 x = _mm_setr_ps(vf[0], vf[1], vf[4], vf[13]), y = _mm_setr_ps(vf[7], vf[5], vf[6], vf[14]);
	out("dpps", fbits(_mm_cvtss_f32(_mm_dp_ps(x, y, 0xf1))));
	__m128d dd = _mm_setr_pd(vd[13] + 0.0, -vd[13]);
	out("roundpd", dbits(_mm_cvtsd_f64(_mm_round_pd(dd, _MM_FROUND_TO_NEAREST_INT))));
	out("roundpd_f", dbits(_mm_cvtsd_f64(_mm_unpackhi_pd(_mm_round_pd(dd, _MM_FROUND_TO_NEG_INF), dd))));
	out("blendv", (uint64_t)_mm_movemask_ps(_mm_blendv_ps(x, y, _mm_cmplt_ps(x, y))));
	out("haddpd", dbits(_mm_cvtsd_f64(_mm_hadd_pd(dd, dd))));
	out("maddubs", (uint64_t)_mm_extract_epi64(_mm_maddubs_epi16(a, b), 1));
	out("packus", (uint64_t)_mm_extract_epi64(_mm_packus_epi32(a, b), 0));
	__m128i cl = _mm_clmulepi64_si128(a, b, 0x01);
	out("pclmul", (uint64_t)_mm_extract_epi64(cl, 0) ^ (uint64_t)_mm_extract_epi64(cl, 1));
	out("comisd", (uint64_t)_mm_comilt_sd(dd, _mm_set_sd(vd[2] + 0.0)));
	/* MMX, then EMMS */
	__m64 m = _mm_add_pi8(_mm_set_pi32(0x7f7f7f7f, 0x01020304), _mm_set_pi32(0x01010101, 0x7f7f7f7f));
	__m64 s = _mm_adds_pi8(m, _mm_set_pi32(0x01010101, 0x01010101));
	uint64_t mv = (uint64_t)_mm_cvtm64_si64(s);
	_mm_empty();
	out("mmx", mv);
}

static void x87(void)
{
	long double a = vd[0], b = vd[8] + 0.0, c;
	c = a / 3 + b * (long double)vd[11];
	uint64_t w[2] = { 0, 0 };
	__builtin_memcpy(w, &c, 10);
	out("x87_lo", w[0]);
	out("x87_hi", w[1]);
	long double r = __builtin_sqrtl(c);
	__builtin_memcpy(w, &r, 10);
	out("fsqrt_lo", w[0]);
	out("fsqrt_hi", w[1]);
	out("fistp", (uint64_t)(int64_t)(c * 1e9L));
	uint16_t sw;
	__asm__ volatile("fnstsw %0" : "=a"(sw));
	out("fsw", sw & 0x3800);
}

uint64_t sse_sum(void)
{
	return sum;
}

void sse_kernels(int print)
{
	printing = print;
	floats();
	modes();
	strings();
	vectors();
	x87();
	if (print)
		rt_printf("sse: checksum %016lx\n", sum);
}
