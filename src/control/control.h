/* SPDX-License-Identifier: MIT */
/*
 * Operating a running VM from outside (issue 14; docs/DESIGN.md "Operating blvm"), for the command:
 *   --control=PATH      a Unix socket (mode 0600) speaking QMP's wire format
 *   --events=FILE.jsonl the same events as the socket, one JSON object per line, appended
 *   --metrics=FILE.prom Prometheus text exposition, rewritten atomically every second
 * One thread runs one poll loop for all three: the socket's clients, and a tick every second that
 * reads the statistics object (blvm_vm_write_stats, the one builder) for the rate events and the
 * metrics. It uses only the library's public API (blvm/vm.h), so it lives with the command, and so
 * does its JSON library (json-c), which libblvm does not need.
 */
#ifndef BLVM_CONTROL_H
#define BLVM_CONTROL_H

#include <stddef.h>

#include "blvm/vm.h"

struct blvm_control_config {
	const char *socket_path;  /* --control, NULL: none */
	const char *events_path;  /* --events, NULL: none */
	const char *metrics_path; /* --metrics, NULL: none */
};

struct blvm_control;

/* Before the VM exists: binds the socket and checks the files, so that a bad path costs nothing
 * (one line in err, -1; nothing left behind). *out is NULL when no option asked for anything. */
int blvm_control_open(const struct blvm_control_config *cfg, struct blvm_control **out, char *err,
		      size_t errlen);
/* Starts the thread serving vm (created, about to run). 0, or -1 with one line in err. */
int blvm_control_start(struct blvm_control *c, struct blvm_vm *vm, char *err, size_t errlen);
/* The VM has ended (blvm_vm_run returned res): the end events go out (BUS_LOCK_KILL, SHUTDOWN), the
 * metrics file is written a last time, clients get what was queued for them (for at most a second),
 * the thread stops, the socket is removed. Then frees c. c NULL: nothing. */
void blvm_control_finish(struct blvm_control *c, const struct blvm_vm_result *res);

#endif
