/* SPDX-License-Identifier: MIT */
/*
 * partial-line: writes `partial line without newline` and no newline, then exits 0. The monitor
 * pushes console output out at each newline, so these bytes reach stdout only at its final flush:
 * the test that a write error there is not hidden behind the guest's status 0.
 */
#include "rt.h"

int guest_main(void)
{
	rt_puts("partial line without newline");
	return RT_EXIT_OK;
}
