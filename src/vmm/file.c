/* SPDX-License-Identifier: MIT */
/* Opening the files blvm's options name: include/blvm/file.h says what is promised and why. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blvm/file.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* "a FIFO" ...: what a file that is not a regular file is, for the one line that refuses it. */
static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

int blvm_open_input(const char *path, const char *what, char *err, size_t errlen)
{
	/* O_NONBLOCK: open() of a FIFO without a writer (or of a tty, a tape...) returns at once instead
	 * of waiting for one; O_NOCTTY: a terminal never becomes ours. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "cannot stat %s %s: %s", what, path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, "%s %s is %s, not a regular file", what, path, file_kind(st.st_mode));
	}
	/* A regular file never blocks; the flag is cleared so that readers need not handle EAGAIN. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "cannot read %s %s: %s", what, path, strerror(e));
	}
	return fd;
}

int blvm_open_append(const char *path, const char *what, char *err, size_t errlen)
{
	struct stat st, lst;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return fail(err, errlen, "cannot write %s=%s: it is a directory; give a file name", what, path);
	if (stat(path, &st) != 0 && errno == ENOENT && lstat(path, &lst) == 0)
		return fail(err, errlen, "cannot write %s=%s: it is a symbolic link to a file that does not exist",
			    what, path);
	/* O_NONBLOCK: a FIFO nobody reads fails with ENXIO instead of blocking; no O_TRUNC: what is
	 * there stays. O_CREAT does not touch an existing device or FIFO. */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666);
	if (fd < 0) {
		if (errno == ENXIO)
			return fail(err, errlen, "cannot write %s=%s: it is a FIFO and nothing reads it (start the "
				    "reader first, or give a file)", what, path);
		return fail(err, errlen, "cannot write %s=%s: %s", what, path, strerror(errno));
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "cannot write %s=%s: %s", what, path, strerror(e));
	}
	return fd;
}

static void output_free(struct blvm_output *o)
{
	free(o->name);
	free(o->target);
	free(o->tmp);
	*o = (struct blvm_output){ 0 };
}

/* Writes in place into an existing non-regular file (a device, a FIFO): it is not ours to replace. */
static int open_in_place(struct blvm_output *o, const char *path, mode_t m, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO that nobody reads fails with ENXIO instead of blocking blvm before the VM
	 * even starts; no O_TRUNC and no O_CREAT: the node stays what it is. */
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENXIO && S_ISFIFO(m))
			return fail(err, errlen, "cannot write %s: it is a FIFO and nothing reads it (start the "
				    "reader first, or give a file)", o->name);
		return fail(err, errlen, "cannot write %s: %s", o->name, strerror(errno));
	}
	/* The reader exists now; later writes may wait for it rather than fail with EAGAIN. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 || !(o->f = fdopen(fd, "w"))) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "cannot write %s: %s", o->name, strerror(e));
	}
	return 0;
}

int blvm_output_open(struct blvm_output *o, const char *path, const char *what, char *err, size_t errlen)
{
	*o = (struct blvm_output){ 0 };
	size_t nlen = strlen(what) + strlen(path) + 2;
	o->name = malloc(nlen);
	if (!o->name)
		return fail(err, errlen, "out of memory");
	snprintf(o->name, nlen, "%s=%s", what, path);

	struct stat st;
	mode_t mode;
	bool exists = stat(path, &st) == 0; /* follows links, as cp does */
	if (exists) {
		if (S_ISDIR(st.st_mode)) {
			fail(err, errlen, "cannot write %s: it is a directory; give a file name", o->name);
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			if (open_in_place(o, path, st.st_mode, err, errlen) != 0)
				goto fail;
			return 0;
		}
		/* The file a link points to is the one replaced; the link stays a link. */
		o->target = realpath(path, NULL);
		if (!o->target) {
			fail(err, errlen, "cannot write %s: %s", o->name, strerror(errno));
			goto fail;
		}
		/* Replacing needs only the directory's permission; writing into the file needed the file's.
		 * Ask for the latter, as cp would, so that a read-only file stays protected. */
		if (access(o->target, W_OK) != 0) {
			fail(err, errlen, "cannot write %s: %s", o->name, strerror(errno));
			goto fail;
		}
		mode = st.st_mode & 07777;
	} else {
		struct stat lst;
		if (errno != ENOENT) {
			fail(err, errlen, "cannot write %s: %s", o->name, strerror(errno));
			goto fail;
		}
		if (lstat(path, &lst) == 0) {
			/* A link to nothing: where it points may be a surprise (cp refuses it too). */
			fail(err, errlen, "cannot write %s: it is a symbolic link to a file that does not exist",
			      o->name);
			goto fail;
		}
		o->target = strdup(path);
		if (!o->target) {
			fail(err, errlen, "out of memory");
			goto fail;
		}
		mode_t mask = umask(0);
		umask(mask);
		mode = 0666 & ~mask; /* what open(O_CREAT, 0666) would have given */
	}

	/* The temporary file beside the target: rename() is atomic only within one file system. */
	char *dcopy = strdup(o->target), *bcopy = strdup(o->target);
	if (dcopy && bcopy) {
		const char *dir = dirname(dcopy), *base = basename(bcopy);
		size_t tlen = strlen(dir) + strlen(base) + 16;
		o->tmp = malloc(tlen);
		if (o->tmp)
			snprintf(o->tmp, tlen, "%s/.%s.XXXXXX", dir, base);
	}
	free(dcopy);
	free(bcopy);
	if (!o->tmp) {
		fail(err, errlen, "out of memory");
		goto fail;
	}
	int fd = mkostemp(o->tmp, O_CLOEXEC);
	if (fd < 0) {
		fail(err, errlen, "cannot write %s: cannot create a file in its directory: %s", o->name,
		     strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		goto fail;
	}
	/* The new file gets the old one's mode (and owner, where we may set it), as writing into it
	 * would have kept them. */
	if (fchmod(fd, mode) != 0 || !(o->f = fdopen(fd, "w"))) {
		int e = errno;
		close(fd);
		unlink(o->tmp);
		fail(err, errlen, "cannot write %s: %s", o->name, strerror(e));
		goto fail;
	}
	if (exists && (st.st_uid != geteuid() || st.st_gid != getegid()))
		(void)!fchown(fd, st.st_uid, st.st_gid); /* best effort: only root may give files away */
	return 0;
fail:
	output_free(o);
	return -1;
}

int blvm_output_commit(struct blvm_output *o, char *err, size_t errlen)
{
	int r = 0;
	/* fflush and ferror first: fclose alone does not report an error an earlier write hit. */
	bool bad = fflush(o->f) != 0 || ferror(o->f);
	int e = errno;
	/* On disk before the rename, so that even a host crash leaves the old file or the whole new one. */
	if (!bad && o->tmp && fsync(fileno(o->f)) != 0) {
		bad = true;
		e = errno;
	}
	if (fclose(o->f) != 0 && !bad) {
		bad = true;
		e = errno;
	}
	o->f = NULL;
	if (bad) {
		r = fail(err, errlen, "writing %s failed: %s", o->name, strerror(e ? e : EIO));
		if (o->tmp)
			unlink(o->tmp);
	} else if (o->tmp && rename(o->tmp, o->target) != 0) {
		r = fail(err, errlen, "writing %s failed: cannot rename %s to %s: %s", o->name, o->tmp, o->target,
			 strerror(errno));
		unlink(o->tmp);
	}
	output_free(o);
	return r;
}

void blvm_output_abort(struct blvm_output *o)
{
	if (o->f)
		fclose(o->f);
	if (o->tmp)
		unlink(o->tmp);
	output_free(o);
}

const char *blvm_output_tmp_name(const struct blvm_output *o)
{
	return o->tmp;
}
