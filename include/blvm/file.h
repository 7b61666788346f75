/* SPDX-License-Identifier: MIT */
/*
 * The one way blvm opens the files its options name (the kernel, --stats, and every path option
 * added later: initrd, symbols, metrics...). Two promises:
 *
 *  - No open ever blocks: a FIFO without a writer or a tty would hang open() before --timeout or a
 *    signal could act, so inputs are opened O_NONBLOCK, checked with fstat, and refused with one
 *    line unless they are regular files; outputs are opened O_NONBLOCK too.
 *  - blvm never truncates or deletes what it did not create. A regular output file is written to a
 *    temporary file beside it (mkstemp in the same directory) and renamed over it only when the
 *    whole content is written, so a failed run leaves the old file as it was and no reader ever sees
 *    half a file. A symbolic link is followed, as cp(1) does: the file it points to is replaced and
 *    the link stays. A target that exists and is not a regular file (a device such as /dev/null, a
 *    FIFO, a link to one) is written in place and never replaced or removed; a FIFO nobody reads is
 *    refused at start (it would block, or lose the record); the descriptor then blocks again, and a
 *    caller that must not wait for the reader (the control thread's --metrics) sets O_NONBLOCK on
 *    it. A dangling link is refused, as cp does.
 *    Unlike cp, a file with several hard links gets a new inode: the other names keep the old content.
 */
#ifndef BLVM_FILE_H
#define BLVM_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Opens path for reading; what names the option in messages ("kernel", "--initrd"). Returns a
 * blocking O_CLOEXEC descriptor of a regular file, or -1 with one line in err ("cannot open kernel
 * x: No such file or directory", "kernel x is a FIFO, not a regular file; ..."). */
int blvm_open_input(const char *path, const char *what, char *err, size_t errlen);

/* An output file being written: the FILE to write to, and where it goes at commit. */
struct blvm_output {
	FILE *f;          /* write here */
	char *name;       /* "--stats=PATH", for messages */
	char *target;     /* the file that receives the content (a link resolved) */
	char *tmp;        /* the temporary file beside it; NULL when written in place */
};

/* Opens path for writing as described above; what names the option ("--stats"). 0, or -1 with one
 * line in err; nothing is created or changed on failure. */
int blvm_output_open(struct blvm_output *o, const char *path, const char *what, char *err, size_t errlen);
/* Flushes, closes and renames the temporary file over the target. 0, or -1 with one line in err
 * (the temporary file is then removed and the target left as it was). */
int blvm_output_commit(struct blvm_output *o, char *err, size_t errlen);
/* Closes and removes the temporary file; the target is left as it was. */
void blvm_output_abort(struct blvm_output *o);
/* Opens path for appending (--events: one record per line, never rewritten), by the same rules: a
 * regular file is created (0666 less the umask) or appended to, never truncated; a link is followed,
 * a dangling one refused; a device or a FIFO with a reader is written in place; a FIFO nobody reads
 * and a directory are refused. Returns a blocking O_APPEND|O_CLOEXEC descriptor (one write() per
 * record keeps records whole in a regular file), or -1 with one line in err. */
int blvm_open_append(const char *path, const char *what, char *err, size_t errlen);
/* The temporary file's name, for a signal handler that must remove it before _exit (NULL if none). */
const char *blvm_output_tmp_name(const struct blvm_output *o);

#endif
