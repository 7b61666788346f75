/* SPDX-License-Identifier: MIT */
/* The one JSON string writer of the --stats output (the monitor's fields and the policy module's). */
#ifndef BLVM_COMMON_JSON_H
#define BLVM_COMMON_JSON_H

#include <stdio.h>

/* Writes s as a JSON string. Bytes outside printable ASCII are written as \u00XX escapes: messages
 * and disassembly are ASCII, and a byte that is not (it came from somewhere untrusted) must not
 * make the file invalid JSON (RFC 8259 requires UTF-8; a lone byte >= 0x80 is not). */
static inline void json_write_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

#endif
