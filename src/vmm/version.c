/* SPDX-License-Identifier: MIT */
#include "blvm/version.h"

const char *blvm_version(void)
{
	return BLVM_VERSION;
}
