/* SPDX-License-Identifier: MIT */
/* The one escaper of guest-controlled text (a kernel's symbol names) in blvm's messages on stderr. */
#ifndef BLVM_COMMON_ESCAPE_H
#define BLVM_COMMON_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/* Copies src into dst (len bytes, always NUL-terminated) with every byte outside printable ASCII, and
 * the backslash, written as \xNN: a kernel's symbol table is the guest's to write, and a name holding
 * ESC ] 0 ; ... BEL (or a C1 control such as 0x9b, CSI on some terminals) would otherwise drive the
 * terminal that shows blvm's report. The JSON output escapes the same bytes its own way (json.h).
 * Returns dst. */
static inline char *blvm_escape_text(char *dst, size_t len, const char *src)
{
	size_t o = 0;
	if (!len)
		return dst;
	for (; *src; src++) {
		unsigned char ch = (unsigned char)*src;
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			if (o + 1 >= len)
				break;
			dst[o++] = (char)ch;
		} else {
			if (o + 4 >= len)
				break;
			snprintf(dst + o, 5, "\\x%02x", ch);
			o += 4;
		}
	}
	dst[o] = '\0';
	return dst;
}

/* The same for text the user gave (an option's value, a file name): only the C0 controls and DEL
 * become \xNN, so that a newline or an ESC in an argument cannot split blvm's one error line or
 * drive the terminal, while a UTF-8 file name stays readable. */
static inline char *blvm_escape_controls(char *dst, size_t len, const char *src)
{
	size_t o = 0;
	if (!len)
		return dst;
	for (; *src; src++) {
		unsigned char ch = (unsigned char)*src;
		if (ch >= 0x20 && ch != 0x7f) {
			if (o + 1 >= len)
				break;
			dst[o++] = (char)ch;
		} else {
			if (o + 4 >= len)
				break;
			snprintf(dst + o, 5, "\\x%02x", ch);
			o += 4;
		}
	}
	dst[o] = '\0';
	return dst;
}

#endif
