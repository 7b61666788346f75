/* SPDX-License-Identifier: MIT */
/* blvm's version, for programs built against the library (blvm.pc gives the same). The library's
 * soname changes with BLVM_VERSION_MAJOR (0 while the interface is young: any minor may change it). */
#ifndef BLVM_VERSION_H
#define BLVM_VERSION_H

#define BLVM_VERSION_MAJOR 0
#define BLVM_VERSION_MINOR 3
#define BLVM_VERSION_PATCH 0
#define BLVM_VERSION "0.3.0"
/* For compile-time comparisons: BLVM_VERSION_NUMBER >= BLVM_VERSION_AT(0, 2, 0). */
#define BLVM_VERSION_AT(maj, min, pat) (((maj) << 16) | ((min) << 8) | (pat))
#define BLVM_VERSION_NUMBER BLVM_VERSION_AT(BLVM_VERSION_MAJOR, BLVM_VERSION_MINOR, BLVM_VERSION_PATCH)

/* The version of the library actually linked (may differ from the header's with a shared library). */
const char *blvm_version(void);

#endif
