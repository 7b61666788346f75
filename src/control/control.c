/* SPDX-License-Identifier: MIT */
/*
 * The control socket (QMP's wire format), --events and --metrics: control.h says what and why.
 *
 * QMP's wire format, as QEMU's docs/interop/qmp-spec.rst states it and qemu's monitor/qmp.c does it:
 *  - on connect the server sends a greeting {"QMP": {"version": {...}, "capabilities": [...]}};
 *  - the client leaves "capabilities negotiation mode" with {"execute": "qmp_capabilities"}; before
 *    that every other command fails with CommandNotFound, and no events are sent;
 *  - requests are a stream of JSON objects {"execute": NAME, "arguments": {...}, "id": ANY}, which
 *    may arrive several in one read or split across reads: json-c's tokener keeps its state
 *    between calls and reports where each complete object ends, which is exactly this framing;
 *  - replies are {"return": ..., "id": ID} or {"error": {"class": C, "desc": TEXT}, "id": ID}, with
 *    QMP's error classes (GenericError, CommandNotFound, ...); each server message ends with CRLF;
 *  - events are {"event": NAME, "data": {...}, "timestamp": {"seconds": S, "microseconds": U}}
 *    (wall-clock time, as QEMU's qemu_clock_get_us(QEMU_CLOCK_REALTIME)).
 * Input that is not such a request is answered with an error and the connection stays usable: after
 * a JSON syntax error or a request over REQUEST_MAX bytes the rest of that line is skipped (QEMU
 * resets its parser the same way; a line is where a person typing at the socket ends a request).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "blvm/file.h"
#include "blvm/version.h"
#include "control/control.h"

#define MAX_CLIENTS 16
#define REQUEST_MAX (64 * 1024)   /* bytes of one request; QEMU's streamer caps tokens similarly */
#define JSON_DEPTH 1024           /* nesting of a request: QEMU's json-streamer MAX_NESTING */
#define OUT_MAX (4 * 1024 * 1024) /* queued output of a client that does not read: then it is dropped */
#define EVENTS_MAX (256 * 1024)   /* --events lines waiting for a slow reader: then new ones are dropped */

struct client {
	int fd;                /* -1: free slot */
	json_tokener *tok;
	size_t pending;        /* bytes of the request being parsed */
	bool skipping;         /* after an error: discard up to the next newline */
	bool negotiated;       /* qmp_capabilities done: commands and events */
	char *out;             /* queued output */
	size_t out_len, out_cap;
};

struct blvm_control {
	char *socket_path;     /* the socket we bound (removed at the end) */
	int listen_fd;
	int events_fd;         /* non-blocking: a FIFO's reader may stall, the thread must not */
	char *events_path;
	char *ev_out;          /* --events lines not yet taken, whole lines but perhaps the first */
	size_t ev_len, ev_cap;
	uint64_t ev_lines, ev_dropped; /* lines meant for --events; of them not written */
	char *metrics_path;
	int wake[2];           /* blvm_control_finish -> the thread */
	pthread_t thread;
	bool started;
	struct blvm_vm *vm;
	struct blvm_vm_result res; /* written before the wake-up, read by the thread after it */
	struct client clients[MAX_CLIENTS];
	/* the per-second tick */
	double tick_wall;      /* the VM's wall_seconds at the last tick */
	uint64_t tick_total, tick_throttled_ns;
	bool rate_reported;    /* the last tick reported a non-zero rate */
	bool throttling;       /* BUS_LOCK_THROTTLE_START sent, STOP not yet */
	/* The policy's throttling, told by vCPU threads (on_throttle) under thr_lock */
	pthread_mutex_t thr_lock;
	bool thr_lock_init;
	unsigned thr_asleep;       /* vCPUs in a policy sleep now */
	uint64_t thr_decisions;    /* sleeps decided so far */
	uint64_t thr_seen;         /* thr_decisions at the last tick (the control thread's) */
	bool thr_noted;            /* this throttling's start was told to the thread ('t' on wake) */
	struct timespec thr_at;    /* that start: when, and the bus lock that caused it */
	uint64_t thr_total;
	bool metrics_failed;   /* said once */
	/* --metrics written in place (a FIFO, a device): see metrics_rewrite */
	struct blvm_output m_out;  /* open while m_len bytes are not all taken */
	char *m_buf;
	size_t m_len, m_done;
	json_object *m_next;       /* the newest statistics, written when the reader has taken m_buf */
	uint64_t m_rewrites, m_skipped; /* rewrites due; of them not written whole */
	bool m_said;               /* the first wait, said once */
};

/* ---- JSON helpers ------------------------------------------------------------------------ */

static const char *to_text(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int64_t get_int(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

/* The statistics object now (res NULL) or at the end: the --stats builder's text, parsed. */
static json_object *stats_object(struct blvm_vm *vm, const struct blvm_vm_result *res)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	blvm_vm_write_stats(vm, res, f);
	json_object *o = fclose(f) == 0 ? json_tokener_parse(buf) : NULL;
	free(buf);
	return o;
}

/* ---- output ------------------------------------------------------------------------------ */

static void client_close(struct client *cl)
{
	if (cl->fd < 0)
		return;
	close(cl->fd);
	json_tokener_free(cl->tok);
	free(cl->out);
	*cl = (struct client){ .fd = -1 };
}

/* Sends what is queued as far as the socket takes it now (never blocks). */
static void client_flush(struct client *cl)
{
	size_t done = 0;
	while (done < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + done, cl->out_len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		client_close(cl); /* gone (EPIPE, ECONNRESET): nothing more to say to it */
		return;
	}
	memmove(cl->out, cl->out + done, cl->out_len - done);
	cl->out_len -= done;
}

/* Queues one server message: the JSON text and QMP's CRLF. */
static void client_send(struct client *cl, json_object *msg)
{
	if (cl->fd < 0)
		return;
	size_t len;
	const char *text = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (cl->out_len + len + 2 > OUT_MAX) {
		client_close(cl); /* it does not read what it is sent */
		return;
	}
	if (cl->out_len + len + 2 > cl->out_cap) {
		size_t cap = (cl->out_len + len + 2) * 2;
		char *p = realloc(cl->out, cap);
		if (!p) {
			client_close(cl);
			return;
		}
		cl->out = p;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, text, len);
	memcpy(cl->out + cl->out_len + len, "\r\n", 2);
	cl->out_len += len + 2;
	client_flush(cl);
}

static void reply_error(struct client *cl, json_object *id, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply_error(struct client *cl, json_object *id, const char *cls, const char *fmt, ...)
{
	char desc[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof desc, fmt, ap);
	va_end(ap);
	json_object *err = json_object_new_object(), *msg = json_object_new_object();
	json_object_object_add(err, "class", json_object_new_string(cls));
	json_object_object_add(err, "desc", json_object_new_string(desc));
	json_object_object_add(msg, "error", err);
	if (id)
		json_object_object_add(msg, "id", json_object_get(id));
	client_send(cl, msg);
	json_object_put(msg);
}

/* {"return": ret, "id": id}; takes ret. */
static void reply_return(struct client *cl, json_object *id, json_object *ret)
{
	json_object *msg = json_object_new_object();
	json_object_object_add(msg, "return", ret ? ret : json_object_new_object());
	if (id)
		json_object_object_add(msg, "id", json_object_get(id));
	client_send(cl, msg);
	json_object_put(msg);
}

/* ---- --events ---------------------------------------------------------------------------- */

/* The lines an --events file holds are QMP's events, which QMP delivers whole and in order or not
 * at all (a client that does not read is disconnected, qmp-spec.rst). The file's reader may be a
 * FIFO's or a pipe's that stalls, and the control thread must not stall with it (it answers the
 * socket, ticks, and ends the run on time): the descriptor is non-blocking, lines wait in ev_out
 * and are written as the reader takes them (POLLOUT), each by one write() (whole in a regular file
 * with O_APPEND, and in a pipe up to PIPE_BUF bytes). When EVENTS_MAX bytes wait, a new line is
 * dropped whole, counted, and said once; at the end the count is given (docs/blvm.1). */
static size_t count_lines(const char *p, size_t len)
{
	size_t n = 0;
	for (size_t k = 0; k < len; k++)
		n += p[k] == '\n';
	return n;
}

static void events_flush(struct blvm_control *c)
{
	size_t done = 0;
	while (c->events_fd >= 0 && done < c->ev_len) {
		const char *nl = memchr(c->ev_out + done, '\n', c->ev_len - done);
		size_t line = (size_t)(nl - (c->ev_out + done)) + 1;
		ssize_t n = write(c->events_fd, c->ev_out + done, line);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		fprintf(stderr, "blvm: --events: writing failed: %s; no more events are written\n",
			strerror(n < 0 ? errno : EIO));
		close(c->events_fd);
		c->events_fd = -1;
	}
	memmove(c->ev_out, c->ev_out + done, c->ev_len - done);
	c->ev_len -= done;
	if (c->events_fd < 0) { /* what waits will never be written */
		c->ev_dropped += count_lines(c->ev_out, c->ev_len);
		c->ev_len = 0;
	}
}

static void events_queue(struct blvm_control *c, const char *text)
{
	size_t len = strlen(text);
	c->ev_lines++;
	if (c->events_fd < 0) {
		c->ev_dropped++;
		return;
	}
	if (c->ev_len + len + 1 > EVENTS_MAX) {
		if (!c->ev_dropped)
			fprintf(stderr, "blvm: --events=%s: the reader does not keep up; events are dropped while "
				"%d KiB wait to be written (the count is given at the end)\n", c->events_path,
				EVENTS_MAX / 1024);
		c->ev_dropped++;
		return;
	}
	if (c->ev_len + len + 1 > c->ev_cap) {
		size_t cap = (c->ev_len + len + 1) * 2;
		char *p = realloc(c->ev_out, cap < EVENTS_MAX ? cap : EVENTS_MAX);
		if (!p) {
			c->ev_dropped++;
			return;
		}
		c->ev_out = p;
		c->ev_cap = cap < EVENTS_MAX ? cap : EVENTS_MAX;
	}
	memcpy(c->ev_out + c->ev_len, text, len);
	c->ev_out[c->ev_len + len] = '\n';
	c->ev_len += len + 1;
	events_flush(c);
}

/* An event to every negotiated client and to --events; takes data (NULL: no "data" member, as QEMU
 * sends STOP and RESUME). Its timestamp is at, or now (at NULL). */
static void emit_at(struct blvm_control *c, const char *name, json_object *data, const struct timespec *at)
{
	struct timespec ts;
	if (at)
		ts = *at;
	else
		clock_gettime(CLOCK_REALTIME, &ts);
	json_object *ev = json_object_new_object(), *t = json_object_new_object();
	json_object_object_add(ev, "event", json_object_new_string(name));
	if (data)
		json_object_object_add(ev, "data", data);
	json_object_object_add(t, "seconds", json_object_new_int64(ts.tv_sec));
	json_object_object_add(t, "microseconds", json_object_new_int64(ts.tv_nsec / 1000));
	json_object_object_add(ev, "timestamp", t);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0 && c->clients[i].negotiated)
			client_send(&c->clients[i], ev);
	if (c->events_path)
		events_queue(c, to_text(ev));
	json_object_put(ev);
}

static void emit(struct blvm_control *c, const char *name, json_object *data)
{
	emit_at(c, name, data, NULL);
}

/* ---- commands ---------------------------------------------------------------------------- */

struct command {
	const char *name;
	const char *const *params;  /* the string arguments it takes (all required), NULL-terminated */
	/* Returns the "return" value, or NULL with *cls and desc set. */
	json_object *(*fn)(struct blvm_control *c, json_object *args, const char **cls, char *desc, size_t len);
};

static json_object *cmd_query_status(struct blvm_control *c, json_object *args, const char **cls, char *desc,
				     size_t len)
{
	(void)args, (void)cls, (void)desc, (void)len;
	/* QMP's StatusInfo: "running", "paused", "shutdown" (the VM has ended, the socket not yet). */
	bool ended = blvm_vm_ended(c->vm), paused = blvm_vm_paused(c->vm);
	json_object *r = json_object_new_object();
	json_object_object_add(r, "running", json_object_new_boolean(!ended && !paused));
	json_object_object_add(r, "singlestep", json_object_new_boolean(false)); /* QEMU 7's StatusInfo */
	json_object_object_add(r, "status", json_object_new_string(ended ? "shutdown" : paused ? "paused" : "running"));
	return r;
}

static json_object *cmd_query_bus_locks(struct blvm_control *c, json_object *args, const char **cls, char *desc,
					size_t len)
{
	(void)args;
	json_object *r = stats_object(c->vm, NULL);
	if (!r) {
		*cls = "GenericError";
		snprintf(desc, len, "the statistics could not be built (out of memory)");
	}
	return r;
}

static json_object *cmd_set_bus_lock_policy(struct blvm_control *c, json_object *args, const char **cls,
					    char *desc, size_t len)
{
	const char *spec = json_object_get_string(get(args, "policy"));
	struct blvm_policy_config cfg;
	char err[400];
	if (blvm_policy_parse(spec, &cfg, err, sizeof err) != 0 ||
	    blvm_vm_set_bus_lock_policy(c->vm, &cfg, err, sizeof err) != 0) {
		*cls = "GenericError";
		snprintf(desc, len, "%s", err);
		return NULL;
	}
	char now[64];
	blvm_policy_format(&cfg, now, sizeof now);
	json_object *data = json_object_new_object();
	json_object_object_add(data, "policy", json_object_new_string(now));
	emit(c, "BUS_LOCK_POLICY", data);
	json_object *r = json_object_new_object();
	json_object_object_add(r, "policy", json_object_new_string(now));
	return r;
}

static json_object *cmd_stop(struct blvm_control *c, json_object *args, const char **cls, char *desc, size_t len)
{
	(void)args, (void)cls, (void)desc, (void)len;
	if (!blvm_vm_paused(c->vm)) {
		blvm_vm_pause(c->vm);
		emit(c, "STOP", NULL);
	}
	return json_object_new_object();
}

static json_object *cmd_cont(struct blvm_control *c, json_object *args, const char **cls, char *desc, size_t len)
{
	(void)args, (void)cls, (void)desc, (void)len;
	if (blvm_vm_paused(c->vm)) {
		blvm_vm_resume(c->vm);
		emit(c, "RESUME", NULL);
	}
	return json_object_new_object();
}

static json_object *cmd_quit(struct blvm_control *c, json_object *args, const char **cls, char *desc, size_t len)
{
	(void)args, (void)cls, (void)desc, (void)len;
	blvm_vm_quit(c->vm); /* the VM ends; blvm_control_finish sends SHUTDOWN */
	return json_object_new_object();
}

static json_object *cmd_query_version(struct blvm_control *c, json_object *args, const char **cls, char *desc,
				      size_t len);
static json_object *cmd_query_commands(struct blvm_control *c, json_object *args, const char **cls, char *desc,
				       size_t len);

static const char *const policy_params[] = { "policy", NULL };
static const char *const no_params[] = { NULL };
static const struct command commands[] = {
	{ "query-status", no_params, cmd_query_status },
	{ "query-bus-locks", no_params, cmd_query_bus_locks },
	{ "set-bus-lock-policy", policy_params, cmd_set_bus_lock_policy },
	{ "stop", no_params, cmd_stop },
	{ "cont", no_params, cmd_cont },
	{ "quit", no_params, cmd_quit },
	{ "query-version", no_params, cmd_query_version },
	{ "query-commands", no_params, cmd_query_commands },
};

/* QMP's VersionInfo shape, with blvm's numbers: QMP clients read "qemu" for the server's version. */
static json_object *version_info(void)
{
	json_object *v = json_object_new_object(), *q = json_object_new_object();
	json_object_object_add(q, "major", json_object_new_int(BLVM_VERSION_MAJOR));
	json_object_object_add(q, "minor", json_object_new_int(BLVM_VERSION_MINOR));
	json_object_object_add(q, "micro", json_object_new_int(BLVM_VERSION_PATCH));
	json_object_object_add(v, "qemu", q);
	json_object_object_add(v, "package", json_object_new_string("blvm " BLVM_VERSION));
	return v;
}

static json_object *cmd_query_version(struct blvm_control *c, json_object *args, const char **cls, char *desc,
				      size_t len)
{
	(void)c, (void)args, (void)cls, (void)desc, (void)len;
	return version_info();
}

static json_object *cmd_query_commands(struct blvm_control *c, json_object *args, const char **cls, char *desc,
				       size_t len)
{
	(void)c, (void)args, (void)cls, (void)desc, (void)len;
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(commands[i].name));
		json_object_array_add(a, o);
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string("qmp_capabilities"));
	json_object_array_add(a, o);
	return a;
}

/* One request, checked as QEMU's qmp_dispatch() checks it, with its messages. */
static void handle_request(struct blvm_control *c, struct client *cl, json_object *req)
{
	if (!json_object_is_type(req, json_type_object)) {
		reply_error(cl, NULL, "GenericError", "QMP input must be a JSON object");
		return;
	}
	json_object *id = get(req, "id"), *exec = get(req, "execute"), *args = get(req, "arguments");
	json_object_object_foreach(req, key, val) {
		(void)val;
		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id")) {
			reply_error(cl, id, "GenericError", "QMP input member '%s' is unexpected", key);
			return;
		}
	}
	if (!exec) {
		reply_error(cl, id, "GenericError", "QMP input lacks member 'execute'");
		return;
	}
	if (!json_object_is_type(exec, json_type_string)) {
		reply_error(cl, id, "GenericError", "QMP input member 'execute' must be a string");
		return;
	}
	if (args && !json_object_is_type(args, json_type_object)) {
		reply_error(cl, id, "GenericError", "QMP input member 'arguments' must be an object");
		return;
	}
	const char *name = json_object_get_string(exec);
	if (strcmp(name, "qmp_capabilities") == 0) {
		if (cl->negotiated) {
			reply_error(cl, id, "CommandNotFound", "Capabilities negotiation is already complete, command "
				    "ignored");
			return;
		}
		/* blvm offers no optional capability ("oob" is QEMU's only one). */
		json_object *enable = get(args, "enable");
		if (args) {
			json_object_object_foreach(args, k, v) {
				(void)v;
				if (strcmp(k, "enable")) {
					reply_error(cl, id, "GenericError", "Parameter '%s' is unexpected", k);
					return;
				}
			}
		}
		if (enable && (!json_object_is_type(enable, json_type_array) || json_object_array_length(enable))) {
			json_object *first = json_object_is_type(enable, json_type_array) ?
				json_object_array_get_idx(enable, 0) : enable;
			reply_error(cl, id, "GenericError", "Capability '%s' not available", json_object_get_string(first));
			return;
		}
		cl->negotiated = true;
		reply_return(cl, id, NULL);
		return;
	}
	if (!cl->negotiated) {
		reply_error(cl, id, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
		return;
	}
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		reply_error(cl, id, "CommandNotFound", "The command %s has not been found", name);
		return;
	}
	if (args) {
		json_object_object_foreach(args, k, v) {
			bool known = false;
			for (const char *const *p = cmd->params; *p; p++)
				known |= strcmp(*p, k) == 0;
			if (!known) {
				reply_error(cl, id, "GenericError", "Parameter '%s' is unexpected", k);
				return;
			}
			if (!json_object_is_type(v, json_type_string)) {
				reply_error(cl, id, "GenericError", "Invalid parameter type for '%s', expected: string", k);
				return;
			}
		}
	}
	for (const char *const *p = cmd->params; *p; p++)
		if (!get(args, *p)) {
			reply_error(cl, id, "GenericError", "Parameter '%s' is missing", *p);
			return;
		}
	const char *cls = "GenericError";
	char desc[512] = "";
	json_object *ret = cmd->fn(c, args, &cls, desc, sizeof desc);
	if (ret)
		reply_return(cl, id, ret);
	else
		reply_error(cl, id, cls, "%s", desc);
}

/* Feeds what a client sent to its tokener; each complete object is a request. */
static void client_input(struct blvm_control *c, struct client *cl, const char *buf, size_t n)
{
	size_t off = 0;
	while (off < n && cl->fd >= 0) {
		if (cl->skipping) {
			const char *nl = memchr(buf + off, '\n', n - off);
			if (!nl)
				return;
			off = (size_t)(nl - buf) + 1;
			cl->skipping = false;
			continue;
		}
		if (cl->pending == 0) { /* whitespace between requests is not part of one */
			while (off < n && (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\r' || buf[off] == '\n'))
				off++;
			if (off == n)
				return;
		}
		size_t chunk = n - off;
		json_object *o = json_tokener_parse_ex(cl->tok, buf + off, (int)chunk);
		enum json_tokener_error e = json_tokener_get_error(cl->tok);
		if (o) {
			size_t used = json_tokener_get_parse_end(cl->tok);
			cl->pending = 0;
			json_tokener_reset(cl->tok);
			if (used == 0 || used > chunk)
				used = chunk;
			off += used;
			handle_request(c, cl, o);
			json_object_put(o);
			continue;
		}
		if (e == json_tokener_continue) {
			cl->pending += chunk;
			if (cl->pending > REQUEST_MAX) {
				reply_error(cl, NULL, "GenericError", "JSON request too large (more than %d bytes); the "
					    "rest of the line is ignored", REQUEST_MAX);
				json_tokener_reset(cl->tok);
				cl->pending = 0;
				cl->skipping = true;
			}
			return;
		}
		/* A syntax error at parse_end: answered, and the rest of that line skipped. */
		size_t at = json_tokener_get_parse_end(cl->tok);
		reply_error(cl, NULL, "GenericError", "JSON parse error, %s", json_tokener_error_desc(e));
		json_tokener_reset(cl->tok);
		cl->pending = 0;
		cl->skipping = true;
		off += at < chunk ? at : chunk;
	}
}

static void client_accept(struct blvm_control *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct client *cl = NULL;
	for (int i = 0; i < MAX_CLIENTS && !cl; i++)
		if (c->clients[i].fd < 0)
			cl = &c->clients[i];
	json_tokener *tok = cl ? json_tokener_new_ex(JSON_DEPTH) : NULL;
	if (!tok) {
		static const char busy[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"too many clients "
					   "(at most 16 at once)\"}}\r\n";
		(void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
				    JSON_TOKENER_VALIDATE_UTF8);
	*cl = (struct client){ .fd = fd, .tok = tok };
	json_object *g = json_object_new_object(), *qmp = json_object_new_object();
	json_object_object_add(qmp, "version", version_info());
	json_object_object_add(qmp, "capabilities", json_object_new_array());
	json_object_object_add(g, "QMP", qmp);
	client_send(cl, g);
	json_object_put(g);
}

/* ---- the per-second tick: rate events and metrics ------------------------------------------ */

/* A Prometheus label value: backslash, double quote and newline escaped (exposition format). */
static void label_value(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The Prometheus text exposition of the statistics object (no sample timestamps: node_exporter's
 * textfile-collector convention, the file's mtime is its time). */
static void write_metrics(FILE *f, json_object *st)
{
	json_object *bl = get(st, "bus_locks"), *vcpus = get(st, "vcpus"), *exits = get(st, "exits");
	size_t nv = vcpus && json_object_is_type(vcpus, json_type_array) ? json_object_array_length(vcpus) : 0;

	family(f, "blvm_info", "gauge", "blvm's version, engine and bus-lock policy (value 1)");
	fprintf(f, "blvm_info{version=");
	label_value(f, BLVM_VERSION);
	fprintf(f, ",engine=");
	label_value(f, json_object_get_string(get(st, "engine")));
	fprintf(f, ",policy=");
	label_value(f, json_object_get_string(get(bl, "policy")));
	fprintf(f, "} 1\n");

	family(f, "blvm_up_seconds", "gauge", "Seconds since the VM started");
	json_object *wall = get(st, "wall_seconds");
	fprintf(f, "blvm_up_seconds %.6f\n", wall ? json_object_get_double(wall) : 0.0);

	family(f, "blvm_bus_locks_total", "counter", "Bus locks the guest took, by reason (split, uc, or "
	       "unattributed where the engine cannot tell)");
	static const char *const reasons[] = { "split", "uc", "unattributed" };
	for (unsigned i = 0; i < 3; i++)
		fprintf(f, "blvm_bus_locks_total{reason=\"%s\"} %" PRId64 "\n", reasons[i], get_int(bl, reasons[i]));

	family(f, "blvm_vcpu_bus_locks_total", "counter", "Bus locks by vCPU");
	for (size_t i = 0; i < nv; i++) {
		json_object *v = json_object_array_get_idx(vcpus, i);
		fprintf(f, "blvm_vcpu_bus_locks_total{vcpu=\"%" PRId64 "\"} %" PRId64 "\n", get_int(v, "id"),
			get_int(v, "bus_locks"));
	}

	family(f, "blvm_throttled_seconds_total", "counter", "Seconds vCPU threads slept for the bus-lock "
	       "policy (ratelimit, pause), summed over the vCPUs");
	fprintf(f, "blvm_throttled_seconds_total %.9f\n", (double)get_int(bl, "throttled_ns") / 1e9);
	family(f, "blvm_vcpu_throttled_seconds_total", "counter", "Seconds each vCPU thread slept for the policy");
	for (size_t i = 0; i < nv; i++) {
		json_object *v = json_object_array_get_idx(vcpus, i);
		fprintf(f, "blvm_vcpu_throttled_seconds_total{vcpu=\"%" PRId64 "\"} %.9f\n", get_int(v, "id"),
			(double)get_int(v, "throttled_ns") / 1e9);
	}

	family(f, "blvm_exits_total", "counter", "VM exits to the monitor, by KVM exit reason");
	if (exits && json_object_is_type(exits, json_type_object)) {
		json_object_object_foreach(exits, reason, n) {
			fprintf(f, "blvm_exits_total{reason=");
			label_value(f, reason);
			fprintf(f, "} %" PRId64 "\n", json_object_get_int64(n));
		}
	}

	/* The kvm engine cannot count instructions ("instructions": null): no samples then. */
	json_object *insns = get(st, "instructions");
	if (insns && json_object_is_type(insns, json_type_int)) {
		family(f, "blvm_instructions_total", "counter", "Guest instructions retired (emu engine)");
		fprintf(f, "blvm_instructions_total %" PRId64 "\n", json_object_get_int64(insns));
		family(f, "blvm_vcpu_instructions_total", "counter", "Guest instructions retired, by vCPU");
		for (size_t i = 0; i < nv; i++) {
			json_object *v = json_object_array_get_idx(vcpus, i);
			fprintf(f, "blvm_vcpu_instructions_total{vcpu=\"%" PRId64 "\"} %" PRId64 "\n", get_int(v, "id"),
				get_int(v, "instructions"));
		}
	}
}

/* Writes what is left of an in-place exposition as far as the reader takes it now (never blocks);
 * when it is all taken the file is closed (a FIFO's reader sees its end) and the newest statistics
 * that waited, if any, are written next. */
static void metrics_write(struct blvm_control *c, json_object *st);
static void metrics_drain(struct blvm_control *c)
{
	while (c->m_done < c->m_len) {
		ssize_t n = write(fileno(c->m_out.f), c->m_buf + c->m_done, c->m_len - c->m_done);
		if (n > 0) {
			c->m_done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (!c->metrics_failed)
			fprintf(stderr, "blvm: writing %s failed: %s\n", c->m_out.name, strerror(n < 0 ? errno : EIO));
		c->metrics_failed = true;
		break;
	}
	blvm_output_abort(&c->m_out); /* in place: only closes */
	free(c->m_buf);
	c->m_buf = NULL;
	c->m_len = c->m_done = 0;
	json_object *next = c->m_next;
	c->m_next = NULL;
	if (next) {
		metrics_write(c, next);
		json_object_put(next);
	}
}

/* Rewrites --metrics (blvm/file.h): a regular file atomically (a temporary file beside it, renamed);
 * a FIFO or a device in place. The reader of a FIFO may stall, and the control thread must not stall
 * with it (it answers the socket, ticks, and ends the run on time), as for --events: the descriptor
 * is non-blocking, the exposition is written as the reader takes it (POLLOUT), and while one waits no
 * other is started, so the reader never sees two interleaved; the newest statistics wait instead and
 * replace each other (a counter's newest value is all a scraper wants). The first wait is said once;
 * at the end the count of rewrites not written is given. */
static void metrics_write(struct blvm_control *c, json_object *st)
{
	struct blvm_output o;
	char err[512];
	if (blvm_output_open(&o, c->metrics_path, "--metrics", err, sizeof err) != 0)
		goto failed;
	if (blvm_output_tmp_name(&o)) {
		write_metrics(o.f, st);
		if (blvm_output_commit(&o, err, sizeof err) != 0)
			goto failed;
		c->metrics_failed = false;
		return;
	}
	FILE *m = open_memstream(&c->m_buf, &c->m_len);
	int fl = fcntl(fileno(o.f), F_GETFL);
	if (!m || fl < 0 || fcntl(fileno(o.f), F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(err, sizeof err, "cannot write %s: %s", o.name, strerror(errno));
		if (m)
			fclose(m);
		free(c->m_buf);
		c->m_buf = NULL;
		c->m_len = 0;
		blvm_output_abort(&o);
		goto failed;
	}
	write_metrics(m, st);
	fclose(m);
	c->m_out = o;
	c->m_done = 0;
	c->metrics_failed = false;
	metrics_drain(c);
	return;
failed:
	if (!c->metrics_failed) /* once, not every second */
		fprintf(stderr, "blvm: %s\n", err);
	c->metrics_failed = true;
}

static void metrics_rewrite(struct blvm_control *c, json_object *st)
{
	if (!c->metrics_path || !st)
		return;
	c->m_rewrites++;
	if (c->m_len) {
		if (!c->m_said)
			fprintf(stderr, "blvm: %s: the reader does not keep up; while it has not taken one "
				"rewrite no other is started (the count is given at the end)\n", c->m_out.name);
		c->m_said = true;
		if (c->m_next) {
			json_object_put(c->m_next); /* superseded, never written */
			c->m_skipped++;
		}
		c->m_next = json_object_get(st);
		return;
	}
	metrics_write(c, st);
}

/* The throttle hook (blvm_vm_set_throttle_hook), on a vCPU thread at each policy sleep: the first
 * decision of a throttling wakes the control thread ('t'), which sends BUS_LOCK_THROTTLE_START
 * stamped with the decision's time and naming the bus lock that caused it, before any per-second
 * event that follows. A mutex (held for a few instructions; the policy took its own for this bus
 * lock already) and at most one pipe write per throttling: it never blocks the vCPU for long. */
static void on_throttle(void *arg, unsigned vcpu, bool asleep, uint64_t total)
{
	struct blvm_control *c = arg;
	bool wake = false;
	(void)vcpu;
	pthread_mutex_lock(&c->thr_lock);
	if (asleep) {
		c->thr_asleep++;
		c->thr_decisions++;
		if (!c->thr_noted) {
			c->thr_noted = wake = true;
			clock_gettime(CLOCK_REALTIME, &c->thr_at);
			c->thr_total = total;
		}
	} else {
		c->thr_asleep--;
	}
	pthread_mutex_unlock(&c->thr_lock);
	if (wake)
		(void)!write(c->wake[1], "t", 1);
}

static void throttle_start(struct blvm_control *c)
{
	pthread_mutex_lock(&c->thr_lock);
	struct timespec at = c->thr_at;
	uint64_t total = c->thr_total;
	pthread_mutex_unlock(&c->thr_lock);
	if (c->throttling)
		return;
	json_object *st = stats_object(c->vm, NULL);
	json_object *d = json_object_new_object();
	json_object_object_add(d, "policy", json_object_get(get(get(st, "bus_locks"), "policy")));
	json_object_object_add(d, "total", json_object_new_int64((int64_t)total));
	json_object_put(st);
	emit_at(c, "BUS_LOCK_THROTTLE_START", d, &at);
	c->throttling = true;
}

/* Once a second: BUS_LOCK_RATE while bus locks happen (and once when they stop), throttle start and
 * stop, the metrics file. */
static void tick(struct blvm_control *c)
{
	json_object *st = stats_object(c->vm, NULL);
	if (!st)
		return;
	/* Read after the statistics: a VM whose end was decided gets its last word from end_events()
	 * (the 'x' on the way); a tick between the two would repeat the end's figures, time included. */
	if (blvm_vm_ended(c->vm)) {
		json_object_put(st);
		return;
	}
	json_object *bl = get(st, "bus_locks");
	double wall = json_object_get_double(get(st, "wall_seconds"));
	uint64_t total = (uint64_t)get_int(bl, "total"), thr = (uint64_t)get_int(bl, "throttled_ns");
	double dt = wall - c->tick_wall;
	uint64_t dn = total - c->tick_total, dthr = thr - c->tick_throttled_ns;
	bool detecting = strcmp(json_object_get_string(get(bl, "policy")), "off") != 0;
	if (detecting && dt > 0 && (dn || c->rate_reported)) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "interval_seconds", json_object_new_double(dt));
		json_object_object_add(d, "bus_locks", json_object_new_int64((int64_t)dn));
		json_object_object_add(d, "per_second", json_object_new_double(dn / dt));
		json_object_object_add(d, "total", json_object_new_int64((int64_t)total));
		json_object_object_add(d, "throttled_ns", json_object_new_int64((int64_t)dthr));
		json_object_object_add(d, "policy", json_object_get(get(bl, "policy")));
		emit(c, "BUS_LOCK_RATE", d);
		c->rate_reported = dn != 0;
	}
	/* Throttling ends when a whole tick passed with no vCPU asleep for the policy and no new sleep
	 * decided; it starts at the decision (throttle_start). */
	pthread_mutex_lock(&c->thr_lock);
	bool idle = c->thr_asleep == 0 && c->thr_decisions == c->thr_seen;
	c->thr_seen = c->thr_decisions;
	if (idle && c->throttling)
		c->thr_noted = false; /* the next decision starts a new throttling */
	pthread_mutex_unlock(&c->thr_lock);
	if (idle && c->throttling) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "policy", json_object_get(get(bl, "policy")));
		json_object_object_add(d, "throttled_ns", json_object_new_int64((int64_t)thr));
		emit(c, "BUS_LOCK_THROTTLE_STOP", d);
		c->throttling = false;
	}
	c->tick_wall = wall;
	c->tick_total = total;
	c->tick_throttled_ns = thr;
	metrics_rewrite(c, st);
	json_object_put(st);
}

/* QMP's ShutdownCause where one fits, else blvm's end reason. */
static const char *shutdown_cause(const char *end)
{
	static const char *const map[][2] = {
		{ "poweroff", "guest-shutdown" }, { "guest_exit", "guest-shutdown" }, { "reboot", "guest-reset" },
		{ "shutdown", "guest-panic" },    { "signal", "host-signal" },        { "quit", "host-qmp-quit" },
		{ "console_quit", "host-ui" },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(map[i][0], end) == 0)
			return map[i][1];
	return end;
}

static void end_events(struct blvm_control *c)
{
	json_object *st = stats_object(c->vm, &c->res);
	const char *end = st ? json_object_get_string(get(st, "end")) : "unknown";
	if (c->res.reason == BLVM_END_BUS_LOCK_KILL) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "message", json_object_new_string(c->res.message));
		json_object_object_add(d, "total", json_object_new_int64(get_int(get(st, "bus_locks"), "total")));
		emit(c, "BUS_LOCK_KILL", d);
	}
	json_object *d = json_object_new_object();
	bool guest = c->res.reason == BLVM_END_GUEST_EXIT || c->res.reason == BLVM_END_POWEROFF ||
		     c->res.reason == BLVM_END_REBOOT || c->res.reason == BLVM_END_SHUTDOWN ||
		     c->res.reason == BLVM_END_HALT;
	json_object_object_add(d, "guest", json_object_new_boolean(guest));
	json_object_object_add(d, "reason", json_object_new_string(shutdown_cause(end)));
	json_object_object_add(d, "end", json_object_new_string(end));
	json_object_object_add(d, "exit_code", json_object_new_int(c->res.exit_status));
	json_object_object_add(d, "message", json_object_new_string(c->res.message));
	emit(c, "SHUTDOWN", d);
	metrics_rewrite(c, st);
	json_object_put(st);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *control_thread(void *arg)
{
	struct blvm_control *c = arg;
	double next_tick = mono() + 1;
	bool ending = false;
	double flush_until = 0;
	for (;;) {
		struct pollfd pfd[MAX_CLIENTS + 4];
		int idx[MAX_CLIENTS + 4];
		int n = 0;
		pfd[n] = (struct pollfd){ .fd = c->wake[0], .events = POLLIN };
		idx[n++] = -1;
		if (c->listen_fd >= 0 && !ending) {
			pfd[n] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
			idx[n++] = -2;
		}
		bool queued = c->ev_len > 0 || c->m_len > 0;
		if (c->ev_len) {
			pfd[n] = (struct pollfd){ .fd = c->events_fd, .events = POLLOUT };
			idx[n++] = -3;
		}
		if (c->m_len) {
			pfd[n] = (struct pollfd){ .fd = fileno(c->m_out.f), .events = POLLOUT };
			idx[n++] = -4;
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *cl = &c->clients[i];
			if (cl->fd < 0)
				continue;
			queued |= cl->out_len > 0;
			pfd[n] = (struct pollfd){ .fd = cl->fd, .events = (ending ? 0 : POLLIN) | (cl->out_len ? POLLOUT : 0) };
			idx[n++] = i;
		}
		double now = mono();
		if (ending && (!queued || now >= flush_until))
			break;
		double until = ending ? flush_until : next_tick;
		int timeout = until > now ? (int)((until - now) * 1000) + 1 : 0;
		int r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		for (int k = 0; r > 0 && k < n; k++) {
			if (!pfd[k].revents)
				continue;
			if (idx[k] == -1) {
				/* 't': a throttling started (on_throttle); 'x': the VM ended (its vCPU threads
				 * are done, so every 't' came before) */
				char b[16];
				ssize_t got = read(c->wake[0], b, sizeof b);
				for (ssize_t j = 0; j < got; j++) {
					if (b[j] == 't' && !ending) {
						throttle_start(c);
					} else if (b[j] == 'x' && !ending) {
						ending = true;
						end_events(c);
						flush_until = mono() + 1; /* clients get a second to take the last words */
					}
				}
			} else if (idx[k] == -2) {
				client_accept(c);
			} else if (idx[k] == -3) {
				events_flush(c); /* writable, or an error that write() then reports */
			} else if (idx[k] == -4) {
				metrics_drain(c);
			} else {
				struct client *cl = &c->clients[idx[k]];
				if (cl->fd < 0)
					continue;
				if (pfd[k].revents & POLLOUT)
					client_flush(cl);
				if (cl->fd >= 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && !ending) {
					char buf[4096];
					ssize_t got = recv(cl->fd, buf, sizeof buf, MSG_DONTWAIT);
					if (got > 0)
						client_input(c, cl, buf, (size_t)got);
					else if (got == 0 || (errno != EAGAIN && errno != EINTR))
						client_close(cl); /* gone, perhaps in the middle of a request: fine */
				} else if (cl->fd >= 0 && (pfd[k].revents & (POLLHUP | POLLERR)) && ending) {
					client_close(cl);
				}
			}
		}
		if (!ending && mono() >= next_tick) {
			tick(c);
			next_tick += 1;
			if (next_tick < mono())
				next_tick = mono() + 1;
		}
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		client_close(&c->clients[i]);
	c->ev_dropped += count_lines(c->ev_out, c->ev_len); /* the reader had its second */
	c->ev_len = 0;
	if (c->ev_dropped)
		fprintf(stderr, "blvm: --events=%s: %" PRIu64 " of %" PRIu64 " events were not written\n",
			c->events_path, c->ev_dropped, c->ev_lines);
	if (c->m_len) { /* the reader had its second: what it has not taken is dropped */
		c->m_skipped += 1 + (c->m_next != NULL);
		json_object_put(c->m_next);
		c->m_next = NULL;
		c->m_len = 0;
		free(c->m_buf);
		c->m_buf = NULL;
		blvm_output_abort(&c->m_out);
	}
	if (c->m_skipped)
		fprintf(stderr, "blvm: --metrics=%s: %" PRIu64 " of %" PRIu64 " rewrites were not written whole\n",
			c->metrics_path, c->m_skipped, c->m_rewrites);
	return NULL;
}

/* ---- setup ------------------------------------------------------------------------------- */

/* Binds PATH as the control socket, mode 0600. An existing socket nobody listens on (a previous
 * run's) is replaced; anything else there is refused: blvm removes only what it created. */
static int bind_socket(struct blvm_control *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "--control=%s: the path is too long for a Unix socket (at most %zu bytes)",
			 path, sizeof sa.sun_path - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "--control=%s: the path exists and is not a socket; give a new name", path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			snprintf(err, errlen, "--control=%s: another program listens on this socket", path);
			return -1;
		}
		unlink(path); /* stale: its server is gone */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "--control=%s: cannot create a socket: %s", path, strerror(errno));
		return -1;
	}
	/* 0600 from the start: bind() creates the node with the umask's mode, so no other user can
	 * connect in the moment before a chmod. No other thread creates files at this point. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	int e = errno;
	umask(old);
	if (r != 0 || listen(fd, 8) != 0) {
		if (r == 0)
			e = errno, unlink(path);
		close(fd);
		snprintf(err, errlen, "--control=%s: cannot listen: %s", path, strerror(e));
		return -1;
	}
	chmod(path, 0600);
	c->listen_fd = fd;
	c->socket_path = strdup(path);
	return 0;
}

static void control_free(struct blvm_control *c)
{
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		if (c->socket_path)
			unlink(c->socket_path);
	}
	if (c->events_fd >= 0)
		close(c->events_fd);
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	if (c->thr_lock_init)
		pthread_mutex_destroy(&c->thr_lock);
	free(c->socket_path);
	free(c->events_path);
	free(c->ev_out);
	free(c->metrics_path);
	free(c);
}

int blvm_control_open(const struct blvm_control_config *cfg, struct blvm_control **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!cfg->socket_path && !cfg->events_path && !cfg->metrics_path)
		return 0;
	struct blvm_control *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->listen_fd = c->events_fd = c->wake[0] = c->wake[1] = -1;
	c->thr_lock_init = pthread_mutex_init(&c->thr_lock, NULL) == 0;
	if (!c->thr_lock_init) {
		snprintf(err, errlen, "cannot create a mutex");
		goto fail;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	if (pipe2(c->wake, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	if (cfg->metrics_path) {
		/* Checked now by opening it as every rewrite will, then leaving it as it was. */
		struct blvm_output o;
		if (blvm_output_open(&o, cfg->metrics_path, "--metrics", err, errlen) != 0)
			goto fail;
		blvm_output_abort(&o);
		c->metrics_path = strdup(cfg->metrics_path);
	}
	if (cfg->events_path) {
		if ((c->events_fd = blvm_open_append(cfg->events_path, "--events", err, errlen)) < 0)
			goto fail;
		int fl = fcntl(c->events_fd, F_GETFL);
		c->events_path = strdup(cfg->events_path);
		if (fl < 0 || fcntl(c->events_fd, F_SETFL, fl | O_NONBLOCK) < 0 || !c->events_path) {
			snprintf(err, errlen, "cannot write --events=%s: %s", cfg->events_path,
				 c->events_path ? strerror(errno) : "out of memory");
			goto fail;
		}
	}
	if (cfg->socket_path && bind_socket(c, cfg->socket_path, err, errlen) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	control_free(c);
	return -1;
}

int blvm_control_start(struct blvm_control *c, struct blvm_vm *vm, char *err, size_t errlen)
{
	if (!c)
		return 0;
	c->vm = vm;
	int r = pthread_create(&c->thread, NULL, control_thread, c);
	if (r != 0) {
		snprintf(err, errlen, "cannot start the control thread: %s", strerror(r));
		return -1;
	}
	c->started = true;
	blvm_vm_set_throttle_hook(vm, on_throttle, c); /* before the VM runs (blvm_vm_run) */
	return 0;
}

void blvm_control_finish(struct blvm_control *c, const struct blvm_vm_result *res)
{
	if (!c)
		return;
	if (c->started) {
		c->res = *res; /* before the write: the thread reads it after the read (pipe: happens-before) */
		(void)!write(c->wake[1], "x", 1);
		pthread_join(c->thread, NULL);
		blvm_vm_set_throttle_hook(c->vm, NULL, NULL);
	}
	control_free(c);
}
