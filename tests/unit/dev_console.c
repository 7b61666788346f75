/* SPDX-License-Identifier: MIT */
/*
 * The console's threads (src/dev/console.c), also run under ThreadSanitizer:
 *   - output: 1 MiB through the bounded buffer to a pipe read slowly, every byte in order, the
 *     producer (the UART's side) never blocking: it sees "no room" and waits, as the guest waits for
 *     THRE, and is told when room returns;
 *   - input: bytes written to stdin arrive in order, held on the host side while nobody takes them;
 *   - a stdout that never drains: stopping returns at its deadline, or with no deadline when
 *     blvm_console_abandon is called (the writer stuck in write(2) is left there, detached, and
 *     frees the console when its write returns);
 *   - a stdout whose reader went away (EPIPE): recorded in vm->console_error, the VM ended, status 125.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static atomic_int notified;
static void notify(void *opaque) { (void)opaque; atomic_fetch_add(&notified, 1); }

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define OUT_BYTES (1u << 20)

struct drain { int fd; size_t got; bool in_order; atomic_bool go; };

static void *slow_reader(void *arg)
{
	struct drain *d = arg;
	uint8_t buf[1000];
	ssize_t n;
	/* Nobody reads stdout until the producer has found the buffer full once. */
	while (!atomic_load(&d->go))
		usleep(100);
	while ((n = read(d->fd, buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != (uint8_t)((d->got + (size_t)i) * 7))
				d->in_order = false;
		d->got += (size_t)n;
	}
	return NULL;
}

static void test_output(struct blvm_vm *vm)
{
	int p[2];
	CHECK(pipe(p) == 0);
	struct blvm_console *c = blvm_console_create(vm, -1, p[1], notify, NULL);
	CHECK(blvm_console_start(c) == 0);
	struct drain d = { .fd = p[0], .in_order = true };
	pthread_t t;
	pthread_create(&t, NULL, slow_reader, &d);
	unsigned waits = 0;
	atomic_store(&notified, 0);
	for (size_t i = 0; i < OUT_BYTES; i++) {
		while (blvm_console_tx_room(c) < UART_FIFO_SIZE) {
			waits++;
			atomic_store(&d.go, true);
			usleep(50);
		}
		CHECK(blvm_console_tx_put(c, (uint8_t)(i * 7)));
	}
	blvm_console_stop(c, 1e300);
	close(p[1]);
	pthread_join(t, NULL);
	close(p[0]);
	blvm_console_destroy(c);
	CHECK(d.got == OUT_BYTES);
	CHECK(d.in_order);
	CHECK(waits > 0);                   /* the buffer did fill: back-pressure, not loss */
	CHECK(atomic_load(&notified) > 0);  /* and the UART side heard when room came back */
}

struct feeder { int fd; size_t n; };

static void *feed(void *arg)
{
	struct feeder *f = arg;
	for (size_t i = 0; i < f->n;) {
		uint8_t buf[333];
		size_t k = 0;
		for (; k < sizeof buf && i < f->n; k++, i++)
			buf[k] = (uint8_t)(i * 13 + 1);
		if (write(f->fd, buf, k) != (ssize_t)k)
			break;
	}
	close(f->fd);
	return NULL;
}

static void test_input(struct blvm_vm *vm)
{
	int in[2], out[2];
	CHECK(pipe(in) == 0 && pipe(out) == 0);
	struct blvm_console *c = blvm_console_create(vm, in[0], out[1], notify, NULL);
	CHECK(blvm_console_start(c) == 0);
	struct feeder f = { in[1], 100000 };
	pthread_t t;
	pthread_create(&t, NULL, feed, &f);
	size_t got = 0;
	bool in_order = true;
	double deadline = mono() + 30;
	while (got < f.n && mono() < deadline) {
		int b = blvm_console_rx_get(c);
		if (b < 0) {
			if (got == 50000)
				usleep(20000); /* nobody reads for a while: the host buffer fills, the pipe holds the rest */
			else
				usleep(10);
			continue;
		}
		if (b != (uint8_t)(got * 13 + 1))
			in_order = false;
		got++;
	}
	pthread_join(t, NULL);
	CHECK(got == f.n);
	CHECK(in_order);
	CHECK(blvm_console_rx_get(c) == -1);
	blvm_console_stop(c, 1e300);
	blvm_console_destroy(c);
	close(in[0]);
	close(out[0]);
	close(out[1]);
}

static void *abandon_later(void *arg)
{
	usleep(200000);
	blvm_console_abandon(arg);
	return NULL;
}

static void test_blocked_stdout(struct blvm_vm *vm, bool abandon)
{
	int p[2];
	CHECK(pipe(p) == 0);
	struct blvm_console *c = blvm_console_create(vm, -1, p[1], notify, NULL);
	CHECK(blvm_console_start(c) == 0);
	/* Fill the pipe (64 KiB) and the buffer; nobody reads. */
	size_t put = 0;
	double until = mono() + 5;
	while (mono() < until) {
		if (blvm_console_tx_room(c) == 0) {
			usleep(1000);
			if (blvm_console_tx_room(c) == 0)
				break;
			continue;
		}
		blvm_console_tx_put(c, 'x');
		put++;
	}
	CHECK(blvm_console_tx_room(c) == 0);
	CHECK(!blvm_console_tx_put(c, 'y')); /* full: not taken, the caller keeps it */
	double t0 = mono();
	if (abandon) {
		/* No deadline: only blvm_console_abandon (a signal handler's call) ends the wait. */
		pthread_t t;
		pthread_create(&t, NULL, abandon_later, c);
		blvm_console_stop(c, 1e300);
		pthread_join(t, NULL);
	} else {
		blvm_console_stop(c, t0 + 0.2);
	}
	CHECK(mono() - t0 < 5); /* returned: the writer stuck in write(2) was left there */
	blvm_console_destroy(c);
	/* Closing the read end makes the orphaned writer's write fail (EPIPE): it ends and frees the
	 * console. The write end stays open: the writer may still be inside write(2) on it. */
	close(p[0]);
	(void)put;
}

static void test_epipe(struct blvm_vm *vm)
{
	int p[2];
	CHECK(pipe(p) == 0);
	close(p[0]);
	struct blvm_console *c = blvm_console_create(vm, -1, p[1], notify, NULL);
	CHECK(blvm_console_start(c) == 0);
	blvm_console_tx_put(c, 'z');
	double until = mono() + 10;
	while (!atomic_load(&vm->ending) && mono() < until)
		usleep(1000);
	CHECK(atomic_load(&vm->ending));
	CHECK(blvm_console_tx_put(c, 'z')); /* after the failure bytes are taken (the VM is ending) */
	blvm_console_stop(c, 1e300);        /* joins the writer: what it recorded is visible */
	CHECK(vm->console_errno == EPIPE);
	CHECK(vm->result.reason == BLVM_END_CONSOLE_ERROR);
	CHECK(vm->result.exit_status == BLVM_STATUS_CONSOLE_FAILED);
	CHECK(strstr(vm->result.message, "Broken pipe") != NULL);
	blvm_console_destroy(c);
	close(p[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	struct blvm_vm *vm = calloc(1, sizeof *vm); /* no vCPUs: blvm_vm_end only records */
	pthread_mutex_init(&vm->end_lock, NULL);
	test_output(vm);
	test_input(vm);
	test_blocked_stdout(vm, false);
	test_blocked_stdout(vm, true);
	CHECK(!atomic_load(&vm->ending));
	test_epipe(vm);
	free(vm);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("dev_console: all checks passed\n");
	return 0;
}
