/* SPDX-License-Identifier: MIT */
/* The one escaper of text in blvm's messages on stderr: guest-controlled text (a kernel's symbol
 * names) and text the user gave (options, file names). */
#ifndef BLVM_COMMON_ESCAPE_H
#define BLVM_COMMON_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Copies src into dst (len bytes, always NUL-terminated, truncated at a whole character) writing each
 * byte that is not plain for its kind of text (below) as \xNN. Returns dst. */
static inline char *blvm_escape_bytes(char *dst, size_t len, const char *src, bool user_text)
{
	size_t o = 0;
	if (!len)
		return dst;
	for (; *src; src++) {
		unsigned char ch = (unsigned char)*src;
		bool plain = user_text ? ch >= 0x20 && ch != 0x7f : ch >= 0x20 && ch < 0x7f && ch != '\\';
		if (plain) {
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

/* Guest text: every byte outside printable ASCII, and the backslash, becomes \xNN: a kernel's symbol
 * table is the guest's to write, and a name holding ESC ] 0 ; ... BEL (or a C1 control such as 0x9b,
 * CSI on some terminals) would otherwise drive the terminal that shows blvm's report. The JSON output
 * escapes the same bytes its own way (json.h). */
static inline char *blvm_escape_text(char *dst, size_t len, const char *src)
{
	return blvm_escape_bytes(dst, len, src, false);
}

/* The same for text the user gave (an option's value, a file name): only the C0 controls and DEL
 * become \xNN, so that a newline or an ESC in an argument cannot split blvm's one error line or
 * drive the terminal, while a UTF-8 file name stays readable. */
static inline char *blvm_escape_controls(char *dst, size_t len, const char *src)
{
	return blvm_escape_bytes(dst, len, src, true);
}

#endif
