/* SPDX-License-Identifier: MIT */
/*
 * Fuzz: the control socket's input (src/control/control.c, QMP's wire format). The input is split
 * into up to three reads at offsets taken from its first two bytes (QMP allows any framing) and fed
 * to one client, before and after qmp_capabilities. Contract: never a crash or a leak; every
 * message the server queues is one JSON object ending in CRLF, a greeting, a reply ("return" or
 * "error" with "class" and "desc") or an event; the client's parser state stays bounded (a request
 * over REQUEST_MAX bytes is refused). The VM behind the commands is a stand-in defined here (the
 * library's vm.o is not linked): the protocol layer is what is fuzzed.
 */
#include "../../src/control/control.c"

/* ---- the VM's public API, as the control module sees it ---------------------------------- */
static bool fake_paused, fake_ended;
void blvm_vm_write_stats(const struct blvm_vm *vm, const struct blvm_vm_result *res, FILE *f)
{
	(void)vm, (void)res;
	fputs("{\"engine\": \"emu\", \"exit_code\": null, \"end\": null, \"wall_seconds\": 1.5, \"instructions\": 7, "
	      "\"exits\": {\"io\": 3}, \"bus_locks\": {\"policy\": \"log\", \"total\": 2, \"split\": 2, \"uc\": 0, "
	      "\"unattributed\": 0, \"throttled_ns\": 0}, \"vcpus\": [{\"id\": 0, \"bus_locks\": 2, "
	      "\"throttled_ns\": 0, \"instructions\": 7}]}\n", f);
}
void blvm_vm_pause(struct blvm_vm *vm) { (void)vm; fake_paused = true; }
void blvm_vm_resume(struct blvm_vm *vm) { (void)vm; fake_paused = false; }
bool blvm_vm_paused(const struct blvm_vm *vm) { (void)vm; return fake_paused; }
bool blvm_vm_ended(const struct blvm_vm *vm) { (void)vm; return fake_ended; }
void blvm_vm_quit(struct blvm_vm *vm) { (void)vm; fake_ended = true; }
void blvm_vm_set_throttle_hook(struct blvm_vm *vm, blvm_throttle_fn fn, void *arg) { (void)vm, (void)fn, (void)arg; }
int blvm_vm_set_bus_lock_policy(struct blvm_vm *vm, const struct blvm_policy_config *cfg, char *err, size_t errlen)
{
	(void)vm;
	if (cfg->mode == BLVM_POLICY_OFF) {
		snprintf(err, errlen, "cannot be turned off");
		return -1;
	}
	return 0;
}

/* Reads and checks everything the server sent on the other end of the socket pair. */
static void drain(int fd, char **acc, size_t *len)
{
	char buf[65536];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
		*acc = realloc(*acc, *len + (size_t)n + 1);
		memcpy(*acc + *len, buf, (size_t)n);
		*len += (size_t)n;
	}
	char *start = *acc, *end = *acc + *len, *crlf;
	while (start < end && (crlf = memmem(start, (size_t)(end - start), "\r\n", 2))) {
		*crlf = '\0';
		json_object *m = json_tokener_parse(start);
		if (!m || !json_object_is_type(m, json_type_object))
			abort(); /* every message is one JSON object */
		json_object *e = get(m, "error");
		if (!get(m, "QMP") && !get(m, "return") && !get(m, "event") && !e)
			abort();
		if (e && (!json_object_is_type(get(e, "class"), json_type_string) ||
			  !json_object_is_type(get(e, "desc"), json_type_string)))
			abort();
		json_object_put(m);
		start = crlf + 2;
	}
	memmove(*acc, start, (size_t)(end - start));
	*len = (size_t)(end - start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct blvm_control c = { .listen_fd = -1, .events_fd = -1, .wake = { -1, -1 } };
	int sv[2];
	if (size < 2 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	int big = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	fake_paused = fake_ended = false;
	struct client *cl = &c.clients[0];
	*cl = (struct client){ .fd = sv[0], .tok = json_tokener_new_ex(JSON_DEPTH) };
	json_tokener_set_flags(cl->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					JSON_TOKENER_VALIDATE_UTF8);
	for (int i = 1; i < MAX_CLIENTS; i++)
		c.clients[i].fd = -1;
	char *acc = NULL;
	size_t acc_len = 0;
	/* the greeting, as client_accept sends it */
	json_object *g = json_object_new_object(), *qmp = json_object_new_object();
	json_object_object_add(qmp, "version", version_info());
	json_object_object_add(qmp, "capabilities", json_object_new_array());
	json_object_object_add(g, "QMP", qmp);
	client_send(cl, g);
	json_object_put(g);
	/* data[0] & 1: negotiated first; data[1]: where the reads split */
	if (data[0] & 1) {
		static const char neg[] = "{\"execute\": \"qmp_capabilities\"}";
		client_input(&c, cl, neg, sizeof neg - 1);
	}
	const char *in = (const char *)data + 2;
	size_t n = size - 2, a = n ? data[1] % (n + 1) : 0, b = a + (n - a) / 2;
	size_t cuts[4] = { 0, a, b, n };
	for (int k = 0; k < 3 && cl->fd >= 0; k++) {
		if (cuts[k + 1] > cuts[k])
			client_input(&c, cl, in + cuts[k], cuts[k + 1] - cuts[k]);
		if (cl->pending > REQUEST_MAX + 65536)
			abort(); /* the parser's state is bounded */
		drain(sv[1], &acc, &acc_len);
	}
	client_close(cl);
	close(sv[1]);
	free(acc);
	return 0;
}
