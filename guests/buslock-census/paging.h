/* SPDX-License-Identifier: MIT */
/*
 * Uncacheable mappings for the bus-lock guests (buslock-census, buslock-storm).
 *
 * The runtime identity-maps 0-4 GiB with 2 MiB write-back pages (PCD = PWT = PAT = 0, PAT index
 * 0). To get other memory types, these guests map 4 KiB pages of their own RAM a second time, at
 * BL_HIGH_VA (PML4 slot 1, 512 GiB), with the page-level attribute bits they want. The memory
 * type of a 4 KiB page is IA32_PAT entry number PAT:PCD:PWT (PTE bits 7, 4, 3; SDM Vol. 3A 12.12.3,
 * Table 12-11); with the power-on PAT 0x0007040600070406 that is
 *     0 WB, 1 WT, 2 UC-, 3 UC, 4 WB, 5 WT, 6 UC-, 7 UC.
 * The paging structures themselves are write-back (CR3 and every upper-level entry have PCD = PWT
 * = 0), so the walk's own accessed/dirty updates are not bus locks.
 *
 * Header-only, static: each guest includes it once.
 */
#ifndef BUSLOCK_PAGING_H
#define BUSLOCK_PAGING_H

#include "rt.h"

#define BL_PTE_P (1ull << 0)
#define BL_PTE_RW (1ull << 1)
#define BL_PTE_PWT (1ull << 3)
#define BL_PTE_PCD (1ull << 4)
#define BL_PTE_PAT (1ull << 7) /* in a 4 KiB PTE; bit 12 in a 2 MiB PDE */

#define BL_MSR_PAT 0x277
#define BL_PAT_DEFAULT 0x0007040600070406ull /* SDM Vol. 3A 12.12.4: value at reset */

/* PML4 slot 1: far above the identity map, so nothing else can reach these pages by accident. */
#define BL_HIGH_VA 0x8000000000ull

static uint64_t bl_pdpt[512] __attribute__((aligned(4096)));
static uint64_t bl_pd[512] __attribute__((aligned(4096)));
static uint64_t bl_pt[512] __attribute__((aligned(4096)));

/* Hooks PML4[1] -> bl_pdpt[0] -> bl_pd[0] -> bl_pt. Addresses are physical = virtual (the
 * guest image lies in the identity map). */
static inline void bl_paging_init(void)
{
	uint64_t *pml4 = (uint64_t *)(uintptr_t)rt_pml4_paddr();
	bl_pd[0] = (uint64_t)(uintptr_t)bl_pt | BL_PTE_P | BL_PTE_RW;
	bl_pdpt[0] = (uint64_t)(uintptr_t)bl_pd | BL_PTE_P | BL_PTE_RW;
	pml4[1] = (uint64_t)(uintptr_t)bl_pdpt | BL_PTE_P | BL_PTE_RW;
	write_cr3(read_cr3());
}

/* Maps the 4 KiB physical page `phys` at BL_HIGH_VA + slot * 4 KiB with the attribute bits
 * `attr` (a combination of BL_PTE_PWT, BL_PTE_PCD, BL_PTE_PAT); returns the virtual address. */
static inline volatile void *bl_map(unsigned slot, uint64_t phys, uint64_t attr)
{
	uint64_t va = BL_HIGH_VA + (uint64_t)slot * 4096;
	bl_pt[slot] = (phys & ~0xfffull) | BL_PTE_P | BL_PTE_RW | attr;
	invlpg((const volatile void *)(uintptr_t)va);
	return (volatile void *)(uintptr_t)va;
}

/* Reprograms IA32_PAT. The SDM (Vol. 3A 12.12.4) asks for a TLB flush after the write so that no
 * translation cached with the old types survives; reloading CR3 does that for non-global pages,
 * which is all these guests have. */
static inline void bl_set_pat(uint64_t pat)
{
	wrmsr(BL_MSR_PAT, pat);
	write_cr3(read_cr3());
}

#endif
