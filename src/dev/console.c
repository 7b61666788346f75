/* SPDX-License-Identifier: MIT */
/*
 * The host side of the guest's console: stdout and stdin behind the UART.
 *
 * Output never blocks the VM: the UART puts bytes in a bounded buffer under the console's own lock
 * (never vm->lock's holder waiting on I/O), and a writer thread drains it with write(2). When the
 * buffer is full the UART reports its transmitter busy (uart.c), so the guest waits as it would for
 * a slow serial line and nothing is dropped; --timeout, Ctrl-A x and every other end of the VM
 * still reach the vCPUs, which never wait for stdout. At the end, what the guest wrote is written
 * out; a stdout that never drains is abandoned at the --timeout deadline.
 *
 * Input: a reader thread reads stdin into a buffer the UART's receiver FIFO is filled from; when
 * that buffer is full the thread stops reading, so the bytes wait in the host's pipe or terminal
 * until the guest reads (flow control: no byte is lost). EOF means no more input, nothing else.
 * When stdin is the terminal of the foreground job it is put in raw mode for the run, as QEMU's
 * stdio console with its multiplexer does under -nographic (chardev/char-stdio.c with signal=off: no
 * echo, no line editing, no signals from keys, so Ctrl-C and Ctrl-Z go to the guest's shell; output
 * processing kept), and Ctrl-A is QEMU's escape: Ctrl-A x ends the VM with status 0, Ctrl-A Ctrl-A
 * sends a Ctrl-A, Ctrl-A h prints the keys.
 *
 * Lock order: vm->lock, then the console lock. The threads take vm->lock only through notify,
 * with the console lock released.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"

#define TX_SIZE (64u << 10)
/* When the writer writes: a line that has ended, no sooner than WRITE_INTERVAL after its last
 * write; a partial line (a prompt) FLUSH_DELAY after it began; FLUSH_AT bytes at once. A single
 * line reaches stdout at once, a flood costs one write(2) per millisecond instead of one per line
 * (and a thread wake-up per line), and no byte waits more than FLUSH_DELAY. */
#define FLUSH_AT (TX_SIZE / 4)
#define WRITE_INTERVAL 0.001
#define FLUSH_DELAY 0.010
#define RX_SIZE 4096u
#define ESCAPE_CHAR 0x01 /* Ctrl-A, QEMU's default escape */

struct blvm_console {
	struct blvm_vm *vm;
	int in_fd, out_fd;
	void (*notify)(void *opaque);
	void *opaque;

	pthread_mutex_t lock;
	pthread_cond_t tx_cond;    /* writer: data queued, or stopping */
	pthread_cond_t drain_cond; /* stop: the buffer drained, or the writer failed */
	pthread_cond_t rx_cond;    /* reader: room in rx */
	uint8_t tx[TX_SIZE];
	size_t tx_head, tx_len;
	bool tx_failed;
	bool tx_blocked;           /* the UART saw less than a FIFO load of room: notify when there is */
	bool tx_flush;             /* a line has ended (or a partial line waited FLUSH_DELAY) */
	enum { WRITER_BUSY, WRITER_WANTS_LINE, WRITER_WANTS_FULL } writer_wait; /* what wakes it */
	double last_write, first_pending; /* CLOCK_MONOTONIC seconds; first_pending 0: none */
	uint8_t rx[RX_SIZE];
	size_t rx_head, rx_len;
	bool stopping;

	pthread_t writer, reader;
	bool have_writer, have_reader;
	int wake[2];               /* a byte here ends the reader's poll */
	bool escape, is_tty;
	atomic_bool abandon;       /* blvm_console_abandon: stop waiting for stdout to drain */
	bool orphaned;             /* the writer was left blocked in write(2) by blvm_console_stop */
	bool writer_alive, destroy_pending;
};

/* The terminal's settings before raw mode; restored by blvm_console_restore from any context. */
static struct termios saved_termios;
static int saved_fd = -1;
static volatile sig_atomic_t termios_saved;

void blvm_console_restore(void)
{
	if (termios_saved) {
		tcsetattr(saved_fd, TCSANOW, &saved_termios);
		termios_saved = 0;
	}
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct blvm_console *blvm_console_create(struct blvm_vm *vm, int in_fd, int out_fd,
					 void (*notify)(void *opaque), void *opaque)
{
	struct blvm_console *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->vm = vm;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->notify = notify;
	c->opaque = opaque;
	c->wake[0] = c->wake[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->tx_cond, &ca);
	pthread_cond_init(&c->drain_cond, &ca);
	pthread_cond_init(&c->rx_cond, NULL);
	pthread_condattr_destroy(&ca);
	return c;
}

size_t blvm_console_tx_room(struct blvm_console *c)
{
	pthread_mutex_lock(&c->lock);
	size_t room = c->tx_failed ? TX_SIZE : TX_SIZE - c->tx_len;
	if (room < UART_FIFO_SIZE)
		c->tx_blocked = true;
	pthread_mutex_unlock(&c->lock);
	return room;
}

bool blvm_console_tx_put(struct blvm_console *c, uint8_t b)
{
	pthread_mutex_lock(&c->lock);
	bool ok = true;
	if (c->tx_failed) {
		/* stdout is gone and the VM is ending (blvm_console_failed): nowhere to put it */
	} else if (c->tx_len == TX_SIZE) {
		ok = false;
	} else {
		c->tx[(c->tx_head + c->tx_len) % TX_SIZE] = b;
		c->tx_len++;
		if (b == '\n')
			c->tx_flush = true;
		if ((c->writer_wait == WRITER_WANTS_LINE && (c->tx_flush || c->tx_len == 1)) ||
		    (c->writer_wait != WRITER_BUSY && c->tx_len >= FLUSH_AT)) {
			c->writer_wait = WRITER_BUSY;
			pthread_cond_signal(&c->tx_cond);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

int blvm_console_rx_get(struct blvm_console *c)
{
	pthread_mutex_lock(&c->lock);
	int b = -1;
	if (c->rx_len) {
		b = c->rx[c->rx_head];
		c->rx_head = (c->rx_head + 1) % RX_SIZE;
		if (c->rx_len-- == RX_SIZE)
			pthread_cond_signal(&c->rx_cond);
	}
	pthread_mutex_unlock(&c->lock);
	return b;
}

static void free_console(struct blvm_console *c);

/* blvm_console_stop gave up on the writer's write and left: nothing here is wanted any more; the
 * last one out (this thread or blvm_console_destroy) frees the console. Called with the lock. */
static void *orphan_exit(struct blvm_console *c)
{
	bool free_it = c->destroy_pending;
	c->writer_alive = false;
	pthread_mutex_unlock(&c->lock);
	if (free_it)
		free_console(c);
	return NULL;
}

static void *writer_thread(void *arg)
{
	struct blvm_console *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->orphaned)
			return orphan_exit(c);
		for (;;) {
			double now = mono_now(), until = 0;
			if (c->stopping || c->tx_len >= FLUSH_AT)
				break;
			if (c->tx_len && c->tx_flush) {
				if (now >= c->last_write + WRITE_INTERVAL)
					break;
				c->writer_wait = WRITER_WANTS_FULL;
				until = c->last_write + WRITE_INTERVAL;
			} else if (c->tx_len) {
				c->writer_wait = WRITER_WANTS_LINE;
				if (!c->first_pending)
					c->first_pending = now;
				until = c->first_pending + FLUSH_DELAY;
				if (now >= until) {
					c->tx_flush = true;
					continue;
				}
			} else {
				c->writer_wait = WRITER_WANTS_LINE;
			}
			if (until > 0) {
				struct timespec ts = { .tv_sec = (time_t)until };
				ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
				pthread_cond_timedwait(&c->tx_cond, &c->lock, &ts);
			} else {
				pthread_cond_wait(&c->tx_cond, &c->lock);
			}
			c->writer_wait = WRITER_BUSY;
		}
		c->writer_wait = WRITER_BUSY;
		if (c->orphaned)
			return orphan_exit(c);
		if (!c->tx_len)
			break;
		/* What is left after this write (a short write, the ring's wrap) goes on the same terms. */
		bool flushing = c->tx_flush || c->stopping || c->tx_len >= FLUSH_AT;
		c->tx_flush = false;
		c->first_pending = 0;
		c->last_write = mono_now();
		size_t n = c->tx_len < TX_SIZE - c->tx_head ? c->tx_len : TX_SIZE - c->tx_head;
		const uint8_t *p = c->tx + c->tx_head; /* the UART appends elsewhere: these bytes stay */
		pthread_mutex_unlock(&c->lock);
		ssize_t w = write(c->out_fd, p, n);
		int err = errno;
		pthread_mutex_lock(&c->lock);
		if (c->orphaned)
			return orphan_exit(c);
		if (w < 0 && (err == EINTR || err == EAGAIN)) {
			if (err == EAGAIN) { /* a non-blocking stdout someone else set up: wait for it */
				pthread_mutex_unlock(&c->lock);
				poll(&(struct pollfd){ .fd = c->out_fd, .events = POLLOUT }, 1, 100);
				pthread_mutex_lock(&c->lock);
			}
			continue;
		}
		if (w <= 0) {
			c->tx_failed = true;
			c->tx_len = 0;
			pthread_cond_broadcast(&c->drain_cond);
			pthread_mutex_unlock(&c->lock);
			blvm_console_failed(c->vm, w < 0 ? err : EIO);
			if (c->notify)
				c->notify(c->opaque);
			return NULL;
		}
		c->tx_head = (c->tx_head + (size_t)w) % TX_SIZE;
		c->tx_len -= (size_t)w;
		if (c->tx_len && flushing)
			c->tx_flush = true;
		if (!c->tx_len)
			pthread_cond_broadcast(&c->drain_cond);
		if (c->tx_blocked && TX_SIZE - c->tx_len >= UART_FIFO_SIZE && c->notify) {
			c->tx_blocked = false;
			pthread_mutex_unlock(&c->lock);
			c->notify(c->opaque); /* the transmitter is empty again: THRE (and its interrupt) */
			pthread_mutex_lock(&c->lock);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void print_escape_help(void)
{
	static const char help[] = "\r\nblvm: console keys:\r\n"
				   "blvm:   Ctrl-A x       end the VM (status 0)\r\n"
				   "blvm:   Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n"
				   "blvm:   Ctrl-A h       this help\r\n";
	ssize_t r = write(STDERR_FILENO, help, sizeof help - 1);
	(void)r;
}

static void *reader_thread(void *arg)
{
	struct blvm_console *c = arg;
	uint8_t buf[256];
	for (;;) {
		pthread_mutex_lock(&c->lock);
		while (c->rx_len == RX_SIZE && !c->stopping)
			pthread_cond_wait(&c->rx_cond, &c->lock);
		size_t room = RX_SIZE - c->rx_len;
		bool stop = c->stopping;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		struct pollfd p[2] = { { .fd = c->in_fd, .events = POLLIN }, { .fd = c->wake[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		ssize_t n = read(c->in_fd, buf, room < sizeof buf ? room : sizeof buf);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* EOF or an unreadable stdin: no more input; the guest runs on */
		size_t kept = 0;
		bool quit = false;
		for (ssize_t i = 0; i < n; i++) {
			uint8_t b = buf[i];
			if (c->is_tty && c->escape) {
				c->escape = false;
				if (b == 'x' || b == 'X') {
					quit = true;
					break;
				}
				if (b == 'h' || b == 'H' || b == '?')
					print_escape_help();
				if (b != ESCAPE_CHAR)
					continue; /* other keys after the escape are dropped, as QEMU's mux does */
			} else if (c->is_tty && b == ESCAPE_CHAR) {
				c->escape = true;
				continue;
			}
			buf[kept++] = b;
		}
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < kept; i++)
			c->rx[(c->rx_head + c->rx_len++) % RX_SIZE] = buf[i];
		pthread_mutex_unlock(&c->lock);
		if (kept && c->notify)
			c->notify(c->opaque);
		if (quit) {
			blvm_vm_end(c->vm, BLVM_END_CONSOLE_QUIT, 0, 0, "Ctrl-A x typed on the console; ending the VM");
			break;
		}
	}
	return NULL;
}

static void enter_raw_mode(struct blvm_console *c)
{
	/* Only the foreground job owns the terminal: a background blvm that read it or changed its
	 * modes would be stopped (SIGTTIN/SIGTTOU), so it leaves stdin alone. */
	if (!isatty(c->in_fd) || tcgetpgrp(c->in_fd) != getpgrp()) {
		if (isatty(c->in_fd))
			c->in_fd = -1;
		return;
	}
	struct termios t;
	if (tcgetattr(c->in_fd, &t) != 0)
		return;
	saved_termios = t;
	saved_fd = c->in_fd;
	termios_saved = 1;
	static bool registered;
	if (!registered && atexit(blvm_console_restore) == 0)
		registered = true;
	/* QEMU's qemu_chr_set_echo_stdio(false), with ISIG off as its signal=off (-nographic). */
	t.c_iflag &= (tcflag_t)~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_oflag |= OPOST;
	t.c_lflag &= (tcflag_t)~(ECHO | ECHONL | ICANON | IEXTEN | ISIG);
	t.c_cflag &= (tcflag_t)~(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(c->in_fd, TCSANOW, &t);
	c->is_tty = true;
}

int blvm_console_start(struct blvm_console *c)
{
	c->writer_alive = true;
	int r = pthread_create(&c->writer, NULL, writer_thread, c);
	if (r) {
		c->writer_alive = false;
		return -r;
	}
	c->have_writer = true;
	if (c->in_fd < 0)
		return 0;
	enter_raw_mode(c);
	if (c->in_fd < 0 || pipe2(c->wake, O_CLOEXEC) != 0)
		return 0; /* no input: the guest still runs */
	r = pthread_create(&c->reader, NULL, reader_thread, c);
	if (r == 0)
		c->have_reader = true;
	return 0;
}

void blvm_console_stop(struct blvm_console *c, double deadline)
{
	if (c->have_writer) {
		pthread_mutex_lock(&c->lock);
		c->stopping = true; /* the writer writes the rest at once, then ends */
		pthread_cond_broadcast(&c->tx_cond);
		while (c->tx_len && !c->tx_failed && !atomic_load(&c->abandon)) {
			double left = deadline - mono_now();
			if (left <= 0)
				break;
			if (left > 0.1)
				left = 0.1; /* look at the abandon flag, which a signal handler may set */
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			double t = ts.tv_sec + ts.tv_nsec / 1e9 + left;
			ts.tv_sec = (time_t)t;
			ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
			pthread_cond_timedwait(&c->drain_cond, &c->lock, &ts);
		}
		/* Still blocked in write(2) on a stdout that does not drain: leave the writer there
		 * (detached; it ends when the write returns, or with the process) rather than wait.
		 * Not pthread_cancel: unwinding a thread is not something every runtime survives
		 * (ASan reports the unwound frames' poisoned stack). */
		bool stuck = c->tx_len && !c->tx_failed;
		c->stopping = true;
		pthread_cond_broadcast(&c->tx_cond);
		if (stuck)
			c->orphaned = true;
		pthread_mutex_unlock(&c->lock);
		if (stuck)
			pthread_detach(c->writer);
		else
			pthread_join(c->writer, NULL);
		c->have_writer = false;
	}
	if (c->have_reader) {
		pthread_mutex_lock(&c->lock);
		c->stopping = true;
		pthread_cond_broadcast(&c->rx_cond);
		pthread_mutex_unlock(&c->lock);
		ssize_t w = write(c->wake[1], "", 1);
		(void)w;
		pthread_join(c->reader, NULL);
		c->have_reader = false;
	}
	blvm_console_restore();
}

void blvm_console_abandon(struct blvm_console *c)
{
	if (c)
		atomic_store(&c->abandon, true);
}

static void free_console(struct blvm_console *c)
{
	pthread_cond_destroy(&c->tx_cond);
	pthread_cond_destroy(&c->drain_cond);
	pthread_cond_destroy(&c->rx_cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void blvm_console_destroy(struct blvm_console *c)
{
	if (!c)
		return;
	blvm_console_stop(c, 0);
	if (c->wake[0] >= 0) {
		close(c->wake[0]);
		close(c->wake[1]);
	}
	pthread_mutex_lock(&c->lock);
	bool writer_has_it = c->orphaned && c->writer_alive;
	if (writer_has_it)
		c->destroy_pending = true; /* the orphaned writer frees it when its write returns */
	pthread_mutex_unlock(&c->lock);
	if (!writer_has_it)
		free_console(c);
}
