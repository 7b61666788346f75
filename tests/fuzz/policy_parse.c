/* SPDX-License-Identifier: MIT */
/* Fuzz: the --bus-lock policy parser (blvm_policy_parse). Any string: 0 or -1 with a message; a
 * parsed policy formats to a spec that parses back to the same configuration (policy.h's contract),
 * and the policy can be created, used for one bus-lock exit and destroyed. */
#include <stdlib.h>
#include <string.h>

#include "blvm/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = malloc(size + 1);
	memcpy(spec, data, size);
	spec[size] = '\0';
	struct blvm_policy_config cfg, again;
	char err[256] = "";
	int r = blvm_policy_parse(spec, &cfg, err, sizeof err);
	if (r != 0 && r != -1)
		abort();
	if (r == -1 && !err[0])
		abort(); /* an error always says why */
	if (r == 0) {
		char canon[128];
		blvm_policy_format(&cfg, canon, sizeof canon);
		if (blvm_policy_parse(canon, &again, err, sizeof err) != 0 || memcmp(&cfg, &again, sizeof cfg) != 0)
			abort(); /* format() must read back to the same configuration */
		struct blvm_policy *p = blvm_policy_create(&cfg, 2, NULL, NULL);
		if (p) {
			struct kvm_run run;
			memset(&run, 0, sizeof run);
			run.exit_reason = KVM_EXIT_X86_BUS_LOCK;
			run.flags = KVM_RUN_X86_BUS_LOCK;
			(void)blvm_policy_after_run(p, 1, &run, NULL);
			blvm_policy_destroy(p);
		}
	}
	free(spec);
	return 0;
}
