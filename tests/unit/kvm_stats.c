/* SPDX-License-Identifier: MIT */
/*
 * The reader of KVM_GET_STATS_FD files (src/vmm/dead.c, blvm_kvm_stat_offset), on files written here
 * in KVM's layout (api.rst "KVM_GET_STATS_FD"; virt/kvm/binary_stats.c kvm_stats_read: the header, the
 * id string of name_size bytes, num_desc descriptors of sizeof(struct kvm_stats_desc) + name_size
 * bytes at desc_offset, u64 values at data_offset + a descriptor's offset), shaped as KVM's generic
 * vCPU statistics are: "blocking" (an instant boolean, STATS_DESC_IBOOLEAN) last, after counters
 * and a histogram, with KVM_STATS_NAME_SIZE = 48. Found: the right offset, whatever its index;
 * a name that only starts the same, or the wrong type, is not it. Hostile headers (name_size 0 or
 * huge, num_desc huge, descriptors past the end of the file, no such statistic) give -1, no crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vmm.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

#define NAME_SIZE 48

struct stat_def { const char *name; uint32_t flags; uint16_t size; };

/* Writes a stats file of `n` statistics; returns the fd (offset 0). */
static int stats_file(const struct kvm_stats_header *hdr_override, const struct stat_def *defs, unsigned n,
		      off_t truncate_at)
{
	FILE *f = tmpfile();
	if (!f)
		return -1;
	int fd = dup(fileno(f));
	fclose(f);
	size_t one = sizeof(struct kvm_stats_desc) + NAME_SIZE;
	struct kvm_stats_header h = {
		.name_size = NAME_SIZE, .num_desc = n, .id_offset = sizeof h,
		.desc_offset = sizeof h + NAME_SIZE, .data_offset = (uint32_t)(sizeof h + NAME_SIZE + n * one),
	};
	if (hdr_override)
		h = *hdr_override;
	size_t len = sizeof h + NAME_SIZE + n * one + 64 * 8;
	uint8_t *b = calloc(1, len);
	memcpy(b, &h, sizeof h);
	snprintf((char *)b + sizeof h, NAME_SIZE, "kvm-%d/vcpu-0", (int)getpid());
	uint32_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		struct kvm_stats_desc *d = (struct kvm_stats_desc *)(b + sizeof h + NAME_SIZE + i * one);
		d->flags = defs[i].flags;
		d->size = defs[i].size;
		d->offset = off;
		strncpy(d->name, defs[i].name, NAME_SIZE);
		off += 8u * defs[i].size;
	}
	if (pwrite(fd, b, truncate_at ? (size_t)truncate_at : len, 0) < 0)
		fd = -1;
	free(b);
	return fd;
}

int main(void)
{
	const uint32_t counter = KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10;
	const uint32_t hist = KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS | KVM_STATS_BASE_POW10;
	const uint32_t iboolean = KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN | KVM_STATS_BASE_POW10;
	const struct stat_def generic[] = {
		{ "halt_successful_poll", counter, 1 }, { "halt_wakeup", counter, 1 },
		{ "halt_poll_success_hist", hist, 32 }, { "blockingx", iboolean, 1 }, { "blocking", iboolean, 1 },
	};
	const unsigned n = sizeof generic / sizeof generic[0];
	size_t one = sizeof(struct kvm_stats_desc) + NAME_SIZE;
	uint32_t data = (uint32_t)(sizeof(struct kvm_stats_header) + NAME_SIZE + n * one);

	int fd = stats_file(NULL, generic, n, 0);
	CHECK(fd >= 0);
	/* its values follow halt_successful_poll, halt_wakeup, 32 buckets and blockingx: 35 u64s in */
	CHECK(blvm_kvm_stat_offset(fd, "blocking", KVM_STATS_TYPE_INSTANT) == (int64_t)data + 35 * 8);
	CHECK(blvm_kvm_stat_offset(fd, "halt_wakeup", KVM_STATS_TYPE_CUMULATIVE) == (int64_t)data + 8);
	CHECK(blvm_kvm_stat_offset(fd, "halt_wakeup", KVM_STATS_TYPE_INSTANT) == -1);   /* wrong type */
	CHECK(blvm_kvm_stat_offset(fd, "halt_poll_success_hist", KVM_STATS_TYPE_LOG_HIST) == -1); /* not one value */
	CHECK(blvm_kvm_stat_offset(fd, "block", KVM_STATS_TYPE_INSTANT) == -1);         /* a prefix only */
	close(fd);

	/* KVM before "blocking" existed: the other statistics only */
	fd = stats_file(NULL, generic, 3, 0);
	CHECK(blvm_kvm_stat_offset(fd, "blocking", KVM_STATS_TYPE_INSTANT) == -1);
	close(fd);

	/* hostile or truncated files */
	struct kvm_stats_header bad[] = {
		{ .name_size = 0, .num_desc = n, .desc_offset = 24 + NAME_SIZE },
		{ .name_size = 8, .num_desc = n, .desc_offset = 24 + NAME_SIZE },           /* "blocking" needs 9 */
		{ .name_size = 1u << 30, .num_desc = n, .desc_offset = 24 + NAME_SIZE },
		{ .name_size = NAME_SIZE, .num_desc = 0xffffffffu, .desc_offset = 24 + NAME_SIZE },
		{ .name_size = NAME_SIZE, .num_desc = n, .desc_offset = 0xfffffff0u },
	};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fd = stats_file(&bad[i], generic, n, 0);
		CHECK(blvm_kvm_stat_offset(fd, "blocking", KVM_STATS_TYPE_INSTANT) == -1);
		close(fd);
	}
	fd = stats_file(NULL, generic, n, (off_t)(data - 10)); /* the last descriptor cut short */
	CHECK(blvm_kvm_stat_offset(fd, "blocking", KVM_STATS_TYPE_INSTANT) == -1);
	close(fd);
	fd = stats_file(NULL, generic, n, 10); /* not even a header */
	CHECK(blvm_kvm_stat_offset(fd, "blocking", KVM_STATS_TYPE_INSTANT) == -1);
	close(fd);

	if (failures)
		return 1;
	printf("all checks passed\n");
	return 0;
}
