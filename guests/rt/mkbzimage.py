#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Wraps a runtime guest linked with guests/rt/bz.S (ELF64, image at 1 MiB, 64-bit entry at +0x200) in a
bzImage: one setup sector carrying the setup header of Linux's boot protocol 2.15 (boot.rst, "THE
REAL-MODE KERNEL HEADER"), then the protected-mode image, padded to 16 bytes (syssize). Not relocatable:
loaded at 0x100000, where it was linked. There is no 16-bit setup code: it boots only through the
64-bit entry. Usage: mkbzimage.py GUEST.elf OUT"""
import struct, sys

d = open(sys.argv[1], 'rb').read()
assert d[:4] == b'\x7fELF' and d[4] == 2, "an ELF64 guest expected"
phoff, = struct.unpack_from('<Q', d, 0x20)
phentsize, phnum = struct.unpack_from('<HH', d, 0x36)
loads = []
for i in range(phnum):
    t, _, off, _, paddr, filesz, memsz, _ = struct.unpack_from('<IIQQQQQQ', d, phoff + i * phentsize)
    if t == 1 and memsz:
        loads.append((paddr, off, filesz, memsz))
start = min(p for p, _, _, _ in loads)
assert start == 0x100000, "the guest must be linked at 1 MiB"
end_file = max(p + f for p, _, f, _ in loads)
end_mem = max(p + m for p, _, _, m in loads)
image = bytearray(end_file - start)
for p, off, f, _ in loads:
    image[p - start:p - start + f] = d[off:off + f]
image += b'\0' * (-len(image) % 16)
init_size = (end_mem - start + 0xfff) & ~0xfff

setup = bytearray(1024)                                # setup_sects = 1: the boot sector + one
setup[0x1f1] = 1                                        # setup_sects
struct.pack_into('<I', setup, 0x1f4, len(image) // 16)  # syssize
struct.pack_into('<H', setup, 0x1fe, 0xaa55)            # boot_flag
setup[0x200:0x202] = bytes([0xeb, 0x6a])                # jump: the header ends at 0x202 + 0x6a = 0x26c
setup[0x202:0x206] = b'HdrS'
struct.pack_into('<H', setup, 0x206, 0x020f)            # version 2.15
setup[0x211] = 0x01                                     # loadflags: LOADED_HIGH
struct.pack_into('<I', setup, 0x214, 0x100000)          # code32_start
struct.pack_into('<I', setup, 0x22c, 0x7fffffff)        # initrd_addr_max
struct.pack_into('<I', setup, 0x230, 0x200000)          # kernel_alignment
setup[0x234] = 0                                        # relocatable_kernel: no
struct.pack_into('<H', setup, 0x236, 0x1)               # xloadflags: XLF_KERNEL_64
struct.pack_into('<I', setup, 0x238, 2047)              # cmdline_size
struct.pack_into('<Q', setup, 0x258, 0x100000)          # pref_address
struct.pack_into('<I', setup, 0x260, init_size)         # init_size
open(sys.argv[2], 'wb').write(setup + image)
